package gateway

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// admin GETs path from g's admin handler.
func admin(g *Gateway, path string) (int, string) {
	rec := httptest.NewRecorder()
	g.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestReadyz(t *testing.T) {
	g := New(Options{})
	if code, body := admin(g, "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before the first table: %d %q, want 503", code, body)
	}
	if code, _ := admin(g, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz before the first table: %d, want 200", code)
	}
	if code, _ := admin(g, "/routes"); code != http.StatusServiceUnavailable {
		t.Errorf("/routes before the first table: %d, want 503", code)
	}
	g.Update(t.Context(), Objects{})
	if code, body := admin(g, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after the first table (even an empty one): %d %q, want 200", code, body)
	}
	g.Update(t.Context(), Objects{TrafficRoutes: []*fledgev1.TrafficRoute{trafficRoute("web", "web.example", withCanary(7))}})
	if code, body := admin(g, "/routes"); code != http.StatusOK ||
		!contains(body, `"host":"web.example"`, `"canaryWeight":7`, `"service":"web-canary"`, "Service shop/web-stable not found") {
		t.Errorf("/routes: %d %s", code, body)
	}
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestServeDrains: on cancel, /readyz turns 503 while a request in flight still
// completes; then Serve returns and the proxy listener is closed.
func TestServeDrains(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		_, _ = io.WriteString(w, "finished")
	}))
	t.Cleanup(slow.Close)
	svc, slices := backendObjects(t, "slow-stable", hostOf(t, slow.URL))

	g := New(Options{})
	proxyLn, adminLn := listen(t), listen(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- g.Serve(ctx, proxyLn, adminLn) }()
	adminURL := "http://" + adminLn.Addr().String()

	if code := httpGet(t, adminURL+"/readyz", "").code; code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz before the first table: %d, want 503", code)
	}
	g.Update(t.Context(), Objects{
		TrafficRoutes: []*fledgev1.TrafficRoute{trafficRoute("slow", "slow.example")},
		Services:      []*corev1.Service{svc}, EndpointSlices: slices,
	})
	if code := httpGet(t, adminURL+"/readyz", "").code; code != http.StatusOK {
		t.Fatalf("/readyz with a table: %d, want 200", code)
	}

	inflight := make(chan answer, 1)
	go func() { inflight <- httpGet(t, "http://"+proxyLn.Addr().String()+"/", "slow.example") }()
	<-arrived
	cancel()
	<-g.drainStarted
	if a := httpGet(t, adminURL+"/readyz", ""); a.code != http.StatusServiceUnavailable || a.body != "draining\n" {
		t.Errorf("/readyz while draining: %d %q, want 503 \"draining\"", a.code, a.body)
	}
	if a := httpGet(t, adminURL+"/healthz", ""); a.code != http.StatusOK {
		t.Errorf("/healthz while draining: %d, want 200", a.code)
	}
	close(release)
	if a := <-inflight; a.code != http.StatusOK || a.body != "finished" {
		t.Errorf("request in flight during the drain: %d %q %v, want 200 \"finished\"", a.code, a.body, a.err)
	}
	assertStopped(t, served, proxyLn.Addr().String())
}

// assertStopped waits for Serve's result on served, which must be nil, and
// checks that the proxy listener at addr no longer accepts.
func assertStopped(t *testing.T, served <-chan error, addr string) {
	t.Helper()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("proxy listener still accepts after Serve returned")
	}
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

type answer struct {
	code int
	body string
	err  error
}

// httpGet GETs url with a fresh connection (Host header host when not empty).
func httpGet(t *testing.T, url, host string) answer {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		return answer{err: err}
	}
	if host != "" {
		req.Host = host
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return answer{code: resp.StatusCode, body: string(body), err: err}
}
