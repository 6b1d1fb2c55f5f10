package gateway

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
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
	tg := b.next()
	if tg != nil && tg.pool != nil && fastPathOK(r) {
		var code int
		defer b.observe(&code, time.Now()) // also when the copy aborts with a panic
		g.forward(w, r, tg, &code)
		return
	}
	rec := &recorder{ResponseWriter: w}
	defer b.observe(&rec.code, time.Now()) // also when the proxy aborts with a panic
	if tg == nil {
		http.Error(rec, "no ready endpoint for "+b.service, http.StatusServiceUnavailable)
		return
	}
	tg.proxy.ServeHTTP(rec, r)
}

// observe records one request sent to b; *code is the status code sent to the
// client, 0 when nothing was written.
func (b *backend) observe(code *int, start time.Time) {
	b.obs.duration.Observe(time.Since(start).Seconds())
	c := *code
	if c == 0 {
		c = http.StatusOK // nothing written: net/http sends 200
	}
	b.obs.counter(c).Inc()
}

// newProxy returns the reverse proxy sending to one endpoint "host:port": path,
// query and Host header unchanged, X-Forwarded-* set (client-sent ones dropped).
func (g *Gateway) newProxy(addr string) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = addr
			pr.SetXForwarded()
		},
		Transport:    g.transport,
		BufferPool:   g.buffers,
		ErrorHandler: proxyError,
		ErrorLog:     g.errorLog,
	}
}

// proxyError answers a request the backend did not: 502, or 499 when the client
// is gone.
func proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		w.WriteHeader(statusClientClosedRequest)
		return
	}
	logr.FromContextOrDiscard(r.Context()).V(1).Info("backend request failed",
		"host", r.Host, "target", r.URL.Host, "error", err.Error())
	http.Error(w, "bad gateway", http.StatusBadGateway)
}

// newTransport returns the Transport shared by all backends: many idle
// connections per endpoint (the default of 2 makes a proxy several times slower),
// no proxy from the environment, no transparent gzip.
func newTransport(o Options) *http.Transport {
	d := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:           d.DialContext,
		MaxIdleConns:          o.MaxIdleConns,
		MaxIdleConnsPerHost:   o.MaxIdleConnsPerHost,
		IdleConnTimeout:       o.IdleConnTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
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

// recorder remembers the status code sent to the client. It hides no optional
// interface: ResponseController (used by ReverseProxy to flush and hijack) finds
// them through Unwrap.
type recorder struct {
	http.ResponseWriter
	// code is the final status code written, 0 before.
	code int
}

func (w *recorder) WriteHeader(code int) {
	if w.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.code = code // 1xx other than 101 are informational
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
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
