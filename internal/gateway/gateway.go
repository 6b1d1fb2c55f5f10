package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fledge-dev/fledge/internal/gateway/framing"
)

// Gateway is the embedded data plane: an http.Handler proxying requests by the
// routing table in effect, plus the admin handler serving metrics and health.
// Create it with New; feed it tables with Update (or let Run watch the cluster).
type Gateway struct {
	// opts with defaults applied.
	opts Options
	// table is the routing table in effect; nil until the first Update.
	table atomic.Pointer[Table]
	// draining is set when shutdown begins; drainStarted is closed then.
	draining     atomic.Bool
	drainStarted chan struct{}
	drainOnce    sync.Once

	// recorders pools the ResponseWriters of requests in flight.
	recorders sync.Pool
	// failures rate-limits backend failure lines; accessN counts requests
	// for the access log's sampling.
	failures failureLog
	accessN  atomic.Uint64
	// transport, buffers and metrics are shared by every proxy.
	transport *http.Transport
	// h2cTransport sends to backends whose Service port is kubernetes.io/h2c.
	h2cTransport *http.Transport
	// defaultTLS is Options.DefaultTLSSecret parsed, zero without one.
	defaultTLS types.NamespacedName
	buffers    *bufferPool
	metrics    *metrics
	// dialer and idle are shared by the fast path's connection pools: idle
	// counts their idle connections against MaxIdleConns (an atomic counter,
	// not a lock).
	dialer *net.Dialer
	idle   *idleBudget

	// mu serialises table builds; it guards state and errorLog, never taken by a
	// request.
	mu       sync.Mutex
	state    buildState
	errorLog *log.Logger
	// updated, when set (by tests), receives a signal after each table swap
	// without blocking.
	updated chan struct{}
	// events holds the event loops' server of the plain listener (a
	// server) while they serve it; tests read it.
	events atomic.Value
}

// New returns a Gateway serving nothing (503) until its first Update.
func New(opts Options) *Gateway {
	opts = opts.withDefaults()
	var defaultTLS types.NamespacedName
	if opts.DefaultTLSSecret != "" {
		defaultTLS, _ = parseSecretRef(opts.DefaultTLSSecret) // Validate refuses a bad one
	}
	// One dialer for both proxy paths' backend connections.
	dialer := &net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}
	return &Gateway{
		opts:         opts,
		drainStarted: make(chan struct{}),
		transport:    newTransport(opts, dialer),
		h2cTransport: newH2CTransport(opts, dialer),
		defaultTLS:   defaultTLS,
		buffers:      newBufferPool(),
		dialer:       dialer,
		idle:         &idleBudget{max: int64(opts.MaxIdleConns)},
		metrics:      newMetrics(),
		state:        newBuildState(),
		recorders:    sync.Pool{New: func() any { return new(recorder) }},
	}
}

// Table returns the routing table in effect, nil before the first Update.
func (g *Gateway) Table() *Table { return g.table.Load() }

// Ready reports whether the gateway has a routing table and is not draining.
func (g *Gateway) Ready() bool { return g.table.Load() != nil && !g.draining.Load() }

// AdminHandler serves /metrics, /healthz, /readyz and /routes.
func (g *Gateway) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case g.draining.Load():
			http.Error(w, "draining", http.StatusServiceUnavailable)
		case g.table.Load() == nil:
			http.Error(w, "waiting for the first routing table", http.StatusServiceUnavailable)
		default:
			_, _ = w.Write([]byte("ok\n"))
		}
	})
	mux.HandleFunc("GET /routes", func(w http.ResponseWriter, _ *http.Request) {
		t := g.table.Load()
		if t == nil {
			http.Error(w, "waiting for the first routing table", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Routes   []RouteInfo `json:"routes"`
			Problems []string    `json:"problems,omitempty"`
		}{t.Routes(), t.problems})
	})
	return mux
}

// Serve serves the proxy on proxyLn and the admin handler on adminLn until
// ctx is done; see ServeListeners.
func (g *Gateway) Serve(ctx context.Context, proxyLn, adminLn net.Listener) error {
	return g.ServeListeners(ctx, Listeners{HTTP: proxyLn, Admin: adminLn})
}

// Listeners are where a Gateway serves. HTTPS may be nil.
type Listeners struct {
	HTTP, HTTPS, Admin net.Listener
}

// ServeListeners serves the proxy on ls.HTTP (and with TLS on ls.HTTPS) and
// the admin handler on ls.Admin until ctx is done (or a listener fails),
// then drains: /readyz turns 503, the proxy keeps serving for
// ShutdownDelay, then stops accepting and waits up to DrainTimeout for the
// requests in flight. It closes the listeners.
//
// Request framing is checked before net/http parses it (package framing):
// an ambiguous or malformed request (both Content-Length and
// Transfer-Encoding, Transfer-Encoding on HTTP/1.0, obs-fold, bare LF, …) is
// refused with 400 and its connection closed, and counted by reason. On the
// HTTPS listener the checks run on the plaintext of HTTP/1.x connections;
// HTTP/2 (h2, and h2c when Options.H2C) is framed by its own protocol.
//
// The proxy's clients are bounded, per listener: at most MaxClientConns
// connections (accepting waits beyond), request heads of
// MaxRequestHeaderBytes (431 beyond), ReadHeaderTimeout to send a head (and
// to finish a TLS handshake), ClientBodyTimeout between reads of a body,
// ClientSendTimeout between writes, IdleTimeout between requests.
func (g *Gateway) ServeListeners(ctx context.Context, ls Listeners) error {
	logger := logr.FromContextOrDiscard(ctx)
	base := context.WithoutCancel(ctx) // requests in flight outlive ctx while draining
	errLog := log.New(logWriter{logger}, "", 0)
	newServer := func(h http.Handler, h2c bool) *http.Server {
		s := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: g.opts.ReadHeaderTimeout,
			IdleTimeout:       g.opts.IdleTimeout,
			MaxHeaderBytes:    g.opts.MaxRequestHeaderBytes,
			ErrorLog:          errLog,
			BaseContext:       func(net.Listener) context.Context { return base },
			ConnContext:       connContext,
		}
		if h2c {
			var p http.Protocols
			p.SetHTTP1(true)
			p.SetUnencryptedHTTP2(true)
			s.Protocols = &p
			s.HTTP2 = &http.HTTP2Config{MaxReceiveBufferPerStream: 1 << 20}
		}
		return s
	}
	fo := framing.Options{
		MaxHeadBytes: g.opts.MaxRequestHeaderBytes + 4096, // net/http's slack
		OnRefuse:     func(_ net.Conn, reason error) { g.metrics.refused.WithLabelValues(refusedReason(reason)).Inc() },
	}
	proxy, admin := newServer(g, g.opts.H2C), newServer(g.AdminHandler(), false)
	proxyLn := framing.NewListener(newLimitListener(ls.HTTP, g.opts.MaxClientConns), fo)
	adminLn := ls.Admin
	// Each proxy listener is served by the connection loop (h1Server), which
	// hands what it does not serve to net/http's server of that listener.
	// Proxies first: metrics stay up while they drain.
	proxyHandoff := newHandoffListener(proxyLn.Addr())
	proxyLoop := newH1Server(g, base, proxy, proxyHandoff)
	// On Linux, event loops serve the plain listener (accepting, bounding
	// and checking the framing themselves) and hand to proxyLoop what they
	// do not serve.
	var proxyServer server = proxyLoop
	var proxyServeLn net.Listener = proxyLn
	if ev := g.newEventServer(proxyLoop, fo, ls.HTTP, logger); ev != nil {
		proxyServer, proxyServeLn = ev, ls.HTTP
		g.events.Store(ev)
	}
	servers := []server{proxyServer, proxy, admin}
	type served struct {
		s    server
		ln   net.Listener
		name string
	}
	all := []served{{proxyServer, proxyServeLn, "proxy"}, {proxy, proxyHandoff, "proxy (net/http)"}, {admin, adminLn, "metrics"}}
	if ls.HTTPS != nil {
		// The connections are decrypted by tlsListener; HTTP/2 on them is
		// served as on h2c.
		https := newServer(g, true)
		httpsLn := newTLSListener(newLimitListener(ls.HTTPS, g.opts.MaxClientConns), g.tlsConfig(), g.opts.ReadHeaderTimeout, fo,
			func(err error) { logger.V(1).Info("TLS handshake failed", "error", err.Error()) })
		httpsHandoff := newHandoffListener(httpsLn.Addr())
		httpsLoop := newH1Server(g, base, https, httpsHandoff)
		servers = []server{proxyServer, httpsLoop, proxy, https, admin}
		all = append(all, served{httpsLoop, httpsLn, "https"}, served{https, httpsHandoff, "https (net/http)"})
	}
	errc := make(chan error, len(all))
	serve := func(s server, ln net.Listener, name string) {
		if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serve %s on %s: %w", name, ln.Addr(), err)
			return
		}
		errc <- nil
	}
	for _, sv := range all {
		go serve(sv.s, sv.ln, sv.name)
	}
	kv := []any{"http", proxyLn.Addr().String(), "metrics", adminLn.Addr().String(), "h2c", g.opts.H2C}
	if ls.HTTPS != nil {
		kv = append(kv, "https", ls.HTTPS.Addr().String())
	}
	logger.Info("gateway serving", kv...)

	pending := len(all)
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		pending--
	}

	g.drainOnce.Do(func() {
		g.draining.Store(true)
		close(g.drainStarted)
	})
	logger.Info("draining", "shutdownDelay", g.opts.ShutdownDelay, "drainTimeout", g.opts.DrainTimeout)
	if g.opts.ShutdownDelay > 0 && err == nil {
		delay := time.NewTimer(g.opts.ShutdownDelay)
		select {
		case <-delay.C:
		case err = <-errc:
			pending--
		}
		delay.Stop()
	}
	sctx, cancel := context.WithTimeout(base, g.opts.DrainTimeout)
	defer cancel()
	for _, s := range servers {
		if e := s.Shutdown(sctx); e != nil {
			logger.Info("drain timeout exceeded, closing connections", "error", e.Error())
			_ = s.Close()
		}
	}
	for ; pending > 0; pending-- {
		err = errors.Join(err, <-errc)
	}
	g.transport.CloseIdleConnections()
	g.h2cTransport.CloseIdleConnections()
	g.mu.Lock()
	for _, p := range g.state.pools {
		p.closeIdle()
	}
	g.mu.Unlock()
	logger.Info("gateway stopped")
	return err
}

// server is what ServeListeners runs on a listener: net/http's server or
// the connection loop.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// refusedReason is the metric label of a framing refusal.
func refusedReason(err error) string {
	switch {
	case errors.Is(err, framing.ErrAmbiguousLength):
		return "content-length-and-transfer-encoding"
	case errors.Is(err, framing.ErrTransferEncoding10):
		return "transfer-encoding-on-http10"
	case errors.Is(err, framing.ErrBadTransferEncoding):
		return "bad-transfer-encoding"
	case errors.Is(err, framing.ErrBadContentLength):
		return "bad-content-length"
	case errors.Is(err, framing.ErrObsFold):
		return "obs-fold"
	case errors.Is(err, framing.ErrBadLineEnding):
		return "bad-line-ending"
	case errors.Is(err, framing.ErrBadFieldName), errors.Is(err, framing.ErrBadFieldValue):
		return "bad-header-field"
	case errors.Is(err, framing.ErrBadRequestLine), errors.Is(err, framing.ErrUnsupportedVersion):
		return "bad-request-line"
	case errors.Is(err, framing.ErrMalformedBody):
		return "malformed-chunked-body"
	}
	return "other"
}
