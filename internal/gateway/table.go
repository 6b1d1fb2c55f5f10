package gateway

import (
	"crypto/tls"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/types"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// Table is one immutable routing table. Its methods are safe for concurrent use.
type Table struct {
	// routes by normalized host.
	routes map[string]*route
	// services the table depends on (referenced by a served route, found or not).
	services map[types.NamespacedName]struct{}
	// problems found while building, sorted; each names its object.
	problems []string
	// skipped counts TrafficRoutes not served.
	skipped int
	// certs are the certificates of the routes with TLS, by normalized host;
	// defaultCert serves other server names (nil: the handshake fails).
	// rejectedSecrets counts the TLS Secrets that could not be used.
	certs           map[string]*tls.Certificate
	defaultCert     *tls.Certificate
	rejectedSecrets int
}

// route is the compiled routing of one host.
type route struct {
	// namespace and name of the TrafficRoute.
	namespace, name string
	// host is the normalized host served.
	host string
	// stable always exists; canary is nil without a canary.
	stable, canary *backend
	// weight is the canary weight, 0..100.
	weight int32
	// match are the compiled predicates; predicates as written.
	match      []matcher
	predicates []fledgev1.Predicate
	// split numbers the requests not matched; nil without a canary.
	split *split
	// tlsSecret is the Secret of the host's certificate, "" without TLS.
	tlsSecret string
}

// split is a route's weighted sequence. It lives on across table rebuilds while
// its weight and canary are unchanged.
type split struct {
	// weight and canary ("service:port") the sequence belongs to.
	weight int32
	canary string
	// n counts the requests split so far.
	n atomic.Uint64
}

// next reports whether the next request goes to the canary: request n does iff
// floor((k+1)w/100) > floor(kw/100) with k = n mod 100, which puts exactly w
// canary requests, evenly spread, in any 100 consecutive requests.
func (s *split) next() bool {
	w := uint64(s.weight)
	switch {
	case w == 0:
		return false
	case w >= 100:
		return true
	}
	k := (s.n.Add(1) - 1) % 100
	return (k+1)*w/100 > k*w/100
}

// pick chooses the backend of one request.
func (rt *route) pick(r *http.Request) *backend {
	if rt.canary == nil {
		return rt.stable
	}
	if matchAll(rt.match, r) || rt.split.next() {
		return rt.canary
	}
	return rt.stable
}

// other returns the route's other backend than b (stable for the canary and
// the reverse), nil without a canary.
func (rt *route) other(b *backend) *backend {
	switch {
	case rt.canary == nil:
		return nil
	case b == rt.canary:
		return rt.stable
	}
	return rt.canary
}

// backend is one Service port of a route, resolved to its endpoints.
type backend struct {
	// service and port as referenced by the TrafficRoute.
	service string
	port    int32
	// h2c: the Service port speaks HTTP/2 cleartext (appProtocol
	// kubernetes.io/h2c).
	h2c bool
	// targets are the ready endpoints, sorted by address.
	targets []*target
	// rr is the round-robin counter, shared by routes using the same Service port
	// and kept across rebuilds.
	rr *atomic.Uint64
	// obs records the requests sent to this backend by this route.
	obs *backendMetrics
}

// next returns the target of the next request, nil when there is none.
func (b *backend) next() *target {
	switch len(b.targets) {
	case 0:
		return nil
	case 1:
		return b.targets[0]
	}
	return b.targets[(b.rr.Add(1)-1)%uint64(len(b.targets))]
}

// target is one endpoint address ("host:port"), the proxy sending to it and
// the fast path's connection pool to it (nil when the fast path is disabled).
type target struct {
	// addr is "host:port"; proxy sends to it (over HTTP/2 cleartext when
	// the backend is h2c); pool is the fast path's, nil when not taken.
	addr  string
	proxy *httputil.ReverseProxy
	pool  *connPool
	// inflight counts the requests being sent to addr (by every route),
	// bounded by Options.MaxEndpointRequests; it lives across rebuilds.
	inflight *atomic.Int64
}

// lookup returns the route serving a request Host, nil when there is none.
func (t *Table) lookup(host string) *route {
	return t.routes[normalizeHost(host)]
}

// dependsOn reports whether the table uses the Service namespace/name.
func (t *Table) dependsOn(namespace, name string) bool {
	_, ok := t.services[types.NamespacedName{Namespace: namespace, Name: name}]
	return ok
}

// Problems returns what the build found wrong: skipped routes, missing Services,
// backends without ready endpoints. Each names its object.
func (t *Table) Problems() []string { return slices.Clone(t.problems) }

// RouteInfo is the routing served for one host, as read back from a Table.
type RouteInfo struct {
	Namespace    string               `json:"namespace"`
	Name         string               `json:"name"`
	Host         string               `json:"host"`
	Stable       BackendInfo          `json:"stable"`
	Canary       *BackendInfo         `json:"canary,omitempty"`
	CanaryWeight int32                `json:"canaryWeight"`
	Match        []fledgev1.Predicate `json:"match,omitempty"`
	// TLSSecret is the Secret whose certificate serves the host over HTTPS.
	TLSSecret string `json:"tlsSecret,omitempty"`
}

// BackendInfo is a backend as served: its Service port and ready endpoints.
type BackendInfo struct {
	Service string   `json:"service"`
	Port    int32    `json:"port"`
	Targets []string `json:"targets"`
	// H2C: requests go to the backend over HTTP/2 cleartext.
	H2C bool `json:"h2c,omitempty"`
}

// Lookup returns the routing served for a request Host.
func (t *Table) Lookup(host string) (RouteInfo, bool) {
	rt := t.lookup(host)
	if rt == nil {
		return RouteInfo{}, false
	}
	return rt.info(), true
}

// Routes returns the routing served, sorted by host.
func (t *Table) Routes() []RouteInfo {
	out := make([]RouteInfo, 0, len(t.routes))
	for _, rt := range t.routes {
		out = append(out, rt.info())
	}
	slices.SortFunc(out, func(a, b RouteInfo) int { return strings.Compare(a.Host, b.Host) })
	return out
}

func (rt *route) info() RouteInfo {
	ri := RouteInfo{
		Namespace: rt.namespace, Name: rt.name, Host: rt.host,
		Stable: rt.stable.info(), CanaryWeight: rt.weight,
		Match: slices.Clone(rt.predicates), TLSSecret: rt.tlsSecret,
	}
	if rt.canary != nil {
		c := rt.canary.info()
		ri.Canary = &c
	}
	return ri
}

func (b *backend) info() BackendInfo {
	bi := BackendInfo{Service: b.service, Port: b.port, H2C: b.h2c, Targets: make([]string, len(b.targets))}
	for i, tg := range b.targets {
		bi.Targets[i] = tg.addr
	}
	return bi
}

// normalizeHost returns a Host without port and trailing dot, in lower case. It
// allocates only when the host has upper-case letters.
func normalizeHost(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			h = h[1:i]
		}
	} else if i := strings.IndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if 'A' <= h[i] && h[i] <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}
