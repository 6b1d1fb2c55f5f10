package ctl

import (
	"math"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

func TestQuantile(t *testing.T) {
	bounds := []float64{0.01, 0.1, 1, math.Inf(1)}
	for name, tc := range map[string]struct {
		counts []int64
		q      float64
		want   float64
	}{
		"median in the first bucket":   {[]int64{100, 100, 100, 100}, 0.5, 0.005},
		"interpolated in the second":   {[]int64{50, 150, 200, 200}, 0.5, 0.01 + 0.09*(100-50)/100},
		"p99 in the third":             {[]int64{0, 0, 100, 100}, 0.99, 0.1 + 0.9*0.99},
		"beyond the last finite bound": {[]int64{0, 0, 0, 10}, 0.5, 1},
		"no requests":                  {[]int64{0, 0, 0, 0}, 0.5, math.NaN()},
		"counts of other bounds":       {[]int64{1, 2}, 0.5, math.NaN()},
	} {
		t.Run(name, func(t *testing.T) {
			got := Quantile(bounds, tc.counts, tc.q)
			if math.IsNaN(tc.want) != math.IsNaN(got) || (!math.IsNaN(got) && math.Abs(got-tc.want) > 1e-9) {
				t.Errorf("Quantile(%v, %v) = %v, want %v", tc.counts, tc.q, got, tc.want)
			}
		})
	}
}

func counts(stable, stableErr, canary, canaryErr int64) *fledgev1.StepCounts {
	return &fledgev1.StepCounts{Weight: 10,
		Stable: fledgev1.SampleCounts{Requests: stable, Errors: stableErr, Latency: []int64{stable / 2, stable, stable}},
		Canary: fledgev1.SampleCounts{Requests: canary, Errors: canaryErr, Latency: []int64{0, canary, canary}}}
}

func TestTrackerRates(t *testing.T) {
	rel := &fledgev1.Release{Status: fledgev1.ReleaseStatus{Auto: &fledgev1.AutoStatus{Step: 0, LatencyBounds: []string{"0.01", "0.1", "+Inf"}}}}
	tr := Tracker{Window: 10 * time.Second}
	at := now
	observe := func(c *fledgev1.StepCounts, after time.Duration) {
		at = at.Add(after)
		rel.Status.Auto.Current = c
		tr.Observe(rel, at)
	}
	observe(counts(0, 0, 0, 0), 0)
	if s, _ := tr.Rates(rel.Status.Auto.LatencyBounds); s.Seconds != 0 || !math.IsNaN(s.PerSecond()) {
		t.Errorf("one reading: %+v, want no rate", s)
	}
	for i := int64(1); i <= 15; i++ {
		observe(counts(90*i, 0, 10*i, i/5), time.Second)
	}
	s, c := tr.Rates(rel.Status.Auto.LatencyBounds)
	if s.Seconds != 10 || s.PerSecond() != 90 || c.PerSecond() != 10 {
		t.Errorf("rates over %vs: stable %v/s canary %v/s, want 90 and 10 over 10s", s.Seconds, s.PerSecond(), c.PerSecond())
	}
	if c.Errors != 3-1 || c.Requests != 100 {
		t.Errorf("canary's window: %d errors of %d, want 2 of 100", c.Errors, c.Requests)
	}
	if math.Abs(s.P50-0.01) > 1e-9 || c.P50 <= 0.01 || c.P50 > 0.1 {
		t.Errorf("p50: stable %v (want 0.01), canary %v (want in (0.01, 0.1]]", s.P50, c.P50)
	}
	// The same reading again changes nothing; a new step starts afresh.
	observe(counts(90*15, 0, 150, 3), time.Second)
	if s2, _ := tr.Rates(rel.Status.Auto.LatencyBounds); s2 != s {
		t.Errorf("a repeated reading changed the rate: %+v, want %+v", s2, s)
	}
	// A reading that stops changing (a concluded or paused release) has no rate.
	observe(counts(90*15, 0, 150, 3), 3*time.Second)
	if s3, _ := tr.Rates(nil); s3.Seconds != 0 {
		t.Errorf("a reading unchanged for 4s still has a rate: %+v", s3)
	}
	rel.Status.Auto.Step = 1
	observe(counts(5, 0, 5, 0), time.Second)
	if s, _ := tr.Rates(nil); s.Seconds != 0 {
		t.Errorf("after a new step: %+v, want no rate yet", s)
	}
}

func TestBar(t *testing.T) {
	for _, tc := range []struct {
		width          int
		weight         int32
		stable, canary int
	}{{40, 0, 40, 0}, {40, 10, 36, 4}, {40, 25, 30, 10}, {40, 100, 0, 40}, {10, 150, 0, 10}} {
		b := Bar(tc.width, tc.weight)
		if s, c := strings.Count(b, barStable), strings.Count(b, barCanary); s != tc.stable || c != tc.canary {
			t.Errorf("Bar(%d, %d) = %q: %d stable %d canary cells, want %d and %d", tc.width, tc.weight, b, s, c, tc.stable, tc.canary)
		}
	}
}

func TestRender(t *testing.T) {
	rel := &fledgev1.Release{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart"},
		Spec: fledgev1.ReleaseSpec{Auto: &fledgev1.AutoPolicy{Steps: []int32{10, 50}, StepRequests: ptr(int32(200))}},
		Status: fledgev1.ReleaseStatus{Phase: fledgev1.PhaseProgressing, Host: "cart", Stable: "cart-v1", Canary: "cart-v2",
			DesiredWeight: 10, EffectiveWeight: 10, Auto: &fledgev1.AutoStatus{Step: 0, Weight: 10,
				StepStartedAt: metav1.NewTime(now.Add(-4 * time.Second)), Verdict: "Inconclusive", Reason: "NotEnoughData",
				Evidence: "canary failed 1 of 50 requests", Current: counts(450, 0, 50, 1)}}}
	f := Frame{Release: rel, Now: now, Width: 100,
		Stable: Rate{Seconds: 10, Requests: 900, P50: 0.002, P99: 0.009}, Canary: Rate{Seconds: 10, Requests: 100, Errors: 1, P50: 0.003, P99: 0.012},
		Events: []eventsv1.Event{{Type: "Normal", Reason: "AnalysisStarted", Note: "automated release of cart-v2 started at 10%", EventTime: metav1.NewMicroTime(now)}}}
	out := strings.Join(Render(f), "\n")
	for _, want := range []string{
		"cart  namespace shop", "phase Progressing",
		"stable cart-v1 90% [", "] 10% canary cart-v2",
		"last 10s", "90.0", "10.0", "1.00% (1/100)", "2.0ms", "12.0ms",
		"step 1 of 2 at 10%", "time 4s of 10s", "canary requests 50 of 200",
		"last verdict: Inconclusive (NotEnoughData): canary failed 1 of 50 requests",
		"AnalysisStarted", "automated release of cart-v2 started at 10%",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("view lacks %q:\n%s", want, out)
		}
	}
	for i, l := range Render(f) {
		if n := runeLen(l); n > 100 {
			t.Errorf("line %d is %d columns wide, more than the terminal's 100: %q", i, n, l)
		}
	}
	if s := Summary(rel); s != "cart phase Progressing weight 10% (desired 10%) step 1/2 10% verdict Inconclusive (NotEnoughData)" {
		t.Errorf("Summary = %q", s)
	}
}

func ptr[T any](v T) *T { return &v }
