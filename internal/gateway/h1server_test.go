package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

const metricHandoffs = "fledge_gateway_client_connections_handed_off_total"

// exchange is one response as a client reads it off the wire.
type exchange struct {
	status  string
	header  http.Header
	te      []string
	length  int64
	close   bool
	body    string
	trailer http.Header
	readErr string
}

func (e exchange) String() string {
	return fmt.Sprintf("status %q\nheader %v\nTE %v length %d close %v\nbody %q (err %q)\ntrailer %v",
		e.status, e.header, e.te, e.length, e.close, e.body, e.readErr, e.trailer)
}

// rawResponses writes raw on a new connection to addr and reads n
// responses (methods gives each request's method, for HEAD).
func rawResponses(t *testing.T, addr, raw string, methods ...string) []exchange {
	t.Helper()
	br := bufio.NewReader(dialRaw(t, addr, raw))
	var out []exchange
	for _, m := range methods {
		res, err := http.ReadResponse(br, &http.Request{Method: m})
		for err == nil && res.StatusCode < 200 {
			res, err = http.ReadResponse(br, &http.Request{Method: m}) // 100 Continue
		}
		if err != nil {
			t.Fatalf("response %d: %v", len(out)+1, err)
		}
		body, err := io.ReadAll(res.Body)
		e := exchange{status: res.Status, header: res.Header, te: res.TransferEncoding,
			length: res.ContentLength, close: res.Close, body: string(body), trailer: res.Trailer}
		if err != nil {
			e.readErr = err.Error()
		}
		e.header.Del("Date")
		out = append(out, e)
	}
	return out
}

// TestLoopSameAsNetHTTP sends the same raw requests to a gateway served by
// its connection loop (Serve) and to one whose requests net/http's server
// hands to Gateway.ServeHTTP, both on the fast path, and compares the
// responses as a client reads them: status line, headers but Date, framing
// (chunked or length, close), body and trailers.
func TestLoopSameAsNetHTTP(t *testing.T) {
	backend := newFastBackend(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		switch r.URL.Path {
		case "/json":
			h.Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"version":"v1"}`)
		case "/sniff-html":
			_, _ = io.WriteString(w, "<html><body>hi</body></html>")
		case "/sniff-none":
			h["Content-Type"] = nil
			_, _ = io.WriteString(w, "plain")
		case "/chunked":
			h.Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "part one,")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "part two")
		case "/chunked-untyped":
			_, _ = io.WriteString(w, "{")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "}")
		case "/big":
			h.Set("Content-Type", "application/octet-stream")
			_, _ = io.WriteString(w, strings.Repeat("0123456789", 10000))
		case "/big-chunked":
			for i := range 40 {
				_, _ = fmt.Fprintf(w, "%04d%s", i, strings.Repeat("x", 996))
				w.(http.Flusher).Flush()
			}
		case "/empty":
		case "/204":
			h.Set("X-Kind", "no content")
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			h.Set("Content-Type", "text/plain")
			h.Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		case "/599":
			w.WriteHeader(599)
			_, _ = io.WriteString(w, "odd")
		case "/503":
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		case "/trailer":
			h.Set("Trailer", "X-Checksum")
			_, _ = io.WriteString(w, "body")
			h.Set("X-Checksum", "abc")
			h.Set(http.TrailerPrefix+"X-Late", "late")
		case "/close":
			h.Set("Connection", "close")
			_, _ = io.WriteString(w, "bye")
		case "/headers":
			h["X-Multi"] = []string{"a", "b"}
			h.Set("Set-Cookie", "a=1")
			h.Add("Set-Cookie", "b=2")
			h.Set("Cache-Control", "no-store")
			_, _ = io.WriteString(w, "ok")
		case "/echo":
			body, _ := io.ReadAll(r.Body)
			h.Set("X-Seen-Length", strconv.FormatInt(r.ContentLength, 10))
			_, _ = w.Write(body)
		default:
			http.NotFound(w, r)
		}
	})
	loop := singleRoute(t, Options{}, hostOf(t, backend.URL))
	loopAddr := serveGateway(t, loop)
	std := singleRoute(t, Options{}, hostOf(t, backend.URL))
	stdFront, _ := frontend(t, std)
	stdAddr := hostOf(t, stdFront.URL)

	get := func(path string, extra ...string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: web.example\r\n" + strings.Join(extra, "") + "\r\n"
	}
	tests := []struct {
		name    string
		raw     string
		methods []string
	}{
		{"json", get("/json"), []string{"GET"}},
		{"sniffed html", get("/sniff-html"), []string{"GET"}},
		{"sniffing suppressed", get("/sniff-none"), []string{"GET"}},
		{"chunked", get("/chunked"), []string{"GET"}},
		{"chunked untyped", get("/chunked-untyped"), []string{"GET"}},
		{"100 KB", get("/big"), []string{"GET"}},
		{"40 KB chunked", get("/big-chunked"), []string{"GET"}},
		{"empty", get("/empty"), []string{"GET"}},
		{"204", get("/204"), []string{"GET"}},
		{"304", get("/304"), []string{"GET"}},
		{"unknown status", get("/599"), []string{"GET"}},
		{"backend 503", get("/503"), []string{"GET"}},
		{"backend 404", get("/nothing"), []string{"GET"}},
		{"trailers", get("/trailer"), []string{"GET"}},
		{"backend closes", get("/close"), []string{"GET"}},
		{"header order and repeats", get("/headers"), []string{"GET"}},
		{"HEAD", "HEAD /json HTTP/1.1\r\nHost: web.example\r\n\r\n", []string{"HEAD"}},
		{"HEAD untyped", "HEAD /sniff-html HTTP/1.1\r\nHost: web.example\r\n\r\n", []string{"HEAD"}},
		{"client asks close", get("/json", "Connection: close\r\n"), []string{"GET"}},
		{"POST body", "POST /echo HTTP/1.1\r\nHost: web.example\r\nContent-Length: 5\r\n\r\nhello", []string{"POST"}},
		{"unknown host", "GET / HTTP/1.1\r\nHost: nowhere.example\r\n\r\n", []string{"GET"}},
		{"unknown host with a body left unread, then another request",
			"POST / HTTP/1.1\r\nHost: nowhere.example\r\nContent-Length: 3\r\n\r\nabc" + get("/json"), []string{"POST", "GET"}},
		{"pipelined", get("/json") + get("/chunked") + "HEAD /big HTTP/1.1\r\nHost: web.example\r\n\r\n" + get("/204") + get("/empty"),
			[]string{"GET", "GET", "HEAD", "GET", "GET"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := rawResponses(t, loopAddr, tc.raw, tc.methods...)
			want := rawResponses(t, stdAddr, tc.raw, tc.methods...)
			for i := range want {
				if got[i].String() != want[i].String() {
					t.Errorf("response %d differs:\nconnection loop:\n%v\nnet/http:\n%v", i+1, got[i], want[i])
				}
			}
		})
	}
	if v, _ := sample(scrape(t, loop), metricHandoffs, nil); v != 0 {
		t.Errorf("%v connections handed off, want 0 (every request is the loop's)", v)
	}
}

// TestLoopHandsOff: requests the loop does not serve itself are served by
// net/http on the same connection, in order, with every byte after the
// last request the loop served.
func TestLoopHandsOff(t *testing.T) {
	backend := newFastBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, _ = fmt.Fprintf(w, "%s %s %s %q", r.Method, r.URL.Path, r.Proto, body)
	})
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: web.example\r\n\r\n" }
	tests := []struct {
		reason  string
		raw     string
		methods []string
		bodies  []string
	}{
		{"body", get("/1") + "POST /2 HTTP/1.1\r\nHost: web.example\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + get("/3"),
			[]string{"GET", "POST", "GET"}, []string{`GET /1 HTTP/1.1 ""`, `POST /2 HTTP/1.1 "abc"`, `GET /3 HTTP/1.1 ""`}},
		{"body", get("/1") + "PUT /big HTTP/1.1\r\nHost: web.example\r\nContent-Length: 70000\r\n\r\n" + strings.Repeat("z", 70000) + get("/3"),
			[]string{"GET", "PUT", "GET"}, []string{`GET /1 HTTP/1.1 ""`, `PUT /big HTTP/1.1 "` + strings.Repeat("z", 70000) + `"`, `GET /3 HTTP/1.1 ""`}},
		{"http/1.0", get("/1") + "GET /2 HTTP/1.0\r\nHost: web.example\r\n\r\n",
			[]string{"GET", "GET"}, []string{`GET /1 HTTP/1.1 ""`, `GET /2 HTTP/1.1 ""`}},
		{"expect", "POST /e HTTP/1.1\r\nHost: web.example\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
			[]string{"POST"}, []string{`POST /e HTTP/1.1 "hi"`}},
		{"head-too-large", get("/1") + "GET /2 HTTP/1.1\r\nHost: web.example\r\nX-Big: " + strings.Repeat("b", 20000) + "\r\n\r\n",
			[]string{"GET", "GET"}, []string{`GET /1 HTTP/1.1 ""`, `GET /2 HTTP/1.1 ""`}},
		{"other", "GET http://web.example/abs HTTP/1.1\r\nHost: web.example\r\n\r\n" + get("/after"),
			[]string{"GET", "GET"}, []string{`GET /abs HTTP/1.1 ""`, `GET /after HTTP/1.1 ""`}},
	}
	for _, tc := range tests {
		t.Run(tc.reason+" "+strconv.Itoa(len(tc.raw)), func(t *testing.T) {
			g := singleRoute(t, Options{}, hostOf(t, backend.URL))
			addr := serveGateway(t, g)
			got := rawResponses(t, addr, tc.raw, tc.methods...)
			for i, want := range tc.bodies {
				if got[i].status != "200 OK" || got[i].body != want {
					t.Errorf("response %d: %s %q, want 200 OK %q", i+1, got[i].status, got[i].body, want)
				}
			}
			if v, _ := sample(scrape(t, g), metricHandoffs, map[string]string{"reason": tc.reason}); v != 1 {
				t.Errorf("handed off with reason %q: %v, want 1; %s", tc.reason, v, describe(scrape(t, g), metricHandoffs))
			}
		})
	}
}

// TestLoopClientGone: a client leaving while its request waits for the
// backend cancels the request (499, the backend request ends), as under
// net/http; a pipelined request sent during the wait is served after it.
func TestLoopClientGone(t *testing.T) {
	arrived := make(chan struct{}, 10)
	cancelled := make(chan struct{}, 10)
	backend := newFastBackend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hang":
			_, _ = io.ReadAll(r.Body) // net/http notices a closed connection only after the body
			arrived <- struct{}{}
			<-r.Context().Done()
			cancelled <- struct{}{}
		case "/slow":
			time.Sleep(3 * clientWatchDelay)
			_, _ = io.WriteString(w, "slow")
		default:
			_, _ = io.WriteString(w, "fast")
		}
	})
	g := singleRoute(t, Options{}, hostOf(t, backend.URL))
	addr := serveGateway(t, g)

	for i, raw := range []string{
		"GET /hang HTTP/1.1\r\nHost: web.example\r\n\r\n",
		"POST /hang HTTP/1.1\r\nHost: web.example\r\nContent-Length: 3\r\n\r\nabc",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		<-arrived
		time.Sleep(2 * clientWatchDelay) // the watch is on
		_ = c.Close()
		select {
		case <-cancelled:
		case <-time.After(5 * time.Second):
			t.Fatalf("%q: the backend request was not cancelled after the client left", raw)
		}
		waitFor(t, "a request counted with code 499", func() bool {
			v, _ := sample(scrape(t, g), metricRequests, map[string]string{"namespace": "shop", "app": "web", "service": "web-stable", "code": "499"})
			return v == float64(i+1)
		})
	}

	// Pipelined: the watching read takes the first byte of the second
	// request, which must still be served whole.
	got := rawResponses(t, addr, "GET /slow HTTP/1.1\r\nHost: web.example\r\n\r\nGET /fast HTTP/1.1\r\nHost: web.example\r\n\r\n", "GET", "GET")
	if got[0].body != "slow" || got[1].body != "fast" {
		t.Errorf("pipelined answers %q, %q; want slow, fast", got[0].body, got[1].body)
	}
	// Sent while the first waits (the watch has started by then).
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_ = c2.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(c2, "GET /slow HTTP/1.1\r\nHost: web.example\r\n\r\n")
	time.Sleep(2 * clientWatchDelay)
	_, _ = io.WriteString(c2, "GET /fast HTTP/1.1\r\nHost: web.example\r\n\r\n")
	br := bufio.NewReader(c2)
	for _, want := range []string{"slow", "fast"} {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		if string(b) != want {
			t.Errorf("answer %q, want %q", b, want)
		}
	}
}

// TestLoopDrain: when serving ends, an idle connection is closed at once,
// a request in flight is answered (with Connection: close) before its
// connection closes, and Serve returns.
func TestLoopDrain(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	backend := newFastBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			arrived <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, "done")
	})
	svc, slices := backendObjects(t, "web-stable", hostOf(t, backend.URL))
	g := New(Options{DrainTimeout: 5 * time.Second})
	g.Update(t.Context(), Objects{
		TrafficRoutes: []*fledgev1.TrafficRoute{trafficRoute("web", "web.example")},
		Services:      []*corev1.Service{svc}, EndpointSlices: slices,
	})
	proxyLn, adminLn := listen(t), listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- g.Serve(ctx, proxyLn, adminLn) }()
	addr := proxyLn.Addr().String()

	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	got := rawResponsesOn(t, idle, "GET / HTTP/1.1\r\nHost: web.example\r\n\r\n", 1)
	if got[0] != "done" {
		t.Fatalf("answer %q", got[0])
	}
	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, _ = io.WriteString(busy, "GET /wait HTTP/1.1\r\nHost: web.example\r\n\r\n")
	<-arrived
	cancel()
	// The idle connection is closed by the server.
	_ = idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := idle.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("idle connection: read %d, %v; want EOF", n, err)
	}
	close(release)
	_ = busy.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if string(body) != "done" || !res.Close {
		t.Errorf("request in flight: %q close=%v, want done with Connection: close", body, res.Close)
	}
	assertStopped(t, served, addr)
}

// rawResponsesOn writes raw on c and returns the bodies of n GET responses.
func rawResponsesOn(t *testing.T, c net.Conn, raw string, n int) []string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []string
	for range n {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		out = append(out, string(b))
	}
	return out
}

// TestHandOffReason: the heads the loop serves and why it passes the
// others on.
func TestHandOffReason(t *testing.T) {
	tests := map[string]string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n":                                      "",
		"POST /p?x=1&y=%20 HTTP/1.1\r\nhost: a\r\nContent-Length: 65536\r\n\r\n": "",
		"DELETE /d HTTP/1.1\r\nHOST: a\r\nConnection: close\r\n\r\n":             "",
		"GET / HTTP/1.0\r\nHost: a\r\n\r\n":                                      "http/1.0",
		"PRI * HTTP/2.0\r\n\r\n":                                                 "h2",
		"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n":                "upgrade",
		"GET / HTTP/1.1\r\nHost: a\r\nupgrade: h2c\r\n\r\n":                      "upgrade",
		"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n":             "expect",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n":       "body",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 65537\r\n\r\n":            "body",
		"GET / HTTP/1.1\r\nHost: a\r\nTrailer: X\r\n\r\n":                        "body",
		"GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n":                      "other",
		"GET / HTTP/1.1\r\n\r\n":                                                 "other",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n":                           "other",
		"GET / HTTP/1.1\r\nHost: \xc3\xa4\r\n\r\n":                               "other",
		"GET / HTTP/1.1\r\nHost: a%25b\r\n\r\n":                                  "other",
		"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n":                              "other",
		"GET * HTTP/1.1\r\nHost: a\r\n\r\n":                                      "other",
		"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n":                              "other",
		"GET /?a;b HTTP/1.1\r\nHost: a\r\n\r\n":                                  "other",
		"GET /?a=%zz HTTP/1.1\r\nHost: a\r\n\r\n":                                "other",
		"GET / HTTP/1.2\r\nHost: a\r\n\r\n":                                      "other",
	}
	for head, want := range tests {
		if got := handOffReason([]byte(head)); got != want {
			t.Errorf("%q: %q, want %q", head, got, want)
		}
	}
	if got := handOffReason(nil); got != "head-too-large" {
		t.Errorf("nil head: %q", got)
	}
}

// TestLoopShutdownBeforeServe: a loop shut down before its Serve began
// (a gateway stopped right after it started) returns from Serve at once
// and closes the listener, as http.Server does, instead of accepting
// forever.
func TestLoopShutdownBeforeServe(t *testing.T) {
	s := newH1Server(New(Options{}), context.Background(), &http.Server{}, newHandoffListener(nil))
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	select {
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v, want http.ErrServerClosed", err)
		}
	case <-time.After(5 * time.Second):
		_ = ln.Close()
		t.Fatal("Serve still accepting 5 s after Shutdown")
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("the listener still accepts connections")
	}
}
