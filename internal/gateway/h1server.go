package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
)

// The gateway serves HTTP/1.1 clients from its own connection loop: one
// goroutine per client connection reads a request, routes it, forwards it and
// writes the response, with no other goroutine involved (net/http's server
// starts a background read per request, to notice a client going away, and
// sets and aborts deadlines around it). Only requests the fast path takes
// are served so (handOffReason); at the first other request (an upgrade,
// HTTP/1.0, a chunked or large body, Expect, an HTTP/2 preface, a head larger
// than the loop's buffer, ...) the connection is handed to net/http's server
// with every byte not yet consumed, and net/http serves it from then on. So
// anything unusual keeps the behaviour of the standard library. With
// Options.DisableFastPath every connection goes to net/http at once.
//
// What the loop gives up, it does on demand: a client that goes away while
// its request waits for the backend is noticed by a read started only when
// the wait exceeds clientWatchDelay (and only once the request body was
// sent on: at once without a body, when the fast path has written it to the
// backend with one), which cancels the request (499) as net/http's
// background read does.

// clientWatchDelay is how long a request waits for its response before the
// loop starts watching the client connection for a close.
const clientWatchDelay = 50 * time.Millisecond

// h1BufferSize is the size of a client connection's read and write buffers:
// a request head that does not fit is handed to net/http (which allows
// MaxRequestHeaderBytes).
const h1BufferSize = 8 << 10

// h1Server serves the client connections of one listener.
type h1Server struct {
	g *Gateway
	// next serves the connections handed over, and its pointer is the
	// http.ServerContextKey of the requests (so that the proxy paths abort a
	// broken response as they do under net/http).
	next    *http.Server
	handoff *handoffListener
	ctx     context.Context
	log     logr.Logger

	mu       sync.Mutex
	ln       net.Listener
	conns    map[*h1Conn]struct{}
	shutting atomic.Bool
}

func newH1Server(g *Gateway, ctx context.Context, next *http.Server, handoff *handoffListener) *h1Server {
	return &h1Server{
		g: g, next: next, handoff: handoff, log: logr.FromContextOrDiscard(ctx),
		ctx:   context.WithValue(ctx, http.ServerContextKey, next),
		conns: map[*h1Conn]struct{}{},
	}
}

// Serve accepts connections from ln until it is closed, as http.Server.Serve.
func (s *h1Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.shutting.Load() {
		// Shutdown or Close ran before Serve: ln would never be closed.
		s.mu.Unlock()
		_ = ln.Close()
		return http.ErrServerClosed
	}
	s.ln = ln
	s.mu.Unlock()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.shutting.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		hc := s.newConn(c)
		if hc == nil {
			continue
		}
		go hc.serve(nil)
	}
}

// Shutdown stops accepting, closes idle connections, lets the others finish
// their request (answered with Connection: close) and waits for them until
// ctx is done.
func (s *h1Server) Shutdown(ctx context.Context) error {
	s.begin()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if s.closeIdle() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Close closes the listener and every connection.
func (s *h1Server) Close() error {
	s.begin()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.c.Close()
	}
	return nil
}

func (s *h1Server) begin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting.Swap(true) {
		return
	}
	if s.ln != nil {
		_ = s.ln.Close()
	}
}

// closeIdle closes the connections waiting for a request and returns how
// many connections are left.
func (s *h1Server) closeIdle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.idle.Load() {
			_ = c.c.Close()
		}
	}
	return len(s.conns)
}

func (s *h1Server) newConn(c net.Conn) *h1Conn {
	if s.g.opts.DisableFastPath {
		s.handoff.give(c)
		return nil
	}
	hc := &h1Conn{s: s, c: c, requestParser: requestParser{remote: c.RemoteAddr().String()}, rdl: readDeadline{c: c}}
	if sc, ok := c.(*tlsServedConn); ok {
		hc.tls = &sc.state
		if sc.state.NegotiatedProtocol == "h2" {
			s.g.metrics.handoffs.WithLabelValues("h2").Inc()
			s.handoff.give(c)
			return nil
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting.Load() {
		_ = c.Close()
		return nil
	}
	s.conns[hc] = struct{}{}
	return hc
}

func (s *h1Server) forget(hc *h1Conn) {
	s.mu.Lock()
	delete(s.conns, hc)
	s.mu.Unlock()
}

// h1Conn is one client connection served by the loop.
type h1Conn struct {
	s *h1Server
	c net.Conn
	// The request being served is parsed by parseRequest into the
	// connection's reused objects (requestParser); body is its body.
	requestParser
	body countedBody
	// idle: waiting for the next request (Shutdown may close it).
	idle atomic.Bool

	br *bufio.Reader
	bw *bufio.Writer
	w  h1Writer
	// ctx is cancelled when the client is found gone.
	ctx    context.Context
	cancel context.CancelFunc

	// The client watch (h1watch.go). watchMu guards the fields after it;
	// watchDone is closed when the watching read ended.
	watchTimer *time.Timer
	watchMu    sync.Mutex
	watchArmed bool // a request is being served
	watchOK    bool // the watch may start (the request body was read)
	watchDue   bool // the timer fired before the body was read
	watching   bool
	watchDone  chan struct{}
	held       []byte       // bytes the watching read got, returned by Read first
	gone       bool         // the watching read found the client gone
	backend    *backendConn // closed when the client is found gone

	// rdl and wdl are c's read and write deadlines (zero: none), set by
	// the goroutine serving the connection, and by the watch while it
	// holds watchMu.
	rdl readDeadline
	wdl time.Time
}

// requestParser is what parsing a connection's request heads reuses: req
// is reset from reqBase (which holds the connection's context) for each
// request; url, header and vals are reused. remote and tls are the
// connection's.
type requestParser struct {
	remote       string
	tls          *tls.ConnectionState
	req, reqBase *http.Request
	url          url.URL
	header       http.Header
	vals         []string
}

var h1Readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, h1BufferSize) }}
var h1Writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, h1BufferSize) }}

// Read reads from the client connection, the bytes of a watching read
// first.
func (hc *h1Conn) Read(p []byte) (int, error) {
	if len(hc.held) > 0 {
		n := copy(p, hc.held)
		hc.held = hc.held[n:]
		return n, nil
	}
	return hc.c.Read(p)
}

// serve serves the connection until it ends or is handed to net/http's
// server; x, when not nil, is the exchange an event loop handed on with the
// connection, served first.
func (hc *h1Conn) serve(x *resumed) {
	g := hc.s.g
	hc.ctx, hc.cancel = context.WithCancel(hc.s.ctx)
	hc.br = h1Readers.Get().(*bufio.Reader)
	hc.br.Reset(hc)
	hc.bw = h1Writers.Get().(*bufio.Writer)
	hc.bw.Reset(hc.c)
	hc.w.hc = hc
	hc.req, hc.reqBase = new(http.Request), new(http.Request).WithContext(hc.ctx)
	hc.header = make(http.Header, 16)
	handed := false
	defer func() {
		hc.cancel()
		hc.disarmWatch()
		hc.s.forget(hc)
		if !handed {
			_ = hc.c.Close()
		}
		hc.br.Reset(nil)
		h1Readers.Put(hc.br)
		hc.bw.Reset(nil)
		h1Writers.Put(hc.bw)
	}()
	first := true
	if x != nil {
		r, ok := hc.parseRequest(x.head)
		if !ok || !hc.serveRequest(r, x) {
			return // !ok: the loop parsed the same head; never
		}
		first = false
	}
	for ; ; first = false {
		hc.idle.Store(true)
		if hc.s.shutting.Load() {
			return
		}
		wait := g.opts.IdleTimeout
		if first {
			wait = g.opts.ReadHeaderTimeout
		}
		if hc.br.Buffered() == 0 {
			hc.rdl.in(wait)
			runtime.Gosched()
			if _, err := hc.br.Peek(1); err != nil {
				return
			}
		}
		hc.idle.Store(false)
		head, err := hc.readHead(!first)
		if err != nil {
			return // a timeout or a closed connection, as net/http: no answer
		}
		reason := handOffReason(head)
		var r *http.Request
		if reason == "" {
			var ok bool
			if r, ok = hc.parseRequest(head); !ok {
				reason = "other" // net/http's server answers it
			}
		}
		if reason != "" {
			g.metrics.handoffs.WithLabelValues(reason).Inc()
			handed = hc.handOff()
			return
		}
		_, _ = hc.br.Discard(len(head))
		if !hc.serveRequest(r, nil) {
			return
		}
	}
}

// readHead returns the buffered request head (through its empty line)
// without consuming it; nil when it does not fit in the buffer.
// With deadline, reading more than the bytes buffered must end within
// ReadHeaderTimeout.
func (hc *h1Conn) readHead(deadline bool) ([]byte, error) {
	br := hc.br
	from := 0
	for {
		buf, _ := br.Peek(br.Buffered())
		if i := bytes.Index(buf[max(from-3, 0):], crlfcrlf); i >= 0 {
			return buf[:max(from-3, 0)+i+4], nil
		}
		if len(buf) >= br.Size() {
			return nil, nil
		}
		if deadline {
			hc.rdl.in(hc.s.g.opts.ReadHeaderTimeout)
			deadline = false
		}
		from = len(buf)
		if _, err := br.Peek(len(buf) + 1); err != nil {
			if len(buf) > 0 && errors.Is(err, io.EOF) {
				return nil, nil // a partial head and EOF: net/http answers it
			}
			return nil, err
		}
	}
}

var crlfcrlf = []byte("\r\n\r\n")

// handOff passes the connection, with the bytes not yet consumed, to
// net/http's server. It reports whether the connection was passed on (else
// it is to be closed).
func (hc *h1Conn) handOff() bool {
	hc.disarmWatch()
	rest, _ := hc.br.Peek(hc.br.Buffered())
	var c net.Conn = &prefixConn{Conn: hc.c, prefix: bytes.Clone(rest)}
	if hc.tls != nil {
		c = &tlsServedConn{Conn: c, state: *hc.tls}
	}
	hc.rdl.clear()
	_ = hc.c.SetWriteDeadline(time.Time{})
	return hc.s.handoff.give(c)
}

// serveRequest serves r, the request parsed from the head just consumed
// (the exchange x when not nil); it reports whether the connection serves
// another.
func (hc *h1Conn) serveRequest(r *http.Request, x *resumed) (keep bool) {
	g := hc.s.g
	// The deadline of the head stands until the body is read (which sets
	// its own) or the watch starts (which lifts it).
	hc.armWatch(r.ContentLength == 0)

	w := &hc.w
	w.reset(r)
	defer func() {
		if p := recover(); p != nil {
			keep = false
			if p != http.ErrAbortHandler {
				hc.s.log.Error(nil, "panic serving a request", "panic", p, "client", hc.remote)
			}
		}
	}()
	if x != nil {
		g.serveResumed(w, r, x)
	} else {
		g.ServeHTTP(w, r)
	}
	hc.disarmWatch()
	if hc.gone {
		return false
	}
	if !w.finish() {
		return false
	}
	if w.closeAfter || r.Close {
		hc.closeWrite()
		return false
	}
	// A body the handler left unread (an answer of the gateway itself) is
	// read to its end, or the connection closed.
	if hc.body.stop() > 0 {
		hc.rdl.in(g.opts.ClientBodyTimeout)
		return hc.body.drain() == nil
	}
	return true
}

// closeWrite ends a connection after a response with Connection: close,
// as net/http does: the writing side shut down, then closed.
func (hc *h1Conn) closeWrite() {
	if cw, ok := hc.c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// handOffReason returns why the request whose head is head is not served
// by the connection loop, "" when it is: the loop serves what fastPathOK
// accepts, as far as the head tells, and nothing that net/http's server
// treats specially. head has been checked by package framing (CRLF lines,
// token names, one Content-Length of digits, Transfer-Encoding only
// chunked); nil is a head larger than the loop's buffer.
func handOffReason(head []byte) string {
	if head == nil {
		return "head-too-large"
	}
	line, rest, _ := bytes.Cut(head, crlf)
	method, line, ok1 := bytes.Cut(line, sp)
	target, version, ok2 := bytes.Cut(line, sp)
	switch {
	case !ok1 || !ok2 || len(method) == 0 || len(target) == 0:
		return "other"
	case string(version) == "HTTP/1.0":
		return "http/1.0"
	case string(method) == "PRI" && string(version) == "HTTP/2.0":
		return "h2"
	case string(version) != "HTTP/1.1", string(method) == http.MethodConnect, target[0] != '/':
		return "other"
	}
	if _, q, ok := bytes.Cut(target, question); ok && !queryUnchanged(string(q)) {
		return "other"
	}
	hosts := 0
	for len(rest) > 2 {
		var l []byte
		l, rest, _ = bytes.Cut(rest, crlf)
		name, value, ok := bytes.Cut(l, colon)
		if !ok {
			return "other"
		}
		value = bytes.Trim(value, " \t")
		switch {
		case bytes.EqualFold(name, []byte("Host")):
			hosts++
			for _, c := range value {
				if c >= 0x80 || c == '%' || c < 0x20 || c == 0x7f {
					return "other"
				}
			}
		case bytes.EqualFold(name, []byte("Content-Length")):
			if n := parseLength(-1, value); n < 0 || n > fastPathMaxBody {
				return "body"
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")), bytes.EqualFold(name, []byte("Trailer")):
			return "body"
		case bytes.EqualFold(name, []byte("Upgrade")):
			return "upgrade"
		case bytes.EqualFold(name, []byte("Expect")):
			return "expect"
		case bytes.EqualFold(name, []byte("Te")):
			return "other"
		}
	}
	if hosts != 1 {
		return "other"
	}
	return ""
}

var (
	crlf     = []byte("\r\n")
	sp       = []byte(" ")
	colon    = []byte(":")
	question = []byte("?")
)

// handoffListener passes connections from the loop to net/http's server.
type handoffListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// give passes c on; it closes c and reports false when the server is gone.
func (l *handoffListener) give(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
	}
	_ = c.Close()
	return false
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// prefixConn returns prefix before the connection's own bytes.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes as the connection it wraps.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
