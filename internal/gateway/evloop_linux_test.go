package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// eventLoopsServed returns how many requests g's event loops sent to a
// backend themselves (0 before they run).
func eventLoopsServed(t *testing.T, g *Gateway) uint64 {
	t.Helper()
	s, ok := g.events.Load().(*evServer)
	if !ok {
		return 0
	}
	var n uint64
	for _, l := range s.loops {
		n += l.served.Load()
	}
	return n
}

// readResponses reads n responses from br, with their bodies.
func readResponses(t *testing.T, c net.Conn, br *bufio.Reader, n int) ([]*http.Response, []string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var res []*http.Response
	var bodies []string
	for range n {
		r, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", len(res)+1, err)
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatalf("response %d body: %v", len(res)+1, err)
		}
		res, bodies = append(res, r), append(bodies, string(b))
	}
	return res, bodies
}

// TestEventLoopServes: plain GETs on one client connection are served by
// the event loops over one reused backend connection, with the request
// and response rewritten as on the other paths.
func TestEventLoopServes(t *testing.T) {
	backend := newFastBackend(t, func(w http.ResponseWriter, r *http.Request) {
		_, dropped := r.Header["X-Drop"]
		w.Header().Set("Connection", "X-Secret")
		w.Header().Set("X-Secret", "1")
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s xff=%s xfh=%s xfp=%s dropped=%v ka=%q", r.URL.RequestURI(), r.Header.Get("X-Forwarded-For"),
			r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Forwarded-Proto"), !dropped, r.Header.Get("Keep-Alive"))
	})
	g := singleRoute(t, Options{}, hostOf(t, backend.URL))
	addr := serveGateway(t, g)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	const n = 20
	for i := range n {
		raw := fmt.Sprintf("GET /p/%d?q=%d HTTP/1.1\r\nHost: web.example\r\nConnection: X-Drop\r\nX-Drop: 1\r\nKeep-Alive: timeout=5\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n", i, i)
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		res, bodies := readResponses(t, c, br, 1)
		want := fmt.Sprintf("/p/%d?q=%d xff=127.0.0.1 xfh=web.example xfp=http dropped=true ka=\"\"", i, i)
		if res[0].StatusCode != http.StatusOK || bodies[0] != want {
			t.Fatalf("request %d: %d %q, want 200 %q", i, res[0].StatusCode, bodies[0], want)
		}
		if _, ok := res[0].Header["X-Secret"]; ok {
			t.Errorf("request %d: X-Secret, named by the backend's Connection header, reached the client", i)
		}
		if res[0].Header.Get("Date") == "" || res[0].Close {
			t.Errorf("request %d: Date %q, close %v; want a Date and the connection kept", i, res[0].Header.Get("Date"), res[0].Close)
		}
	}
	if got := eventLoopsServed(t, g); got != n {
		t.Errorf("event loops sent %d requests, want %d", got, n)
	}
	if got := backend.conns.Load(); got != 1 {
		t.Errorf("backend connections: %d, want 1 (reused)", got)
	}
	stable := g.Table().lookup("web.example").stable
	if got := testutil.ToFloat64(stable.obs.counter(http.StatusOK)); got != n {
		t.Errorf("requests counted 200: %v, want %d", got, n)
	}
}

// TestEventLoopPipelined: requests sent in one write are answered in order.
func TestEventLoopPipelined(t *testing.T) {
	backend := newFastBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, r.URL.Path)
	})
	g := singleRoute(t, Options{}, hostOf(t, backend.URL))
	c, err := net.Dial("tcp", serveGateway(t, g))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var raw strings.Builder
	for _, p := range []string{"/a", "/b", "/c"} {
		fmt.Fprintf(&raw, "GET %s HTTP/1.1\r\nHost: web.example\r\n\r\n", p)
	}
	raw.WriteString("GET /d HTTP/1.1\r\nHost: web.example\r\nConnection: close\r\n\r\n")
	if _, err := io.WriteString(c, raw.String()); err != nil {
		t.Fatal(err)
	}
	res, bodies := readResponses(t, c, bufio.NewReader(c), 4)
	if got := strings.Join(bodies, ","); got != "/a,/b,/c,/d" {
		t.Errorf("answers %q, want /a,/b,/c,/d", got)
	}
	if !res[3].Close {
		t.Error("the answer to a request with Connection: close does not close")
	}
	if got := eventLoopsServed(t, g); got != 4 {
		t.Errorf("event loops sent %d requests, want 4", got)
	}
}

// TestEventLoopHandsOn: what the loops do not serve themselves is served
// by the goroutine path, correctly, on the same client connection: before
// anything is sent (a body, HEAD) and after (a chunked or large response,
// one without a Content-Type, 204).
func TestEventLoopHandsOn(t *testing.T) {
	large := strings.Repeat("x", 100<<10)
	backend := newFastBackend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/plain":
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "plain")
		case "/chunked":
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "one,")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "two")
		case "/large":
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, large)
		case "/untyped":
			w.Header()["Content-Type"] = nil // not sniffed by the backend
			_, _ = io.WriteString(w, "<html>untyped</html>")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write(b)
		case "/head":
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Length", "4")
		}
	})
	g := singleRoute(t, Options{}, hostOf(t, backend.URL))
	addr := serveGateway(t, g)
	for _, tc := range []struct {
		name, raw, body string
		code            int
		sent            uint64 // requests the loop sends for the case
		stage           string // of the hand-off
	}{
		{"chunked response", "GET /chunked HTTP/1.1\r\nHost: web.example\r\n\r\n", "one,two", 200, 1, "response"},
		{"large response", "GET /large HTTP/1.1\r\nHost: web.example\r\n\r\n", large, 200, 1, "response"},
		{"response without Content-Type", "GET /untyped HTTP/1.1\r\nHost: web.example\r\n\r\n", "<html>untyped</html>", 200, 1, "response"},
		{"204", "GET /empty HTTP/1.1\r\nHost: web.example\r\n\r\n", "", 204, 1, "response"},
		{"request body", "POST /echo HTTP/1.1\r\nHost: web.example\r\nContent-Length: 5\r\n\r\nhello", "hello", 200, 0, "request"},
		{"HEAD", "HEAD /head HTTP/1.1\r\nHost: web.example\r\n\r\n", "", 200, 0, "request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			before := eventLoopsServed(t, g)
			handoffs := g.metrics.loopHandoffs.WithLabelValues(tc.stage)
			handedBefore := testutil.ToFloat64(handoffs)
			plain := "GET /plain HTTP/1.1\r\nHost: web.example\r\n\r\n"
			_, _ = io.WriteString(c, plain)
			_, bodies := readResponses(t, c, br, 1)
			if bodies[0] != "plain" {
				t.Fatalf("first answer %q", bodies[0])
			}
			_, _ = io.WriteString(c, tc.raw)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			req := &http.Request{Method: strings.Fields(tc.raw)[0]}
			res, err := http.ReadResponse(br, req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(res.Body)
			if err != nil || res.StatusCode != tc.code || string(b) != tc.body {
				t.Fatalf("answer %d, %d bytes (%v); want %d, %d bytes", res.StatusCode, len(b), err, tc.code, len(tc.body))
			}
			if tc.name == "response without Content-Type" && res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q, want it sniffed as net/http's server does", res.Header.Get("Content-Type"))
			}
			// The connection goes on with the goroutine path.
			_, _ = io.WriteString(c, plain)
			if _, bodies := readResponses(t, c, br, 1); bodies[0] != "plain" {
				t.Fatalf("answer after it %q", bodies[0])
			}
			if got := eventLoopsServed(t, g) - before; got != 1+tc.sent {
				t.Errorf("event loops sent %d requests, want %d", got, 1+tc.sent)
			}
			if got := testutil.ToFloat64(handoffs) - handedBefore; got != 1 {
				t.Errorf("hand-offs at stage %s: %v, want 1", tc.stage, got)
			}
		})
	}
}

// TestEventLoopBackendCloses: a backend connection closed while idle is
// dropped, and one closed as a request is sent to it gets the GET sent
// again on a new connection: the client sees no error either way.
func TestEventLoopBackendCloses(t *testing.T) {
	// Each connection answers its first request and reads the second,
	// then closes without answering it.
	addr := serveConns(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for i := 0; ; i++ {
			req, err := http.ReadRequest(br)
			if err != nil || i == 1 {
				return
			}
			body := "answer " + req.URL.Path
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		}
	})
	g := singleRoute(t, Options{}, addr)
	c, err := net.Dial("tcp", serveGateway(t, g))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := range 6 {
		fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: web.example\r\n\r\n", i)
		res, bodies := readResponses(t, c, br, 1)
		if want := fmt.Sprintf("answer /%d", i); res[0].StatusCode != 200 || bodies[0] != want {
			t.Fatalf("request %d: %d %q, want 200 %q", i, res[0].StatusCode, bodies[0], want)
		}
	}
}

// TestEventLoopClientGone: a client that goes away while its request waits
// for the backend has the backend connection closed (the backend's request
// is cancelled) and the request counted as 499.
func TestEventLoopClientGone(t *testing.T) {
	cancelled := make(chan struct{}, 1)
	backend := newFastBackend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-time.After(10 * time.Second):
		}
	})
	g := singleRoute(t, Options{}, hostOf(t, backend.URL))
	c, err := net.Dial("tcp", serveGateway(t, g))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: web.example\r\n\r\n")
	deadline := time.Now().Add(5 * time.Second)
	for eventLoopsServed(t, g) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	c.Close()
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend's request was not cancelled after the client left")
	}
	stable := g.Table().lookup("web.example").stable
	for time.Now().Before(deadline) && testutil.ToFloat64(stable.obs.counter(statusClientClosedRequest)) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	if got := testutil.ToFloat64(stable.obs.counter(statusClientClosedRequest)); got != 1 {
		t.Errorf("requests counted 499: %v, want 1", got)
	}
}

// TestEventLoopShutdownWithoutRequests: Serve returns at once when the
// listener never served anything, and the listener is closed.
func TestEventLoopShutdownWithoutRequests(t *testing.T) {
	addr, stop := startServing(t, New(Options{}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stop()
}

// startServing serves g on new listeners; stop stops it and checks that
// Serve returned and the proxy listener is closed.
func startServing(t *testing.T, g *Gateway) (addr string, stop func()) {
	t.Helper()
	proxyLn, adminLn := listen(t), listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- g.Serve(ctx, proxyLn, adminLn) }()
	addr = proxyLn.Addr().String()
	return addr, func() {
		t.Helper()
		cancel()
		assertStopped(t, served, addr)
	}
}

// TestEventLoopSlowReader: a client that sends many requests at once and
// reads the answers only later fills the socket buffers; the loop waits
// until it can write again and answers every request, in order.
func TestEventLoopSlowReader(t *testing.T) {
	body := strings.Repeat("y", 15<<10)
	backend := newFastBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(len(r.URL.Path)+len(body))) // else chunked, handed on
		_, _ = io.WriteString(w, r.URL.Path+body)
	})
	g := singleRoute(t, Options{}, hostOf(t, backend.URL))
	c, err := net.Dial("tcp", serveGateway(t, g))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// 15 MiB of answers: more than the socket buffers take (4 MiB to send
	// and 6 MiB to receive at most, by Linux's defaults), so that writing
	// waits for the client; 40 KiB of requests: more than the loop's
	// buffer.
	const n = 1000
	go func() {
		var raw strings.Builder
		for i := range n {
			fmt.Fprintf(&raw, "GET /%d HTTP/1.1\r\nHost: web.example\r\n\r\n", i)
		}
		_, _ = io.WriteString(c, raw.String())
	}()
	time.Sleep(300 * time.Millisecond)
	_, bodies := readResponses(t, c, bufio.NewReader(c), n)
	for i, b := range bodies {
		if want := fmt.Sprintf("/%d", i) + body; b != want {
			t.Fatalf("answer %d: %d bytes starting %q, want /%d and %d bytes", i, len(b), b[:min(len(b), 8)], i, len(want))
		}
	}
	if got := eventLoopsServed(t, g); got != n {
		t.Errorf("event loops sent %d requests, want %d", got, n)
	}
}

// TestSockaddrString: a client's address reads as net.TCPAddr prints it
// (what net/http's RemoteAddr, and so X-Forwarded-For, would be), also for
// an IPv4 client of a dual-stack listener.
func TestSockaddrString(t *testing.T) {
	mapped := syscall.SockaddrInet6{Port: 80, Addr: [16]byte{10: 0xff, 11: 0xff, 12: 192, 13: 0, 14: 2, 15: 1}}
	v6 := syscall.SockaddrInet6{Port: 8080, Addr: [16]byte{0: 0x20, 1: 0x01, 2: 0x0d, 3: 0xb8, 15: 1}}
	v4 := syscall.SockaddrInet4{Port: 443, Addr: [4]byte{192, 0, 2, 7}}
	for _, tc := range []struct {
		sa   syscall.Sockaddr
		want net.TCPAddr
	}{
		{&mapped, net.TCPAddr{IP: mapped.Addr[:], Port: 80}},
		{&v6, net.TCPAddr{IP: v6.Addr[:], Port: 8080}},
		{&v4, net.TCPAddr{IP: v4.Addr[:], Port: 443}},
	} {
		if got, want := sockaddrString(tc.sa), tc.want.String(); got != want {
			t.Errorf("sockaddrString(%v) = %q, want %q", tc.sa, got, want)
		}
	}
}

// TestEventLoopsLeaveAP: while event loops run, GOMAXPROCS is one more than
// the loops (the rest of the process runs on that P), however many
// gateways serve; it is put back when the last one stops.
func TestEventLoopsLeaveAP(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	type running struct {
		g    *Gateway
		stop func()
	}
	start := func() running {
		backend := newFastBackend(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "ok")
		})
		g := singleRoute(t, Options{}, hostOf(t, backend.URL))
		addr, stop := startServing(t, g)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: web.example\r\n\r\n")
		if res, _ := readResponses(t, c, bufio.NewReader(c), 1); res[0].StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200", res[0].StatusCode)
		}
		if n := eventLoopsServed(t, g); n != 1 {
			t.Fatalf("event loops served %d requests, want 1", n)
		}
		return running{g, stop}
	}
	check := func(r running) {
		t.Helper()
		if n := len(r.g.events.Load().(*evServer).loops); n != procs {
			t.Errorf("%d event loops, want %d (GOMAXPROCS before)", n, procs)
		}
		if got := runtime.GOMAXPROCS(0); got != procs+1 {
			t.Errorf("GOMAXPROCS %d while loops run, want %d", got, procs+1)
		}
	}
	a := start()
	check(a)
	b := start()
	check(b)
	a.stop()
	if got := runtime.GOMAXPROCS(0); got != procs+1 {
		t.Errorf("GOMAXPROCS %d while one gateway still runs, want %d", got, procs+1)
	}
	b.stop()
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Errorf("GOMAXPROCS %d after the loops stopped, want %d", got, procs)
	}
}

// TestEventLoopAllocatesNothing: a request the event loops serve costs no
// heap allocation (so a steady load never starts the garbage collector):
// 2000 requests on one connection, to a backend that allocates nothing
// either, leave the process's count of allocations below 100.
func TestEventLoopAllocatesNothing(t *testing.T) {
	const body = `{"error": "injected by error_page service", "version": "v1"}`
	g := singleRoute(t, Options{}, rawBackend(t, body))
	c, err := net.Dial("tcp", serveGateway(t, g))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReader(c)
	req := []byte("GET /api/error_page?x=1 HTTP/1.1\r\nHost: web.example\r\nUser-Agent: test\r\nAccept: */*\r\nX-Request-Id: 42\r\n\r\n")
	do := func(n int) {
		for range n {
			if _, err := c.Write(req); err != nil {
				t.Fatal(err)
			}
			if err := readSmallResponse(br, len(body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	do(100) // connections, buffers and pools set up
	const n = 2000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	do(n)
	runtime.ReadMemStats(&after)
	if got := eventLoopsServed(t, g); got != n+100 {
		t.Fatalf("event loops served %d requests, want %d", got, n+100)
	}
	if allocs := after.Mallocs - before.Mallocs; allocs >= 100 {
		t.Errorf("%d allocations for %d requests, want fewer than 100", allocs, n)
	}
}
