package gateway

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// What the gateway logs on its own (through the logger of the context it is
// given): start and stop, the first sync, every change of the routing table
// (a route added, removed or changed, one not fully served and why), the
// drain, backend failures (at most one line per endpoint every
// failureLogInterval, with how many were left out), and, when enabled, a
// sampled access log.

// failureLogInterval is the least time between two failure lines of one
// backend endpoint.
const failureLogInterval = 10 * time.Second

// failureLog rate-limits the failure lines of each backend endpoint.
type failureLog struct {
	mu sync.Mutex
	// byAddr: when the endpoint's last line was written, and the failures
	// since then that were not.
	byAddr map[string]*failureCount
}

type failureCount struct {
	last       time.Time
	suppressed int
}

// backendFailed logs a failure of a request sent to addr (of Service
// service), unless one of addr was logged less than failureLogInterval ago.
func (g *Gateway) backendFailed(r *http.Request, service, addr string, err error) {
	now := time.Now()
	f := &g.failures
	f.mu.Lock()
	if f.byAddr == nil {
		f.byAddr = map[string]*failureCount{}
	}
	c := f.byAddr[addr]
	if c == nil {
		c = &failureCount{}
		f.byAddr[addr] = c
	}
	if !c.last.IsZero() && now.Sub(c.last) < failureLogInterval {
		c.suppressed++
		f.mu.Unlock()
		return
	}
	suppressed := c.suppressed
	c.last, c.suppressed = now, 0
	f.mu.Unlock()
	logr.FromContextOrDiscard(r.Context()).Info("backend request failed",
		"host", r.Host, "service", service, "endpoint", addr, "error", err.Error(),
		"notLoggedSinceLast", suppressed)
}

// accessLog writes one line per sampled request (AccessLog, every
// AccessLogSample-th request).
func (g *Gateway) accessLog(r *http.Request, b *backend, code int, d time.Duration) {
	if !g.opts.AccessLog || g.accessN.Add(1)%uint64(g.opts.AccessLogSample) != 0 {
		return
	}
	// The request's strings may be those of an event loop's buffer, valid
	// only until the exchange ends: a sink may keep what it is given.
	logr.FromContextOrDiscard(r.Context()).Info("request",
		"method", strings.Clone(r.Method), "host", strings.Clone(r.Host), "path", strings.Clone(r.URL.Path), "code", code,
		"namespace", b.obs.key.namespace, "app", b.obs.key.app, "service", b.service,
		"duration", d.Seconds(), "client", r.RemoteAddr)
}

// logTableChanges logs what changed from table old (nil before the first)
// to t: routes added, removed, and changed (weight, backends, endpoints).
func logTableChanges(logger logr.Logger, old, t *Table) {
	var before map[string]*route
	if old != nil {
		before = old.routes
	}
	hosts := make([]string, 0, len(t.routes))
	for h := range t.routes {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	for _, h := range hosts {
		rt := t.routes[h]
		prev, ok := before[h]
		switch {
		case !ok:
			logger.Info("route added", routeKeys(rt)...)
		case prev.namespace != rt.namespace || prev.name != rt.name:
			logger.Info("route replaced", append(routeKeys(rt), "previous", prev.namespace+"/"+prev.name)...)
		case summary(prev) != summary(rt):
			logger.Info("route changed", append(routeKeys(rt), "previousWeight", prev.weight,
				"previousStableEndpoints", len(prev.stable.targets), "previousCanaryEndpoints", endpoints(prev.canary))...)
		}
	}
	for h, prev := range before {
		if _, ok := t.routes[h]; !ok {
			logger.Info("route removed", "host", h, "trafficRoute", prev.namespace+"/"+prev.name)
		}
	}
}

func routeKeys(rt *route) []any {
	kv := []any{"host", rt.host, "trafficRoute", rt.namespace + "/" + rt.name,
		"stable", rt.stable.service, "stableEndpoints", len(rt.stable.targets)}
	if rt.canary != nil {
		kv = append(kv, "canary", rt.canary.service, "canaryEndpoints", len(rt.canary.targets), "weight", rt.weight)
	}
	if len(rt.predicates) > 0 {
		kv = append(kv, "predicates", len(rt.predicates))
	}
	return kv
}

// summary is what a change of makes a route worth a log line.
type routeSummary struct {
	stable, canary                   string
	stableEndpoints, canaryEndpoints int
	weight                           int32
	predicates                       int
}

func summary(rt *route) routeSummary {
	s := routeSummary{stable: rt.stable.service, stableEndpoints: len(rt.stable.targets), weight: rt.weight, predicates: len(rt.predicates)}
	if rt.canary != nil {
		s.canary, s.canaryEndpoints = rt.canary.service, len(rt.canary.targets)
	}
	return s
}

func endpoints(b *backend) int {
	if b == nil {
		return 0
	}
	return len(b.targets)
}
