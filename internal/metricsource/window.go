package metricsource

import (
	"math"
	"slices"
	"time"
)

// counters are one backend's values on one replica: cumulative as scraped, or
// a difference of two scrapes.
type counters struct {
	// requests are all requests but those abandoned by the client (499).
	requests float64
	// errors are the 5xx requests.
	errors float64
	// bounds (ascending, the last +Inf) and buckets (cumulative counts) are the
	// latency histogram; nil when there is none, which counts as all zeros.
	bounds, buckets []float64
	// answered is set on a scraped value with a request series (code other
	// than 499); it is not carried by sub and add.
	answered bool
}

// sub returns c − base. base has no histogram or the same bounds as c.
func (c counters) sub(base counters) counters {
	out := counters{requests: c.requests - base.requests, errors: c.errors - base.errors, bounds: c.bounds}
	if c.bounds != nil {
		out.buckets = slices.Clone(c.buckets)
		if base.bounds != nil {
			for i := range out.buckets {
				out.buckets[i] -= base.buckets[i]
			}
		}
	}
	return out
}

// add returns a + b. When both have a histogram, the sum keeps the bounds they
// share (cumulative counts at a shared bound add up exactly; +Inf is always
// shared), so replicas of different gateway versions still sum correctly.
func add(a, b counters) counters {
	out := counters{requests: a.requests + b.requests, errors: a.errors + b.errors}
	switch {
	case a.bounds == nil:
		out.bounds, out.buckets = b.bounds, slices.Clone(b.buckets)
	case b.bounds == nil:
		out.bounds, out.buckets = a.bounds, slices.Clone(a.buckets)
	case slices.Equal(a.bounds, b.bounds):
		out.bounds, out.buckets = a.bounds, slices.Clone(a.buckets)
		for i := range out.buckets {
			out.buckets[i] += b.buckets[i]
		}
	default:
		for i, j := 0, 0; i < len(a.bounds) && j < len(b.bounds); {
			switch {
			case a.bounds[i] < b.bounds[j]:
				i++
			case a.bounds[i] > b.bounds[j]:
				j++
			default:
				out.bounds = append(out.bounds, a.bounds[i])
				out.buckets = append(out.buckets, a.buckets[i]+b.buckets[j])
				i++
				j++
			}
		}
	}
	return out
}

// reset reports whether cur cannot follow last on a counter that only grows:
// a value went down, or the histogram's buckets changed or vanished. The
// replica restarted, or the gateway deleted the backend's series and made them
// again.
func reset(last, cur counters) bool {
	if cur.requests < last.requests || cur.errors < last.errors {
		return true
	}
	if last.bounds == nil {
		return false // no histogram before: any histogram now is an increase
	}
	if !slices.Equal(cur.bounds, last.bounds) {
		return true
	}
	for i := range cur.buckets {
		if cur.buckets[i] < last.buckets[i] {
			return true
		}
	}
	return false
}

// replicaWindow is what one window knows of one replica.
type replicaWindow struct {
	// started is the replica's process start (Unix seconds), 0 when unknown.
	started float64
	// base is the value the window's delta is counted from; last is the latest
	// value seen; carry is the delta accumulated before the replica's last reset.
	base, last, carry counters
}

// delta is what the replica served in the window, as far as seen.
func (r *replicaWindow) delta() counters { return add(r.carry, r.last.sub(r.base)) }

// window is the state of one (backend, start) window of a Builtin source.
type window struct {
	start time.Time
	// at is the time of the latest scrape applied; an older scrape is not
	// applied (it would look like a reset).
	at time.Time
	// used is when the window was last read (for eviction).
	used     time.Time
	replicas map[string]*replicaWindow
}

// observation is one replica's values for the window's backend in a scrape.
type observation struct {
	url     string
	started float64
	cur     counters
}

// apply updates the window with a scrape taken at at, and returns its total.
//
// A replica first seen counts from its current value, or from zero when its
// process started at or after the window's start (all it served is then inside
// the window). A replica seen before counts on from its last value; after a
// reset (a value went down, or its process start changed) its new value is all
// new, and what it served before the reset is kept. A replica missing from the
// scrape (gone, or not ready) keeps what it served while it was seen.
func (w *window) apply(at time.Time, obs []observation) counters {
	if !at.Before(w.at) {
		w.at = at
		for _, o := range obs {
			r := w.replicas[o.url]
			if r == nil {
				r = &replicaWindow{started: o.started, base: o.cur, last: o.cur}
				if o.started != 0 && o.started >= unixSeconds(w.start) {
					r.base = counters{}
				}
				w.replicas[o.url] = r
				continue
			}
			restarted := o.started != 0 && r.started != 0 && o.started != r.started
			if restarted || reset(r.last, o.cur) {
				r.carry = r.delta()
				r.base = counters{}
			}
			r.started, r.last = o.started, o.cur
		}
	}
	var total counters
	for _, r := range w.replicas {
		total = add(total, r.delta())
	}
	return total
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// latency turns a histogram into Buckets; nil without one.
func (c counters) latency() []Bucket {
	if c.bounds == nil {
		return nil
	}
	out := make([]Bucket, len(c.bounds))
	for i, b := range c.bounds {
		out[i] = Bucket{UpperBound: b, Count: c.buckets[i]}
	}
	return out
}

// withInf returns the histogram with a +Inf bucket of count total appended when
// the last bound is not +Inf.
func withInf(bounds, buckets []float64, total float64) ([]float64, []float64) {
	if n := len(bounds); n == 0 || !math.IsInf(bounds[n-1], 1) {
		bounds = append(bounds, math.Inf(1))
		buckets = append(buckets, total)
	}
	return bounds, buckets
}
