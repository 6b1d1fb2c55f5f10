package bench

import (
	"math"
	"math/rand/v2"
)

// Buckets are the gateway's latency histogram bounds in seconds: 1 ms
// doubling up to 8.192 s, then +Inf (15 buckets).
var Buckets = func() []float64 {
	var b []float64
	for v := 0.001; v < 10; v *= 2 {
		b = append(b, v)
	}
	return append(b, math.Inf(1))
}()

const nBuckets = 15

// Sigma is the log-normal shape of every latency distribution in the model.
const Sigma = 0.5

// Scenario is one kind of canary. The stream model, per request: the request
// goes to the canary with probability w (the canary weight the method has set
// at that moment), otherwise to the stable; it fails with the side's error
// rate; its latency is log-normal with the side's median and shape Sigma, and
// is counted in the bucket of Buckets that holds it. Requests arrive as a
// Poisson process at the cell's rate; all methods see the same requests (the
// same random numbers), each split by its own weights.
type Scenario struct {
	// ID selects the scenario in Config.Scenarios and seeds its streams.
	ID string
	// Name as printed in the table.
	Name string
	// StableErrorRate and CanaryErrorRate are per-request failure probabilities.
	StableErrorRate, CanaryErrorRate float64
	// StableMedian and CanaryMedian are latency medians in seconds.
	StableMedian, CanaryMedian float64
	// Bad is true when the right decision is to roll back.
	Bad bool
	// Rates overrides Config.Rates for this scenario when not empty.
	Rates []float64
}

// Scenarios returns the benchmark's scenarios for a stable error rate base:
// A/A, errors 2× and 5×, latency +50%, and the two end-to-end cases (stable
// without errors, canary at 5% or 0%) at 100 requests/s.
func Scenarios(base float64) []Scenario {
	const median = 0.05
	return []Scenario{
		{ID: "aa", Name: "A/A (canary = stable)", StableErrorRate: base, CanaryErrorRate: base, StableMedian: median, CanaryMedian: median},
		{ID: "errors2x", Name: "errors 2×", StableErrorRate: base, CanaryErrorRate: 2 * base, StableMedian: median, CanaryMedian: median, Bad: true},
		{ID: "errors5x", Name: "errors 5×", StableErrorRate: base, CanaryErrorRate: 5 * base, StableMedian: median, CanaryMedian: median, Bad: true},
		{ID: "latency50", Name: "latency +50%", StableErrorRate: base, CanaryErrorRate: base, StableMedian: median, CanaryMedian: 1.5 * median, Bad: true},
		{ID: "e2e-bad", Name: "e2e: errors 0% → 5%", StableErrorRate: 0, CanaryErrorRate: 0.05, StableMedian: median, CanaryMedian: median, Bad: true, Rates: []float64{100}},
		{ID: "e2e-healthy", Name: "e2e: healthy, 0% errors", StableErrorRate: 0, CanaryErrorRate: 0, StableMedian: median, CanaryMedian: median, Rates: []float64{100}},
	}
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
	// A request with standard normal draw z takes median·exp(Sigma·z) seconds,
	// which is in bucket ⌈(Sigma·z + offset)/ln 2⌉ (clamped to the buckets),
	// offset = ln(median/Buckets[0]), since Buckets[k] = Buckets[0]·2^k.
	offset [2]float64
}

func newStream(s Scenario, rate float64, rng *rand.Rand) *stream {
	st := &stream{rng: rng, rate: rate, err: [2]float64{s.StableErrorRate, s.CanaryErrorRate}}
	for side, m := range [2]float64{s.StableMedian, s.CanaryMedian} {
		st.offset[side] = math.Log(m / Buckets[0])
	}
	return st
}

// request is one request's random numbers, shared by all methods: uniforms
// for the side and the failure, a standard normal for the latency.
type request struct {
	arm, fail, z float64
}

// next fills reqs with the requests of a slice of dt seconds and returns them.
func (s *stream) next(dt float64, reqs []request) []request {
	reqs = reqs[:0]
	for t := s.rng.ExpFloat64() / s.rate; t < dt; t += s.rng.ExpFloat64() / s.rate {
		u := s.rng.Uint64()
		reqs = append(reqs, request{
			arm:  float64(u>>32) / (1 << 32),
			fail: float64(u&(1<<32-1)) / (1 << 32),
			z:    s.rng.NormFloat64(),
		})
	}
	return reqs
}

// outcome of request r on side.
func (s *stream) outcome(r request, side int) (failed bool, bucket int) {
	k := math.Ceil((Sigma*r.z + s.offset[side]) / math.Ln2)
	return r.fail < s.err[side], int(max(0, min(k, nBuckets-1)))
}

// counters accumulate requests per side.
type counters struct {
	requests, errors [2]float64
	buckets          [2][nBuckets]float64 // per bucket, not cumulative
}

func (c *counters) add(side int, failed bool, bucket int) {
	c.requests[side]++
	if failed {
		c.errors[side]++
	}
	c.buckets[side][bucket]++
}

// bucketFractions returns the expected share of requests in each bucket for a
// log-normal with the given median.
func bucketFractions(median float64) [nBuckets]float64 {
	var f [nBuckets]float64
	prev := 0.0
	for k := range nBuckets {
		cdf := 1.0
		if k < nBuckets-1 {
			cdf = 0.5 * math.Erfc(-math.Log(Buckets[k]/median)/Sigma/math.Sqrt2)
		}
		f[k] = cdf - prev
		prev = cdf
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
