package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// statusClientClosedRequest is recorded (nginx's convention) when the client went
// away before the backend answered, so that it does not count as a backend error.
const statusClientClosedRequest = 499

// ServeHTTP proxies one request: route by Host, pick the backend and an endpoint,
// forward, and record the outcome. Plain HTTP/1.1 requests take the fast path
// (forward, fastpath.go); everything else goes through httputil.ReverseProxy.
// It takes no global lock: the fast path locks the chosen endpoint's connection
// pool, and a backend's metrics once per status code new to it.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	send := g.sendDeadline(w)
	send.extend() // a deadline left by the connection's previous request is past
	if r.TLS == nil {
		if st, ok := r.Context().Value(tlsStateKey{}).(*tls.ConnectionState); ok {
			r.TLS = st // the HTTPS listener's (tlsServedConn)
		}
	}
	t := g.table.Load()
	if t == nil {
		http.Error(w, "gateway not ready", http.StatusServiceUnavailable)
		return
	}
	rt := t.lookup(r.Host)
	if rt == nil {
		g.metrics.unknownHost.Inc()
		http.Error(w, "no route for host", http.StatusNotFound)
		return
	}
	b := rt.pick(r)
	rec := g.recorder(w, r, send)
	start := time.Now()
	defer func() { g.observe(r, b, rec, start) }() // also when the proxy aborts with a panic
	for tries, redispatched := 0, false; ; {
		rec.service = b.service
		tg := b.next()
		if tg != nil {
			if n := tg.inflight.Add(1); n > int64(g.opts.MaxEndpointRequests) {
				tg.inflight.Add(-1)
				g.metrics.overloaded.Inc()
				http.Error(rec, "backend busy", http.StatusServiceUnavailable)
				return
			}
			func() {
				defer tg.inflight.Add(-1) // also when ReverseProxy aborts with a panic
				g.send(rec, w, r, tg)
			}()
			if rec.dialErr == nil {
				return
			}
			g.backendFailed(r, b.service, tg.addr, rec.dialErr)
			if tries++; tries < min(len(b.targets), maxDialTries) {
				rec.dialErr = nil
				continue // another endpoint of the same version
			}
		}
		// Nothing could be sent to b: no ready endpoint, or none accepted a
		// connection. The other version serves the request when it can; b is
		// still charged with the failure, so that an unreachable canary is
		// judged as failing.
		other := rt.other(b)
		if !redispatched && other != nil && len(other.targets) > 0 {
			code, reason := http.StatusServiceUnavailable, "no-endpoint"
			if rec.dialErr != nil {
				code, reason = http.StatusBadGateway, "unreachable"
			}
			b.obs.counter(code).Inc()
			g.metrics.redispatched.WithLabelValues(rt.namespace, rt.name, b.service, other.service, reason).Inc()
			b, tries, redispatched, rec.dialErr = other, 0, true, nil
			continue
		}
		if rec.dialErr != nil {
			http.Error(rec, errorBody(http.StatusBadGateway), http.StatusBadGateway)
			return
		}
		http.Error(rec, "no ready endpoint for "+b.service, http.StatusServiceUnavailable)
		return
	}
}

// resumed is an exchange an event loop started and hands on with the
// client connection: head, a bodiless GET request, was sent to tg (chosen
// for b, its in-flight count taken) at start; bc holds the response bytes
// read so far, or err says why none came.
type resumed struct {
	head  []byte
	b     *backend
	tg    *target
	bc    *backendConn
	err   error
	start time.Time
}

// serveResumed answers r, the request of x, as ServeHTTP does once it has
// sent r to x.tg. bc is not reused afterwards.
func (g *Gateway) serveResumed(w http.ResponseWriter, r *http.Request, x *resumed) {
	send := g.sendDeadline(w)
	send.extend()
	rec := g.recorder(w, r, send)
	rec.service = x.b.service
	defer func() { g.observe(r, x.b, rec, x.start) }()
	defer x.tg.inflight.Add(-1)
	err := x.err
	if err == nil {
		err = g.exchange(rec, r, x.tg, x.bc, true, false)
	}
	if err != nil {
		g.fastError(rec, r, x.tg, err)
	}
}

// maxDialTries bounds the endpoints of one version a request tries to
// connect to.
const maxDialTries = 3

// send proxies r to tg on the fast path or through ReverseProxy. When the
// connection to tg could not be made (nothing was sent, nothing answered),
// it sets rec.dialErr instead of answering.
func (g *Gateway) send(rec *recorder, w http.ResponseWriter, r *http.Request, tg *target) {
	if tg.pool != nil && fastPathOK(r) {
		g.forward(rec, r, tg)
		return
	}
	if r.Body != nil && r.Body != http.NoBody && rec.body == nil {
		body := &clientBody{ReadCloser: r.Body, timeout: g.opts.ClientBodyTimeout}
		body.rc, _ = w.(readDeadlineSetter)
		r.Body, rec.body = body, body
	}
	tg.proxy.ServeHTTP(rec, r)
}

// isDialError reports whether err is a failure to connect: nothing of the
// request was sent.
func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// observe records one request r sent to b, whose answer rec saw, and
// returns rec to its pool. A request the client broke (codeClientError) is
// counted as the client's error, not b's.
func (g *Gateway) observe(r *http.Request, b *backend, rec *recorder, start time.Time) {
	defer g.recorders.Put(rec)
	c := rec.code
	d := time.Since(start)
	defer g.accessLog(r, b, c, d)
	if c == codeClientError {
		b.obs.clientErrors.Inc()
		return
	}
	b.obs.duration.Observe(d.Seconds())
	if c == 0 {
		c = http.StatusOK // nothing written: net/http sends 200
	}
	if c == http.StatusOK {
		if st, ok := grpcStatus(rec.Header()); ok {
			b.obs.grpc.WithLabelValues(b.obs.key.namespace, b.obs.key.app, b.obs.key.service, st).Inc()
			c = grpcHTTPCode(st)
		}
	}
	b.obs.counter(c).Inc()
}

// newProxy returns the reverse proxy sending to one endpoint "host:port": path,
// query and Host header unchanged, X-Forwarded-* set (client-sent ones dropped),
// and the headers a response's Connection header names left out.
func (g *Gateway) newProxy(addr string) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = addr
			pr.SetXForwarded()
			pr.Out = pr.Out.WithContext(traceConn(pr.Out.Context()))
		},
		ModifyResponse: stripListed,
		Transport:      g.transport,
		BufferPool:     g.buffers,
		ErrorHandler:   func(w http.ResponseWriter, r *http.Request, err error) { g.proxyError(w, r, addr, err) },
		ErrorLog:       g.errorLog,
	}
}

// newH2CProxy returns the reverse proxy sending to one endpoint over HTTP/2
// cleartext (prior knowledge), as newProxy otherwise. HTTP/2 has no
// Connection header to strip.
func (g *Gateway) newH2CProxy(addr string) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = addr
			pr.SetXForwarded()
		},
		Transport:    g.h2cTransport,
		BufferPool:   g.buffers,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) { g.proxyError(w, r, addr, err) },
		ErrorLog:     g.errorLog,
	}
}

// traceConn returns ctx with a trace remembering the connection the
// Transport sends the request on (a *scanConn).
func traceConn(ctx context.Context) context.Context {
	h := new(connHolder)
	ctx = context.WithValue(ctx, connHolderKey{}, h)
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { h.c, _ = info.Conn.(*scanConn) },
		Got1xxResponse: func(int, textproto.MIMEHeader) error {
			if h.n1xx++; h.n1xx > max1xx {
				return errors.New("too many 1xx informational responses")
			}
			return nil
		},
	})
}

// max1xx is how many 1xx informational responses may precede a response.
const max1xx = 5

type connHolder struct {
	c    *scanConn
	n1xx int
}

type connHolderKey struct{}

// stripListed deletes the headers that the response's Connection header named
// (http.ReadResponse deleted the header itself when it listed "close"). A 101
// keeps them: its Connection: Upgrade is for the client.
func stripListed(res *http.Response) error {
	if res.StatusCode == http.StatusSwitchingProtocols {
		return nil
	}
	h, _ := res.Request.Context().Value(connHolderKey{}).(*connHolder)
	if h == nil || h.c == nil {
		return errors.New("backend connection not traced")
	}
	conn, err := h.c.finalConnection()
	if err != nil {
		return err
	}
	for _, v := range conn {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if tok = textproto.TrimString(tok); tok != "" {
				res.Header.Del(tok)
			}
		}
	}
	return nil
}

// proxyError answers a request the backend did not: 400 or 408 when the
// client's request body broke (not the backend's failure), 499 when the
// client is gone, 504 after a timeout, else 502.
func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, addr string, err error) {
	rec, _ := w.(*recorder) // always, through ServeHTTP
	if rec != nil && rec.body != nil {
		if berr := rec.body.failure(); berr != nil {
			rec.clientError = true
			badRequest(w, &clientError{berr})
			return
		}
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		w.WriteHeader(statusClientClosedRequest)
		return
	}
	service := ""
	if rec != nil {
		if rec.code == 0 && isDialError(err) {
			rec.dialErr = err // ServeHTTP tries elsewhere
			return
		}
		service = rec.service
	}
	g.backendFailed(r, service, addr, err)
	code := backendErrorStatus(err)
	http.Error(w, errorBody(code), code)
}

// newTransport returns the Transport shared by all backends: many idle
// connections per endpoint (the default of 2 makes a proxy several times slower),
// no proxy from the environment, no transparent gzip, the response head
// limits of the fast path, and connections that scan response heads
// (scanConn).
func newTransport(o Options, d *net.Dialer) *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &scanConn{Conn: c, limit: o.MaxResponseHeaderBytes}, nil
		},
		MaxIdleConns:           o.MaxIdleConns,
		MaxIdleConnsPerHost:    o.MaxIdleConnsPerHost,
		IdleConnTimeout:        o.IdleConnTimeout,
		ResponseHeaderTimeout:  o.ResponseHeaderTimeout,
		MaxResponseHeaderBytes: o.MaxResponseHeaderBytes,
		ExpectContinueTimeout:  time.Second,
		DisableCompression:     true,
	}
}

// newH2CTransport returns the Transport of h2c backends: HTTP/2 with prior
// knowledge over plain TCP, one connection per endpoint carrying many
// streams, with the limits of newTransport.
func newH2CTransport(o Options, d *net.Dialer) *http.Transport {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Transport{
		Protocols:              &p,
		DialContext:            d.DialContext,
		MaxIdleConns:           o.MaxIdleConns,
		MaxIdleConnsPerHost:    o.MaxIdleConnsPerHost,
		IdleConnTimeout:        o.IdleConnTimeout,
		ResponseHeaderTimeout:  o.ResponseHeaderTimeout,
		MaxResponseHeaderBytes: o.MaxResponseHeaderBytes,
		DisableCompression:     true,
		HTTP2: &http.HTTP2Config{
			PingTimeout:     15 * time.Second,
			SendPingTimeout: 30 * time.Second,
		},
	}
}

// bufferSize is the size of the ReverseProxy's copy buffers.
const bufferSize = 32 << 10

// bufferPool is a httputil.BufferPool of 32 KiB buffers. It pools array pointers,
// so that neither Get nor Put allocates.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { return new([bufferSize]byte) }}}
}

func (b *bufferPool) Get() []byte { return b.p.Get().(*[bufferSize]byte)[:] }

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) >= bufferSize {
		b.p.Put((*[bufferSize]byte)(buf[:bufferSize]))
	}
}

// recorder is the ResponseWriter both proxy paths write to: it remembers
// the status code sent to the client, extends the client's write deadline
// before each write, and drops 1xx informational responses for HTTP/1.0
// clients (RFC 9110 §15.2). Recorders are pooled (Gateway.recorder). It
// hides no optional interface but Flush: ResponseController (used by
// ReverseProxy to flush and hijack) finds the others through Unwrap.
type recorder struct {
	http.ResponseWriter
	flusher http.Flusher
	send    sendDeadline
	http10  bool
	// code is the final status code written, 0 before; service is the
	// backend Service chosen.
	code    int
	service string
	// dialErr: the last attempt could not connect (nothing sent, nothing
	// answered).
	dialErr error
	// body is the request body when the ReverseProxy path wrapped it;
	// clientError: the request was refused as the client's error.
	body        *clientBody
	clientError bool
}

// recorder returns a pooled recorder writing to w, the answer to r.
func (g *Gateway) recorder(w http.ResponseWriter, r *http.Request, send sendDeadline) *recorder {
	rec := g.recorders.Get().(*recorder)
	f, _ := w.(http.Flusher)
	*rec = recorder{ResponseWriter: w, flusher: f, send: send, http10: !r.ProtoAtLeast(1, 1)}
	return rec
}

// Flush sends what is buffered to the client.
func (w *recorder) Flush() {
	if w.flusher != nil {
		w.send.extend()
		w.flusher.Flush()
	}
}

func (w *recorder) WriteHeader(code int) {
	if code < 200 && code != http.StatusSwitchingProtocols {
		if w.http10 {
			return
		}
	} else if w.code == 0 {
		w.code = code
		if w.clientError {
			w.code = codeClientError
		}
	}
	w.send.extend()
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.send.extend()
	return w.ResponseWriter.Write(b)
}

// Hijack records a protocol switch (101), which ReverseProxy writes on the
// hijacked connection.
func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.code == 0 {
		w.code = http.StatusSwitchingProtocols
	}
	return c, rw, err
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logWriter adapts logr to the log.Logger of net/http and ReverseProxy.
type logWriter struct{ log logr.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Info(strings.TrimSpace(string(p)))
	return len(p), nil
}
