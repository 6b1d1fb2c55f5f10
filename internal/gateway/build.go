package gateway

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"net/http/httputil"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// Building a routing table: from TrafficRoutes, Services and EndpointSlices
// (a source), into an immutable Table, carrying over from the previous build
// what an unrelated change must not restart (split sequences, round-robin
// positions, proxies, connection pools, metric series).

// Objects are API objects a routing table is built from, as a test writes them.
// Only EndpointSlices labelled kubernetes.io/service-name are used.
type Objects struct {
	TrafficRoutes  []*fledgev1.TrafficRoute
	Services       []*corev1.Service
	EndpointSlices []*discoveryv1.EndpointSlice
	// Secrets are the TLS Secrets the TrafficRoutes name.
	Secrets []*corev1.Secret
}

// source is where a table build reads API objects: an informer cache or Objects.
// Returned objects are read-only.
type source interface {
	// trafficRoutes lists every TrafficRoute; the caller may reorder the slice.
	trafficRoutes(ctx context.Context) ([]*fledgev1.TrafficRoute, error)
	// service returns the Service, or nil when there is none.
	service(ctx context.Context, namespace, name string) (*corev1.Service, error)
	// endpointSlices lists the EndpointSlices of a Service.
	endpointSlices(ctx context.Context, namespace, service string) ([]*discoveryv1.EndpointSlice, error)
	// secret returns the Secret, or nil when there is none; an error says
	// why it cannot be read ("cannot be read: …"), and skips what needs it.
	secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
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
	certs     map[types.NamespacedName]*parsedCert
	inflight  map[string]*atomic.Int64
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
		certs:     map[types.NamespacedName]*parsedCert{},
		inflight:  map[string]*atomic.Int64{},
	}
}

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
		certs:    map[string]*tls.Certificate{},
	}
	next := newBuildState()
	if g.defaultTLS.Name != "" {
		cert, problem := g.loadCert(ctx, src, g.defaultTLS.Namespace, g.defaultTLS.Name, &next)
		if problem != "" {
			t.problems = append(t.problems, "default certificate: "+problem)
		}
		t.defaultCert = cert
	}
	for _, tr := range trs {
		if err := g.addRoute(ctx, src, t, tr, &next); err != nil {
			return nil, err
		}
	}
	slices.Sort(t.problems)
	for _, pc := range next.certs {
		if pc.problem != "" {
			t.rejectedSecrets++ // each Secret once, however many routes name it
		}
	}

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
	g.metrics.tlsCertificates.Set(float64(len(t.certs)))
	g.metrics.tlsRejected.Set(float64(t.rejectedSecrets))
	for _, p := range t.problems {
		next.problems[p] = struct{}{}
		if _, seen := g.state.problems[p]; !seen {
			logger.Info("route not fully served", "problem", p)
		}
	}
	logTableChanges(logger, g.table.Load(), t)
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
	var cert *tls.Certificate
	if spec.TLS != nil {
		var problem string
		if cert, problem = g.loadCert(ctx, src, tr.Namespace, spec.TLS.SecretName, next); problem != "" {
			skip("%s", problem)
			return nil
		}
	}
	rt := &route{
		namespace: tr.Namespace, name: tr.Name, host: host,
		match: ms, predicates: slices.Clone(spec.Match),
	}
	if cert != nil {
		rt.tlsSecret = spec.TLS.SecretName
		t.certs[host] = cert
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
	addrs, h2c, problem, err := resolveAddrs(ctx, src, rt.namespace, ref)
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
		h2c:     h2c,
		rr:      carry(next.rr, g.state.rr, bk, func() *atomic.Uint64 { return new(atomic.Uint64) }),
		obs:     carry(next.observers, g.state.observers, ok, func() *backendMetrics { return g.metrics.newBackendMetrics(ok) }),
		targets: make([]*target, len(addrs)),
	}
	for i, a := range addrs {
		inflight := carry(next.inflight, g.state.inflight, a, func() *atomic.Int64 { return new(atomic.Int64) })
		if h2c { // HTTP/2 cleartext: ReverseProxy over the h2c Transport only
			b.targets[i] = &target{addr: a, inflight: inflight, proxy: carry(next.proxies, g.state.proxies, "h2c://"+a, func() *httputil.ReverseProxy { return g.newH2CProxy(a) })}
			continue
		}
		b.targets[i] = &target{addr: a, inflight: inflight, proxy: carry(next.proxies, g.state.proxies, a, func() *httputil.ReverseProxy { return g.newProxy(a) })}
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

// olderFirst orders TrafficRoutes by creationTimestamp, then namespace/name: the
// first one claiming a host serves it.
func olderFirst(a, b *fledgev1.TrafficRoute) int {
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// validateRoute checks what the CRD schema may not have caught: a host the
// gateway can serve (see normalizeHost), then the spec's own rules.
func validateRoute(spec *fledgev1.TrafficRouteSpec) error {
	if normalizeHost(spec.Host) == "" {
		return fmt.Errorf("empty host %q", spec.Host)
	}
	return spec.Validate()
}

// resolveAddrs returns the sorted, distinct "host:port" targets of a backend,
// whether they speak HTTP/2 cleartext (the Service port's appProtocol is
// kubernetes.io/h2c), and a problem when there are none.
func resolveAddrs(ctx context.Context, src source, namespace string, ref fledgev1.BackendRef) ([]string, bool, string, error) {
	addrs, appProtocol, problem, err := resolveService(ctx, src, namespace, ref)
	return addrs, appProtocol == appProtocolH2C, problem, err
}

// appProtocolH2C is the Service port appProtocol of HTTP/2 over cleartext
// (prior knowledge), as Kubernetes standardises it.
const appProtocolH2C = "kubernetes.io/h2c"

// resolveService is resolveAddrs, with the Service port's appProtocol.
func resolveService(ctx context.Context, src source, namespace string, ref fledgev1.BackendRef) ([]string, string, string, error) {
	svc, err := src.service(ctx, namespace, ref.Service)
	if err != nil {
		return nil, "", "", fmt.Errorf("get Service %s/%s: %w", namespace, ref.Service, err)
	}
	if svc == nil {
		return nil, "", fmt.Sprintf("Service %s/%s not found", namespace, ref.Service), nil
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		if svc.Spec.ExternalName == "" {
			return nil, "", fmt.Sprintf("Service %s/%s: ExternalName without externalName", namespace, ref.Service), nil
		}
		return []string{net.JoinHostPort(svc.Spec.ExternalName, strconv.Itoa(int(ref.Port)))}, externalAppProtocol(svc, ref.Port), "", nil
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == ref.Port {
			sp = &svc.Spec.Ports[i]
			break
		}
	}
	if sp == nil {
		return nil, "", fmt.Sprintf("Service %s/%s has no port %d", namespace, ref.Service, ref.Port), nil
	}
	if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
		return nil, "", fmt.Sprintf("Service %s/%s port %d is %s, not TCP", namespace, ref.Service, ref.Port, sp.Protocol), nil
	}
	var family discoveryv1.AddressType
	if len(svc.Spec.IPFamilies) > 0 {
		family = discoveryv1.AddressType(svc.Spec.IPFamilies[0])
	}
	eps, err := src.endpointSlices(ctx, namespace, ref.Service)
	if err != nil {
		return nil, "", "", fmt.Errorf("list EndpointSlices of Service %s/%s: %w", namespace, ref.Service, err)
	}
	var addrs []string
	for _, es := range eps {
		if es.AddressType != discoveryv1.AddressTypeIPv4 && es.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		if family != "" && es.AddressType != family {
			continue
		}
		port := slicePort(es, sp.Name)
		if port == "" {
			continue
		}
		for i := range es.Endpoints {
			ep := &es.Endpoints[i]
			if !endpointReady(ep) || len(ep.Addresses) == 0 {
				continue
			}
			addrs = append(addrs, net.JoinHostPort(ep.Addresses[0], port))
		}
	}
	slices.Sort(addrs)
	addrs = slices.Compact(addrs) // an endpoint may be in two slices for a moment
	if len(addrs) == 0 {
		return nil, "", fmt.Sprintf("Service %s/%s port %d has no ready endpoint", namespace, ref.Service, ref.Port), nil
	}
	appProtocol := ""
	if sp.AppProtocol != nil {
		appProtocol = *sp.AppProtocol
	}
	return addrs, appProtocol, "", nil
}

// externalAppProtocol is the appProtocol of an ExternalName Service's port,
// when it lists it.
func externalAppProtocol(svc *corev1.Service, port int32) string {
	for _, p := range svc.Spec.Ports {
		if p.Port == port && p.AppProtocol != nil {
			return *p.AppProtocol
		}
	}
	return ""
}

// slicePort returns the TCP port number of the slice's port called name, "" when
// it has none.
func slicePort(es *discoveryv1.EndpointSlice, name string) string {
	for _, p := range es.Ports {
		pname := ""
		if p.Name != nil {
			pname = *p.Name
		}
		if pname != name || p.Port == nil || *p.Port <= 0 {
			continue
		}
		if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			continue
		}
		return strconv.Itoa(int(*p.Port))
	}
	return ""
}

// endpointReady is what an ingress controller sends traffic to: ready unset or
// true, and not terminating.
func endpointReady(ep *discoveryv1.Endpoint) bool {
	c := ep.Conditions
	return (c.Ready == nil || *c.Ready) && (c.Terminating == nil || !*c.Terminating)
}

// objectsSource serves Objects as a source.
type objectsSource struct {
	objs     Objects
	services map[types.NamespacedName]*corev1.Service
	slices   map[types.NamespacedName][]*discoveryv1.EndpointSlice
}

func newObjectsSource(objs Objects) *objectsSource {
	s := &objectsSource{
		objs:     objs,
		services: make(map[types.NamespacedName]*corev1.Service, len(objs.Services)),
		slices:   make(map[types.NamespacedName][]*discoveryv1.EndpointSlice),
	}
	for _, svc := range objs.Services {
		s.services[types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}] = svc
	}
	for _, es := range objs.EndpointSlices {
		if name := es.Labels[discoveryv1.LabelServiceName]; name != "" {
			k := types.NamespacedName{Namespace: es.Namespace, Name: name}
			s.slices[k] = append(s.slices[k], es)
		}
	}
	return s
}

func (s *objectsSource) trafficRoutes(context.Context) ([]*fledgev1.TrafficRoute, error) {
	return slices.Clone(s.objs.TrafficRoutes), nil
}

func (s *objectsSource) service(_ context.Context, namespace, name string) (*corev1.Service, error) {
	return s.services[types.NamespacedName{Namespace: namespace, Name: name}], nil
}

func (s *objectsSource) secret(_ context.Context, namespace, name string) (*corev1.Secret, error) {
	for _, sec := range s.objs.Secrets {
		if sec.Namespace == namespace && sec.Name == name {
			return sec, nil
		}
	}
	return nil, nil
}

func (s *objectsSource) endpointSlices(_ context.Context, namespace, service string) ([]*discoveryv1.EndpointSlice, error) {
	return s.slices[types.NamespacedName{Namespace: namespace, Name: service}], nil
}
