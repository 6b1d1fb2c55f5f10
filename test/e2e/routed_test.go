package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/controller"
	"github.com/fledge-dev/fledge/internal/gateway"
	"github.com/fledge-dev/fledge/internal/sandbox"
)

// routedCondition reads the app's Release and its Routed condition.
func (a *app) routedCondition(t *testing.T) (*fledgev1.Release, *metav1.Condition) {
	t.Helper()
	rel, err := sb.Release(t.Context(), a.ns, a.name)
	if err != nil {
		t.Fatal(err)
	}
	return rel, meta.FindStatusCondition(rel.Status.Conditions, fledgev1.ConditionRouted)
}

// waitRouted waits until the Release's Routed condition has status and
// reason, its message has every part, and its effectiveWeight is effective.
func (a *app) waitRouted(t *testing.T, timeout time.Duration, status metav1.ConditionStatus, reason string, effective int32, parts ...string) *fledgev1.Release {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		rel, c := a.routedCondition(t)
		if c != nil && c.Status == status && c.Reason == reason && containsAll(c.Message, parts) && rel.Status.EffectiveWeight == effective {
			return rel
		}
		last = fmt.Sprintf("Routed %+v, effectiveWeight %d", c, rel.Status.EffectiveWeight)
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("Routed: want %s %s with %q and effectiveWeight %d; last %s", status, reason, parts, effective, last)
	return nil
}

// stallProxy forwards TCP connections to an address; while paused it
// forwards nothing, in either direction (a network that holds packets).
type stallProxy struct {
	ln     net.Listener
	to     string
	paused atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func newStallProxy(t *testing.T, to string) *stallProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, to: to}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *stallProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.to)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go p.copy(up, c)
		go p.copy(c, up)
	}
}

func (p *stallProxy) copy(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for n > 0 && p.paused.Load() {
			time.Sleep(5 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *stallProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// startLaggingGateway runs one more gateway replica whose connection to the
// API server goes through a stallProxy: paused, its watches receive nothing
// and its table stays as it was, while it stays ready and answers /routes.
// The sandbox counts it among its replicas until the test ends.
func startLaggingGateway(t *testing.T) *stallProxy {
	t.Helper()
	api, err := url.Parse(sb.CP.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newStallProxy(t, api.Host)
	cfg := rest.CopyConfig(sb.CP.Config)
	cfg.Host = "https://" + proxy.ln.Addr().String()
	cfg.TLSClientConfig.ServerName = api.Hostname()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + sandbox.SystemNamespace + ":fledge-gateway"}
	httpAddr, adminAddr := freeLoopback(t), freeLoopback(t)
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() {
		done <- gateway.Run(logr.NewContext(ctx, testLogger().WithName("lagging-gateway")), cfg,
			gateway.Options{HTTPAddr: httpAddr, MetricsAddr: adminAddr, DrainTimeout: time.Second, ShutdownDelay: time.Millisecond})
	}()
	g := sandbox.Gateway{URL: "http://" + httpAddr, AdminURL: "http://" + adminAddr}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := sb.GatewayRoutes(g); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the lagging gateway did not become ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	remove := sb.AddGateway(g)
	t.Cleanup(func() {
		remove()
		proxy.paused.Store(false)
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("lagging gateway: %v", err)
		}
	})
	return proxy
}

func freeLoopback(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// servedBy reports whether gateway g serves host with the canary at weight.
func servedBy(g sandbox.Gateway, host string, weight int32) bool {
	routes, err := sb.GatewayRoutes(g)
	if err != nil {
		return false
	}
	for _, r := range routes {
		if r.Host == host {
			return r.Canary != nil && r.CanaryWeight == weight
		}
	}
	return false
}

// TestRoutedWaitsForLaggingReplica: while one ready gateway replica still
// serves the old weight (its watch stalled), the Release says Propagating with
// the counts and keeps the effective weight; once it catches up, Routed=True
// at the new weight.
func TestRoutedWaitsForLaggingReplica(t *testing.T) {
	proxy := startLaggingGateway(t)
	a := canaryAt10(t, "lagging")
	a.unpublishAtEnd(t)
	replicas := len(sb.Gateways)
	if replicas != 3 {
		t.Fatalf("%d gateway replicas, want the sandbox's 2 and the lagging one", replicas)
	}
	a.waitRouted(t, 15*time.Second, metav1.ConditionTrue, fledgev1.ReasonRouteApplied, 10,
		fmt.Sprintf("so do all %d ready gateway replicas", replicas))

	lagging := sb.Gateways[len(sb.Gateways)-1]
	proxy.paused.Store(true)
	a.kubectl(t, "annotate", "service", "v2", percentage+"=30", "--overwrite")
	for _, g := range sb.Gateways[:2] {
		deadline := time.Now().Add(15 * time.Second)
		for !servedBy(g, a.name, 30) {
			if time.Now().After(deadline) {
				t.Fatalf("gateway %s does not serve 30%%", g.URL)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !servedBy(lagging, a.name, 10) {
		t.Fatalf("the paused gateway does not serve 10%% any more: the test would prove nothing")
	}
	want := []string{"2 of 3 gateway replicas serve canary 30%; 1 still serve canary 10%"}
	a.waitRouted(t, 15*time.Second, metav1.ConditionFalse, controller.ReasonPropagating, 10, want...)
	// It stays so while the replica lags (the controller checks again twice
	// a second).
	time.Sleep(1500 * time.Millisecond)
	rel, c := a.routedCondition(t)
	if c.Reason != controller.ReasonPropagating || rel.Status.EffectiveWeight != 10 || rel.Status.DesiredWeight != 30 {
		t.Errorf("while a replica lags: Routed %s %q, effective %d, desired %d; want Propagating, 10, 30",
			c.Reason, c.Message, rel.Status.EffectiveWeight, rel.Status.DesiredWeight)
	}
	out, err := sb.Kubectl(t.Context(), "describe", "release", a.name, "-n", a.ns)
	if err != nil || !strings.Contains(out, controller.ReasonPropagating) || !strings.Contains(out, want[0]) {
		t.Errorf("kubectl describe release (err %v) does not show the condition:\n%s", err, out)
	}

	proxy.paused.Store(false)
	a.waitRouted(t, 15*time.Second, metav1.ConditionTrue, fledgev1.ReasonRouteApplied, 30,
		"canary v2:9011 30%", fmt.Sprintf("so do all %d ready gateway replicas", replicas))
	if !servedBy(lagging, a.name, 30) {
		t.Errorf("Routed=True but the lagging replica does not serve 30%%")
	}
}

// TestHostConflictNamesTheOlderApplication: an application whose host an
// older one (in another namespace) already holds is not served by any
// replica: Routed=False, HostConflict naming the older one, a Warning Event,
// and it is served once the older one goes.
func TestHostConflictNamesTheOlderApplication(t *testing.T) {
	older := newApp(t, "conflict")
	older.unpublishAtEnd(t)
	older.service(t, "v1", "v1", map[string]string{published: older.name})
	older.served(t, "v1", "", 0)
	older.waitRouted(t, 15*time.Second, metav1.ConditionTrue, fledgev1.ReasonRouteApplied, 0, "so do all")
	// Creation times have a resolution of a second: make the older one
	// older by one (in the same second, the gateways order by namespace).
	time.Sleep(1100 * time.Millisecond)

	newer := newApp(t, "conflict")
	newer.unpublishAtEnd(t)
	newer.service(t, "v1", "v2", map[string]string{published: newer.name})
	newer.service(t, "v2", "v2", map[string]string{published: newer.name, canaryKey: "true", percentage: "100"})
	olderRoute := older.ns + "/" + older.name
	rel := newer.waitRouted(t, 15*time.Second, metav1.ConditionFalse, controller.ReasonHostConflict, 0,
		"host conflict is served by another application, TrafficRoute "+olderRoute+" (older), on 2 of 2 gateway replicas")
	if rel.Status.Phase != fledgev1.PhaseUnpublished {
		t.Errorf("phase %s, want %s (no replica serves it)", rel.Status.Phase, fledgev1.PhaseUnpublished)
	}
	// The gateways really serve the older application.
	if c := older.count(t, nil); c.ByVersion["v1"] != 100 {
		t.Errorf("host %s: answers %v, want all from the older application's v1", older.name, c.ByVersion)
	}
	older.waitRouted(t, 5*time.Second, metav1.ConditionTrue, fledgev1.ReasonRouteApplied, 0)
	newer.releaseWarning(t, controller.ReasonHostConflict, olderRoute)
	out, err := sb.Kubectl(t.Context(), "describe", "release", newer.name, "-n", newer.ns)
	if err != nil || !strings.Contains(out, controller.ReasonHostConflict) || !strings.Contains(out, olderRoute) {
		t.Errorf("kubectl describe release (err %v) does not show the conflict:\n%s", err, out)
	}
	if out, err := sb.Kubectl(t.Context(), "get", "release", newer.name, "-n", newer.ns); err != nil || !strings.Contains(out, "ROUTED") || !strings.Contains(out, controller.ReasonHostConflict) {
		t.Errorf("kubectl get release (err %v) does not show the conflict in its ROUTED column:\n%s", err, out)
	}

	// The older application goes: the newer one is served, and says so.
	older.kubectl(t, "delete", "service", "v1")
	newer.served(t, "v1", "v2", 100)
	newer.waitRouted(t, 20*time.Second, metav1.ConditionTrue, fledgev1.ReasonRouteApplied, 100, "so do all 2 ready gateway replicas")
}

// unpublishAtEnd deletes the app's Services when the test ends, so that its
// host is free again (a test run again reuses the host).
func (a *app) unpublishAtEnd(t *testing.T) {
	t.Cleanup(func() {
		if err := sb.Client.DeleteAllOf(context.Background(), &corev1.Service{}, client.InNamespace(a.ns)); err != nil {
			t.Errorf("deleting the Services of %s: %v", a.ns, err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			var tr fledgev1.TrafficRoute
			err := sb.Client.Get(context.Background(), client.ObjectKey{Namespace: a.ns, Name: a.name}, &tr)
			if client.IgnoreNotFound(err) == nil && err != nil {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("the TrafficRoute of %s/%s is still there", a.ns, a.name)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// releaseWarning waits for a Warning event with reason on the app's Release
// whose note has every part.
func (a *app) releaseWarning(t *testing.T, reason string, parts ...string) {
	t.Helper()
	a.waitWarning(t, "Release", a.name, reason, parts...)
}
