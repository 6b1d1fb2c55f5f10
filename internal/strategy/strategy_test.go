package strategy

import (
	"encoding/json"
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

// run feeds Next one cumulative window per second, 300 ms into the second
// (off the whole seconds that metav1.Time keeps), from the step's start: at
// second i (1-based), counts(i) is what the step served so far. The state
// goes through JSON between calls, as it does through the API server.
func run(p Policy, st fledgev1.AutoStatus, from, to int, counts func(i int) *analysis.Window) (fledgev1.AutoStatus, []Decision) {
	var decisions []Decision
	for i := from; i <= to; i++ {
		out := Next(p, st, false, counts(i), nil, t0.Add(time.Duration(i)*time.Second+300*time.Millisecond))
		st = roundTrip(out.State)
		if out.Decision != nil {
			decisions = append(decisions, *out.Decision)
		}
		if st.Result != "" {
			break
		}
	}
	return st, decisions
}

// roundTrip is st as the API server stores it.
func roundTrip(st fledgev1.AutoStatus) fledgev1.AutoStatus {
	b, err := json.Marshal(st)
	if err != nil {
		panic(err)
	}
	var out fledgev1.AutoStatus
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

func started(t *testing.T, p Policy) fledgev1.AutoStatus {
	t.Helper()
	start := t0.Add(300 * time.Millisecond)
	st, _, _ := Begin(p, "v2", nil, start)
	return roundTrip(Next(p, st, true, nil, nil, start).State)
}

func TestTrafficGapDoesNotPassAStep(t *testing.T) {
	p := policy(t, fledgev1.AutoPolicy{Steps: []int32{10, 50}})
	st := started(t, p)
	// 1000 requests/s without errors for 5 s: healthy, but not 10 s under load.
	st, _ = run(p, st, 1, 5, func(i int) *analysis.Window { return window(float64(900*i), 0, float64(100*i), 0) })
	if st.Verdict != string(analysis.Pass) {
		t.Fatalf("after 5 s: verdict %s (%s), want Pass", st.Verdict, st.Evidence)
	}
	if st.Step != 0 || durationOf(st.StepUnderLoad) != 5*time.Second {
		t.Fatalf("after 5 s: step %d, under load %v", st.Step, st.StepUnderLoad)
	}
	// Then no traffic at all for 30 s: the clock runs, the step does not pass.
	gap := window(4500, 0, 500, 0)
	st, ds := run(p, st, 6, 35, func(int) *analysis.Window { return gap })
	if st.Step != 0 || len(ds) != 0 || durationOf(st.StepUnderLoad) != 5*time.Second {
		t.Fatalf("during the gap: step %d, under load %v, decisions %+v", st.Step, st.StepUnderLoad, ds)
	}
	if st.Verdict == string(analysis.Pass) {
		t.Errorf("verdict during the gap %s (%s), want not Pass", st.Verdict, st.Evidence)
	}
	// Traffic comes back: 5 more seconds under load pass the step.
	st, ds = run(p, st, 36, 45, func(i int) *analysis.Window {
		return window(4500+float64(900*(i-35)), 0, 500+float64(100*(i-35)), 0)
	})
	if st.Step != 1 || len(ds) != 1 || ds[0].Reason != ReasonStepUp {
		t.Fatalf("after the gap: step %d, decisions %+v, evidence %s", st.Step, ds, st.Evidence)
	}
	if !st.StepStartedAt.Time.Equal(t0.Add(40 * time.Second)) { // 40.3 s in whole seconds
		t.Errorf("stepped up at %v, want at 40 s (5 s + gap 30 s + 5 s)", st.StepStartedAt.Sub(t0))
	}
}

func TestPassWithoutRecentTrafficIsInconclusive(t *testing.T) {
	p := policy(t, fledgev1.AutoPolicy{Steps: []int32{10, 50}})
	st := started(t, p)
	st, _ = run(p, st, 1, 9, func(i int) *analysis.Window { return window(float64(900*i), 0, float64(100*i), 0) })
	// Second 10: the step has 9 s under load; the stable went silent.
	out := Next(p, st, false, window(8100, 0, 1000, 0), nil, t0.Add(10*time.Second))
	if out.Verdict.Reason != analysis.ReasonNoRecentTraffic || out.State.Step != 0 {
		t.Fatalf("verdict %s/%s step %d, want NoRecentTraffic at step 0", out.Verdict.Result, out.Verdict.Reason, out.State.Step)
	}
}

func TestSharedIncidentHoldsTheJudgment(t *testing.T) {
	p := policy(t, fledgev1.AutoPolicy{Steps: []int32{10, 50}})
	st := started(t, p)
	// 1000 requests/s, 0.5% errors, then both versions at 50% for 10 s.
	var se, ce float64
	counts := func(i int) *analysis.Window {
		rate := 0.005
		if i > 3 && i <= 13 {
			rate = 0.5
		}
		se += 900 * rate
		ce += 100 * rate
		return window(float64(900*i), se, float64(100*i), ce)
	}
	st, ds := run(p, st, 1, 8, counts)
	if st.Reason != string(analysis.ReasonSharedIncident) || !strings.HasPrefix(st.Evidence, "the stable fails too (since ") {
		t.Errorf("during the incident: reason %s, evidence %s", st.Reason, st.Evidence)
	}
	st, more := run(p, st, 9, 14, counts)
	ds = append(ds, more...)
	if st.Result != "" || st.Step != 0 {
		t.Fatalf("the canary was judged during the incident: result %q step %d: %s", st.Result, st.Step, st.Evidence)
	}
	var reasons []string
	for _, d := range ds {
		reasons = append(reasons, d.Reason)
	}
	if strings.Join(reasons, ",") != ReasonSharedIncident+","+ReasonIncidentEnded {
		t.Fatalf("decisions %v, want the incident's start and end", reasons)
	}
	if !ds[0].Warning || !strings.Contains(ds[0].Message, "stable failed 450 of 900") {
		t.Errorf("incident event %+v", ds[0])
	}
	if got := durationOf(st.StepUnderLoad); got != 4*time.Second {
		t.Errorf("under load %v, want 4 s (the incident's 10 s do not count)", got)
	}
	st, _ = run(p, st, 15, 40, counts)
	if st.Step != 1 {
		t.Errorf("after the incident: step %d, want 1; %s", st.Step, st.Evidence)
	}
}

func TestSharedIncidentStillRollsBackAWorseCanary(t *testing.T) {
	p := policy(t, fledgev1.AutoPolicy{Steps: []int32{10, 50}})
	st := started(t, p)
	// The stable fails 50% in an incident, the canary 100%.
	st, ds := run(p, st, 1, 10, func(i int) *analysis.Window {
		return window(float64(90*i), float64(45*i), float64(10*i), float64(10*i))
	})
	if st.Result != fledgev1.AutoRolledBack || st.Reason != string(analysis.ReasonErrorRateHigher) {
		t.Fatalf("result %q reason %s, decisions %+v", st.Result, st.Reason, ds)
	}
}

func TestDeadlineActions(t *testing.T) {
	deadline := &metav1.Duration{Duration: 2 * time.Minute}
	// 1 request/s, no errors: far too little for a verdict in 2 minutes.
	slow := func(i int) *analysis.Window { return window(float64(i), 0, float64(i/10), 0) }
	for action, want := range map[fledgev1.DeadlineAction]fledgev1.AutoResult{
		"": "", fledgev1.DeadlinePause: "", fledgev1.DeadlineRollback: fledgev1.AutoRolledBack,
	} {
		p := policy(t, fledgev1.AutoPolicy{Steps: []int32{10}, ProgressDeadline: deadline, DeadlineAction: action})
		st, ds := run(p, started(t, p), 1, 200, slow)
		if st.Result != want {
			t.Errorf("action %q: result %q, want %q", action, st.Result, want)
		}
		if want == "" {
			last := ds[len(ds)-1]
			if !st.Held || last.Reason != ReasonHeld || !strings.Contains(last.Message, "held v2 at 10%") {
				t.Errorf("action %q: held %v, decisions %+v", action, st.Held, ds)
			}
		}
	}
	// promote: a canary whose evidence does not lean towards worse.
	p := policy(t, fledgev1.AutoPolicy{Steps: []int32{10}, ProgressDeadline: deadline, DeadlineAction: fledgev1.DeadlinePromote})
	if st, _ := run(p, started(t, p), 1, 200, slow); st.Result != fledgev1.AutoPromoted {
		t.Errorf("promote: result %q: %s", st.Result, st.Evidence)
	}
	// ... but not one with more errors than the stable.
	worse := func(i int) *analysis.Window { return window(float64(i), 0, float64(i/10), float64(i/60)) }
	st, ds := run(p, started(t, p), 1, 125, worse)
	if st.Result != "" || !st.Held || !strings.Contains(ds[len(ds)-1].Message, "instead of promoting") {
		t.Errorf("promote with worse errors: result %q held %v, decisions %+v", st.Result, st.Held, ds)
	}
}

func TestSoakHoldsPromotion(t *testing.T) {
	p := policy(t, fledgev1.AutoPolicy{Steps: []int32{50}, Soak: &metav1.Duration{Duration: time.Minute}})
	st, _ := run(p, started(t, p), 1, 59, func(i int) *analysis.Window { return window(float64(500*i), 0, float64(500*i), 0) })
	if st.Result != "" || !strings.HasPrefix(st.Evidence, "soaking: 59s of 1m0s") {
		t.Fatalf("before the soak: result %q, evidence %s", st.Result, st.Evidence)
	}
	st, _ = run(p, st, 60, 60, func(i int) *analysis.Window { return window(float64(500*i), 0, float64(500*i), 0) })
	if st.Result != fledgev1.AutoPromoted {
		t.Errorf("after the soak: result %q", st.Result)
	}
}

func TestForecastAtLowTraffic(t *testing.T) {
	p := policy(t, fledgev1.AutoPolicy{Steps: []int32{10}, ProgressDeadline: &metav1.Duration{Duration: 10 * time.Minute}})
	// 20 requests/s, 1% errors on both versions.
	st, ds := run(p, started(t, p), 1, 40, func(i int) *analysis.Window {
		x := float64(i)
		return window(18*x, 0.18*x, 2*x, 0.02*x)
	})
	t.Log(st.Forecast)
	if len(ds) != 1 || ds[0].Reason != ReasonSlowEvidence || st.Forecast == "" {
		t.Fatalf("decisions %+v, forecast %q", ds, st.Forecast)
	}
	for _, want := range []string{"at this rate (20 requests/s, 10% to the canary)", "more", "progress deadline (10m0s, action pause)"} {
		if !strings.Contains(st.Forecast, want) {
			t.Errorf("forecast %q lacks %q", st.Forecast, want)
		}
	}
}
