package gateway

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dialBackendIO connects to a backend served by handle and returns the
// backendIO the pool would make for it.
func dialBackendIO(t *testing.T, handle func(net.Conn)) *backendIO {
	t.Helper()
	c, err := net.Dial("tcp", serveConns(t, handle))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &backendIO{c: c, probe: newProber(c)}
}

// deferredExchange writes req while deferring, as writeRequest does for a
// request without a body, and reads the response with one Read.
func deferredExchange(b *backendIO, req string) (string, error) {
	b.deferring = true
	_, _ = b.Write([]byte(req))
	b.deferring = false
	buf := make([]byte, 64<<10)
	n, err := b.Read(buf)
	return string(buf[:n]), err
}

// TestBackendIOSendsWithTheRead: a deferred request head is sent by the read
// of its response, and a response that comes late is still read.
func TestBackendIOSendsWithTheRead(t *testing.T) {
	b := dialBackendIO(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			time.Sleep(30 * time.Millisecond) // the gateway waits meanwhile
			_, _ = io.WriteString(c, "got "+line)
		}
	})
	if len(b.pending) != 0 {
		t.Fatal("pending before any write")
	}
	for i := range 3 {
		b.deferring = true
		_, _ = b.Write([]byte("GET /"))
		_, _ = b.Write([]byte{byte('a' + i), '\n'})
		b.deferring = false
		if got := string(b.pending); got != "GET /"+string(rune('a'+i))+"\n" {
			t.Fatalf("pending %q: the deferred writes are not kept in order", got)
		}
		buf := make([]byte, 100)
		n, err := b.Read(buf)
		if want := "got GET /" + string(rune('a'+i)) + "\n"; err != nil || string(buf[:n]) != want {
			t.Fatalf("exchange %d: %q, %v; want %q", i, buf[:n], err, want)
		}
		if len(b.pending) != 0 {
			t.Fatalf("exchange %d left %d bytes pending", i, len(b.pending))
		}
	}
	// Not deferring: written at once, read as usual.
	if _, err := b.Write([]byte("now\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if n, err := b.Read(buf); err != nil || string(buf[:n]) != "got now\n" {
		t.Fatalf("plain exchange: %q, %v", buf[:n], err)
	}
}

// TestBackendIOClosedBackend: a request sent on a connection the backend
// closed before it fails at once (the backend's reset wakes the read), not
// at the read deadline.
func TestBackendIOClosedBackend(t *testing.T) {
	closed := make(chan struct{})
	b := dialBackendIO(t, func(c net.Conn) {
		_ = c.Close()
		close(closed)
	})
	<-closed
	time.Sleep(20 * time.Millisecond) // the close reached this side
	_ = b.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	got, err := deferredExchange(b, "GET / HTTP/1.1\r\n\r\n")
	if err == nil {
		t.Fatalf("read %q from a closed connection", got)
	}
	if isTimeout(err) || time.Since(start) > 5*time.Second {
		t.Fatalf("failed after %v with %v: the closed connection was not noticed", time.Since(start), err)
	}
}

// TestBackendIODeadline: the connection's read deadline bounds the wait for
// a response to a deferred request.
func TestBackendIODeadline(t *testing.T) {
	b := dialBackendIO(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	_ = b.c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	start := time.Now()
	got, err := deferredExchange(b, "GET / HTTP/1.1\r\n\r\n")
	if !isTimeout(err) {
		t.Fatalf("read %q, %v; want a timeout", got, err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 5*time.Second {
		t.Fatalf("timed out after %v, want about 200ms", d)
	}
}

// TestBackendIOLargeRequest: a deferred head larger than the socket's send
// buffer is sent in full (the rest after the first write, as usual) before
// the response is read.
func TestBackendIOLargeRequest(t *testing.T) {
	req := "GET /" + strings.Repeat("x", 16<<20) + "\n"
	b := dialBackendIO(t, func(c net.Conn) {
		line, err := bufio.NewReaderSize(c, 64<<10).ReadString('\n')
		if err != nil {
			return
		}
		_, _ = io.WriteString(c, "len "+strconv.Itoa(len(line))+"\n")
	})
	_ = b.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, err := deferredExchange(b, req)
	if want := "len " + strconv.Itoa(len(req)) + "\n"; err != nil || got != want {
		t.Fatalf("%q, %v; want %q", got, err, want)
	}
	if len(b.pending) != 0 {
		t.Fatalf("%d bytes left pending", len(b.pending))
	}
}
