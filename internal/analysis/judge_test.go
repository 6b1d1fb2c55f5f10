package analysis

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// bounds are the gateway's buckets: 1 ms doubling up to 8.192 s, then +Inf.
var bounds = func() []float64 {
	var b []float64
	for v := 0.001; v < 10; v *= 2 {
		b = append(b, v)
	}
	return append(b, math.Inf(1))
}()

// logNormal returns the cumulative histogram of n requests whose latency is
// log-normal with the given median (seconds) and σ, with expected (fractional)
// counts, so that tests are deterministic.
func logNormal(n, median, sigma float64) Histogram {
	h := Histogram{Bounds: bounds, Counts: make([]float64, len(bounds))}
	for i, b := range bounds {
		h.Counts[i] = n * 0.5 * math.Erfc(-math.Log(b/median)/sigma/math.Sqrt2)
	}
	return h
}

func sample(requests, errors float64) Sample {
	return Sample{Requests: requests, Errors: errors, Latency: logNormal(requests, 0.05, 0.5)}
}

func one(stable, canary Sample) Observation {
	return Observation{Windows: []Window{{Stable: stable, Canary: canary}}}
}

func errorsOnly() Criteria {
	c := DefaultCriteria()
	c.LatencyQuantile = 0
	return c
}

func TestJudge(t *testing.T) {
	slower := sample(1000, 10)
	slower.Latency = logNormal(1000, 0.075, 0.5)
	mismatched := sample(1000, 10)
	mismatched.Latency.Bounds = append([]float64{0.0005}, bounds[1:]...)
	crash := sample(40, 40)
	crash.Latency = mismatched.Latency
	notCumulative := sample(1000, 10)
	notCumulative.Latency.Counts = append([]float64(nil), notCumulative.Latency.Counts...)
	notCumulative.Latency.Counts[3] = 0
	noHistogram := Sample{Requests: 1000, Errors: 10}
	bad := DefaultCriteria()
	bad.Alpha = 0

	tests := map[string]struct {
		criteria Criteria
		obs      Observation
		want     Result
		reason   Reason
		evidence []string // substrings of Verdict.Evidence
	}{
		"no window yet": {
			criteria: DefaultCriteria(), obs: Observation{},
			want: Inconclusive, reason: ReasonNoCanaryTraffic,
		},
		"zero traffic on both sides": {
			criteria: DefaultCriteria(), obs: one(Sample{}, Sample{}),
			want: Inconclusive, reason: ReasonNoCanaryTraffic,
		},
		"no canary traffic in the current step": {
			criteria: DefaultCriteria(),
			obs: Observation{Windows: []Window{
				{Stable: sample(9000, 90), Canary: sample(1000, 10)},
				{Stable: sample(500, 5), Canary: Sample{}},
			}},
			want: Inconclusive, reason: ReasonNoCanaryTraffic,
		},
		"no stable traffic": {
			criteria: DefaultCriteria(), obs: one(Sample{}, sample(1000, 0)),
			want: Inconclusive, reason: ReasonNoStableTraffic,
		},
		"source down": {
			criteria: DefaultCriteria(),
			obs:      Observation{Windows: one(sample(9000, 0), sample(1000, 0)).Windows, Err: errors.New("connection refused")},
			want:     Inconclusive, reason: ReasonMetricsUnavailable, evidence: []string{"connection refused"},
		},
		"NaN requests": {
			criteria: DefaultCriteria(), obs: one(sample(9000, 0), Sample{Requests: math.NaN()}),
			want: Inconclusive, reason: ReasonInvalidMetrics, evidence: []string{"NaN"},
		},
		"NaN errors": {
			criteria: errorsOnly(), obs: one(Sample{Requests: 900, Errors: math.NaN()}, Sample{Requests: 100}),
			want: Inconclusive, reason: ReasonInvalidMetrics,
		},
		"infinite requests": {
			criteria: errorsOnly(), obs: one(Sample{Requests: math.Inf(1)}, Sample{Requests: 100}),
			want: Inconclusive, reason: ReasonInvalidMetrics,
		},
		"negative count": {
			criteria: errorsOnly(), obs: one(Sample{Requests: 900}, Sample{Requests: 100, Errors: -1}),
			want: Inconclusive, reason: ReasonInvalidMetrics,
		},
		"more errors than requests": {
			criteria: errorsOnly(), obs: one(Sample{Requests: 900}, Sample{Requests: 100, Errors: 101}),
			want: Inconclusive, reason: ReasonInvalidMetrics, evidence: []string{"101 errors for 100 requests"},
		},
		"invalid criteria": {
			criteria: bad, obs: one(sample(9000, 90), sample(1000, 10)),
			want: Inconclusive, reason: ReasonInvalidCriteria, evidence: []string{"alpha"},
		},
		"mismatched buckets": {
			criteria: DefaultCriteria(), obs: one(sample(9000, 90), mismatched),
			want: Inconclusive, reason: ReasonInvalidMetrics, evidence: []string{"bucket bounds"},
		},
		"mismatched buckets do not hide a crashing canary": {
			criteria: DefaultCriteria(), obs: one(sample(360, 0), crash),
			want: Fail, reason: ReasonErrorRateAboveLimit, evidence: []string{"40 of 40", "20% limit"},
		},
		"histogram not cumulative": {
			criteria: DefaultCriteria(), obs: one(sample(9000, 90), notCumulative),
			want: Inconclusive, reason: ReasonInvalidMetrics, evidence: []string{"cumulative"},
		},
		"latency on but no histogram": {
			criteria: DefaultCriteria(), obs: one(sample(9000, 90), noHistogram),
			want: Inconclusive, reason: ReasonNoLatencyData,
		},
		"stable 0 errors, canary 3 of 60": {
			criteria: DefaultCriteria(), obs: one(sample(540, 0), sample(60, 3)),
			want: Fail, reason: ReasonErrorRateHigher,
			evidence: []string{"canary failed 3 of 60 requests (5%), stable 0 of 540 (0%)", "rollback at 222"},
		},
		"stable 0 errors, canary 2 of 40: not yet": {
			criteria: DefaultCriteria(), obs: one(sample(360, 0), sample(40, 2)),
			want: Inconclusive, reason: ReasonTooFewRequests,
		},
		"canary worse, 5% vs 1%": {
			criteria: DefaultCriteria(), obs: one(sample(9000, 90), sample(1000, 50)),
			want: Fail, reason: ReasonErrorRateHigher, evidence: []string{"50 of 1000", "90 of 9000", "at least"},
		},
		"canary equal": {
			criteria: DefaultCriteria(), obs: one(sample(90000, 900), sample(10000, 100)),
			want: Pass, reason: ReasonHealthy, evidence: []string{"healthy", "100 of 10000 (1%)"},
		},
		"canary equal but too little data": {
			criteria: DefaultCriteria(), obs: one(sample(1800, 18), sample(200, 2)),
			want: Inconclusive, reason: ReasonCollectingEvidence, evidence: []string{"collecting evidence", "pass at 40"},
		},
		"canary better": {
			criteria: DefaultCriteria(), obs: one(sample(45000, 450), sample(5000, 10)),
			want: Pass, reason: ReasonHealthy,
		},
		"no errors on either side passes on the absolute route": {
			criteria: DefaultCriteria(), obs: one(sample(9000, 0), sample(1000, 0)),
			want: Pass, reason: ReasonHealthy, evidence: []string{"under 1%"},
		},
		"too few canary requests in the current step": {
			criteria: DefaultCriteria(),
			obs: Observation{Windows: []Window{
				{Stable: sample(90000, 900), Canary: sample(10000, 100)},
				{Stable: sample(150, 1), Canary: sample(50, 0)},
			}},
			want: Inconclusive, reason: ReasonTooFewRequests, evidence: []string{"served 50 requests", "100 needed"},
		},
		"evidence carries over from earlier steps": {
			criteria: DefaultCriteria(),
			obs: Observation{Windows: []Window{
				{Stable: sample(90000, 900), Canary: sample(10000, 100)},
				{Stable: sample(750, 8), Canary: sample(250, 2)},
			}},
			want: Pass, reason: ReasonHealthy,
		},
		"absolute guard": {
			criteria: DefaultCriteria(), obs: one(sample(900, 45), sample(100, 40)),
			want: Fail, reason: ReasonErrorRateAboveLimit, evidence: []string{"40 of 100", "stable 45 of 900", "under 10%"},
		},
		"the guard holds while the stable fails too": {
			criteria: DefaultCriteria(), obs: one(sample(900, 270), sample(100, 40)),
			want: Inconclusive, reason: ReasonCollectingEvidence,
		},
		"a shared outage in the current step is not blamed on the canary by the guard": {
			criteria: errorsOnly(),
			obs: Observation{Windows: []Window{
				{Stable: Sample{Requests: 9000, Errors: 45}, Canary: Sample{Requests: 1000, Errors: 5}},
				{Stable: Sample{Requests: 7500, Errors: 2500}, Canary: Sample{Requests: 2500, Errors: 850}},
			}},
			// Judge compares the split; the step machine holds the step
			// while the incident lasts.
			want: Pass, reason: ReasonHealthy,
		},
		"a crashing canary fails during a shared incident through the relative test": {
			criteria: errorsOnly(), obs: one(sample(900, 270), sample(100, 100)),
			want: Fail, reason: ReasonErrorRateHigher,
		},
		"guard off, both sides equally broken": {
			criteria: func() Criteria { c := DefaultCriteria(); c.MaxErrorRate = 0; return c }(),
			obs:      one(sample(9000, 2700), sample(1000, 300)),
			want:     Pass, reason: ReasonHealthy,
		},
		"significant but negligible error increase": {
			criteria: errorsOnly(), obs: one(Sample{Requests: 1e8, Errors: 1e4}, Sample{Requests: 1e7, Errors: 3e3}),
			want: Pass, reason: ReasonHealthy,
		},
		"a common incident during a later step is not blamed on the canary": {
			criteria: errorsOnly(),
			obs: Observation{Windows: []Window{
				{Stable: Sample{Requests: 9000, Errors: 9}, Canary: Sample{Requests: 1000, Errors: 1}},
				{Stable: Sample{Requests: 5000, Errors: 500}, Canary: Sample{Requests: 5000, Errors: 500}},
			}},
			want: Pass, reason: ReasonHealthy,
		},
		"canary 50% slower": {
			criteria: DefaultCriteria(), obs: one(sample(9000, 90), slower),
			want: Fail, reason: ReasonLatencyHigher, evidence: []string{"canary requests slower than", "at least"},
		},
		"same latency": {
			criteria: DefaultCriteria(), obs: one(sample(90000, 900), sample(10000, 100)),
			want: Pass, reason: ReasonHealthy, evidence: []string{"requests slower than"},
		},
		"latency indistinguishable in one bucket": {
			criteria: DefaultCriteria(),
			obs: one(
				Sample{Requests: 9000, Latency: Histogram{Bounds: []float64{0.001, math.Inf(1)}, Counts: []float64{9000, 9000}}},
				Sample{Requests: 1000, Latency: Histogram{Bounds: []float64{0.001, math.Inf(1)}, Counts: []float64{1000, 1000}}}),
			want: Pass, reason: ReasonHealthy, evidence: []string{"indistinguishable"},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			v := Judge(tt.criteria, tt.obs)
			if v.Result != tt.want || v.Reason != tt.reason {
				t.Fatalf("Judge = %s/%s, want %s/%s; evidence: %s", v.Result, v.Reason, tt.want, tt.reason, v.Evidence)
			}
			if v.Evidence == "" {
				t.Fatal("empty evidence")
			}
			for _, s := range tt.evidence {
				if !strings.Contains(v.Evidence, s) {
					t.Errorf("evidence %q does not contain %q", v.Evidence, s)
				}
			}
		})
	}
}

// TestJudgeEvidenceFields checks that the structured evidence agrees with the
// decision and with the counts.
func TestJudgeEvidenceFields(t *testing.T) {
	v := Judge(DefaultCriteria(), one(sample(9000, 90), sample(1000, 50)))
	e := v.Errors
	if e.CanaryEvents != 50 || e.CanaryTotal != 1000 || e.StableEvents != 90 || e.StableTotal != 9000 {
		t.Errorf("counts = %+v", e.Comparison)
	}
	if e.CanaryRate() != 0.05 || e.StableRate() != 0.01 {
		t.Errorf("rates = %v, %v", e.CanaryRate(), e.StableRate())
	}
	if want := 1 / (0.01 * 0.9 / 2); math.Abs(e.FailAt-want) > 1e-9 {
		t.Errorf("FailAt = %v, want %v", e.FailAt, want)
	}
	if !(e.Worse >= e.FailAt) {
		t.Errorf("Worse %v below FailAt %v for a failed canary", e.Worse, e.FailAt)
	}
	// 5× the stable's rate: the lower bound must be above 1 and below 5.
	if !(e.RatioLower > 1 && e.RatioLower < 5) {
		t.Errorf("RatioLower = %v, want in (1, 5)", e.RatioLower)
	}
	if e.NotBad >= e.PassAt {
		t.Errorf("NotBad %v ≥ PassAt %v for a canary at 5×", e.NotBad, e.PassAt)
	}
}

func TestJudgeLatencyEvidenceFields(t *testing.T) {
	slower := sample(1000, 10)
	slower.Latency = logNormal(1000, 0.075, 0.5)
	v := Judge(DefaultCriteria(), one(sample(9000, 90), slower))
	l := v.Latency
	if v.Result != Fail || !l.Enabled || l.Indistinguishable {
		t.Fatalf("verdict %s, latency %+v", v.Result, l)
	}
	if !slices.Contains(bounds[:len(bounds)-1], l.Bound) {
		t.Errorf("Bound = %v, not a finite bucket bound", l.Bound)
	}
	if !(l.CanaryRate() > l.StableRate()) || l.CanaryTotal != 1000 || l.StableTotal != 9000 {
		t.Errorf("slow shares canary %v of %v, stable %v of %v", l.CanaryEvents, l.CanaryTotal, l.StableEvents, l.StableTotal)
	}
	if !(l.RatioLower > 1 && l.RatioLower < l.CanaryRate()/l.StableRate()) {
		t.Errorf("RatioLower = %v, want between 1 and the observed ratio %v", l.RatioLower, l.CanaryRate()/l.StableRate())
	}
	// Errors were equal: the error evidence must not claim otherwise.
	if v.Errors.Worse >= v.Errors.FailAt {
		t.Errorf("equal error rates but Worse %v ≥ FailAt %v", v.Errors.Worse, v.Errors.FailAt)
	}
}

// TestWorseGrowsWithCanaryErrors: more canary errors, same traffic, is more
// evidence against the canary.
func TestWorseGrowsWithCanaryErrors(t *testing.T) {
	prev := 0.0
	for k := 0.0; k <= 20; k++ {
		v := Judge(errorsOnly(), one(Sample{Requests: 9000, Errors: 90}, Sample{Requests: 1000, Errors: k}))
		if v.Errors.Worse <= prev {
			t.Fatalf("Worse(%v errors) = %v, not above %v", k, v.Errors.Worse, prev)
		}
		prev = v.Errors.Worse
	}
}

// TestZeroStableErrorsFailsFast pins down the e2e case: stable without errors,
// canary at 10% of the traffic. Three canary errors must be enough, two not.
func TestZeroStableErrorsFailsFast(t *testing.T) {
	for _, tt := range []struct {
		canaryErrors float64
		want         Result
	}{{2, Inconclusive}, {3, Fail}} {
		v := Judge(DefaultCriteria(), one(sample(900, 0), sample(100, tt.canaryErrors)))
		if v.Result != tt.want {
			t.Errorf("%v canary errors: %s (%s), want %s", tt.canaryErrors, v.Result, v.Evidence, tt.want)
		}
	}
}

func TestCriteriaValidate(t *testing.T) {
	if err := DefaultCriteria().Validate(); err != nil {
		t.Fatalf("DefaultCriteria: %v", err)
	}
	for name, mutate := range map[string]func(*Criteria){
		"alpha 1":                 func(c *Criteria) { c.Alpha = 1 },
		"beta NaN":                func(c *Criteria) { c.Beta = math.NaN() },
		"bad ratio 1":             func(c *Criteria) { c.BadErrorRatio = 1 },
		"acceptable 1":            func(c *Criteria) { c.AcceptableErrorRate = 1 },
		"negative increase":       func(c *Criteria) { c.MinErrorIncrease = -0.1 },
		"guard 2":                 func(c *Criteria) { c.MaxErrorRate = 2 },
		"min requests NaN":        func(c *Criteria) { c.MinRequests = math.NaN() },
		"quantile 1":              func(c *Criteria) { c.LatencyQuantile = 1 },
		"latency ratio 0.5":       func(c *Criteria) { c.BadLatencyRatio = 0.5 },
		"negative slow increase":  func(c *Criteria) { c.MinSlowIncrease = -1 },
		"infinite bad error rate": func(c *Criteria) { c.BadErrorRatio = math.Inf(1) },
	} {
		c := DefaultCriteria()
		mutate(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidCriteria) {
			t.Errorf("%s: Validate() = %v, want ErrInvalidCriteria", name, err)
		}
	}
}

func BenchmarkJudge(b *testing.B) {
	c := DefaultCriteria()
	obs := Observation{Windows: []Window{
		{Stable: sample(90000, 900), Canary: sample(10000, 100)},
		{Stable: sample(7500, 75), Canary: sample(2500, 25)},
		{Stable: sample(2000, 20), Canary: sample(2000, 20)},
	}}
	for b.Loop() {
		Judge(c, obs)
	}
}
