package framing

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

const ioTimeout = 5 * time.Second

// seen is what the handler saw of one request.
type seen struct {
	path    string
	body    string
	bodyErr error
	remote  string
}

// testServer is a net/http server on a loopback listener, wrapped by a
// Listener unless raw.
type testServer struct {
	addr string
	mu   sync.Mutex
	reqs []seen
	errs []error // reasons passed to OnRefuse
}

type serverConfig struct {
	raw            bool
	maxHeaderBytes int
	handler        func(ts *testServer, w http.ResponseWriter, r *http.Request) bool // true: handled
}

func startServer(t *testing.T, cfg serverConfig) *testServer {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{addr: ln.Addr().String()}
	maxHeader := cfg.maxHeaderBytes
	if maxHeader == 0 {
		maxHeader = http.DefaultMaxHeaderBytes
	}
	if !cfg.raw {
		ln = NewListener(ln, Options{
			MaxHeadBytes: maxHeader + 4096,
			OnRefuse: func(_ net.Conn, reason error) {
				ts.mu.Lock()
				ts.errs = append(ts.errs, reason)
				ts.mu.Unlock()
			},
		})
	}
	srv := &http.Server{
		MaxHeaderBytes: maxHeader,
		ErrorLog:       nil,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if cfg.handler != nil && cfg.handler(ts, w, r) {
				return
			}
			body, err := io.ReadAll(r.Body)
			ts.record(seen{path: r.URL.Path, body: string(body), bodyErr: err, remote: r.RemoteAddr})
			if err != nil {
				http.Error(w, "bad body", http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%s %s %q", r.Method, r.URL.Path, body)
			if v := r.Trailer.Get("X-Sum"); v != "" {
				fmt.Fprintf(w, " sum=%s", v)
			}
		}),
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		srv.Close()
	})
	return ts
}

func (ts *testServer) record(s seen) {
	ts.mu.Lock()
	ts.reqs = append(ts.reqs, s)
	ts.mu.Unlock()
}

func (ts *testServer) seen() []seen {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]seen(nil), ts.reqs...)
}

func (ts *testServer) paths() []string {
	var p []string
	for _, s := range ts.seen() {
		p = append(p, s.path)
	}
	return p
}

func (ts *testServer) refusals() []error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]error(nil), ts.errs...)
}

// client is a raw TCP connection to a test server.
type client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := (&net.Dialer{}).DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(ioTimeout))
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

func (cl *client) send(parts ...string) {
	cl.t.Helper()
	for _, p := range parts {
		if _, err := io.WriteString(cl.c, p); err != nil {
			cl.t.Fatalf("write: %v", err)
		}
	}
}

// sendDribble writes s a few bytes at a time, so that the server reads heads
// and bodies in pieces.
func (cl *client) sendDribble(s string, step int) {
	cl.t.Helper()
	for len(s) > 0 {
		n := min(step, len(s))
		cl.send(s[:n])
		s = s[n:]
		time.Sleep(100 * time.Microsecond)
	}
}

type response struct {
	status int
	body   string
	close  bool
}

// read reads one response (interim ones included) with its body.
func (cl *client) read() response {
	cl.t.Helper()
	res, err := http.ReadResponse(cl.br, nil)
	if err != nil {
		cl.t.Fatalf("reading response: %v", err)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		cl.t.Fatalf("reading response body: %v", err)
	}
	return response{status: res.StatusCode, body: string(body), close: res.Close}
}

// readFinal reads responses up to a final one.
func (cl *client) readFinal() response {
	cl.t.Helper()
	for {
		r := cl.read()
		if r.status >= 200 || r.status == http.StatusSwitchingProtocols {
			return r
		}
	}
}

// expectClosed checks that the server closed the connection: EOF (or a
// reset), not a timeout.
func (cl *client) expectClosed() {
	cl.t.Helper()
	var b [1]byte
	n, err := cl.br.Read(b[:])
	if n > 0 {
		rest, _ := cl.br.Peek(cl.br.Buffered())
		cl.t.Fatalf("read %q after the last response, want the connection closed", string(b[:n])+string(rest))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		cl.t.Fatalf("connection still open after %v: %v", ioTimeout, err)
	}
	if err == nil {
		cl.t.Fatal("no error reading a closed connection")
	}
}

func req(method, path, proto string, headers ...string) string {
	h := ""
	for _, x := range headers {
		h += x + "\r\n"
	}
	if proto == "" {
		proto = "HTTP/1.1"
	}
	return method + " " + path + " " + proto + "\r\nHost: example.test\r\n" + h + "\r\n"
}

func quoteBody(method, path, body string) string {
	return fmt.Sprintf("%s %s %q", method, path, body)
}

func joinPaths(p []string) string { return strings.Join(p, ",") }
