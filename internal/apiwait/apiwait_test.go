package apiwait

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// TestDialWaitsForListener: a dial to a port nobody listens on waits, and
// succeeds soon after a listener appears on it.
func TestDialWaitsForListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the port refuses connections now

	d := &net.Dialer{}
	dial := Dialer(d.DialContext, nil)
	type result struct {
		conn net.Conn
		err  error
		at   time.Time
	}
	done := make(chan result, 1)
	go func() {
		c, err := dial(t.Context(), "tcp", addr)
		done <- result{c, err, time.Now()}
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case r := <-done:
		t.Fatalf("dial returned while nothing listened: %v", r.err)
	default:
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	defer ln.Close()
	listening := time.Now()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("dial after the listener came back: %v", r.err)
		}
		r.conn.Close()
		if d := r.at.Sub(listening); d > RetryMax+200*time.Millisecond {
			t.Errorf("dial returned %v after the listener came back, want within %v", d, RetryMax)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("dial did not return 5 s after the listener came back")
	}
}

// TestDialEndsWithContext: a request's deadline still ends the wait, with the
// dial's own error.
func TestDialEndsWithContext(t *testing.T) {
	refused := errors.New("connection refused")
	calls := 0
	dial := Dialer(func(context.Context, string, string) (net.Conn, error) { calls++; return nil, refused }, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 400*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := dial(ctx, "tcp", "127.0.0.1:1")
	if !errors.Is(err, refused) {
		t.Fatalf("err = %v, want the dial's error", err)
	}
	if d := time.Since(start); d < 350*time.Millisecond || d > 2*time.Second {
		t.Errorf("returned after %v, want at the 400ms deadline", d)
	}
	if calls < 3 {
		t.Errorf("%d dial attempts in 400ms, want retries", calls)
	}
}

// TestDialAfterOutageWaitsForReady: once a dial failed, connections are
// handed out only after the readiness check passed, by one checker at a time;
// dials before any failure never wait for it.
func TestDialAfterOutageWaitsForReady(t *testing.T) {
	var mu sync.Mutex
	failing, isReady := false, true
	checks, inCheck, maxInCheck := 0, 0, 0
	dial := Dialer(func(context.Context, string, string) (net.Conn, error) {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			return nil, errors.New("connection refused")
		}
		a, b := net.Pipe()
		b.Close()
		return a, nil
	}, func(context.Context) bool {
		mu.Lock()
		checks++
		inCheck++
		maxInCheck = max(maxInCheck, inCheck)
		ok := isReady
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		inCheck--
		mu.Unlock()
		return ok
	})
	set := func(f func()) { mu.Lock(); f(); mu.Unlock() }

	if c, err := dial(t.Context(), "tcp", "x"); err != nil {
		t.Fatal(err)
	} else {
		c.Close()
	}
	if checks != 0 {
		t.Fatalf("%d readiness checks before any failed dial, want 0", checks)
	}

	set(func() { failing, isReady = true, false })
	results := make(chan error, 8)
	for range 8 {
		go func() {
			c, err := dial(t.Context(), "tcp", "x")
			if err == nil {
				c.Close()
			}
			results <- err
		}()
	}
	time.Sleep(200 * time.Millisecond)
	set(func() { failing = false }) // listening again, not ready yet
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-results:
		t.Fatalf("a dial returned (%v) before the API server was ready", err)
	default:
	}
	set(func() { isReady = true })
	for range 8 {
		select {
		case err := <-results:
			if err != nil {
				t.Fatalf("dial after readiness: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("dials did not return 5 s after readiness")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if maxInCheck != 1 {
		t.Errorf("%d readiness checks at once, want 1", maxInCheck)
	}
	if checks < 2 {
		t.Errorf("%d readiness checks, want the check repeated until ready", checks)
	}
}

// TestConfigProbesReadyz: a client from Config, after the API server refused
// a connection, waits until the API server's /readyz answers 200 (the host
// may end with a slash, as kubeconfigs often do), then sends its request.
func TestConfigProbesReadyz(t *testing.T) {
	var mu sync.Mutex
	ready, readyz, other := false, 0, 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/readyz" {
			readyz++
			if !ready {
				http.Error(w, "not ready", http.StatusInternalServerError)
			}
			return
		}
		other++
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // refused until the server starts

	hc, err := rest.HTTPClientFor(Config(&rest.Config{Host: "http://" + addr + "/"}))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		resp, err := hc.Get("http://" + addr + "/api")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	if srv.Listener, err = net.Listen("tcp", addr); err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	srv.Start()
	defer srv.Close()
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	if other != 0 || readyz == 0 {
		t.Errorf("before /readyz said ready: %d requests served, %d readiness checks; want 0 and some", other, readyz)
	}
	ready = true
	mu.Unlock()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the request did not go out 5 s after /readyz said ready")
	}
	mu.Lock()
	defer mu.Unlock()
	if other != 1 {
		t.Errorf("%d requests served, want 1", other)
	}
}
