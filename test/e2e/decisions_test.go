package e2e

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/errorpage"
	"github.com/fledge-dev/fledge/internal/sandbox"
)

// sharedOutages numbers the failing pods of TestSharedOutageDoesNotRollBack.
var sharedOutages atomic.Int64

// TestSharedOutageDoesNotRollBack: a dependency outage fails half of the
// requests of both versions for 10 s while a healthy canary is at 10% (both
// Services' endpoints are switched to pods that fail every second request,
// then back). The canary's own error rate (50%) is far above the 20% guard,
// but the stable fails as much: the analysis waits (condition
// SharedIncident, a Warning event naming it), resumes when the outage ends
// (IncidentEnded) and steps the canary up; it never rolls it back.
func TestSharedOutageDoesNotRollBack(t *testing.T) {
	ctx := t.Context()
	n := sharedOutages.Add(1) // a pod name is taken for the sandbox's life
	failing := map[string]*sandbox.Pod{}
	for _, v := range []string{"v1", "v2"} {
		p, err := sb.RunErrorPage(ctx, fmt.Sprintf("outage-%s-%d", v, n), v, "--error-ratio", "0.5")
		if err != nil {
			t.Fatal(err)
		}
		failing[v] = p
	}
	a, load := autoApp(t, "shared-outage", "v2", "steps=10,50; step-duration=30s; acceptable-error-rate=5%; soak=0s")
	a.waitAuto(t, 20*time.Second, "the canary judged at 10%", func(s *fledgev1.AutoStatus) bool {
		return s.Weight == 10 && s.Current != nil && s.Current.Canary.Requests > 20
	})
	setEndpoints := func(v1, v2 *sandbox.Pod) {
		t.Helper()
		if err := sb.SetEndpoints(ctx, a.ns, "v1", 9011, v1); err != nil {
			t.Fatal(err)
		}
		if err := sb.SetEndpoints(ctx, a.ns, "v2", 9011, v2); err != nil {
			t.Fatal(err)
		}
	}
	before := load.Counts().Status[500]
	setEndpoints(failing["v1"], failing["v2"])
	var sawIncident bool
	end := time.Now().Add(10 * time.Second)
	for time.Now().Before(end) {
		rel := a.release(t)
		if s := rel.Status.Auto; s.Result != "" {
			t.Fatalf("concluded %s during the shared outage: %s", s.Result, s.Evidence)
		}
		if c := meta.FindStatusCondition(rel.Status.Conditions, fledgev1.ConditionAnalysis); c != nil && c.Reason == "SharedIncident" {
			sawIncident = true
		}
		time.Sleep(100 * time.Millisecond)
	}
	setEndpoints(pods["v1"], pods["v2"])
	if got := load.Counts().Status[500] - before; got < 300 {
		t.Fatalf("the outage failed %d requests, want about 500 (half of 10 s at %d requests/s)", got, rate)
	}
	if !sawIncident {
		t.Error("the Analysis condition never said SharedIncident during the outage")
	}
	e, ok := a.event(t, "SharedIncident")
	if !ok || e.Type != corev1.EventTypeWarning || !strings.Contains(e.Note, "stable failed") {
		t.Errorf("SharedIncident event: found %v, %+v", ok, e)
	}
	rel := a.waitAuto(t, 90*time.Second, "stepped up after the outage", func(s *fledgev1.AutoStatus) bool {
		return s.Weight == 50 || s.Result != ""
	})
	if s := rel.Status.Auto; s.Result == fledgev1.AutoRolledBack {
		t.Fatalf("rolled back after the shared outage: %s", s.Evidence)
	}
	if _, ok := a.event(t, "IncidentEnded"); !ok {
		t.Error("no IncidentEnded event")
	}
	if _, ok := a.event(t, "RolledBack"); ok {
		t.Error("a RolledBack event")
	}
}

// TestTrafficGapDoesNotPassAStep: the load stops for 30 s in the middle of a
// step of 10 s; the step's time under load stops with it and the step does
// not pass during the gap; when the traffic is back, it passes.
func TestTrafficGapDoesNotPassAStep(t *testing.T) {
	a, load := autoApp(t, "traffic-gap", "v2", "steps=10,50; step-duration=10s; acceptable-error-rate=5%")
	under := func(s *fledgev1.AutoStatus) time.Duration {
		if s.StepUnderLoad == nil {
			return 0
		}
		return s.StepUnderLoad.Duration
	}
	a.waitAuto(t, 20*time.Second, "3 s under load at 10%", func(s *fledgev1.AutoStatus) bool {
		return s.Weight == 10 && under(s) >= 3*time.Second
	})
	load.Stop()
	gapStart := time.Now()
	// The requests in flight and the last interval may still count.
	time.Sleep(3 * time.Second)
	before := under(a.release(t).Status.Auto)
	for time.Since(gapStart) < 30*time.Second {
		s := a.release(t).Status.Auto
		if s.Weight != 10 || s.Step != 0 || s.Result != "" {
			t.Fatalf("the step moved during the traffic gap: weight %d step %d result %q: %s", s.Weight, s.Step, s.Result, s.Evidence)
		}
		if u := under(s); u != before {
			t.Fatalf("time under load grew during the gap from %v to %v", before, u)
		}
		time.Sleep(200 * time.Millisecond)
	}
	s := a.release(t).Status.Auto
	t.Logf("after the gap: %v under load, verdict %s (%s)", under(s), s.Verdict, s.Reason)
	if before >= 10*time.Second {
		t.Fatalf("%v under load before the gap, want less than the step's 10 s", before)
	}
	back := sb.StartLoad(t.Context(), rate, a.name, errorpage.Path)
	t.Cleanup(back.Stop)
	rel := a.waitAuto(t, 60*time.Second, "stepped up with traffic back", func(s *fledgev1.AutoStatus) bool { return s.Weight == 50 || s.Result != "" })
	if rel.Status.Auto.Result != "" {
		t.Fatalf("concluded %s: %s", rel.Status.Auto.Result, rel.Status.Auto.Evidence)
	}
	t.Logf("stepped up %v after the gap started", time.Since(gapStart).Round(time.Second))
}
