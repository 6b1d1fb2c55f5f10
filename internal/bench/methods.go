package bench

import (
	"math"

	"github.com/fledge-dev/fledge/internal/analysis"
)

// decision is how a run ended for one method.
type decision int

const (
	undecided decision = iota
	rolledBack
	promoted
)

// outcome is a method's decision and when it took it, in seconds after the
// canary first received traffic.
type outcome struct {
	d  decision
	at float64
}

// method is one way of deciding. The simulator feeds it requests through its
// counters, split by its weight, and calls tick at the end of every slice.
type method interface {
	// weight is the canary's share of requests (0..1) until the next tick.
	weight() float64
	// counters receive the requests of the slice.
	counters() *counters
	// tick is called at time t with slice number i (t = i × slice length); it
	// returns true once the method has decided.
	tick(i int, t float64) bool
	result() outcome
}

// fledgeMethod is the step machine the benchmark uses for fledge: weights go
// through steps; at every scrape it calls analysis.Judge with one Window per
// step; Fail rolls back at once; Pass moves to the next step (or promotes after
// the last one) once the step has lasted minStep. Judge itself demands
// Criteria.MinRequests canary requests in the current step before a Pass.
// Before the last step Judge gets ramp, the criteria with the ramp's bad error
// ratio; the last step, which promotes, gets the full criteria and sees the
// evidence of every step.
type fledgeMethod struct {
	crit, ramp analysis.Criteria
	steps      []float64
	minStep    float64
	step       int
	stepStart  float64
	cur        counters
	windows    []analysis.Window
	out        outcome
}

func newFledge(cfg Config) *fledgeMethod {
	f := &fledgeMethod{crit: cfg.Criteria, ramp: cfg.Criteria, minStep: cfg.MinStepDuration.Seconds()}
	if cfg.RampBadErrorRatio > 0 {
		f.ramp.BadErrorRatio = cfg.RampBadErrorRatio
	}
	for _, s := range cfg.Steps {
		f.steps = append(f.steps, float64(s)/100)
	}
	f.windows = append(f.windows, newWindow())
	return f
}

func newWindow() analysis.Window {
	h := func() analysis.Histogram {
		return analysis.Histogram{Bounds: Buckets, Counts: make([]float64, nBuckets)}
	}
	return analysis.Window{Stable: analysis.Sample{Latency: h()}, Canary: analysis.Sample{Latency: h()}}
}

func (f *fledgeMethod) weight() float64     { return f.steps[f.step] }
func (f *fledgeMethod) counters() *counters { return &f.cur }
func (f *fledgeMethod) result() outcome     { return f.out }

func (f *fledgeMethod) tick(_ int, t float64) bool {
	w := &f.windows[len(f.windows)-1]
	for side, s := range [2]*analysis.Sample{&w.Stable, &w.Canary} {
		s.Requests, s.Errors = f.cur.requests[side], f.cur.errors[side]
		var cum float64
		for k, c := range f.cur.buckets[side] {
			cum += c
			s.Latency.Counts[k] = cum
		}
	}
	crit := f.crit
	if f.step < len(f.steps)-1 {
		crit = f.ramp
	}
	v := analysis.Judge(crit, analysis.Observation{Windows: f.windows})
	switch {
	case v.Result == analysis.Fail:
		f.out = outcome{rolledBack, t}
		return true
	case v.Result == analysis.Pass && t-f.stepStart >= f.minStep-1e-9:
		if f.step == len(f.steps)-1 {
			f.out = outcome{promoted, t}
			return true
		}
		f.step++
		f.stepStart = t
		f.cur = counters{}
		f.windows = append(f.windows, newWindow())
	}
	return false
}

// flaggerMethod mimics Flagger's canary analysis (pkg/controller/scheduler.go):
// traffic starts at stepWeight; every interval, first, if the failed checks
// have reached the threshold it rolls back; otherwise it checks the canary's
// metrics over the last interval: the error rate (100 − request-success-rate)
// must be at most maxErrorRate and the p99 latency (histogram_quantile over
// the interval's buckets) at most maxP99; an interval without canary requests
// fails the check ("no values found"). A failed check increments the failed
// checks (never reset during the analysis) and holds the weight; a passed one
// adds stepWeight, or promotes when the weight is already maxWeight.
type flaggerMethod struct {
	every                 int // slices per interval
	threshold             int
	stepWeight, maxWeight float64
	maxErrorRate, maxP99  float64
	w                     float64
	failed                int
	cur                   counters
	out                   outcome
}

func newFlagger(cfg Config, maxP99 float64, slice float64) *flaggerMethod {
	return &flaggerMethod{
		every:        int(math.Round(cfg.FlaggerInterval.Seconds() / slice)),
		threshold:    cfg.FlaggerThreshold,
		stepWeight:   float64(cfg.FlaggerStepWeight) / 100,
		maxWeight:    float64(cfg.FlaggerMaxWeight) / 100,
		maxErrorRate: cfg.FlaggerMaxErrorRate,
		maxP99:       maxP99,
		w:            float64(cfg.FlaggerStepWeight) / 100,
	}
}

func (f *flaggerMethod) weight() float64     { return f.w }
func (f *flaggerMethod) counters() *counters { return &f.cur }
func (f *flaggerMethod) result() outcome     { return f.out }

func (f *flaggerMethod) tick(i int, t float64) bool {
	if i%f.every != 0 {
		return false
	}
	if f.failed >= f.threshold {
		f.out = outcome{rolledBack, t}
		return true
	}
	n := f.cur.requests[canarySide]
	ok := n > 0 && f.cur.errors[canarySide]/n <= f.maxErrorRate &&
		histogramQuantile(0.99, f.cur.buckets[canarySide][:]) <= f.maxP99
	f.cur = counters{}
	switch {
	case !ok:
		f.failed++
	case f.w < f.maxWeight-1e-9:
		f.w += f.stepWeight
	default:
		f.out = outcome{promoted, t}
		return true
	}
	return false
}

// fixedMethod is a fixed-horizon test: the canary gets a constant weight until
// the horizon, then a one-sided two-proportion z-test on errors and a
// one-sided Mann-Whitney test on the bucketed latencies, each at alpha/2, decide
// once: roll back if either rejects "canary no worse", promote otherwise.
// Without requests on either side it stays undecided.
type fixedMethod struct {
	horizon int // slices
	w       float64
	z       float64 // one-sided critical value at alpha/2
	cur     counters
	out     outcome
}

func newFixed(cfg Config, slice float64) *fixedMethod {
	a := cfg.Criteria.Alpha / 2
	return &fixedMethod{
		horizon: int(math.Round(cfg.FixedHorizon.Seconds() / slice)),
		w:       float64(cfg.FixedWeight) / 100,
		z:       math.Sqrt2 * math.Erfinv(1-2*a),
	}
}

func (f *fixedMethod) weight() float64     { return f.w }
func (f *fixedMethod) counters() *counters { return &f.cur }
func (f *fixedMethod) result() outcome     { return f.out }

func (f *fixedMethod) tick(i int, t float64) bool {
	if i < f.horizon {
		return false
	}
	c := &f.cur
	if c.requests[canarySide] == 0 || c.requests[stableSide] == 0 {
		f.out = outcome{undecided, t}
		return true
	}
	if zTwoProportion(c) > f.z || zMannWhitney(c) > f.z {
		f.out = outcome{rolledBack, t}
	} else {
		f.out = outcome{promoted, t}
	}
	return true
}

// zTwoProportion is the pooled two-proportion z statistic of canary minus
// stable error rate (0 when nobody failed).
func zTwoProportion(c *counters) float64 {
	nc, ns := c.requests[canarySide], c.requests[stableSide]
	p := (c.errors[canarySide] + c.errors[stableSide]) / (nc + ns)
	se := math.Sqrt(p * (1 - p) * (1/nc + 1/ns))
	if se == 0 {
		return 0
	}
	return (c.errors[canarySide]/nc - c.errors[stableSide]/ns) / se
}

// zMannWhitney is the normal approximation, with the tie correction, of the
// Mann-Whitney U statistic for "canary latencies are larger", computed on the
// bucket counts (requests in one bucket are ties).
func zMannWhitney(c *counters) float64 {
	nc, ns := c.requests[canarySide], c.requests[stableSide]
	n := nc + ns
	var u, below, ties float64
	for k := range nBuckets {
		ck, sk := c.buckets[canarySide][k], c.buckets[stableSide][k]
		u += ck * (below + sk/2)
		below += sk
		t := ck + sk
		ties += t*t*t - t
	}
	v := nc * ns / 12 * ((n + 1) - ties/(n*(n-1)))
	if v <= 0 {
		return 0
	}
	return (u - nc*ns/2) / math.Sqrt(v)
}
