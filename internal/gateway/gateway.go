package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/apimachinery/pkg/types"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
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

	// transport, buffers and metrics are shared by every proxy.
	transport *http.Transport
	buffers   *bufferPool
	metrics   *metrics
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
}

// buildState is what a table build carries over to the next one, so that an
// unrelated change (an endpoint elsewhere) does not restart split sequences,
// round-robin positions, proxies or metric series.
type buildState struct {
	splits    map[types.NamespacedName]*split
	rr        map[backendKey]*atomic.Uint64
	proxies   map[string]*httputil.ReverseProxy
	pools     map[string]*connPool
	observers map[observerKey]*backendMetrics
	served    map[types.NamespacedName]struct{}
	problems  map[string]struct{}
}

type backendKey struct {
	namespace, service string
	port               int32
}

func newBuildState() buildState {
	return buildState{
		splits:    map[types.NamespacedName]*split{},
		rr:        map[backendKey]*atomic.Uint64{},
		proxies:   map[string]*httputil.ReverseProxy{},
		pools:     map[string]*connPool{},
		observers: map[observerKey]*backendMetrics{},
		served:    map[types.NamespacedName]struct{}{},
		problems:  map[string]struct{}{},
	}
}

// New returns a Gateway serving nothing (503) until its first Update.
func New(opts Options) *Gateway {
	opts = opts.withDefaults()
	return &Gateway{
		opts:         opts,
		drainStarted: make(chan struct{}),
		transport:    newTransport(opts),
		buffers:      newBufferPool(),
		dialer:       newDialer(opts),
		idle:         &idleBudget{max: int64(opts.MaxIdleConns)},
		metrics:      newMetrics(),
		state:        newBuildState(),
	}
}

// Table returns the routing table in effect, nil before the first Update.
func (g *Gateway) Table() *Table { return g.table.Load() }

// Ready reports whether the gateway has a routing table and is not draining.
func (g *Gateway) Ready() bool { return g.table.Load() != nil && !g.draining.Load() }

// Update builds a routing table from objs and puts it in effect. Problems are
// logged (each once, while it lasts) and returned by the table's Problems.
func (g *Gateway) Update(ctx context.Context, objs Objects) *Table {
	t, err := g.update(ctx, newObjectsSource(objs))
	if err != nil { // objectsSource never fails
		panic(err)
	}
	return t
}

// update builds a table from src and swaps it in. On error the table in effect
// stays.
func (g *Gateway) update(ctx context.Context, src source) (*Table, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	logger := logr.FromContextOrDiscard(ctx)
	if g.errorLog == nil {
		g.errorLog = log.New(logWriter{logger.V(1)}, "", 0)
	}
	trs, err := src.trafficRoutes(ctx)
	if err != nil {
		return nil, fmt.Errorf("list TrafficRoutes: %w", err)
	}
	slices.SortFunc(trs, olderFirst)

	t := &Table{
		routes:   make(map[string]*route, len(trs)),
		services: make(map[types.NamespacedName]struct{}, 2*len(trs)),
	}
	next := newBuildState()
	for _, tr := range trs {
		if err := g.addRoute(ctx, src, t, tr, &next); err != nil {
			return nil, err
		}
	}
	slices.Sort(t.problems)

	// Everything below only publishes: the build cannot fail any more.
	for k := range g.state.observers {
		if _, ok := next.observers[k]; !ok {
			g.metrics.delete(k)
		}
	}
	for a, p := range g.state.pools {
		if _, ok := next.pools[a]; !ok {
			p.close() // the endpoint left the table
		}
	}
	for k := range g.state.served {
		if _, ok := next.served[k]; !ok {
			g.metrics.weight.DeleteLabelValues(k.Namespace, k.Name)
		}
	}
	for _, rt := range t.routes {
		next.served[types.NamespacedName{Namespace: rt.namespace, Name: rt.name}] = struct{}{}
		g.metrics.weight.WithLabelValues(rt.namespace, rt.name).Set(float64(rt.weight))
	}
	g.metrics.routes.Set(float64(len(t.routes)))
	g.metrics.skipped.Set(float64(t.skipped))
	for _, p := range t.problems {
		next.problems[p] = struct{}{}
		if _, seen := g.state.problems[p]; !seen {
			logger.Info("route not fully served", "problem", p)
		}
	}
	g.state = next
	g.table.Store(t)
	if g.updated != nil {
		select {
		case g.updated <- struct{}{}:
		default:
		}
	}
	logger.V(1).Info("routing table updated", "routes", len(t.routes), "skipped", t.skipped)
	return t, nil
}

// addRoute compiles one TrafficRoute into t, or records why it is skipped.
func (g *Gateway) addRoute(ctx context.Context, src source, t *Table, tr *fledgev1.TrafficRoute, next *buildState) error {
	skip := func(format string, args ...any) {
		t.problems = append(t.problems, fmt.Sprintf("TrafficRoute %s/%s skipped: ", tr.Namespace, tr.Name)+fmt.Sprintf(format, args...))
		t.skipped++
	}
	spec := &tr.Spec
	if err := validateRoute(spec); err != nil {
		skip("%v", err)
		return nil
	}
	ms, err := compileMatch(spec.Match)
	if err != nil {
		skip("%v", err)
		return nil
	}
	host := normalizeHost(spec.Host)
	if other, ok := t.routes[host]; ok {
		skip("host %q is served by the older TrafficRoute %s/%s", host, other.namespace, other.name)
		return nil
	}
	rt := &route{
		namespace: tr.Namespace, name: tr.Name, host: host,
		match: ms, predicates: slices.Clone(spec.Match),
	}
	if rt.stable, err = g.addBackend(ctx, src, t, rt, spec.Stable, next); err != nil {
		return err
	}
	if c := spec.Canary; c != nil {
		if rt.canary, err = g.addBackend(ctx, src, t, rt, *c, next); err != nil {
			return err
		}
		rt.weight = spec.CanaryWeight
		key := types.NamespacedName{Namespace: tr.Namespace, Name: tr.Name}
		canary := fmt.Sprintf("%s:%d", c.Service, c.Port)
		s := g.state.splits[key]
		if s == nil || s.weight != rt.weight || s.canary != canary {
			s = &split{weight: rt.weight, canary: canary} // a fresh sequence
		}
		next.splits[key] = s
		rt.split = s
	}
	t.routes[host] = rt
	return nil
}

// addBackend resolves one backend of rt, reusing what the previous build had.
func (g *Gateway) addBackend(ctx context.Context, src source, t *Table, rt *route, ref fledgev1.BackendRef, next *buildState) (*backend, error) {
	t.services[types.NamespacedName{Namespace: rt.namespace, Name: ref.Service}] = struct{}{}
	addrs, problem, err := resolveAddrs(ctx, src, rt.namespace, ref)
	if err != nil {
		return nil, err
	}
	if problem != "" {
		t.problems = append(t.problems, fmt.Sprintf("TrafficRoute %s/%s: %s", rt.namespace, rt.name, problem))
	}
	bk := backendKey{rt.namespace, ref.Service, ref.Port}
	ok := observerKey{rt.namespace, rt.name, ref.Service}
	b := &backend{
		service: ref.Service,
		port:    ref.Port,
		rr:      carry(next.rr, g.state.rr, bk, func() *atomic.Uint64 { return new(atomic.Uint64) }),
		obs:     carry(next.observers, g.state.observers, ok, func() *backendMetrics { return g.metrics.newBackendMetrics(ok) }),
		targets: make([]*target, len(addrs)),
	}
	for i, a := range addrs {
		b.targets[i] = &target{addr: a, proxy: carry(next.proxies, g.state.proxies, a, func() *httputil.ReverseProxy { return g.newProxy(a) })}
		if !g.opts.DisableFastPath {
			b.targets[i].pool = carry(next.pools, g.state.pools, a, func() *connPool { return g.newConnPool(a) })
		}
	}
	return b, nil
}

// carry returns next[k], else prev[k], else a new value, and keeps it in next.
func carry[K comparable, V any](next, prev map[K]V, k K, create func() V) V {
	if v, ok := next[k]; ok {
		return v
	}
	v, ok := prev[k]
	if !ok {
		v = create()
	}
	next[k] = v
	return v
}

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

// Serve serves the proxy on proxyLn and the admin handler on adminLn until ctx is
// done (or a listener fails), then drains: /readyz turns 503, the proxy keeps
// serving for ShutdownDelay, then stops accepting and waits up to DrainTimeout
// for the requests in flight. It closes both listeners.
//
// Request framing is checked before net/http parses it (package framing):
// an ambiguous or malformed request (both Content-Length and
// Transfer-Encoding, Transfer-Encoding on HTTP/1.0, obs-fold, bare LF, …) is
// refused with 400 and its connection closed, and counted by reason.
//
// The proxy's clients are bounded: at most MaxClientConns connections
// (accepting waits beyond), request heads of MaxRequestHeaderBytes (431
// beyond), ReadHeaderTimeout to send a head, ClientBodyTimeout between reads
// of a body, ClientSendTimeout between writes, IdleTimeout between requests.
func (g *Gateway) Serve(ctx context.Context, proxyLn, adminLn net.Listener) error {
	logger := logr.FromContextOrDiscard(ctx)
	base := context.WithoutCancel(ctx) // requests in flight outlive ctx while draining
	errLog := log.New(logWriter{logger}, "", 0)
	newServer := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler:           h,
			ReadHeaderTimeout: g.opts.ReadHeaderTimeout,
			IdleTimeout:       g.opts.IdleTimeout,
			MaxHeaderBytes:    g.opts.MaxRequestHeaderBytes,
			ErrorLog:          errLog,
			BaseContext:       func(net.Listener) context.Context { return base },
		}
	}
	proxy, admin := newServer(g), newServer(g.AdminHandler())
	proxyLn = framing.NewListener(newLimitListener(proxyLn, g.opts.MaxClientConns), framing.Options{
		MaxHeadBytes: g.opts.MaxRequestHeaderBytes + 4096, // net/http's slack
		OnRefuse:     func(_ net.Conn, reason error) { g.metrics.refused.WithLabelValues(refusedReason(reason)).Inc() },
	})
	errc := make(chan error, 2)
	serve := func(s *http.Server, ln net.Listener, name string) {
		if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serve %s on %s: %w", name, ln.Addr(), err)
			return
		}
		errc <- nil
	}
	go serve(proxy, proxyLn, "proxy")
	go serve(admin, adminLn, "metrics")
	logger.Info("gateway serving", "http", proxyLn.Addr().String(), "metrics", adminLn.Addr().String())

	pending := 2
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
	for _, s := range []*http.Server{proxy, admin} { // proxy first: metrics stay up while it drains
		if e := s.Shutdown(sctx); e != nil {
			logger.Info("drain timeout exceeded, closing connections", "error", e.Error())
			_ = s.Close()
		}
	}
	for ; pending > 0; pending-- {
		err = errors.Join(err, <-errc)
	}
	g.transport.CloseIdleConnections()
	g.mu.Lock()
	for _, p := range g.state.pools {
		p.closeIdle()
	}
	g.mu.Unlock()
	logger.Info("gateway stopped")
	return err
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
