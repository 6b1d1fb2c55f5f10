// Package apisix is the traffic.Router for Apache APISIX, driven through the
// Admin API v3.
//
// For each application (traffic.Key) it keeps, all labelled managed-by=fledge
// and fledge-app=<namespace>.<app>:
//
//   - one upstream per backend Service port, id UpstreamID(key, backend), with
//     nodes from Config.Resolver (EndpointSliceResolver: the ready endpoints) or, with
//     Config.Discovery, APISIX's Kubernetes discovery;
//   - one route, id RouteID(key), with host = Route.Host, uri "/*", upstream_id
//     = the stable upstream and, while there is a canary, the traffic-split
//     plugin: the predicate rule first, the weighted rule second (see buildSplit
//     and vars.go for the exact JSON).
//
// Writes are ordered so that APISIX never refers to a missing upstream:
// upstreams are PUT before the route that refers to them, and an upstream is
// deleted only after the route stops referring to it (APISIX refuses to delete
// a referenced upstream). Unchanged objects are not written again, so calling
// Ensure twice changes nothing (and does not reset APISIX's round-robin state).
// Objects without fledge's labels are never changed or deleted.
//
// APISIX's Admin API only listens to 127.0.0.0/24 by default: for an in-cluster
// controller widen deployment.admin.allow_admin in APISIX's config.yaml to the
// controller's pod network. Requires APISIX 2.13 or later (earlier releases
// ignore a rule without match after a rule whose match failed, apache/apisix#6288).
package apisix

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"

	"github.com/fledge-dev/fledge/internal/traffic"
)

// ErrNotManaged is returned (wrapped) when an object fledge would write exists
// but was not created by fledge for this application.
var ErrNotManaged = errors.New("object exists and is not managed by fledge for this application")

// ErrInvalidRoute is returned (wrapped) by Ensure for a Route no provider could
// serve (missing host or backend, weight outside 0..100, bad predicate).
var ErrInvalidRoute = errors.New("invalid route")

// Config configures a Router.
type Config struct {
	// BaseURL is the Admin API address, e.g. "http://apisix-admin.apisix.svc:9180".
	// "/apisix/admin" is appended when it has no path. It must not carry
	// credentials or a query.
	BaseURL string
	// APIKey is sent as the X-API-KEY header. Read it from a Secret (see
	// APIKeyFromSecret). It is never logged nor put into errors.
	APIKey string
	// Discovery makes upstreams use APISIX's Kubernetes discovery
	// (service_name "namespace/name:port", discovery_type "kubernetes") instead
	// of nodes; Resolver must then implement PortNamer.
	Discovery bool
	// HTTPClient is used for Admin API calls; a client with a 10s timeout when nil.
	HTTPClient *http.Client
	// Resolver finds upstream nodes (or, with Discovery, port names).
	Resolver Resolver
}

// String describes c without its API key.
func (c Config) String() string {
	key := "<empty>"
	if c.APIKey != "" {
		key = "<redacted>"
	}
	return fmt.Sprintf("apisix.Config{BaseURL: %q, APIKey: %s, Discovery: %t}", c.BaseURL, key, c.Discovery)
}

// GoString is String, so %#v does not print the API key either.
func (c Config) GoString() string { return c.String() }

// MarshalLog keeps the API key out of structured logs (logr.Marshaler).
func (c Config) MarshalLog() any {
	return struct {
		BaseURL   string
		Discovery bool
	}{c.BaseURL, c.Discovery}
}

// Router is the APISIX traffic.Router. It is safe for concurrent use.
type Router struct {
	client    adminClient
	resolver  Resolver
	portNamer PortNamer // non-nil with Discovery
	locks     sync.Map  // traffic.Key -> *sync.Mutex
}

var _ traffic.Router = (*Router)(nil)

// ParseAdminURL parses Config.BaseURL: http(s)://host[:port][/path], without
// credentials, query or fragment; "/apisix/admin" when it has no path.
func ParseAdminURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("apisix: admin URL %q: want http(s)://host[:port][/path]", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("apisix: admin URL must not carry credentials, a query or a fragment (the API key goes in Config.APIKey)")
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/apisix/admin"
	}
	return u, nil
}

// New returns a Router for cfg.
func New(cfg Config) (*Router, error) {
	u, err := ParseAdminURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.APIKey == "" {
		return nil, errors.New("apisix: no admin API key")
	}
	if cfg.Resolver == nil {
		return nil, errors.New("apisix: no resolver")
	}
	r := &Router{resolver: cfg.Resolver}
	if cfg.Discovery {
		pn, ok := cfg.Resolver.(PortNamer)
		if !ok {
			return nil, fmt.Errorf("apisix: discovery needs a resolver that names ports (PortNamer); %T does not", cfg.Resolver)
		}
		r.portNamer = pn
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	r.client = adminClient{base: u, apiKey: cfg.APIKey, http: hc}
	return r, nil
}

func (r *Router) lock(key traffic.Key) func() {
	m, _ := r.locks.LoadOrStore(key, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// Ensure makes APISIX serve route: upstreams first, then the route, then the
// deletion of this application's upstreams the route no longer refers to.
func (r *Router) Ensure(ctx context.Context, route traffic.Route) error {
	key := route.Key
	if err := validate(route); err != nil {
		return fmt.Errorf("apisix: %s: %w", key, err)
	}
	backends := []traffic.Backend{route.Stable}
	if route.Canary != nil && *route.Canary != route.Stable {
		backends = append(backends, *route.Canary)
	}
	stableID := UpstreamID(key, route.Stable)
	var split *trafficSplit
	if route.Canary != nil {
		var err error
		if split, err = buildSplit(route, UpstreamID(key, *route.Canary)); err != nil {
			return fmt.Errorf("apisix: %s: %w", key, err)
		}
	}

	defer r.lock(key)()
	log := logr.FromContextOrDiscard(ctx).WithValues("app", klog.KRef(key.Namespace, key.App))
	routeID := RouteID(key)

	// Gather everything before the first write.
	currentRoute, err := r.getOwned(ctx, kindRoute, routeID, key)
	if err != nil {
		return err
	}
	fields := make([]upstreamFields, len(backends))
	for i, b := range backends {
		if fields[i], err = r.upstreamFields(ctx, key, b); err != nil {
			return fmt.Errorf("apisix: %s: backend %s:%d: %w", key, b.Service, b.Port, err)
		}
	}
	currentUps := make([]object, len(backends))
	for i, b := range backends {
		if currentUps[i], err = r.getOwned(ctx, kindUpstream, UpstreamID(key, b), key); err != nil {
			return err
		}
	}

	keep := map[string]bool{}
	for i, b := range backends {
		id := UpstreamID(key, b)
		keep[id] = true
		next := mergeUpstream(currentUps[i], fields[i])
		if sameObject(currentUps[i], next) {
			continue
		}
		if err := r.client.put(ctx, kindUpstream, id, next); err != nil {
			return err
		}
		log.V(1).Info("Wrote APISIX upstream", "id", id)
	}
	next := mergeRoute(currentRoute, route, stableID, split)
	if !sameObject(currentRoute, next) {
		if err := r.client.put(ctx, kindRoute, routeID, next); err != nil {
			return err
		}
		log.V(1).Info("Wrote APISIX route", "id", routeID, "canaryWeight", route.CanaryWeight, "predicates", len(route.Match))
	}
	return r.deleteUpstreams(ctx, log, key, keep)
}

// Observe reads back what APISIX serves for key.
func (r *Router) Observe(ctx context.Context, key traffic.Key) (traffic.Route, error) {
	routeID := RouteID(key)
	current, err := r.getOwned(ctx, kindRoute, routeID, key)
	if err != nil {
		return traffic.Route{}, err
	}
	if current == nil {
		return traffic.Route{}, fmt.Errorf("apisix: %s: %s: %w", key, kindRoute.object(routeID), traffic.ErrNotFound)
	}
	st, err := readRoute(current)
	if err != nil {
		return traffic.Route{}, fmt.Errorf("apisix: %s: %s: %w", key, kindRoute.object(routeID), err)
	}
	if st.Disabled {
		return traffic.Route{}, fmt.Errorf("apisix: %s: %s is disabled (status 0): %w", key, kindRoute.object(routeID), traffic.ErrNotFound)
	}
	out := traffic.Route{Key: key, Host: st.Host, CanaryWeight: st.Weight, Match: st.Match}
	if out.Stable, err = r.backendOf(ctx, key, routeID, st.UpstreamID); err != nil {
		return traffic.Route{}, err
	}
	if st.CanaryID != "" {
		c, err := r.backendOf(ctx, key, routeID, st.CanaryID)
		if err != nil {
			return traffic.Route{}, err
		}
		out.Canary = &c
	}
	return out, nil
}

// Remove deletes the route of key, then its upstreams. Deleting the route drops
// its references (upstream_id and traffic-split) at once, so APISIX accepts the
// upstream deletions that follow.
func (r *Router) Remove(ctx context.Context, key traffic.Key) error {
	defer r.lock(key)()
	log := logr.FromContextOrDiscard(ctx).WithValues("app", klog.KRef(key.Namespace, key.App))
	routeID := RouteID(key)
	current, err := r.getOwned(ctx, kindRoute, routeID, key)
	if err != nil {
		return err
	}
	if current != nil {
		if err := r.client.delete(ctx, kindRoute, routeID); err != nil {
			return err
		}
		log.V(1).Info("Deleted APISIX route", "id", routeID)
	}
	return r.deleteUpstreams(ctx, log, key, nil)
}

// getOwned returns the object, nil when it does not exist, or an error wrapping
// ErrNotManaged when it exists without fledge's labels for key.
func (r *Router) getOwned(ctx context.Context, k kind, id string, key traffic.Key) (object, error) {
	o, err := r.client.get(ctx, k, id)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !ownedBy(labelsOf(o), key) {
		return nil, fmt.Errorf("apisix: %s: %s: %w (want labels %s=%s, %s=%s)", key, k.object(id), ErrNotManaged,
			LabelManagedBy, ManagedByValue, LabelApp, appLabel(key))
	}
	return o, nil
}

// backendOf reads the Service and port of an upstream the route refers to.
func (r *Router) backendOf(ctx context.Context, key traffic.Key, routeID, id string) (traffic.Backend, error) {
	o, err := r.getOwned(ctx, kindUpstream, id, key)
	if err != nil {
		return traffic.Backend{}, err
	}
	if o == nil {
		return traffic.Backend{}, fmt.Errorf("apisix: %s: %s refers to %s, which does not exist (APISIX answers 5xx)",
			key, kindRoute.object(routeID), kindUpstream.object(id))
	}
	labels := labelsOf(o)
	port, err := strconv.ParseInt(labels[LabelPort], 10, 32)
	if labels[LabelService] == "" || err != nil {
		return traffic.Backend{}, fmt.Errorf("apisix: %s: %s has no valid %s/%s labels", key, kindUpstream.object(id), LabelService, LabelPort)
	}
	return traffic.Backend{Service: labels[LabelService], Port: int32(port)}, nil
}

// upstreamFields resolves what the upstream of b must contain.
func (r *Router) upstreamFields(ctx context.Context, key traffic.Key, b traffic.Backend) (upstreamFields, error) {
	f := upstreamFields{
		Name:   b.Service + ":" + strconv.Itoa(int(b.Port)),
		Labels: upstreamLabels(key, b),
	}
	if r.portNamer != nil {
		port, err := r.portNamer.DiscoveryPort(ctx, key.Namespace, b.Service, b.Port)
		if err != nil {
			return upstreamFields{}, err
		}
		f.ServiceName = key.Namespace + "/" + b.Service + ":" + port
		f.DiscoveryType = discoveryKubernetes
		return f, nil
	}
	nodes, err := r.resolver.Nodes(ctx, key.Namespace, b.Service, b.Port)
	if err != nil {
		return upstreamFields{}, err
	}
	if len(nodes) == 0 {
		return upstreamFields{}, ErrNoEndpoints
	}
	for _, n := range nodes {
		if n.Host == "" || n.Port < 1 || n.Port > 65535 || n.Weight < 0 {
			return upstreamFields{}, fmt.Errorf("resolver returned invalid node %+v", n)
		}
	}
	f.Nodes = nodesMap(nodes)
	return f, nil
}

// deleteUpstreams deletes every upstream labelled for key whose id is not in keep.
func (r *Router) deleteUpstreams(ctx context.Context, log logr.Logger, key traffic.Key, keep map[string]bool) error {
	all, err := r.client.list(ctx, kindUpstream)
	if err != nil {
		return err
	}
	var errs []error
	for _, u := range all {
		if keep[u.ID] || !ownedBy(labelsOf(u.Value), key) {
			continue
		}
		if err := r.client.delete(ctx, kindUpstream, u.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		log.V(1).Info("Deleted APISIX upstream", "id", u.ID)
	}
	return errors.Join(errs...)
}

var (
	// hostRE is APISIX's host pattern without the leading wildcard.
	hostRE = regexp.MustCompile(`^[0-9A-Za-z._-]+$`)
	// serviceRE: Service names (DNS-1035 labels), which are also valid label values.
	serviceRE = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)
)

// validate rejects routes before anything is written: invalid ones
// (traffic.Route.Validate), and those APISIX cannot serve as fledge writes
// them.
func validate(r traffic.Route) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("%w: %w", err, ErrInvalidRoute)
	}
	if !hostRE.MatchString(r.Host) {
		return fmt.Errorf("host %q: want letters, digits, '.', '-' or '_': %w", r.Host, ErrInvalidRoute)
	}
	if err := validateService("stable", r.Stable); err != nil {
		return err
	}
	if r.Canary == nil {
		if r.CanaryWeight != 0 || len(r.Match) > 0 {
			return fmt.Errorf("canary weight %d and %d predicates without a canary backend: %w", r.CanaryWeight, len(r.Match), ErrInvalidRoute)
		}
		return nil
	}
	if err := validateService("canary", *r.Canary); err != nil {
		return err
	}
	for _, p := range r.Match {
		if _, err := encodeVar(p); err != nil {
			return err
		}
	}
	return nil
}

// validateService refuses backends that are not Service names: they become
// upstream ids and labels.
func validateService(role string, b traffic.Backend) error {
	if !serviceRE.MatchString(b.Service) {
		return fmt.Errorf("%s service %q: want a Service name: %w", role, b.Service, ErrInvalidRoute)
	}
	return nil
}
