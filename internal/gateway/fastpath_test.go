package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// fastBackend is a loopback backend with a connection counter.
type fastBackend struct {
	*httptest.Server
	// conns counts connections accepted, closed those closed.
	conns, closed atomic.Int64
}

func newFastBackend(t testing.TB, h http.HandlerFunc) *fastBackend {
	t.Helper()
	b := &fastBackend{Server: httptest.NewUnstartedServer(h)}
	b.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			b.conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			b.closed.Add(1)
		}
	}
	b.Start()
	t.Cleanup(b.Close)
	return b
}

// singleRoute returns a gateway serving host "web.example" from backend.
func singleRoute(t testing.TB, opts Options, backend string) *Gateway {
	t.Helper()
	svc, slices := backendObjects(t, "web-stable", backend)
	g := New(opts)
	g.Update(t.Context(), Objects{
		TrafficRoutes: []*fledgev1.TrafficRoute{trafficRoute("web", "web.example")},
		Services:      []*corev1.Service{svc}, EndpointSlices: slices,
	})
	return g
}

// pool returns the fast path's pool of the route's only endpoint.
func pool(g *Gateway) *connPool {
	return g.Table().lookup("web.example").stable.targets[0].pool
}

func (p *connPool) idleLen() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// rawExchange sends a raw request on a new connection to the frontend and
// reads one response.
func rawExchange(t *testing.T, front *httptest.Server, raw string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", hostOf(t, front.URL))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	method, _, _ := strings.Cut(raw, " ")
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// TestFastPathSameAsReverseProxy sends the same raw requests through the fast
// path and through ReverseProxy (DisableFastPath) and compares what the backend
// received and what the client got back.
func TestFastPathSameAsReverseProxy(t *testing.T) {
	backend := newFastBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/trailer" {
			w.Header().Set("Trailer", "X-Announced")
			_, _ = io.WriteString(w, "body")
			w.Header().Set("X-Announced", "a")
			w.Header().Set(http.TrailerPrefix+"X-Late", "b")
			return
		}
		body, _ := io.ReadAll(r.Body)
		h := r.Header.Clone()
		h.Set("X-Seen-Host", r.Host)
		h.Set("X-Seen-URI", r.RequestURI)
		h.Set("X-Seen-Method", r.Method)
		h.Set("X-Seen-Length", strconv.FormatInt(r.ContentLength, 10))
		h.Set("X-Seen-TE", strings.Join(r.TransferEncoding, ","))
		h.Set("X-Seen-Body", string(body))
		w.Header().Set("Connection", "X-Resp-Hop")
		w.Header().Set("X-Resp-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Proxy-Authenticate", "Basic")
		w.Header()["X-Resp-Multi"] = []string{"a", "b"}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(h)
	})
	tests := map[string]string{
		"hop-by-hop and forwarding headers": "GET /a/b%2Fc?x=1&y=%20z HTTP/1.1\r\nHost: Web.Example:8080\r\n" +
			"Connection: keep-alive, X-Custom\r\nX-Custom: drop\r\nKeep-Alive: 5\r\nProxy-Authorization: Basic x\r\n" +
			"Proxy-Connection: keep-alive\r\nForwarded: for=6.6.6.6\r\nX-Forwarded-For: 6.6.6.6\r\n" +
			"X-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\nX-Multi: 1\r\nX-Multi: 2\r\nAccept: */*\r\n\r\n",
		"no User-Agent added":   "GET / HTTP/1.1\r\nHost: web.example\r\n\r\n",
		"User-Agent kept":       "GET / HTTP/1.1\r\nHost: web.example\r\nUser-Agent: curl/8\r\n\r\n",
		"empty User-Agent":      "GET / HTTP/1.1\r\nHost: web.example\r\nUser-Agent:\r\n\r\n",
		"POST with body":        "POST /p?q HTTP/1.1\r\nHost: web.example\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
		"POST without body":     "POST /p HTTP/1.1\r\nHost: web.example\r\nContent-Length: 0\r\n\r\n",
		"DELETE without body":   "DELETE /p HTTP/1.1\r\nHost: web.example\r\n\r\n",
		"chunked request body":  "PUT /c HTTP/1.1\r\nHost: web.example\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
		"HTTP/1.0 client":       "GET /old HTTP/1.0\r\nHost: web.example\r\n\r\n",
		"query with semicolon":  "GET /q?a=1;b=2&c=3 HTTP/1.1\r\nHost: web.example\r\n\r\n",
		"non-ASCII path":        "GET /\xc3\xa4?x HTTP/1.1\r\nHost: web.example\r\n\r\n",
		"escaped letters":       "GET /%41b%2f HTTP/1.1\r\nHost: web.example\r\n\r\n",
		"absolute-form request": "GET http://web.example/abs?x=1 HTTP/1.1\r\nHost: web.example\r\n\r\n",
		"HEAD":                  "HEAD /h HTTP/1.1\r\nHost: web.example\r\n\r\n",
		"TE trailers (slow)":    "GET /te HTTP/1.1\r\nHost: web.example\r\nTE: trailers\r\nConnection: TE\r\n\r\n",
		"response trailers":     "GET /trailer HTTP/1.1\r\nHost: web.example\r\n\r\n",
	}
	fast := singleRoute(t, Options{}, hostOf(t, backend.URL))
	slow := singleRoute(t, Options{DisableFastPath: true}, hostOf(t, backend.URL))
	fastFront, _ := frontend(t, fast)
	slowFront, _ := frontend(t, slow)
	for name, raw := range tests {
		t.Run(name, func(t *testing.T) {
			fr, fb := rawExchange(t, fastFront, raw)
			sr, sb := rawExchange(t, slowFront, raw)
			if fr.StatusCode != sr.StatusCode {
				t.Fatalf("status: fast %d, ReverseProxy %d", fr.StatusCode, sr.StatusCode)
			}
			fr.Header.Del("Date")
			sr.Header.Del("Date")
			if fmt.Sprint(fr.Header) != fmt.Sprint(sr.Header) {
				t.Errorf("response headers differ:\nfast %v\nRP   %v", fr.Header, sr.Header)
			}
			for _, k := range []string{"X-Resp-Hop", "Keep-Alive", "Proxy-Authenticate"} {
				if _, ok := fr.Header[k]; ok {
					t.Errorf("hop-by-hop response header %s reached the client", k)
				}
			}
			if fmt.Sprint(fr.Trailer) != fmt.Sprint(sr.Trailer) {
				t.Errorf("response trailers differ:\nfast %v\nRP   %v", fr.Trailer, sr.Trailer)
			}
			if !bytes.Equal(fb, sb) {
				t.Errorf("backend saw (fast):\n%s\nbackend saw (ReverseProxy):\n%s", fb, sb)
			}
			if strings.HasPrefix(raw, "HEAD") || strings.Contains(raw, "/trailer") {
				return
			}
			var seen http.Header
			if err := json.Unmarshal(fb, &seen); err != nil {
				t.Fatalf("%q: %v", fb, err)
			}
			for _, k := range []string{"Connection", "X-Custom", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Forwarded"} {
				if _, ok := seen[k]; ok {
					t.Errorf("hop-by-hop or spoofed header %s reached the backend", k)
				}
			}
			if got := seen.Values("X-Forwarded-For"); !slices.Equal(got, []string{"127.0.0.1"}) {
				t.Errorf("X-Forwarded-For %q, want [127.0.0.1]", got)
			}
		})
	}
	if pool(slow) != nil {
		t.Error("DisableFastPath: the target has a connection pool")
	}
	if pool(fast).idleLen() == 0 {
		t.Error("fast path: no connection was pooled (did the requests take it?)")
	}
}

// TestFastPathBodies: request bodies up to and beyond the fast path's limit,
// large and streamed (chunked) responses, and an SSE-like stream that must
// reach the client before the backend ends it.
func TestFastPathBodies(t *testing.T) {
	release := make(chan struct{})
	backend := newFastBackend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			sum := sha256.New()
			n, _ := io.Copy(sum, r.Body)
			fmt.Fprintf(w, "%d %x", n, sum.Sum(nil))
		case "/big":
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			w.Header().Set("Content-Length", strconv.Itoa(n))
			_, _ = w.Write(bytes.Repeat([]byte("x"), n))
		case "/chunked":
			for i := range 100 {
				fmt.Fprintf(w, "line %d\n", i)
				w.(http.Flusher).Flush()
			}
		case "/stream":
			_, _ = io.WriteString(w, "first\n")
			w.(http.Flusher).Flush()
			<-release
			_, _ = io.WriteString(w, "second\n")
		}
	})
	g := singleRoute(t, Options{}, hostOf(t, backend.URL))
	front, _ := frontend(t, g)
	client := front.Client()
	do := func(method, path string, body io.Reader, chunked bool) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, front.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "web.example"
		if chunked {
			req.ContentLength = -1
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	for _, size := range []int{1, fastPathMaxBody, fastPathMaxBody + 1, 3 << 20} {
		for _, chunked := range []bool{false, true} {
			payload := bytes.Repeat([]byte{'a', 'b', 'c'}, size/3+1)[:size]
			want := fmt.Sprintf("%d %x", size, sha256.Sum256(payload))
			if _, got := do(http.MethodPost, "/echo", bytes.NewReader(payload), chunked); got != want {
				t.Errorf("request body of %d bytes (chunked %v): backend got %q, want %q", size, chunked, got, want)
			}
		}
	}
	for _, n := range []int{0, 10, 5 << 20} {
		resp, got := do(http.MethodGet, "/big?n="+strconv.Itoa(n), nil, false)
		if len(got) != n || resp.ContentLength != int64(n) {
			t.Errorf("response of %d bytes: got %d, Content-Length %d", n, len(got), resp.ContentLength)
		}
	}
	resp, got := do(http.MethodGet, "/chunked", nil, false)
	if lines := strings.Count(got, "\n"); lines != 100 || resp.ContentLength != -1 {
		t.Errorf("chunked response: %d lines, Content-Length %d; want 100 lines, chunked", lines, resp.ContentLength)
	}

	// Streaming: the first line arrives while the backend still holds the rest.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, front.URL+"/stream", nil)
	req.Host = "web.example"
	sresp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer sresp.Body.Close()
	br := bufio.NewReader(sresp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first streamed line %q %v", line, err)
	}
	close(release)
	if rest, err := io.ReadAll(br); err != nil || string(rest) != "second\n" {
		t.Fatalf("rest of the stream %q %v", rest, err)
	}
}

// TestFastPathReuse: sequential requests share one backend connection; a
// backend answering Connection: close gets a new one each time; connections
// the backend closed while idle are replaced without an error.
func TestFastPathReuse(t *testing.T) {
	t.Run("keep-alive", func(t *testing.T) {
		b := newFastBackend(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
		g := singleRoute(t, Options{}, hostOf(t, b.URL))
		front, _ := frontend(t, g)
		for range 50 {
			if code, body := get(t, front, "web.example", "/"); code != 200 || body != "ok" {
				t.Fatalf("%d %q", code, body)
			}
		}
		if n := b.conns.Load(); n != 1 {
			t.Errorf("50 sequential requests used %d backend connections, want 1", n)
		}
	})
	t.Run("backend sends Connection: close", func(t *testing.T) {
		b := newFastBackend(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, "ok")
		})
		g := singleRoute(t, Options{}, hostOf(t, b.URL))
		front, _ := frontend(t, g)
		for range 5 {
			if code, body := get(t, front, "web.example", "/"); code != 200 || body != "ok" {
				t.Fatalf("%d %q", code, body)
			}
		}
		if n := b.conns.Load(); n != 5 {
			t.Errorf("5 requests used %d backend connections, want 5", n)
		}
		if n := pool(g).idleLen(); n != 0 {
			t.Errorf("%d connections pooled after Connection: close, want 0", n)
		}
	})
	for _, idle := range []time.Duration{0, 1200 * time.Millisecond} {
		t.Run(fmt.Sprintf("backend closed idle connections, idle %v", idle), func(t *testing.T) {
			if idle > 0 && testing.Short() {
				t.Skip("waits for the idle probe")
			}
			b := newFastBackend(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
			g := singleRoute(t, Options{}, hostOf(t, b.URL))
			front, _ := frontend(t, g)
			for range 3 - 2*min(int(idle), 1) { // once when it waits
				get(t, front, "web.example", "/")
				b.CloseClientConnections()
				time.Sleep(idle + 10*time.Millisecond)
			}
			if code, body := get(t, front, "web.example", "/"); code != 200 || body != "ok" {
				t.Fatalf("after the backend closed the idle connection: %d %q", code, body)
			}
			// A POST is not retried: it must find a live connection by itself
			// (the pool probes every connection it hands out).
			if idle > 0 {
				b.CloseClientConnections()
				time.Sleep(idle)
				req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, front.URL+"/", strings.NewReader("x"))
				req.Host = "web.example"
				resp, err := front.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("POST on a connection closed while idle: %d", resp.StatusCode)
				}
			}
		})
	}
	t.Run("idle timeout and max idle per endpoint", func(t *testing.T) {
		var wg sync.WaitGroup
		wg.Add(5)
		b := newFastBackend(t, func(w http.ResponseWriter, _ *http.Request) {
			wg.Done()
			wg.Wait() // five requests in flight at once
			_, _ = io.WriteString(w, "ok")
		})
		g := singleRoute(t, Options{MaxIdleConnsPerHost: 2, IdleConnTimeout: 200 * time.Millisecond}, hostOf(t, b.URL))
		front, _ := frontend(t, g)
		var cwg sync.WaitGroup
		for range 5 {
			cwg.Go(func() {
				if code, _ := get(t, front, "web.example", "/"); code != 200 {
					t.Errorf("status %d", code)
				}
			})
		}
		cwg.Wait()
		if n := pool(g).idleLen(); n != 2 {
			t.Errorf("%d idle connections, want MaxIdleConnsPerHost 2", n)
		}
		if n := g.idle.n.Load(); n != 2 {
			t.Errorf("idle budget counts %d, want 2", n)
		}
		waitFor(t, "idle connections closed by the idle timeout", func() bool {
			return pool(g).idleLen() == 0 && b.closed.Load() == 5
		})
		if n := g.idle.n.Load(); n != 0 {
			t.Errorf("idle budget counts %d after the timeout, want 0", n)
		}
	})
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFastPathErrors: broken backends answer 502 (and count as 502); a backend
// breaking a response body aborts the client's response.
func TestFastPathErrors(t *testing.T) {
	rawBackend := func(answer string) string {
		return serveConns(t, func(c net.Conn) {
			if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
				return
			}
			_, _ = io.WriteString(c, answer)
		})
	}
	tests := map[string]struct {
		addr     string
		wantCode int
	}{
		"connection refused":        {refusedAddr(t), http.StatusBadGateway},
		"closes without answering":  {rawBackend(""), http.StatusBadGateway},
		"malformed status line":     {rawBackend("HTTP/1.1 abc\r\n\r\n"), http.StatusBadGateway},
		"unrequested protocol 101":  {rawBackend("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n"), http.StatusBadGateway},
		"informational 103 is sent": {rawBackend("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"), http.StatusNoContent},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			g := singleRoute(t, Options{}, tc.addr)
			front, done := frontend(t, g)
			code, _ := get(t, front, "web.example", "/")
			<-done
			if code != tc.wantCode {
				t.Errorf("status %d, want %d", code, tc.wantCode)
			}
			want := map[string]string{"namespace": "shop", "app": "web", "service": "web-stable", "code": strconv.Itoa(tc.wantCode)}
			if v, ok := sample(scrape(t, g), metricRequests, want); !ok || v != 1 {
				t.Errorf("requests with code %d = %v (found %v), want 1", tc.wantCode, v, ok)
			}
		})
	}
	t.Run("body cut short", func(t *testing.T) {
		g := singleRoute(t, Options{}, rawBackend("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"))
		front, done := frontend(t, g)
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, front.URL, nil)
		req.Host = "web.example"
		resp, err := front.Client().Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Error("the client read a complete response, want an error")
		}
		<-done
		if n := pool(g).idleLen(); n != 0 {
			t.Errorf("broken connection pooled (%d idle)", n)
		}
	})
}

// TestFastPathNoLeaks runs requests of every kind (including failures and
// client aborts) and checks that goroutines and file descriptors return to
// their level once the gateway stopped and the servers closed.
func TestFastPathNoLeaks(t *testing.T) {
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		return len(ents)
	}
	settle := func() (int, int) {
		runtime.GC()
		time.Sleep(50 * time.Millisecond)
		return runtime.NumGoroutine(), fds()
	}
	g0, f0 := settle()
	func() {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		arrived := make(chan struct{}, 1)
		b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/hang" {
				arrived <- struct{}{}
				<-r.Context().Done()
				return
			}
			if r.URL.Path == "/close" {
				w.Header().Set("Connection", "close")
			}
			_, _ = io.WriteString(w, "ok")
		}))
		defer b.Close()
		svc, sl := backendObjects(t, "web-stable", hostOf(t, b.URL))
		downSvc, downSl := backendObjects(t, "down-stable", refusedAddr(t))
		g := New(Options{})
		g.Update(ctx, Objects{
			TrafficRoutes: []*fledgev1.TrafficRoute{trafficRoute("web", "web.example"), trafficRoute("down", "down.example")},
			Services:      []*corev1.Service{svc, downSvc}, EndpointSlices: append(sl, downSl...),
		})
		proxyLn, adminLn := listen(t), listen(t)
		served := make(chan error, 1)
		go func() { served <- g.Serve(ctx, proxyLn, adminLn) }()
		url := "http://" + proxyLn.Addr().String()
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
		defer client.CloseIdleConnections()
		send := func(ctx context.Context, host, path string) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+path, nil)
			req.Host = host
			if resp, err := client.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Go(func() {
				switch i % 4 {
				case 0:
					send(ctx, "web.example", "/")
				case 1:
					send(ctx, "web.example", "/close")
				case 2:
					send(ctx, "down.example", "/")
				case 3:
					send(ctx, "nowhere.example", "/")
				}
			})
		}
		wg.Wait()
		actx, abort := context.WithCancel(ctx)
		go func() { <-arrived; abort() }()
		send(actx, "web.example", "/hang") // a client abort
		client.CloseIdleConnections()
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
		if n := pool(g).idleLen(); n != 0 {
			t.Errorf("%d idle connections after Serve returned", n)
		}
	}()
	var g1, f1 int
	for deadline := time.Now().Add(5 * time.Second); ; {
		if g1, f1 = settle(); (g1 <= g0 && f1 <= f0) || time.Now().After(deadline) {
			break
		}
	}
	if g1 > g0 || f1 > f0 {
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines %d -> %d, file descriptors %d -> %d\n%s", g0, g1, f0, f1, buf[:runtime.Stack(buf, true)])
	}
}

// TestFastPathEndpointRemoved: an endpoint leaving the table has its idle
// connections closed.
func TestFastPathEndpointRemoved(t *testing.T) {
	b := newFastBackend(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	g := singleRoute(t, Options{}, hostOf(t, b.URL))
	front, _ := frontend(t, g)
	get(t, front, "web.example", "/")
	p := pool(g)
	if p.idleLen() != 1 {
		t.Fatalf("%d idle connections, want 1", p.idleLen())
	}
	g.Update(t.Context(), Objects{})
	waitFor(t, "the backend connection closed", func() bool { return b.closed.Load() == 1 })
	if p.idleLen() != 0 {
		t.Errorf("%d idle connections in a removed pool", p.idleLen())
	}
}

// BenchmarkForward compares the fast path with ReverseProxy through the
// handler (no client network hop).
func BenchmarkForward(b *testing.B) {
	body := []byte("hello from the backend\n")
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) }))
	b.Cleanup(backend.Close)
	for _, disable := range []bool{false, true} {
		g := singleRoute(b, Options{DisableFastPath: disable}, hostOf(b, backend.URL))
		b.Run("DisableFastPath="+strconv.FormatBool(disable), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rec := httptest.NewRecorder()
					g.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://web.example/path?q=1", nil))
					if rec.Code != http.StatusOK || rec.Body.Len() != len(body) {
						b.Fatalf("status %d body %q", rec.Code, rec.Body)
					}
				}
			})
		})
	}
}
