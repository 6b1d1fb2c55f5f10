package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// logLines is a logger that keeps every line, as JSON objects.
type logLines struct {
	mu    sync.Mutex
	lines []map[string]any
}

func (l *logLines) logger() logr.Logger {
	return funcr.NewJSON(func(obj string) {
		var m map[string]any
		if err := json.Unmarshal([]byte(obj), &m); err != nil {
			panic(err)
		}
		l.mu.Lock()
		l.lines = append(l.lines, m)
		l.mu.Unlock()
	}, funcr.Options{})
}

// find returns the lines whose msg is msg and whose keys have the values of kv.
func (l *logLines) find(msg string, kv ...any) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
next:
	for _, m := range l.lines {
		if m["msg"] != msg {
			continue
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if v := m[kv[i].(string)]; v != kv[i+1] {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

// TestGatewayLogs: the gateway says what it serves and why: routes added,
// changed and removed, a route it skips and why, its drain, and backend
// failures (rate-limited per endpoint); the access log when enabled.
func TestGatewayLogs(t *testing.T) {
	var logs logLines
	ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), logs.logger()))
	defer cancel()
	backend := echoBackend(t, "stable")
	svc, slices := backendObjects(t, "web-stable", hostOf(t, backend.URL))
	down := refusedAddr(t)
	downSvc, downSlices := backendObjects(t, "down-stable", down)
	g := New(Options{AccessLog: true, AccessLogSample: 2})
	objs := Objects{
		TrafficRoutes: []*fledgev1.TrafficRoute{
			trafficRoute("web", "web.example"),
			trafficRoute("late", "web.example", createdAt(5)), // same host, newer: skipped
			trafficRoute("down", "down.example"),
		},
		Services:       []*corev1.Service{svc, service("late-stable"), downSvc},
		EndpointSlices: append(slices, downSlices...),
	}
	g.Update(ctx, objs)
	proxyLn, adminLn := listen(t), listen(t)
	served := make(chan error, 1)
	go func() { served <- g.Serve(ctx, proxyLn, adminLn) }()

	if got := logs.find("route added", "host", "web.example", "trafficRoute", "shop/web", "stable", "web-stable"); len(got) != 1 {
		t.Errorf("route added lines for web.example: %v", got)
	}
	if got := logs.find("route not fully served"); len(got) != 1 || !strings.Contains(got[0]["problem"].(string), "shop/late skipped: host \"web.example\" is served by the older TrafficRoute shop/web") {
		t.Errorf("skipped route lines: %v", got)
	}

	objs.TrafficRoutes[0] = trafficRoute("web", "web.example", withCanary(25))
	objs.Services = append(objs.Services, service("web-canary"))
	objs.TrafficRoutes = objs.TrafficRoutes[:2] // down.example removed
	g.Update(ctx, objs)
	if got := logs.find("route changed", "host", "web.example", "weight", float64(25), "previousWeight", float64(0)); len(got) != 1 {
		t.Errorf("route changed lines: %v", got)
	}
	if got := logs.find("route removed", "host", "down.example"); len(got) != 1 {
		t.Errorf("route removed lines: %v", got)
	}

	// Backend failures: five requests to a refused endpoint, one line.
	objs.TrafficRoutes = append(objs.TrafficRoutes, trafficRoute("down", "down.example"))
	g.Update(ctx, objs)
	for range 5 {
		if a := httpGet(t, "http://"+proxyLn.Addr().String()+"/", "down.example"); a.code != http.StatusBadGateway {
			t.Fatalf("down.example: %d, want 502", a.code)
		}
	}
	if got := logs.find("backend request failed", "host", "down.example", "service", "down-stable", "endpoint", down); len(got) != 1 {
		t.Errorf("failure lines for 5 failed requests within %v: %d, want 1: %v", failureLogInterval, len(got), got)
	}
	// Access log: every second request.
	for range 4 {
		httpGet(t, "http://"+proxyLn.Addr().String()+"/x", "web.example")
	}
	if n := len(logs.find("request")); n != 4 { // 9 requests in all, 1 in 2 logged
		t.Errorf("%d access log lines for 9 requests sampled 1 in 2, want 4", n)
	}

	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"gateway serving", "draining", "gateway stopped"} {
		if len(logs.find(msg)) != 1 {
			t.Errorf("no %q line", msg)
		}
	}
}
