package analysis

import (
	"math"
	"testing"
)

// TestMinLatencyIgnoresSubMillisecondNoise: a canary with twice the stable's
// share of requests over 1 ms, but every request under 10 ms, passes as
// indistinguishable when MinLatency is 10 ms; with MinLatency 0 the 1 ms bound
// is compared.
func TestMinLatencyIgnoresSubMillisecondNoise(t *testing.T) {
	bounds := []float64{0.001, 0.01, 0.1, math.Inf(1)}
	hist := func(total, over1ms float64) Histogram {
		return Histogram{Bounds: bounds, Counts: []float64{total - over1ms, total, total, total}}
	}
	obs := Observation{Windows: []Window{{
		Stable: Sample{Requests: 20000, Latency: hist(20000, 420)},
		Canary: Sample{Requests: 2000, Latency: hist(2000, 90)},
	}}}
	c := DefaultCriteria()
	if v := Judge(c, obs); v.Result != Pass || v.Latency.Bound != 0.01 {
		t.Errorf("with MinLatency %v: %s (%s) %s", c.MinLatency, v.Result, v.Reason, v.Evidence)
	}
	c.MinLatency = 0
	if v := Judge(c, obs); v.Latency.Indistinguishable || v.Latency.Bound != 0.001 {
		t.Errorf("with MinLatency 0: latency compared at %v (indistinguishable %v), want 0.001", v.Latency.Bound, v.Latency.Indistinguishable)
	}
	c.MinLatency = -1
	if err := c.Validate(); err == nil {
		t.Error("negative MinLatency validated")
	}
}

// TestFastServicePassesOnItsOwnQuantile: when the p90 of both sides is under
// MinLatency, the canary passes once its own share of requests slower than
// MinLatency is confidently under 10%, and not when it is 30%.
func TestFastServicePassesOnItsOwnQuantile(t *testing.T) {
	bounds := []float64{0.001, 0.011, 0.1, math.Inf(1)}
	hist := func(total, over11ms float64) Histogram {
		return Histogram{Bounds: bounds, Counts: []float64{total / 2, total - over11ms, total, total}}
	}
	win := func(canarySlow float64) Observation {
		return Observation{Windows: []Window{{
			Stable: Sample{Requests: 1728, Latency: hist(1728, 4)},
			Canary: Sample{Requests: 192, Latency: hist(192, canarySlow)},
		}}}
	}
	c := DefaultCriteria()
	c.AcceptableErrorRate = 0.05
	if v := Judge(c, win(0)); v.Result != Pass {
		t.Errorf("fast canary: %s (%s) %s", v.Result, v.Reason, v.Evidence)
	}
	if v := Judge(c, win(58)); v.Result == Pass {
		t.Errorf("canary with 30%% of requests over 11 ms passed: %s", v.Evidence)
	}
}
