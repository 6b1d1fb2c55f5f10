package e2e

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/errorpage"
	"github.com/fledge-dev/fledge/internal/sandbox"
)

// TestWalkthrough is the original walkthrough, run with kubectl exactly as a
// user types it, with 100 real requests through the gateway after each step.
func TestWalkthrough(t *testing.T) {
	ctx := t.Context()
	if err := sb.PrepareWalkthrough(ctx); err != nil {
		t.Fatal(err)
	}
	for i, step := range sandbox.Walkthrough() {
		counts, err := sb.RunStep(ctx, step, nil)
		if err != nil {
			t.Fatalf("step %d (%s): %v", i+1, step.Title, err)
		}
		want := map[string]int{}
		for v, n := range step.Want {
			if n > 0 {
				want[v] = n
			}
		}
		if !maps.Equal(counts.ByVersion, want) {
			t.Errorf("step %d (%s): answers by version = %v, want %v (statuses %v)", i+1, step.Title, counts.ByVersion, want, counts.Status)
		}
	}
}

// app is one published application of a test, in a namespace of its own.
type app struct {
	ns, name string
}

func newApp(t *testing.T, name string) *app {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: name + "-"}}
	if err := sb.Client.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	return &app{ns: ns.Name, name: name}
}

// service creates Service name (port 9011, port name http) backed by the shared
// pod of version; no pod when version is "".
func (a *app) service(t *testing.T, name, version string, ann map[string]string) {
	t.Helper()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: name, Annotations: ann},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 9011}}}}
	if err := sb.Client.Create(t.Context(), svc); err != nil {
		t.Fatal(err)
	}
	if version == "" {
		return
	}
	if err := sb.SetEndpoints(t.Context(), a.ns, name, 9011, pods[version]); err != nil {
		t.Fatal(err)
	}
}

func (a *app) kubectl(t *testing.T, args ...string) {
	t.Helper()
	if out, err := sb.Kubectl(t.Context(), append(args, "-n", a.ns)...); err != nil {
		t.Fatalf("kubectl %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// count sends 100 requests for the app and returns the answers by version.
func (a *app) count(t *testing.T, header http.Header) sandbox.Counts {
	t.Helper()
	c, err := sb.Get(t.Context(), 100, a.name, "/api/error_page", header)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (a *app) wantCounts(t *testing.T, header http.Header, want map[string]int) {
	t.Helper()
	if got := a.count(t, header); !maps.Equal(got.ByVersion, want) {
		t.Errorf("answers by version = %v, want %v (statuses %v)", got.ByVersion, want, got.Status)
	}
}

func (a *app) served(t *testing.T, stable, canary string, weight int32) {
	t.Helper()
	if err := sb.WaitServed(t.Context(), a.name, stable, canary, weight); err != nil {
		t.Fatal(err)
	}
}

// warning waits for a Warning event about Service svc whose note has all parts.
func (a *app) warning(t *testing.T, svc string, parts ...string) {
	t.Helper()
	a.waitWarning(t, "Service", svc, "", parts...)
}

// waitWarning waits up to 15 s for a Warning event in the app's namespace
// about the object kind/name, with reason (any when empty), whose note has
// every part.
func (a *app) waitWarning(t *testing.T, kind, name, reason string, parts ...string) {
	t.Helper()
	a.waitWarningFor(t, fmt.Sprintf("%s event on %s %s containing %q", reason, kind, name, parts), func(e eventsv1.Event) (bool, bool) {
		if e.Regarding.Kind != kind || e.Regarding.Name != name {
			return false, false
		}
		return true, (reason == "" || e.Reason == reason) && containsAll(e.Note, parts)
	})
}

// waitWarningFor waits up to 15 s for a Warning event in the app's namespace
// that match says is the one (about says whether it is about the object, to
// list its other warnings if none is).
func (a *app) waitWarningFor(t *testing.T, what string, match func(eventsv1.Event) (about, is bool)) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var notes []string
	for time.Now().Before(deadline) {
		var list eventsv1.EventList
		if err := sb.Client.List(t.Context(), &list, client.InNamespace(a.ns)); err != nil {
			t.Fatal(err)
		}
		notes = notes[:0]
		for _, e := range list.Items {
			if e.Type != corev1.EventTypeWarning {
				continue
			}
			about, is := match(e)
			if is {
				return
			}
			if about {
				notes = append(notes, e.Reason+": "+e.Note)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no Warning %s; warnings: %q", what, notes)
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

const (
	published  = "api7.cloud/published-service"
	canaryKey  = "api7.cloud/published-canary-service"
	percentage = "api7.cloud/published-service-canary-percentage"
)

// canaryAt10 publishes v1 with v2 as its canary at 10% and checks 90/10.
func canaryAt10(t *testing.T, name string) *app {
	a := newApp(t, name)
	a.service(t, "v1", "v1", map[string]string{published: name})
	a.service(t, "v2", "v2", map[string]string{published: name, canaryKey: "true", percentage: "10"})
	a.served(t, "v1", "v2", 10)
	a.wantCounts(t, nil, map[string]int{"v1": 90, "v2": 10})
	// The controller has seen every replica serve it (the status is final).
	a.waitRouted(t, 15*time.Second, metav1.ConditionTrue, fledgev1.ReasonRouteApplied, 10, "so do all")
	return a
}

// TestBadPercentageKeepsTraffic: a bad percentage is a Warning event naming the
// annotation and value, and the traffic stays exactly where it was.
func TestBadPercentageKeepsTraffic(t *testing.T) {
	for i, value := range []string{"10%", "abc", "-5", "150", "10.5"} {
		t.Run(value, func(t *testing.T) {
			// Hosts are cluster-wide: each case publishes its own application.
			a := canaryAt10(t, fmt.Sprintf("bad-pct-%d", i))
			a.kubectl(t, "annotate", "service", "v2", percentage+"="+value, "--overwrite")
			a.warning(t, "v2", percentage, fmt.Sprintf("%q", value))
			a.served(t, "v1", "v2", 10)
			a.wantCounts(t, nil, map[string]int{"v1": 90, "v2": 10})
			// Fixing the value moves traffic again.
			a.kubectl(t, "annotate", "service", "v2", percentage+"=50", "--overwrite")
			a.served(t, "v1", "v2", 50)
			a.wantCounts(t, nil, map[string]int{"v1": 50, "v2": 50})
		})
	}
}

func TestTwoStablesKeepTraffic(t *testing.T) {
	a := canaryAt10(t, "two-stables")
	a.service(t, "v1b", "v2", map[string]string{published: a.name})
	a.warning(t, "v1b", "2 stable Services")
	a.wantCounts(t, nil, map[string]int{"v1": 90, "v2": 10})
}

func TestTwoCanariesKeepTraffic(t *testing.T) {
	a := canaryAt10(t, "two-canaries")
	a.service(t, "v3", "v2", map[string]string{published: a.name, canaryKey: "true", percentage: "90"})
	a.warning(t, "v3", "2 canary Services")
	a.wantCounts(t, nil, map[string]int{"v1": 90, "v2": 10})
}

func TestServiceWithoutPortsKeepsTraffic(t *testing.T) {
	a := newApp(t, "no-ports")
	a.service(t, "v1", "v1", map[string]string{published: a.name})
	a.served(t, "v1", "", 0)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "v2", Annotations: map[string]string{
		published: a.name, canaryKey: "true", percentage: "50"}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.invalid"}}
	if err := sb.Client.Create(t.Context(), svc); err != nil {
		t.Fatal(err)
	}
	a.warning(t, "v2", "needs a port")
	a.wantCounts(t, nil, map[string]int{"v1": 100})
}

func TestCanaryWithoutStableIsNotPublished(t *testing.T) {
	a := newApp(t, "no-stable")
	a.service(t, "v2", "v2", map[string]string{published: a.name, canaryKey: "true", percentage: "10"})
	a.warning(t, "v2", "no stable Service")
	if c := a.count(t, nil); c.Status[http.StatusNotFound] != 100 {
		t.Errorf("statuses = %v, want 100 × 404 (application not published)", c.Status)
	}
}

func TestDeletingCanaryReturnsToStable(t *testing.T) {
	a := canaryAt10(t, "del-canary")
	a.kubectl(t, "delete", "service", "v2")
	a.served(t, "v1", "", 0)
	a.wantCounts(t, nil, map[string]int{"v1": 100})
}

func TestDeletingEverythingUnpublishes(t *testing.T) {
	a := canaryAt10(t, "del-all")
	a.kubectl(t, "delete", "service", "v1", "v2")
	deadline := time.Now().Add(15 * time.Second)
	for {
		c := a.count(t, nil)
		if c.Status[http.StatusNotFound] == 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after deleting both Services: statuses %v, want 100 × 404", c.Status)
		}
	}
	var routes, rels = countObjects(t, a.ns)
	if routes != 0 || rels != 0 {
		t.Errorf("left behind: %d TrafficRoutes, %d Releases", routes, rels)
	}
}

func countObjects(t *testing.T, ns string) (int, int) {
	t.Helper()
	out, err := sb.Kubectl(t.Context(), "get", "trafficroutes.fledge.dev,releases.fledge.dev", "-n", ns, "-o", "name")
	if err != nil {
		t.Fatalf("kubectl get: %v: %s", err, out)
	}
	return strings.Count(out, "trafficroute"), strings.Count(out, "release")
}

// TestNoReadyEndpoint: the gateway answers 503 when the chosen Service has no
// ready endpoint, and serves again once it has one.
func TestNoReadyEndpoint(t *testing.T) {
	a := newApp(t, "no-endpoint")
	a.service(t, "v1", "", map[string]string{published: a.name})
	// Wait until the route is served (with no targets), then expect 503s.
	deadline := time.Now().Add(15 * time.Second)
	for {
		c := a.count(t, nil)
		if c.Status[http.StatusServiceUnavailable] == 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("statuses = %v, want 100 × 503", c.Status)
		}
	}
	if err := sb.SetEndpoints(t.Context(), a.ns, "v1", 9011, pods["v1"]); err != nil {
		t.Fatal(err)
	}
	a.served(t, "v1", "", 0)
	a.wantCounts(t, nil, map[string]int{"v1": 100})
}

// TestExternalName: a Service of type ExternalName is reached by its DNS name.
func TestExternalName(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = errorpage.Serve(ctx, ln, errorpage.Options{Version: "v3"}) }()
	port := int32(ln.Addr().(*net.TCPAddr).Port)

	a := newApp(t, "external")
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "ext", Annotations: map[string]string{published: a.name}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost",
			Ports: []corev1.ServicePort{{Name: "http", Port: port}}}}
	if err := sb.Client.Create(t.Context(), svc); err != nil {
		t.Fatal(err)
	}
	a.served(t, "ext", "", 0)
	a.wantCounts(t, nil, map[string]int{"v3": 100})
}
