package gateway

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// What a client does wrong is not the backend's failure: a request body that
// breaks off, is malformed (bad chunked encoding) or stalls is answered 400
// (408 for a stall) by the gateway and counted in
// fledge_gateway_client_errors_total, not in the chosen backend's
// fledge_gateway_requests_total, so that no client can aim errors at a
// version (with a predicate) to make the analysis roll it back or to mask it.

// codeClientError is recorded instead of a status code for a request the
// gateway refused because the client broke it (see observe).
const codeClientError = -1

// clientError is a failure to read the client's request.
type clientError struct{ err error }

func (e *clientError) Error() string { return "read request body: " + e.err.Error() }
func (e *clientError) Unwrap() error { return e.err }

// badRequest answers a request whose body could not be read: 408 when the
// client stalled, else 400 (also when the client went away: a client that
// only half-closed still reads it); the connection is closed after it (its
// framing can no longer be trusted).
func badRequest(w http.ResponseWriter, ce *clientError) {
	code := http.StatusBadRequest
	if errors.Is(ce.err, os.ErrDeadlineExceeded) || isTimeout(ce.err) {
		code = http.StatusRequestTimeout
	}
	w.Header().Set("Connection", "close")
	http.Error(w, errorBody(code), code)
}

// clientBody reads a request body for a proxy path: each read must complete
// within the client body timeout (the deadline is lifted when the body ends),
// and the first failure is kept, so that the request can be answered as the
// client's error. The ReverseProxy path reads it from the Transport's
// goroutine, hence the mutex.
type clientBody struct {
	io.ReadCloser
	rc      readDeadlineSetter
	timeout time.Duration

	mu    sync.Mutex
	armed bool
	err   error
}

type readDeadlineSetter interface{ SetReadDeadline(time.Time) error }

type writeDeadlineSetter interface{ SetWriteDeadline(time.Time) error }

func (b *clientBody) Read(p []byte) (int, error) {
	if b.rc != nil {
		b.mu.Lock()
		b.armed = true
		b.mu.Unlock()
		_ = b.rc.SetReadDeadline(time.Now().Add(b.timeout))
	}
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.disarm()
		if err != io.EOF {
			b.mu.Lock()
			if b.err == nil {
				b.err = err
			}
			b.mu.Unlock()
		}
	}
	return n, err
}

// disarm lifts the read deadline: net/http reads on from the connection in
// the background (to notice a client going away) once the body ended, and a
// deadline left behind would cancel the request.
func (b *clientBody) disarm() {
	b.mu.Lock()
	armed := b.armed
	b.armed = false
	b.mu.Unlock()
	if armed {
		_ = b.rc.SetReadDeadline(time.Time{})
	}
}

func (b *clientBody) Close() error {
	b.disarm()
	return b.ReadCloser.Close()
}

// failure returns the first read error, nil if none.
func (b *clientBody) failure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// sendDeadline extends the write deadline of a client connection before each
// write, so that a client that stops reading is cut after the send timeout
// while an idle stream is not.
type sendDeadline struct {
	wc      writeDeadlineSetter
	timeout time.Duration
}

func (g *Gateway) sendDeadline(w http.ResponseWriter) sendDeadline {
	wc, _ := w.(writeDeadlineSetter)
	return sendDeadline{wc: wc, timeout: g.opts.ClientSendTimeout}
}

func (s sendDeadline) extend() {
	if s.wc != nil {
		_ = s.wc.SetWriteDeadline(time.Now().Add(s.timeout))
	}
}

// backendErrorStatus is the status answering a request the backend did not:
// 504 after a timeout, else 502.
func backendErrorStatus(err error) int {
	if isTimeout(err) {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// errorBody is the text of the gateway's own error answers: "bad gateway".
func errorBody(code int) string { return strings.ToLower(http.StatusText(code)) }

// limitListener accepts at most max connections open at once (HAProxy's
// maxconn): Accept waits while max are open, leaving new connections in the
// kernel's listen backlog.
type limitListener struct {
	net.Listener
	sem  chan struct{}
	done chan struct{}
	once sync.Once
}

func newLimitListener(ln net.Listener, max int) *limitListener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, max), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitConn gives its slot back once, when closed.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite half-closes as the connection it wraps (net/http uses it).
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
