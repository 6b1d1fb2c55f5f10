package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/sandbox"
)

const (
	autoPolicy   = "fledge.dev/auto-policy"
	autoOverride = "fledge.dev/auto-override"
	// rate is the load of the automated-release tests, in requests per second.
	rate = 100
)

// autoApp publishes v1 and, as its automated canary, the pod canaryPod.
func autoApp(t *testing.T, name, canaryPod, policy string) (*app, *sandbox.Load) {
	t.Helper()
	a := newApp(t, name)
	a.service(t, "v1", "v1", map[string]string{published: a.name})
	a.served(t, "v1", "", 0)
	load := sb.StartLoad(t.Context(), rate, a.name, "/api/error_page")
	t.Cleanup(load.Stop)
	a.service(t, "v2", canaryPod, map[string]string{published: a.name, canaryKey: "true", autoPolicy: policy})
	return a, load
}

func (a *app) release(t *testing.T) *fledgev1.Release {
	t.Helper()
	var rel fledgev1.Release
	if err := sb.Client.Get(t.Context(), client.ObjectKey{Namespace: a.ns, Name: a.name}, &rel); err != nil {
		t.Fatal(err)
	}
	return &rel
}

// waitAuto polls the Release until cond holds, for at most timeout.
func (a *app) waitAuto(t *testing.T, timeout time.Duration, what string, cond func(*fledgev1.AutoStatus) bool) *fledgev1.Release {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rel := a.release(t)
		if rel.Status.Auto != nil && cond(rel.Status.Auto) {
			return rel
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; status %+v auto %+v", what, timeout, rel.Status, rel.Status.Auto)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// event returns the note of the newest event about the Release with reason.
func (a *app) event(t *testing.T, reason string) (eventsv1.Event, bool) {
	t.Helper()
	var list eventsv1.EventList
	if err := sb.Client.List(t.Context(), &list, client.InNamespace(a.ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		if e.Regarding.Kind == "Release" && e.Reason == reason {
			return e, true
		}
	}
	return eventsv1.Event{}, false
}

// TestAutoRollsBackBadCanary: a v2 with 5% errors, automation on with a first
// step of 10% at 100 requests/s, is rolled back to 0 by itself within 15 s of
// receiving traffic, with the evidence in a Warning event.
func TestAutoRollsBackBadCanary(t *testing.T) {
	a, load := autoApp(t, "auto-bad", "v2bad", "steps=10,50")
	rel := a.waitAuto(t, 60*time.Second, "rollback", func(s *fledgev1.AutoStatus) bool { return s.Result != "" })
	decided := time.Now()
	if rel.Status.Auto.Result != fledgev1.AutoRolledBack {
		t.Fatalf("result = %s, want RolledBack; evidence: %s", rel.Status.Auto.Result, rel.Status.Auto.Evidence)
	}
	first, ok := load.FirstAnswer("v2")
	if !ok {
		t.Fatal("the canary never answered")
	}
	took := rel.Status.Auto.ConcludedAt.Sub(first)
	t.Logf("rolled back %v after the canary's first answer (observed by the test after %v); evidence: %s",
		took.Round(time.Millisecond), decided.Sub(first).Round(time.Millisecond), rel.Status.Auto.Evidence)
	if took > 15*time.Second {
		t.Errorf("rollback took %v after the canary received traffic, want ≤ 15s", took)
	}
	a.served(t, "v1", "v2", 0)
	a.wantCounts(t, nil, map[string]int{"v1": 100})
	if rel.Status.Phase != fledgev1.PhaseRolledBack {
		t.Errorf("phase = %s, want RolledBack", rel.Status.Phase)
	}
	e, ok := a.event(t, "RolledBack")
	if !ok || e.Type != corev1.EventTypeWarning {
		t.Fatalf("no Warning RolledBack event (found %v: %+v)", ok, e)
	}
	for _, want := range []string{"rolled back v2 from 10% to 0%", "error"} {
		if !strings.Contains(e.Note, want) {
			t.Errorf("event note %q lacks %q", e.Note, want)
		}
	}
}

// TestAutoPromotesHealthyCanary: a healthy v2 is stepped up to 100 by itself.
func TestAutoPromotesHealthyCanary(t *testing.T) {
	a, _ := autoApp(t, "auto-good", "v2", "steps=10,50; step-duration=2s; acceptable-error-rate=5%; soak=10s")
	a.waitAuto(t, 20*time.Second, "step 2 at 50%", func(s *fledgev1.AutoStatus) bool { return s.Weight == 50 || s.Result != "" })
	rel := a.waitAuto(t, 90*time.Second, "promotion", func(s *fledgev1.AutoStatus) bool { return s.Result != "" })
	if rel.Status.Auto.Result != fledgev1.AutoPromoted {
		t.Fatalf("result = %s, want Promoted; evidence: %s", rel.Status.Auto.Result, rel.Status.Auto.Evidence)
	}
	t.Logf("promoted in %v: %s", rel.Status.Auto.ConcludedAt.Sub(rel.Status.Auto.StartedAt.Time), rel.Status.Auto.Evidence)
	a.served(t, "v1", "v2", 100)
	a.wantCounts(t, nil, map[string]int{"v2": 100})
	for _, reason := range []string{"StepUp", "Promoted"} {
		if _, ok := a.event(t, reason); !ok {
			t.Errorf("no %s event", reason)
		}
	}
	if len(rel.Status.Auto.Steps) != 2 {
		t.Errorf("finished steps recorded = %d, want 2", len(rel.Status.Auto.Steps))
	}
}

// TestAutoPauseHoldsWeight: a pause holds the weight; resuming goes on.
func TestAutoPauseHoldsWeight(t *testing.T) {
	a, _ := autoApp(t, "auto-pause", "v2", "steps=10,50; step-duration=2s; acceptable-error-rate=5%")
	a.waitAuto(t, 10*time.Second, "start", func(s *fledgev1.AutoStatus) bool { return s.Weight == 10 })
	a.kubectl(t, "annotate", "service", "v2", autoOverride+"=pause")
	a.waitAuto(t, 10*time.Second, "paused", func(s *fledgev1.AutoStatus) bool { return s.Paused })
	// Long enough for the step to pass if it were running (≥ 2 s and its requests).
	time.Sleep(12 * time.Second)
	rel := a.release(t)
	if s := rel.Status.Auto; s.Weight != 10 || s.Result != "" || !s.Paused || rel.Status.Phase != fledgev1.PhasePaused {
		t.Fatalf("paused release moved: phase %s auto %+v", rel.Status.Phase, s)
	}
	a.served(t, "v1", "v2", 10)
	a.kubectl(t, "annotate", "service", "v2", autoOverride+"-")
	a.waitAuto(t, 60*time.Second, "resumed and stepped up", func(s *fledgev1.AutoStatus) bool { return s.Weight > 10 })
}

// TestAutoAbortReturnsToZeroAtOnce: abort wins over the analysis at once.
func TestAutoAbortReturnsToZeroAtOnce(t *testing.T) {
	a, _ := autoApp(t, "auto-abort", "v2", "steps=10,50; step-duration=1h")
	a.waitAuto(t, 10*time.Second, "start", func(s *fledgev1.AutoStatus) bool { return s.Weight == 10 })
	a.served(t, "v1", "v2", 10)
	start := time.Now()
	a.kubectl(t, "annotate", "service", "v2", autoOverride+"=abort")
	a.served(t, "v1", "v2", 0)
	t.Logf("abort served by every gateway %v after kubectl started", time.Since(start).Round(time.Millisecond))
	a.wantCounts(t, nil, map[string]int{"v1": 100})
	rel := a.release(t)
	if rel.Status.Auto.Result != fledgev1.AutoRolledBack || rel.Status.Phase != fledgev1.PhaseRolledBack {
		t.Errorf("after abort: phase %s auto %+v", rel.Status.Phase, rel.Status.Auto)
	}
	if e, ok := a.event(t, "RolledBack"); !ok || !strings.Contains(e.Note, "aborted") {
		t.Errorf("no RolledBack event saying aborted: %+v", e)
	}
}

var _ = fmt.Sprintf

// TestAutoWithPrometheus: the same bad canary, judged on counts read from a
// real Prometheus (Debian's package) scraping both gateways every second.
func TestAutoWithPrometheus(t *testing.T) {
	a, load := autoApp(t, "auto-prom", "v2bad", "steps=10,50; source=prometheus")
	rel := a.waitAuto(t, 60*time.Second, "rollback", func(s *fledgev1.AutoStatus) bool { return s.Result != "" })
	if rel.Status.Auto.Result != fledgev1.AutoRolledBack {
		t.Fatalf("result = %s, want RolledBack; evidence: %s", rel.Status.Auto.Result, rel.Status.Auto.Evidence)
	}
	first, _ := load.FirstAnswer("v2")
	t.Logf("rolled back %v after the canary's first answer, on Prometheus' counts: %s",
		rel.Status.Auto.ConcludedAt.Sub(first).Round(time.Millisecond), rel.Status.Auto.Evidence)
	a.served(t, "v1", "v2", 0)
}
