package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The tests in this file probe the gateway as a buggy backend and as a
// hostile client would. Each runs on both proxy paths: the HTTP/1.1 fast path
// and httputil.ReverseProxy (DisableFastPath); the answers must be the same.

// paths are the two ways a plain request can be proxied.
var paths = map[string]Options{
	"fast path":    {},
	"ReverseProxy": {DisableFastPath: true},
}

// scriptedBackend is a raw TCP backend: for each request read on a
// connection, answer(n, req) returns the bytes to write (n counts requests
// on that connection from 0). It records how many connections it accepted.
type scriptedBackend struct {
	addr  string
	conns atomic.Int64
}

func newScriptedBackend(t testing.TB, answer func(n int, req *http.Request) string) *scriptedBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	b := &scriptedBackend{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for n := 0; ; n++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					if _, err := io.WriteString(c, answer(n, req)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return b
}

// tagged is a response to the request tagged tag: its body names the tag.
func tagged(tag string) string {
	body := "for " + tag
	return "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// leaked is what a misbehaving backend sends past its framing: bytes that
// read as a complete response of their own.
const leaked = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nLEAKED"

// TestNoResponseReachesAnotherClient: a backend that writes more than its
// framing says (bytes after the Content-Length body, a body on a HEAD or 204
// response) must not make a later client read them: every client gets the
// answer to its own request.
func TestNoResponseReachesAnotherClient(t *testing.T) {
	misbehaviours := map[string]struct {
		method string
		answer func(tag string) string
	}{
		"bytes after the Content-Length body": {http.MethodGet, func(tag string) string { return tagged(tag) + leaked }},
		"a body on a HEAD response": {http.MethodHead, func(tag string) string {
			return "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n" + leaked
		}},
		"a body on a 204": {http.MethodGet, func(tag string) string { return "HTTP/1.1 204 No Content\r\n\r\n" + leaked }},
	}
	for pathName, opts := range paths {
		for name, mb := range misbehaviours {
			t.Run(pathName+"/"+name, func(t *testing.T) {
				backend := newScriptedBackend(t, func(_ int, req *http.Request) string {
					tag := req.Header.Get("X-Tag")
					if strings.HasPrefix(tag, "bad") {
						return mb.answer(tag)
					}
					return tagged(tag)
				})
				g := singleRoute(t, opts, backend.addr)
				front, _ := frontend(t, g)
				for i := range 20 {
					bad := fmt.Sprintf("bad-%d", i)
					req, _ := http.NewRequestWithContext(t.Context(), mb.method, front.URL+"/", nil)
					req.Host = "web.example"
					req.Header.Set("X-Tag", bad)
					resp, err := front.Client().Do(req)
					if err != nil {
						t.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					time.Sleep(5 * time.Millisecond) // the stray bytes are there before the next request

					good := fmt.Sprintf("good-%d", i)
					code, body := get(t, front, "web.example", "/", "X-Tag", good)
					if code != http.StatusOK || body != "for "+good {
						t.Fatalf("request %s got %d %q, want 200 %q", good, code, body, "for "+good)
					}
				}
			})
		}
	}
}

// dialRaw opens a connection to addr (closed when the test ends, with a 10 s
// deadline) and writes raw on it.
func dialRaw(t *testing.T, addr, raw string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	return c
}

// rawRequest sends raw on a new connection to addr and returns the first
// response (its body read in full).
func rawRequest(t *testing.T, addr, raw string) (*http.Response, string) {
	t.Helper()
	c := dialRaw(t, addr, raw)
	method, _, _ := strings.Cut(raw, " ")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	for err == nil && resp.StatusCode < 200 {
		resp, err = http.ReadResponse(br, &http.Request{Method: method}) // past 1xx
	}
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// TestClientBodyErrorsAreTheClients: a request body the client breaks is
// answered 400 and counted as a client error, never as a failure of the
// backend that was chosen (which a client could aim at a version with a
// predicate).
func TestClientBodyErrorsAreTheClients(t *testing.T) {
	requests := map[string]string{
		"malformed chunk size": "POST / HTTP/1.1\r\nHost: web.example\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
		"body shorter than Content-Length, connection half-closed": "POST / HTTP/1.1\r\nHost: web.example\r\nContent-Length: 100\r\n\r\nonly this",
	}
	for pathName, opts := range paths {
		for name, raw := range requests {
			t.Run(pathName+"/"+name, func(t *testing.T) {
				backend := newFastBackend(t, func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.Copy(io.Discard, r.Body)
					_, _ = io.WriteString(w, "ok")
				})
				g := singleRoute(t, opts, hostOf(t, backend.URL))
				front, done := frontend(t, g)
				c := dialRaw(t, hostOf(t, front.URL), raw)
				_ = c.(*net.TCPConn).CloseWrite()
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				<-done
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("status %d, want 400", resp.StatusCode)
				}
				mfs := scrape(t, g)
				for _, code := range []string{"400", "502", "200"} {
					if v, ok := sample(mfs, metricRequests, map[string]string{"namespace": "shop", "app": "web", "service": "web-stable", "code": code}); ok && v > 0 {
						t.Errorf("the backend was charged %v requests with code %s, want none", v, code)
					}
				}
				if v, _ := sample(mfs, metricClientErrs, map[string]string{"namespace": "shop", "app": "web", "service": "web-stable"}); v != 1 {
					t.Errorf("client errors = %v, want 1", v)
				}
			})
		}
	}
}

// TestStaleKeepAliveNotReplayable: a request that cannot be replayed (a POST)
// sent after the backend closed its idle keep-alive connections (as every pod
// rollout does) must not fail.
func TestStaleKeepAliveNotReplayable(t *testing.T) {
	for pathName, opts := range paths {
		t.Run(pathName, func(t *testing.T) {
			b := newFastBackend(t, func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				_, _ = io.WriteString(w, r.Method+" "+string(body))
			})
			g := singleRoute(t, opts, hostOf(t, b.URL))
			front, _ := frontend(t, g)
			for i := range 10 {
				if code, _ := get(t, front, "web.example", "/"); code != http.StatusOK {
					t.Fatalf("GET: %d", code)
				}
				b.CloseClientConnections()
				time.Sleep(20 * time.Millisecond) // the close reached the gateway
				for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
					req, _ := http.NewRequestWithContext(t.Context(), method, front.URL+"/", strings.NewReader("x"))
					req.Host = "web.example"
					resp, err := front.Client().Do(req)
					if err != nil {
						t.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || string(body) != method+" x" {
						t.Fatalf("round %d: %s after the backend closed its keep-alive connections: %d %q", i, method, resp.StatusCode, body)
					}
				}
			}
		})
	}
}

// TestResponseHeadBounded: a backend's oversized response head is refused
// with 502, not relayed.
func TestResponseHeadBounded(t *testing.T) {
	huge := strings.Repeat("x", 2<<20)
	answers := map[string]string{
		"2 MiB header":         "HTTP/1.1 200 OK\r\nX-Huge: " + huge + "\r\nContent-Length: 2\r\n\r\nok",
		"2 MiB in many fields": "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Many: "+strings.Repeat("y", 1000)+"\r\n", 2100) + "Content-Length: 2\r\n\r\nok",
		"six 1xx heads":        strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", 6) + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	}
	for pathName, opts := range paths {
		for name, answer := range answers {
			t.Run(pathName+"/"+name, func(t *testing.T) {
				backend := newScriptedBackend(t, func(int, *http.Request) string { return answer })
				g := singleRoute(t, opts, backend.addr)
				front, done := frontend(t, g)
				code, _ := get(t, front, "web.example", "/")
				<-done
				if code != http.StatusBadGateway {
					t.Errorf("status %d, want 502", code)
				}
			})
		}
	}
}

// TestConnectionListedHeadersStripped: the headers a response's Connection
// header names are hop-by-hop (RFC 9110 §7.6.1) also when it says close.
func TestConnectionListedHeadersStripped(t *testing.T) {
	answers := map[string]string{
		"keep-alive":   "HTTP/1.1 200 OK\r\nConnection: X-Secret\r\nX-Secret: s\r\nX-Kept: k\r\nContent-Length: 2\r\n\r\nok",
		"close":        "HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: s\r\nX-Kept: k\r\nContent-Length: 2\r\n\r\nok",
		"two fields":   "HTTP/1.1 200 OK\r\nConnection: close\r\nConnection: x-secret\r\nX-Secret: s\r\nX-Kept: k\r\nContent-Length: 2\r\n\r\nok",
		"after a 103":  "HTTP/1.1 103 Early Hints\r\nConnection: X-Kept\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: s\r\nX-Kept: k\r\nContent-Length: 2\r\n\r\nok",
		"chunked body": "HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: s\r\nX-Kept: k\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	}
	for pathName, opts := range paths {
		for name, answer := range answers {
			t.Run(pathName+"/"+name, func(t *testing.T) {
				backend := newScriptedBackend(t, func(int, *http.Request) string { return answer })
				g := singleRoute(t, opts, backend.addr)
				front, _ := frontend(t, g)
				for range 3 {
					resp, body := rawRequest(t, hostOf(t, front.URL), "GET / HTTP/1.1\r\nHost: web.example\r\n\r\n")
					if resp.StatusCode != http.StatusOK || body != "ok" {
						t.Fatalf("%d %q", resp.StatusCode, body)
					}
					if v := resp.Header.Get("X-Secret"); v != "" {
						t.Errorf("X-Secret (listed in Connection) forwarded: %q", v)
					}
					if v := resp.Header.Get("X-Kept"); v != "k" {
						t.Errorf("X-Kept = %q, want k", v)
					}
				}
			})
		}
	}
}

// TestNo1xxToHTTP10: informational responses are not sent to HTTP/1.0
// clients (RFC 9110 §15.2); HTTP/1.1 clients get them.
func TestNo1xxToHTTP10(t *testing.T) {
	answer := "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	for pathName, opts := range paths {
		for _, proto := range []string{"HTTP/1.0", "HTTP/1.1"} {
			t.Run(pathName+"/"+proto, func(t *testing.T) {
				backend := newScriptedBackend(t, func(int, *http.Request) string { return answer })
				g := singleRoute(t, opts, backend.addr)
				front, _ := frontend(t, g)
				c := dialRaw(t, hostOf(t, front.URL), "GET / "+proto+"\r\nHost: web.example\r\n\r\n")
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				_, status, _ := strings.Cut(strings.TrimSpace(line), " ")
				want := "103 Early Hints"
				if proto == "HTTP/1.0" {
					want = "200 OK"
				}
				if status != want {
					t.Errorf("first status line %q, want %q", line, want)
				}
			})
		}
	}
}

// serveGateway runs g.Serve (the gateway's own servers, limits and
// timeouts) on loopback and returns the proxy's address.
func serveGateway(t *testing.T, g *Gateway) string {
	t.Helper()
	proxyLn, adminLn := listen(t), listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- g.Serve(ctx, proxyLn, adminLn) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return proxyLn.Addr().String()
}

// TestResponseHeaderTimeout: a backend that never answers gets the client a
// 504 after ResponseHeaderTimeout, not a wait forever.
func TestResponseHeaderTimeout(t *testing.T) {
	for pathName, opts := range paths {
		t.Run(pathName, func(t *testing.T) {
			ln := listen(t)
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					t.Cleanup(func() { c.Close() }) // reads nothing, answers nothing
				}
			}()
			opts.ResponseHeaderTimeout = 300 * time.Millisecond
			g := singleRoute(t, opts, ln.Addr().String())
			front, done := frontend(t, g)
			start := time.Now()
			code, _ := get(t, front, "web.example", "/")
			<-done
			if code != http.StatusGatewayTimeout {
				t.Errorf("status %d, want 504", code)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("answered after %v, want about 300ms", d)
			}
			want := map[string]string{"namespace": "shop", "app": "web", "service": "web-stable", "code": "504"}
			if v, _ := sample(scrape(t, g), metricRequests, want); v != 1 {
				t.Errorf("504s counted for the backend = %v, want 1 (a timeout is the backend's failure)", v)
			}
		})
	}
}

// TestClientLimits: the gateway's own server bounds its clients: request
// head size (431), connections open at once (waiting beyond), a stalled body
// (408, the client's error) and a client that stops reading (cut).
func TestClientLimits(t *testing.T) {
	okBackend := func(t *testing.T) *fastBackend {
		return newFastBackend(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			_, _ = io.WriteString(w, "ok")
		})
	}
	for pathName, opts := range paths {
		t.Run(pathName+"/request head over MaxRequestHeaderBytes: 431", func(t *testing.T) {
			opts := opts
			opts.MaxRequestHeaderBytes = 8 << 10
			addr := serveGateway(t, singleRoute(t, opts, hostOf(t, okBackend(t).URL)))
			resp, _ := rawRequest(t, addr, "GET / HTTP/1.1\r\nHost: web.example\r\nX-Big: "+strings.Repeat("b", 20<<10)+"\r\n\r\n")
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("status %d, want 431", resp.StatusCode)
			}
			if resp, body := rawRequest(t, addr, "GET / HTTP/1.1\r\nHost: web.example\r\nX-Small: "+strings.Repeat("s", 4<<10)+"\r\n\r\n"); resp.StatusCode != 200 || body != "ok" {
				t.Errorf("a 4 KiB head: %d %q, want 200 ok", resp.StatusCode, body)
			}
		})
		t.Run(pathName+"/MaxClientConns open: the next waits", func(t *testing.T) {
			opts := opts
			opts.MaxClientConns = 3
			addr := serveGateway(t, singleRoute(t, opts, hostOf(t, okBackend(t).URL)))
			var idle []net.Conn
			for range 3 {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				idle = append(idle, c)
			}
			c, err := net.Dial("tcp", addr) // the kernel's backlog takes it
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: web.example\r\n\r\n")
			br := bufio.NewReader(c)
			_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if _, err := br.ReadByte(); err == nil {
				t.Fatal("a fourth connection was served while three were open, want it to wait")
			}
			idle[0].Close()
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("after a connection closed, the waiting one: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("status %d, want 200", resp.StatusCode)
			}
		})
		t.Run(pathName+"/stalled request body: 408, the client's error", func(t *testing.T) {
			opts := opts
			opts.ClientBodyTimeout = 300 * time.Millisecond
			g := singleRoute(t, opts, hostOf(t, okBackend(t).URL))
			addr := serveGateway(t, g)
			start := time.Now()
			resp, _ := rawRequest(t, addr, "POST / HTTP/1.1\r\nHost: web.example\r\nContent-Length: 10\r\n\r\nabc")
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Errorf("status %d, want 408", resp.StatusCode)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("answered after %v, want about 300ms", d)
			}
			waitFor(t, "the client error counted", func() bool {
				v, _ := sample(scrape(t, g), metricClientErrs, map[string]string{"namespace": "shop", "app": "web", "service": "web-stable"})
				return v == 1
			})
		})
		t.Run(pathName+"/client that stops reading is cut", func(t *testing.T) {
			opts := opts
			opts.ClientSendTimeout = 300 * time.Millisecond
			chunk := []byte(strings.Repeat("z", 64<<10))
			backend := newFastBackend(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(1024*len(chunk)))
				for range 1024 { // 64 MiB, far more than socket buffers hold
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			})
			addr := serveGateway(t, singleRoute(t, opts, hostOf(t, backend.URL)))
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.(*net.TCPConn).SetReadBuffer(4 << 10)
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: web.example\r\n\r\n") // and never read
			waitFor(t, "the gateway to give up on the client and the backend", func() bool {
				return backend.conns.Load() == 1 && backend.closed.Load() == 1
			})
		})
	}
}

// TestAmbiguousFramingRefused: a request whose length is ambiguous (both
// Content-Length and Transfer-Encoding; Transfer-Encoding on HTTP/1.0) is
// refused with 400 and its connection closed (RFC 9112 §6.1), so that no
// part of it is read as a request of its own; valid requests before it on
// the connection are answered.
func TestAmbiguousFramingRefused(t *testing.T) {
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: web.example\r\n\r\n"
	requests := map[string]string{
		"HTTP/1.0 with Transfer-Encoding and Content-Length, keep-alive": "POST /first HTTP/1.0\r\nHost: web.example\r\nConnection: keep-alive\r\n" +
			"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled,
		"HTTP/1.1 with Transfer-Encoding and Content-Length": "POST /first HTTP/1.1\r\nHost: web.example\r\n" +
			"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
		"Transfer-Encoding on HTTP/1.0, keep-alive": "POST /first HTTP/1.0\r\nHost: web.example\r\nConnection: keep-alive\r\n" +
			"Transfer-Encoding: chunked\r\n\r\n" + strconv.FormatInt(int64(len(smuggled)), 16) + "\r\n" + smuggled + "\r\n0\r\n\r\n",
		"two Content-Lengths": "POST /first HTTP/1.1\r\nHost: web.example\r\nContent-Length: 0\r\nContent-Length: 48\r\n\r\n" + smuggled,
		"obs-fold":            "GET /first HTTP/1.1\r\nHost: web.example\r\nX-A: a\r\n b\r\n\r\n" + smuggled,
		"bare LF":             "GET /first HTTP/1.1\nHost: web.example\n\n" + smuggled,
	}
	for pathName, opts := range paths {
		for name, raw := range requests {
			t.Run(pathName+"/"+name, func(t *testing.T) {
				var seen sync.Map
				backend := newFastBackend(t, func(w http.ResponseWriter, r *http.Request) {
					seen.Store(r.URL.Path, true)
					_, _ = io.Copy(io.Discard, r.Body)
					_, _ = io.WriteString(w, "ok")
				})
				g := singleRoute(t, opts, hostOf(t, backend.URL))
				// A valid request first: it is answered.
				c := dialRaw(t, serveGateway(t, g), "GET /valid HTTP/1.1\r\nHost: web.example\r\n\r\n"+raw)
				br := bufio.NewReader(c)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("the valid request before: %d", resp.StatusCode)
				}
				resp, err = http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("status %d, want 400", resp.StatusCode)
				}
				if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
					t.Errorf("after the 400: %q, %v; want the connection closed", rest, err)
				}
				for _, p := range []string{"/first", "/smuggled"} {
					if _, ok := seen.Load(p); ok {
						t.Errorf("the backend received %s", p)
					}
				}
				if v, _ := sample(scrape(t, g), metricRefused, map[string]string{"reason": refusedReasonFor(name)}); v != 1 {
					t.Errorf("refused requests (reason %s) = %v, want 1", refusedReasonFor(name), v)
				}
			})
		}
	}
}

func refusedReasonFor(name string) string {
	switch {
	case strings.HasPrefix(name, "HTTP/1."): // both lengths are checked first

		return "content-length-and-transfer-encoding"
	case strings.HasPrefix(name, "Transfer-Encoding on HTTP/1.0"):
		return "transfer-encoding-on-http10"
	case name == "two Content-Lengths":
		return "bad-content-length"
	case name == "obs-fold":
		return "obs-fold"
	}
	return "bad-line-ending"
}

// TestEndpointRequestsBounded: beyond MaxEndpointRequests requests in flight
// to one endpoint, a request gets 503 at once (counted against the backend
// and in fledge_gateway_endpoint_overloaded_requests_total); once one
// finishes, requests pass again.
func TestEndpointRequestsBounded(t *testing.T) {
	for name, opts := range paths {
		t.Run(name, func(t *testing.T) {
			arrived, release := make(chan struct{}, 2), make(chan struct{})
			be := newFastBackend(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/slow" {
					arrived <- struct{}{}
					<-release
				}
				_, _ = io.WriteString(w, "ok")
			})
			opts.MaxEndpointRequests = 2
			g := singleRoute(t, opts, hostOf(t, be.URL))
			front, _ := frontend(t, g)
			slow := make(chan int, 2)
			for range 2 {
				go func() { code, _ := get(t, front, "web.example", "/slow"); slow <- code }()
				<-arrived
			}
			if code, body := get(t, front, "web.example", "/"); code != http.StatusServiceUnavailable || body != "backend busy\n" {
				t.Errorf("third request in flight: %d %q, want 503 \"backend busy\"", code, body)
			}
			close(release)
			for range 2 {
				if code := <-slow; code != http.StatusOK {
					t.Errorf("slow request: %d, want 200", code)
				}
			}
			if code, _ := get(t, front, "web.example", "/"); code != http.StatusOK {
				t.Errorf("after the slow ones finished: %d, want 200", code)
			}
			mfs := scrape(t, g)
			if v, _ := sample(mfs, "fledge_gateway_endpoint_overloaded_requests_total", map[string]string{}); v != 1 {
				t.Errorf("overloaded_requests_total = %v, want 1", v)
			}
			if v, _ := sample(mfs, "fledge_gateway_requests_total", map[string]string{"namespace": "shop", "app": "web", "service": "web-stable", "code": "503"}); v != 1 {
				t.Errorf("requests_total{code=503} = %v, want 1", v)
			}
		})
	}
}
