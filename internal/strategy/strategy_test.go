package strategy

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/analysis"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func policy(t *testing.T, p fledgev1.AutoPolicy) Policy {
	t.Helper()
	if p.Latency == nil {
		off := false
		p.Latency = &off
	}
	out, err := PolicyFrom(&p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// window: stable and canary requests with their error counts.
func window(sr, se, cr, ce float64) *analysis.Window {
	return &analysis.Window{Stable: analysis.Sample{Requests: sr, Errors: se}, Canary: analysis.Sample{Requests: cr, Errors: ce}}
}

func TestPolicyFrom(t *testing.T) {
	p, err := PolicyFrom(&fledgev1.AutoPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 3 || p.StepDuration != DefaultStepDuration || p.Criteria.MinRequests != 100 || p.Criteria.MaxErrorRate != 0.2 {
		t.Errorf("defaults = %+v", p)
	}
	bad := map[string]fledgev1.AutoPolicy{
		"spec.auto.steps[0]":          {Steps: []int32{0, 10}},
		"spec.auto.steps[1]":          {Steps: []int32{10, 10}},
		"spec.auto.steps[2]":          {Steps: []int32{10, 20, 100}},
		"spec.auto.maxErrorRate":      {MaxErrorRate: "20"},
		"spec.auto.falseRollbackRate": {FalseRollbackRate: "abc%"},
		"spec.auto.stepDuration":      {StepDuration: &metav1.Duration{Duration: -time.Second}},
		"spec.auto.progressDeadline":  {ProgressDeadline: &metav1.Duration{}},
	}
	for field, p := range bad {
		if _, err := PolicyFrom(&p); !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), field) {
			t.Errorf("PolicyFrom(%+v) = %v; want ErrInvalidPolicy naming %s", p, err, field)
		}
	}
}

func TestReleaseRunsThroughSteps(t *testing.T) {
	p := policy(t, fledgev1.AutoPolicy{Steps: []int32{10, 50}, StepDuration: &metav1.Duration{Duration: 5 * time.Second},
		AcceptableErrorRate: "5%", Soak: &metav1.Duration{}})
	st, measure, started := Begin(p, "v2", nil, t0)
	if measure || !started || st.Weight != 10 {
		t.Fatalf("Begin = %+v, measure %v, started %v", st, measure, started)
	}
	plan := Next(p, st, started, nil, nil, t0)
	if plan.Decision == nil || plan.Decision.Reason != ReasonStarted || plan.State.Weight != 10 {
		t.Fatalf("first plan = %+v", plan)
	}
	st = plan.State

	// Healthy counts, but the step's minimum duration has not passed.
	st, measure, _ = Begin(p, "v2", &st, t0.Add(2*time.Second))
	if !measure {
		t.Fatal("Begin does not ask to measure a running step")
	}
	plan = Next(p, st, false, window(1800, 0, 200, 0), nil, t0.Add(2*time.Second))
	if plan.State.Weight != 10 || plan.State.Step != 0 || plan.Verdict.Result != analysis.Pass {
		t.Fatalf("before StepDuration: weight %d step %d verdict %+v", plan.State.Weight, plan.State.Step, plan.Verdict)
	}
	// After it, the step passes and the next one starts.
	plan = Next(p, plan.State, false, window(4500, 0, 500, 0), nil, t0.Add(6*time.Second))
	if plan.State.Weight != 50 || plan.State.Step != 1 || plan.Decision == nil || plan.Decision.Reason != ReasonStepUp ||
		len(plan.State.Steps) != 1 || plan.State.Steps[0].Canary.Requests != 500 || plan.State.Current != nil {
		t.Fatalf("after StepDuration: %+v decision %+v", plan.State, plan.Decision)
	}
	if !strings.Contains(plan.Decision.Message, "from 10% to 50%") {
		t.Errorf("decision message %q", plan.Decision.Message)
	}
	// The last step passes: promoted.
	plan = Next(p, plan.State, false, window(1000, 0, 1000, 0), nil, t0.Add(12*time.Second))
	if plan.State.Result != fledgev1.AutoPromoted || plan.State.Weight != 100 || plan.Decision.Reason != ReasonPromoted {
		t.Fatalf("last step: %+v", plan.State)
	}
	// Concluded: nothing changes any more, nothing to measure.
	st, measure, _ = Begin(p, "v2", &plan.State, t0.Add(time.Hour))
	if measure {
		t.Error("Begin asks to measure a concluded release")
	}
	if again := Next(p, st, false, nil, nil, t0.Add(time.Hour)); again.State.Weight != 100 || again.Decision != nil {
		t.Errorf("concluded release moved: %+v", again)
	}
}

func TestBadCanaryRollsBack(t *testing.T) {
	p := policy(t, fledgev1.AutoPolicy{Steps: []int32{10, 50}})
	st, _, _ := Begin(p, "v2", nil, t0)
	st = Next(p, st, true, nil, nil, t0).State
	// 5% errors on the canary, none on the stable.
	plan := Next(p, st, false, window(1350, 0, 150, 8), nil, t0.Add(10*time.Second))
	if plan.State.Result != fledgev1.AutoRolledBack || plan.State.Weight != 0 || plan.Decision == nil || !plan.Decision.Warning {
		t.Fatalf("plan = %+v, verdict %+v", plan.State, plan.Verdict)
	}
	for _, want := range []string{"rolled back v2 from 10% to 0%", "8"} {
		if !strings.Contains(plan.Decision.Message, want) {
			t.Errorf("decision %q lacks %q", plan.Decision.Message, want)
		}
	}
}

func TestInconclusiveUntilDeadline(t *testing.T) {
	p := policy(t, fledgev1.AutoPolicy{Steps: []int32{10}, ProgressDeadline: &metav1.Duration{Duration: time.Minute},
		DeadlineAction: fledgev1.DeadlineRollback})
	st, _, _ := Begin(p, "v2", nil, t0)
	st = Next(p, st, true, nil, nil, t0).State
	for name, tc := range map[string]struct {
		w   *analysis.Window
		err error
	}{
		"source down":       {nil, errors.New("connection refused")},
		"no canary traffic": {window(100, 0, 0, 0), nil},
		"NaN":               {&analysis.Window{Stable: analysis.Sample{Requests: 100}, Canary: analysis.Sample{Requests: nanValue()}}, nil},
	} {
		plan := Next(p, st, false, tc.w, tc.err, t0.Add(30*time.Second))
		if plan.Verdict.Result != analysis.Inconclusive || plan.State.Weight != 10 || plan.State.Result != "" {
			t.Errorf("%s: verdict %+v, state %+v; want inconclusive and no change", name, plan.Verdict, plan.State)
		}
		late := Next(p, st, false, tc.w, tc.err, t0.Add(61*time.Second))
		if late.State.Result != fledgev1.AutoRolledBack || !strings.Contains(late.Decision.Message, "progress deadline") {
			t.Errorf("%s after the deadline: %+v", name, late.State)
		}
	}
}

func nanValue() float64 { var z float64; return z / z }

func TestOverrides(t *testing.T) {
	base := policy(t, fledgev1.AutoPolicy{Steps: []int32{10, 50}})
	st, _, _ := Begin(base, "v2", nil, t0)
	st = Next(base, st, true, nil, nil, t0).State

	paused := base
	paused.Override = fledgev1.OverridePause
	p1 := Next(paused, st, false, nil, nil, t0.Add(time.Second))
	if !p1.State.Paused || p1.State.Weight != 10 || p1.Decision.Reason != ReasonPaused {
		t.Fatalf("pause: %+v", p1)
	}
	if _, measure, _ := Begin(paused, "v2", &p1.State, t0.Add(20*time.Minute)); measure {
		t.Error("a paused release is measured")
	}
	if p := Next(paused, p1.State, false, nil, nil, t0.Add(20*time.Minute)); p.State.Weight != 10 || p.State.Result != "" {
		t.Errorf("a paused release moved or hit the deadline: %+v", p.State)
	}
	resumed := Next(base, p1.State, false, nil, nil, t0.Add(30*time.Minute))
	if resumed.State.Paused || resumed.Decision.Reason != ReasonResumed || !resumed.State.StepStartedAt.Time.Equal(t0.Add(30*time.Minute)) {
		t.Errorf("resume: %+v", resumed)
	}

	abort := base
	abort.Override = fledgev1.OverrideAbort
	if p := Next(abort, st, false, nil, nil, t0.Add(time.Second)); p.State.Weight != 0 || p.State.Result != fledgev1.AutoRolledBack {
		t.Errorf("abort: %+v", p.State)
	}
	promote := base
	promote.Override = fledgev1.OverridePromote
	if p := Next(promote, st, false, nil, nil, t0.Add(time.Second)); p.State.Weight != 100 || p.State.Result != fledgev1.AutoPromoted {
		t.Errorf("promote: %+v", p.State)
	}
}

func TestBeginRestarts(t *testing.T) {
	p := policy(t, fledgev1.AutoPolicy{Steps: []int32{10, 50}})
	prev := &fledgev1.AutoStatus{Canary: "v2", Weight: 0, Result: fledgev1.AutoRolledBack, StartedAt: metav1.NewTime(t0)}
	if st, _, started := Begin(p, "v2", prev, t0.Add(time.Hour)); started || st.Result != fledgev1.AutoRolledBack {
		t.Errorf("a concluded release restarted by itself: %+v", st)
	}
	if st, _, started := Begin(p, "v3", prev, t0.Add(time.Hour)); !started || st.Canary != "v3" || st.Weight != 10 {
		t.Errorf("a new canary did not start fresh: %+v", st)
	}
	p.RestartAt = t0.Add(time.Minute)
	if st, _, started := Begin(p, "v2", prev, t0.Add(time.Hour)); !started || st.Result != "" || st.Weight != 10 {
		t.Errorf("restartAt did not restart: %+v", st)
	}
}
