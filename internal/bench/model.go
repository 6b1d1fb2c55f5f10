package bench

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fledge-dev/fledge/internal/analysis"
)

// Buckets are the embedded gateway's latency histogram bounds in seconds:
// prometheus.ExponentialBucketsRange(0.001, 10, 20) (internal/gateway), then
// +Inf: 21 buckets, each about 1.62× the one before.
var Buckets = append(prometheus.ExponentialBucketsRange(0.001, 10, 20), math.Inf(1))

const nBuckets = 21

// Sigma is the log-normal shape of the latency distributions of the model,
// unless a scenario sets its own.
const Sigma = 0.5

// Scenario is one kind of canary. The stream model, per request: the request
// goes to the canary with probability w (the canary weight the method has set
// at that moment), otherwise to the stable; it fails with the side's error
// rate (raised during an outage or a burst); its latency is log-normal with
// the side's median and shape Sigma (times TailFactor for a TailShare of
// requests), and is counted in the bucket of Buckets that holds it. Requests
// arrive as a Poisson process at the cell's rate, none during a gap; all
// methods see the same requests (the same random numbers), each split by its
// own weights.
type Scenario struct {
	// ID selects the scenario in Config.Scenarios and seeds its streams.
	ID string
	// Name as printed in the table.
	Name string
	// StableErrorRate and CanaryErrorRate are per-request failure probabilities.
	StableErrorRate, CanaryErrorRate float64
	// StableMedian and CanaryMedian are latency medians in seconds.
	StableMedian, CanaryMedian float64
	// Sigma is the log-normal shape; 0 means the package's Sigma.
	Sigma float64
	// TailShare of the requests (both sides) take TailFactor times longer.
	TailShare, TailFactor float64
	// Bad is true when the right decision is to roll back.
	Bad bool
	// Rates overrides Config.Rates for this scenario when not empty.
	Rates []float64
	// MinRate leaves out the rates of Config.Rates below it.
	MinRate float64
	// Outage, when set, gives both versions Outage.ErrorRate errors for
	// Outage.Length, starting Outage.After into fledge's step Outage.Step.
	Outage *Episode
	// Gap, when set, stops all traffic for Gap.Length, starting Gap.After
	// into fledge's step Gap.Step.
	Gap *Episode
	// Burst, when set, gives the canary Burst.ErrorRate errors for
	// Burst.Length every Burst.Every, at a phase drawn per run.
	Burst *Burst
	// Source is how fledge reads the counts: SourceBuiltin (exact, at every
	// check), SourcePrometheus (exact, from the samples of a 1 s scrape, one
	// scrape behind) or SourceIncrease (Prometheus' increase(), which
	// extrapolates over the window).
	Source string
}

// Sources of Scenario.Source.
const (
	SourceBuiltin    = ""
	SourcePrometheus = "prometheus"
	SourceIncrease   = "increase"
)

// Episode is a period tied to fledge's steps: it starts After seconds into
// step Step (0-based) and lasts Length seconds, once per run.
type Episode struct {
	Step          int
	After, Length float64
	ErrorRate     float64
}

// Burst is a periodic failure of the canary.
type Burst struct {
	Every, Length, ErrorRate float64
}

// Scenarios returns the benchmark's scenarios for a stable error rate base.
func Scenarios(base float64) []Scenario {
	const median = 0.05
	aa := Scenario{StableErrorRate: base, CanaryErrorRate: base, StableMedian: median, CanaryMedian: median}
	with := func(s Scenario, f func(*Scenario)) Scenario { f(&s); return s }
	out := []Scenario{
		with(aa, func(s *Scenario) { s.ID, s.Name = "aa", "A/A (canary = stable)" }),
		with(aa, func(s *Scenario) {
			s.ID, s.Name, s.CanaryErrorRate, s.Bad, s.MinRate = "errors2x", "errors 2×", 2*base, true, 10
		}),
		with(aa, func(s *Scenario) {
			s.ID, s.Name, s.CanaryErrorRate, s.Bad, s.MinRate = "errors5x", "errors 5×", 5*base, true, 10
		}),
		with(aa, func(s *Scenario) {
			s.ID, s.Name, s.CanaryMedian, s.Bad, s.MinRate = "latency50", "latency only +50%", 1.5*median, true, 10
		}),
		with(aa, func(s *Scenario) {
			s.ID, s.Name, s.Sigma, s.TailShare, s.TailFactor = "aa-heavy", "A/A, heavy-tailed latency (σ 1, 2% × 20)", 1, 0.02, 20
			s.MinRate = 10
		}),
		with(aa, func(s *Scenario) {
			s.ID, s.Name, s.Sigma, s.TailShare, s.TailFactor = "latency50-heavy", "latency +50%, heavy-tailed (σ 1, 2% × 20)", 1, 0.02, 20
			s.CanaryMedian, s.Bad, s.Rates = 1.5*median, true, []float64{10, 100, 1000}
		}),
	}
	for step := range 3 {
		out = append(out, with(aa, func(s *Scenario) {
			s.ID = fmt.Sprintf("outage-step%d", step+1)
			s.Name = fmt.Sprintf("A/A, shared outage (both 50%% errors, 10 s) in step %d", step+1)
			s.Outage = &Episode{Step: step, After: 2, Length: 10, ErrorRate: 0.5}
			s.MinRate = 10
		}))
	}
	out = append(out,
		with(aa, func(s *Scenario) {
			s.ID, s.Name, s.Bad = "bursts", "canary bursts (50% errors 5 s in 60 s)", true
			s.Burst = &Burst{Every: 60, Length: 5, ErrorRate: 0.5}
			s.MinRate = 10
		}),
		with(aa, func(s *Scenario) {
			s.ID, s.Name = "gap", "A/A, traffic gap (0 req/s for 30 s) 5 s into step 1"
			s.Gap = &Episode{Step: 0, After: 5, Length: 30}
			s.MinRate = 10
		}),
		with(aa, func(s *Scenario) {
			s.ID, s.Name, s.Source = "aa-increase", "A/A, Prometheus increase() (extrapolated)", SourceIncrease
			s.Rates = []float64{1000}
		}),
		with(aa, func(s *Scenario) {
			s.ID, s.Name, s.Source = "aa-prometheus", "A/A, Prometheus exact counts", SourcePrometheus
			s.Rates = []float64{1000}
		}),
		Scenario{ID: "e2e-bad", Name: "e2e: errors 0% → 5%", StableErrorRate: 0, CanaryErrorRate: 0.05, StableMedian: median, CanaryMedian: median, Bad: true, Rates: []float64{100}},
		Scenario{ID: "e2e-healthy", Name: "e2e: healthy, 0% errors", StableErrorRate: 0, CanaryErrorRate: 0, StableMedian: median, CanaryMedian: median, Rates: []float64{100}},
	)
	return out
}

// Side indexes: counters and per-side parameters use [2] arrays.
const (
	stableSide = 0
	canarySide = 1
)

// stream draws the requests of one run.
type stream struct {
	rng  *rand.Rand
	rate float64
	err  [2]float64
	// logMedian per side, and the shape and tail of the latency.
	logMedian          [2]float64
	sigma              float64
	tailShare, logTail float64
	burst              *Burst
	burstPhase         float64
	// outage and gap are the scheduled periods [from, to) in seconds since
	// the start, once the simulator knows when fledge reached their step.
	outage, gap [2]float64
	outageRate  float64
}

func newStream(s Scenario, rate float64, rng *rand.Rand) *stream {
	st := &stream{rng: rng, rate: rate, err: [2]float64{s.StableErrorRate, s.CanaryErrorRate},
		sigma: cmp.Or(s.Sigma, Sigma), tailShare: s.TailShare, burst: s.Burst,
		outage: [2]float64{-1, -1}, gap: [2]float64{-1, -1}}
	if s.TailFactor > 0 {
		st.logTail = math.Log(s.TailFactor)
	}
	if s.Outage != nil {
		st.outageRate = s.Outage.ErrorRate
	}
	if s.Burst != nil {
		st.burstPhase = rng.Float64() * s.Burst.Every
	}
	for side, m := range [2]float64{s.StableMedian, s.CanaryMedian} {
		st.logMedian[side] = math.Log(m)
	}
	return st
}

// request is one request's random numbers, shared by all methods: uniforms
// for the side, the failure and the tail, a standard normal for the latency.
type request struct {
	arm, fail, tail, z float64
}

func in(p [2]float64, t float64) bool { return t >= p[0] && t < p[1] }

// next fills reqs with the requests of the slice of dt seconds that starts at
// t and returns them; none during a gap.
func (s *stream) next(t, dt float64, reqs []request) []request {
	reqs = reqs[:0]
	for at := s.rng.ExpFloat64() / s.rate; at < dt; at += s.rng.ExpFloat64() / s.rate {
		u := s.rng.Uint64()
		r := request{
			arm:  float64(u>>32) / (1 << 32),
			fail: float64(u&(1<<32-1)) / (1 << 32),
			tail: s.rng.Float64(),
			z:    s.rng.NormFloat64(),
		}
		if !in(s.gap, t+at) {
			reqs = append(reqs, r)
		}
	}
	return reqs
}

// errorRate of side at time t.
func (s *stream) errorRate(side int, t float64) float64 {
	e := s.err[side]
	if in(s.outage, t) {
		e = max(e, s.outageRate)
	}
	if b := s.burst; b != nil && side == canarySide && math.Mod(t+s.burstPhase, b.Every) < b.Length {
		e = max(e, b.ErrorRate)
	}
	return e
}

// outcome of request r on side in the slice starting at t.
func (s *stream) outcome(r request, side int, t float64) (failed bool, bucket int) {
	lat := s.logMedian[side] + s.sigma*r.z
	if r.tail < s.tailShare {
		lat += s.logTail
	}
	return r.fail < s.errorRate(side, t), bucketOf(math.Exp(lat))
}

// bucketOf is the index of the first bound ≥ latency.
func bucketOf(latency float64) int {
	return min(sort.SearchFloat64s(Buckets, latency), nBuckets-1)
}

// counters accumulate requests per side.
type counters struct {
	requests, errors [2]float64
	buckets          [2][nBuckets]float64 // per bucket, not cumulative
}

// minus returns c − base.
func (c counters) minus(base counters) counters {
	for side := range 2 {
		c.requests[side] -= base.requests[side]
		c.errors[side] -= base.errors[side]
		for k := range nBuckets {
			c.buckets[side][k] -= base.buckets[side][k]
		}
	}
	return c
}

// window is the counts as a source reports them, each multiplied by scale
// (an extrapolation factor, 1 for exact counts), with cumulative histograms
// on the gateway's buckets.
func (c counters) window(scale float64) *analysis.Window {
	var w analysis.Window
	for side, s := range [2]*analysis.Sample{&w.Stable, &w.Canary} {
		s.Requests, s.Errors = c.requests[side]*scale, c.errors[side]*scale
		s.Latency.Bounds = Buckets
		s.Latency.Counts = make([]float64, nBuckets)
		var cum float64
		for k, n := range c.buckets[side] {
			cum += n
			s.Latency.Counts[k] = cum * scale
		}
	}
	return &w
}

func (c *counters) add(side int, failed bool, bucket int) {
	c.requests[side]++
	if failed {
		c.errors[side]++
	}
	c.buckets[side][bucket]++
}

// bucketFractions returns the expected share of requests in each bucket for
// the latency of scenario sc's shape (its Sigma, tail share and factor) with
// the given median.
func bucketFractions(sc Scenario, median float64) [nBuckets]float64 {
	sigma := cmp.Or(sc.Sigma, Sigma)
	cdf := func(b, m float64) float64 { return 0.5 * math.Erfc(-math.Log(b/m)/sigma/math.Sqrt2) }
	var f [nBuckets]float64
	prev := 0.0
	for k := range nBuckets {
		c := 1.0
		if k < nBuckets-1 {
			c = (1-sc.TailShare)*cdf(Buckets[k], median) + sc.TailShare*cdf(Buckets[k], median*max(1, sc.TailFactor))
		}
		f[k] = c - prev
		prev = c
	}
	return f
}

// histogramQuantile is Prometheus' histogram_quantile over per-bucket counts:
// linear interpolation inside the bucket holding rank q·total, the lower edge
// of the first bucket being 0, and the last finite bound when the rank falls
// in the +Inf bucket. NaN without observations.
func histogramQuantile(q float64, perBucket []float64) float64 {
	var total float64
	for _, c := range perBucket {
		total += c
	}
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	var cum float64
	for k, c := range perBucket {
		if cum+c >= rank && c > 0 {
			if k == nBuckets-1 {
				return Buckets[nBuckets-2]
			}
			lo := 0.0
			if k > 0 {
				lo = Buckets[k-1]
			}
			return lo + (Buckets[k]-lo)*(rank-cum)/c
		}
		cum += c
	}
	return Buckets[nBuckets-2]
}
