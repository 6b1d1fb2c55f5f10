package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	corev1 "k8s.io/api/core/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// seen is what an echo backend received.
type seen struct {
	Backend, Host, URI, XFF, XFHost, XFProto string
}

// echoBackend starts a loopback backend answering with what it received.
func echoBackend(t testing.TB, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(seen{
			Backend: name, Host: r.Host, URI: r.RequestURI,
			XFF: r.Header.Get("X-Forwarded-For"), XFHost: r.Header.Get("X-Forwarded-Host"),
			XFProto: r.Header.Get("X-Forwarded-Proto"),
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// refusedAddr returns a loopback address nobody listens on.
func refusedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// frontend serves g on loopback; each request's handler end is sent on the
// returned channel (buffered), after its metrics were recorded.
func frontend(t testing.TB, g *Gateway) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	done := make(chan struct{}, 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- struct{}{} }()
		g.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, done
}

// get sends GET target to the frontend with the given Host and headers.
func get(t testing.TB, front *httptest.Server, host, target string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, front.URL+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// proxyObjects: "error-page" (stable and canary echo backends, weight 0, canary
// for X-Canary: yes), "empty" (no endpoint), "down" (endpoint refusing).
func proxyObjects(t testing.TB) Objects {
	stable := echoBackend(t, "stable")
	canary := echoBackend(t, "canary")
	objs := Objects{
		TrafficRoutes: []*fledgev1.TrafficRoute{
			trafficRoute("error-page", "error-page", withCanary(0), withMatch(fledgev1.Predicate{
				Type: fledgev1.PredicateHeader, Name: "X-Canary", Value: "yes",
			})),
			trafficRoute("empty", "empty.example"),
			trafficRoute("down", "down.example"),
		},
		Services: []*corev1.Service{service("empty-stable")},
	}
	for name, addr := range map[string]string{
		"error-page-stable": hostOf(t, stable.URL),
		"error-page-canary": hostOf(t, canary.URL),
		"down-stable":       refusedAddr(t),
	} {
		svc, slices := backendObjects(t, name, addr)
		objs.Services = append(objs.Services, svc)
		objs.EndpointSlices = append(objs.EndpointSlices, slices...)
	}
	return objs
}

func TestProxy(t *testing.T) {
	g := New(Options{})
	g.Update(t.Context(), proxyObjects(t))
	front, _ := frontend(t, g)
	tests := map[string]struct {
		host, target string
		header       []string
		wantCode     int
		// wantSeen is what the backend saw; wantBody the gateway's own answer.
		wantSeen *seen
		wantBody string
	}{
		"host, path and query pass through; X-Forwarded-For replaced": {
			host: "error-page", target: "/a/b%2Fc?x=1&y=%20z", header: []string{"X-Forwarded-For", "6.6.6.6"},
			wantCode: http.StatusOK,
			wantSeen: &seen{Backend: "stable", Host: "error-page", URI: "/a/b%2Fc?x=1&y=%20z", XFF: "127.0.0.1", XFHost: "error-page", XFProto: "http"},
		},
		"Host with port and upper case routes, passes through as sent": {
			host: "Error-Page:8080", target: "/", wantCode: http.StatusOK,
			wantSeen: &seen{Backend: "stable", Host: "Error-Page:8080", URI: "/", XFF: "127.0.0.1", XFHost: "Error-Page:8080", XFProto: "http"},
		},
		"predicate match goes to the canary": {
			host: "error-page", target: "/", header: []string{"X-Canary", "yes"}, wantCode: http.StatusOK,
			wantSeen: &seen{Backend: "canary", Host: "error-page", URI: "/", XFF: "127.0.0.1", XFHost: "error-page", XFProto: "http"},
		},
		"unknown host: 404": {
			host: "nowhere.example", target: "/", wantCode: http.StatusNotFound, wantBody: "no route for host\n",
		},
		"no ready endpoint: 503": {
			host: "empty.example", target: "/", wantCode: http.StatusServiceUnavailable, wantBody: "no ready endpoint for empty-stable\n",
		},
		"backend refuses the connection: 502": {
			host: "down.example", target: "/", wantCode: http.StatusBadGateway, wantBody: "bad gateway\n",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, body := get(t, front, tc.host, tc.target, tc.header...)
			if code != tc.wantCode {
				t.Errorf("status %d, want %d (body %q)", code, tc.wantCode, body)
			}
			if tc.wantSeen == nil {
				if body != tc.wantBody {
					t.Errorf("body %q, want %q", body, tc.wantBody)
				}
				return
			}
			var got seen
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("backend answer %q: %v", body, err)
			}
			if got != *tc.wantSeen {
				t.Errorf("backend saw %+v, want %+v", got, *tc.wantSeen)
			}
		})
	}
}

func TestProxyNotReady(t *testing.T) {
	front, _ := frontend(t, New(Options{}))
	if code, body := get(t, front, "error-page", "/"); code != http.StatusServiceUnavailable || body != "gateway not ready\n" {
		t.Errorf("before the first table: %d %q, want 503 \"gateway not ready\"", code, body)
	}
}

// TestProxySplit sends 100 requests through the network path at weight 10 with
// two stable endpoints: exactly 10 reach the canary, 45 each stable endpoint.
func TestProxySplit(t *testing.T) {
	a, b, c := echoBackend(t, "stable-a"), echoBackend(t, "stable-b"), echoBackend(t, "canary")
	stableSvc, stableSlices := backendObjects(t, "web-stable", hostOf(t, a.URL), hostOf(t, b.URL))
	canarySvc, canarySlices := backendObjects(t, "web-canary", hostOf(t, c.URL))
	g := New(Options{})
	g.Update(t.Context(), Objects{
		TrafficRoutes:  []*fledgev1.TrafficRoute{trafficRoute("web", "web.example", withCanary(10))},
		Services:       []*corev1.Service{stableSvc, canarySvc},
		EndpointSlices: append(stableSlices, canarySlices...),
	})
	front, _ := frontend(t, g)
	got := map[string]int{}
	for range 100 {
		code, body := get(t, front, "web.example", "/")
		var s seen
		if err := json.Unmarshal([]byte(body), &s); code != http.StatusOK || err != nil {
			t.Fatalf("status %d body %q", code, body)
		}
		got[s.Backend]++
	}
	want := map[string]int{"stable-a": 45, "stable-b": 45, "canary": 10}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("requests per backend %v, want %v", got, want)
			break
		}
	}
}

// TestProxyClientGone: a client leaving before the backend answers is recorded
// as 499, not as a backend failure.
func TestProxyClientGone(t *testing.T) {
	arrived := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done() // the gateway cancels the backend request
	}))
	t.Cleanup(slow.Close)
	svc, slices := backendObjects(t, "slow-stable", hostOf(t, slow.URL))
	g := New(Options{})
	g.Update(t.Context(), Objects{
		TrafficRoutes: []*fledgev1.TrafficRoute{trafficRoute("slow", "slow.example")},
		Services:      []*corev1.Service{svc}, EndpointSlices: slices,
	})
	front, done := frontend(t, g)

	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, front.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "slow.example"
	errc := make(chan error, 1)
	go func() {
		resp, err := front.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-arrived
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("client error %v, want context.Canceled", err)
	}
	<-done
	mfs := scrape(t, g)
	if v, ok := sample(mfs, metricRequests, map[string]string{"namespace": "shop", "app": "slow", "service": "slow-stable", "code": "499"}); !ok || v != 1 {
		t.Errorf("requests with code 499 = %v (found %v), want 1; families: %v", v, ok, describe(mfs, metricRequests))
	}
	if _, ok := sample(mfs, metricRequests, map[string]string{"namespace": "shop", "app": "slow", "service": "slow-stable", "code": "502"}); ok {
		t.Error("a client abort was counted as 502")
	}
}

// TestProxyUpgrade: a protocol switch (as WebSocket does) passes through the
// gateway's response recorder and is counted as 101.
func TestProxyUpgrade(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		_, _ = io.Copy(conn, brw) // echo until the client closes
	}))
	t.Cleanup(echo.Close)
	svc, slices := backendObjects(t, "echo-stable", hostOf(t, echo.URL))
	g := New(Options{})
	g.Update(t.Context(), Objects{
		TrafficRoutes: []*fledgev1.TrafficRoute{trafficRoute("echo", "echo.example")},
		Services:      []*corev1.Service{svc}, EndpointSlices: slices,
	})
	front, done := frontend(t, g)

	conn, err := net.Dial("tcp", hostOf(t, front.URL))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: echo.example\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	if _, err := io.WriteString(conn, "ping\n"); err != nil {
		t.Fatal(err)
	}
	line, err := br.ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("echo through the upgraded connection: %q %v", line, err)
	}
	conn.Close()
	<-done
	if v, ok := sample(scrape(t, g), metricRequests, map[string]string{"namespace": "shop", "app": "echo", "service": "echo-stable", "code": "101"}); !ok || v != 1 {
		t.Errorf("requests with code 101 = %v (found %v), want 1", v, ok)
	}
}
