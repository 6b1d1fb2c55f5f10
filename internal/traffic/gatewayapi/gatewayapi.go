// Package gatewayapi is the Router for Gateway API implementations (Envoy
// Gateway, Istio, Cilium, NGINX Gateway Fabric, ...): it writes one
// gateway.networking.k8s.io/v1 HTTPRoute (standard channel) per application.
//
// # The HTTPRoute
//
// The route is named after the application (Key.App) in the application's
// namespace and labelled app.kubernetes.io/managed-by=fledge and
// fledge.dev/app=<app>. Its spec is
//
//	parentRefs: Config.ParentRefs               (e.g. --gateway-api-parent=infra/public/https)
//	hostnames:  [Host]                          (lowercased)
//	rules:
//	- name: fledge-canary-match                 only with a canary and predicates
//	  matches:                                  ONE match: its headers and query
//	  - path: {type: PathPrefix, value: /}      parameters are AND'ed, like the
//	    headers: [...]                          predicates (several matches
//	    queryParams: [...]                      would be OR'ed)
//	  backendRefs: [{canary, weight: 100}]
//	- name: fledge-split
//	  matches: [{path: {type: PathPrefix, value: /}}]
//	  backendRefs: [{stable, weight: 100-w}, {canary, weight: w}]
//
// Without a canary the split rule has the stable backend alone (weight 100).
// With a canary at weight 0 (or 100) both backends stay listed, one of them
// with weight 0, so that Observe reads the canary back. The match rule wins
// over the split rule because a match with more header (or query) matches
// takes precedence, and because it comes first. Backends are Services
// (group "", kind Service) in the route's namespace; every default the
// API server would fill in is written explicitly so that the stored object
// compares equal to the wanted one.
//
// # Predicates
//
// Header and query parameter predicates become HTTPHeaderMatch and
// HTTPQueryParamMatch entries. Gateway API regular expressions are
// implementation specific: Envoy-based gateways match the whole value
// (Envoy's safe_regex), others may search it as fledge's predicates do, so
// fledge writes expressions that mean the same under both readings:
//
//   - Exact V:             type Exact, value V;
//   - RegularExpression R: type RegularExpression, value ".*(R).*" (R
//     unanchored, as everywhere in fledge);
//   - Present:             type RegularExpression, value ".*" (Gateway API
//     has no presence match; a header or query match never matches a request
//     without the name). Because of the wrapping above, ".*" is never the
//     encoding of a RegularExpression predicate, so Present reads back
//     unambiguously;
//   - Cookie name Exact V: a RegularExpression on the Cookie header,
//     ^(.*;[ \t]*)?NAME=V(;.*)?$ with NAME and V quoted by regexp.QuoteMeta,
//     which matches the pair at the start of the header or after "; ", up to
//     the next ";" or the end;
//   - Cookie name Present: the same with =[^;]* for =V.
//
// Observe parses exactly these forms back. Anything else the API cannot
// express fails Ensure with an error wrapping errors.ErrUnsupported and
// writes nothing: regular expressions on cookies, two predicates on the same
// header or query parameter (a cookie predicate uses the Cookie header, so at
// most one cookie predicate and no Cookie header predicate beside it), names
// that are not HTTP tokens, empty Exact values of headers and query
// parameters, values longer than the CRD allows.
//
// # Owning only what fledge manages
//
// fledge creates the HTTPRoute and refuses to change one it did not create
// (without the managed-by label): ErrNotManaged. On an existing route it
// owns only spec.hostnames, spec.parentRefs, and in its two rules (found by
// name) the matches and backendRefs. Everything else is kept as found:
// labels, annotations, status, other rules (kept after fledge's), and other
// fields of fledge's rules (filters, timeouts, retry, session persistence,
// fields newer than this package), so another controller or a person can add
// e.g. a RequestHeaderModifier filter to the split rule or an external-dns
// annotation. A filter on the match rule lives as long as that rule (while
// the canary has predicates).
//
// Writes are a read-modify-write Update of the unstructured object with its
// resourceVersion as precondition (retried on conflict), under the field
// manager "fledge", and only when the managed fields differ (a second
// identical Ensure does not write). Server-side apply was considered and
// rejected: the HTTPRoute CRD declares rules, hostnames and parentRefs as
// atomic lists, so an apply of the rules takes ownership of the whole list;
// an apply forced over another manager's filter would delete it on every
// reconcile (the fight GitOps users dread), and an unforced one would fail
// with a conflict as soon as anybody touched a rule. Working on the
// unstructured object also keeps fields unknown to this package's Go types.
//
// For GitOps tools: best let fledge create the route and keep it out of Git;
// Argo CD and Flux neither diff nor prune objects they do not track, and the
// labels or annotations they (or anything else) add survive. A route that
// must be in Git needs the managed-by=fledge label, and the tool must leave
// spec.rules to fledge: Argo CD with ignoreDifferences on /spec/rules and the
// RespectIgnoreDifferences=true sync option; Flux (which applies with force)
// only with the annotation kustomize.toolkit.fluxcd.io/ssa: IfNotPresent, so
// that it creates the route and never applies it again.
//
// # Read-back
//
// Observe reads the route through the Router's client (which should go to
// the API server, not a cache) and converts its spec back; a rule not in fledge's form is an error, not a guess. The
// canary weight is the canary's share of the split rule's weights in percent
// (exact for what fledge writes).
//
// Observe also reads what the implementation says of the route in
// status.parents: when, for one of the route's parents and for its current
// generation, a condition Accepted or ResolvedRefs is False, the route is not
// served as written, and Observe returns an error with the implementation's
// reason and message (ErrNotAccepted). Parents the implementation has not
// reported on yet, and conditions of an older generation, are not an error:
// the read-back is then the spec alone.
package gatewayapi

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/fledge-dev/fledge/internal/traffic"
)

// Labels fledge puts on every HTTPRoute it creates, and its field manager.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "fledge"
	LabelApp       = "fledge.dev/app"
	FieldManager   = "fledge"
)

// Names of the rules fledge manages in its HTTPRoutes.
const (
	RuleCanaryMatch = "fledge-canary-match"
	RuleSplit       = "fledge-split"
)

// ErrNotManaged is wrapped by Ensure when the application's HTTPRoute exists
// but was not created by fledge.
var ErrNotManaged = errors.New("exists and is not managed by fledge")

// ErrNotAccepted is wrapped by Observe when the Gateway API implementation
// reports, in status.parents, that it does not accept or cannot resolve the
// application's HTTPRoute.
var ErrNotAccepted = errors.New("not accepted by the gateway")

// GroupVersionKind of the objects this package writes.
var GroupVersionKind = gatewayv1.SchemeGroupVersion.WithKind("HTTPRoute")

// Config configures a Router.
type Config struct {
	// ParentRefs are the Gateways (or their listeners) every HTTPRoute attaches
	// to; at least one. See ParseParentRef. For an application whose
	// annotation overrides them, use a Router made with that Config (a Router
	// is a client and a Config, cheap to make per call).
	ParentRefs []gatewayv1.ParentReference
}

// Router implements traffic.Router with HTTPRoutes. It is safe for concurrent
// use, also with other Routers on the same routes: writes are guarded by the
// routes' resourceVersions.
type Router struct {
	c          client.Client
	parentRefs []any // JSON values of Config.ParentRefs, defaults filled in
}

var _ traffic.Router = (*Router)(nil)

var errNoParent = errors.New("no parent reference (which Gateway should the HTTPRoutes attach to?)")

// NewRemover returns a Router that knows no parent Gateway: it observes and
// removes HTTPRoutes, and its Ensure fails. The controller uses it for an
// application whose Gateway references are invalid, whose traffic it holds.
func NewRemover(c client.Client) *Router { return &Router{c: c} }

// New returns a Router that reads and writes HTTPRoutes through c. The client
// needs no scheme for Gateway API types (objects are handled unstructured)
// and should read from the API server, not a cache. It needs get, create,
// update and delete on httproutes.gateway.networking.k8s.io.
func New(c client.Client, cfg Config) (*Router, error) {
	if len(cfg.ParentRefs) == 0 {
		return nil, fmt.Errorf("gateway api router: %w", errNoParent)
	}
	g := &Router{c: c}
	for i, ref := range cfg.ParentRefs {
		ref := *ref.DeepCopy()
		if ref.Name == "" {
			return nil, fmt.Errorf("gateway api router: parent reference %d has no name", i+1)
		}
		// The CRD's defaults, written out so that what is stored compares equal.
		if ref.Group == nil {
			ref.Group = ptr.To(gatewayv1.Group(gatewayv1.GroupName))
		}
		if ref.Kind == nil {
			ref.Kind = ptr.To(gatewayv1.Kind("Gateway"))
		}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&ref)
		if err != nil {
			return nil, fmt.Errorf("gateway api router: parent reference %d: %w", i+1, err)
		}
		g.parentRefs = append(g.parentRefs, u)
	}
	return g, nil
}

// wanted is the part of an HTTPRoute's spec fledge manages.
type wanted struct {
	hostnames  []any
	parentRefs []any
	rules      []map[string]any // fledge's rules, in order: name, matches, backendRefs
}

func (g *Router) want(r traffic.Route) (wanted, error) {
	if err := r.Validate(); err != nil {
		return wanted{}, err
	}
	rules, err := rulesFor(r)
	if err != nil {
		return wanted{}, err
	}
	w := wanted{hostnames: []any{strings.ToLower(r.Host)}, parentRefs: runtime.DeepCopyJSONValue(g.parentRefs).([]any)}
	for i := range rules {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&rules[i])
		if err != nil {
			return wanted{}, err
		}
		w.rules = append(w.rules, u)
	}
	return w, nil
}

func rulesFor(r traffic.Route) ([]gatewayv1.HTTPRouteRule, error) {
	every := []gatewayv1.HTTPRouteMatch{{Path: rootPath()}}
	if r.Canary == nil {
		return []gatewayv1.HTTPRouteRule{{
			Name: ptr.To(gatewayv1.SectionName(RuleSplit)), Matches: every,
			BackendRefs: []gatewayv1.HTTPBackendRef{backendRef(r.Stable, 100)},
		}}, nil
	}
	var rules []gatewayv1.HTTPRouteRule
	if len(r.Match) > 0 {
		m, err := encodeMatch(r.Match)
		if err != nil {
			return nil, err
		}
		rules = append(rules, gatewayv1.HTTPRouteRule{
			Name: ptr.To(gatewayv1.SectionName(RuleCanaryMatch)), Matches: []gatewayv1.HTTPRouteMatch{m},
			BackendRefs: []gatewayv1.HTTPBackendRef{backendRef(*r.Canary, 100)},
		})
	}
	return append(rules, gatewayv1.HTTPRouteRule{
		Name: ptr.To(gatewayv1.SectionName(RuleSplit)), Matches: every,
		BackendRefs: []gatewayv1.HTTPBackendRef{backendRef(r.Stable, 100-r.CanaryWeight), backendRef(*r.Canary, r.CanaryWeight)},
	}), nil
}

func backendRef(b traffic.Backend, weight int32) gatewayv1.HTTPBackendRef {
	return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
		BackendObjectReference: gatewayv1.BackendObjectReference{
			Group: ptr.To(gatewayv1.Group("")),
			Kind:  ptr.To(gatewayv1.Kind("Service")),
			Name:  gatewayv1.ObjectName(b.Service),
			Port:  ptr.To(b.Port),
		},
		Weight: ptr.To(weight),
	}}
}

func newObject() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(GroupVersionKind)
	return u
}

func objectKey(k traffic.Key) client.ObjectKey {
	return client.ObjectKey{Namespace: k.Namespace, Name: k.App}
}

func owned(u *unstructured.Unstructured) bool {
	return u.GetLabels()[LabelManagedBy] == ManagedBy
}

// Ensure creates the application's HTTPRoute or updates the fields fledge
// manages in it. It writes nothing when they already say r.
func (g *Router) Ensure(ctx context.Context, r traffic.Route) error {
	if len(g.parentRefs) == 0 {
		return fmt.Errorf("httproute %s: %w", r.Key, errNoParent)
	}
	w, err := g.want(r)
	if err != nil {
		return fmt.Errorf("httproute %s: %w", r.Key, err)
	}
	retriable := func(err error) bool { return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) }
	return retry.OnError(retry.DefaultRetry, retriable, func() error { return g.ensure(ctx, r.Key, w) })
}

func (g *Router) ensure(ctx context.Context, key traffic.Key, w wanted) error {
	log := logf.FromContext(ctx)
	u := newObject()
	err := g.c.Get(ctx, objectKey(key), u)
	switch {
	case apierrors.IsNotFound(err):
		u = newObject()
		u.SetNamespace(key.Namespace)
		u.SetName(key.App)
		u.SetLabels(map[string]string{LabelManagedBy: ManagedBy, LabelApp: key.App})
		u.Object["spec"] = merge(nil, w)
		if err := g.c.Create(ctx, u, client.FieldOwner(FieldManager)); err != nil {
			return fmt.Errorf("creating httproute %s: %w", key, err)
		}
		log.Info("Created HTTPRoute", "httproute", klog.KObj(u))
		return nil
	case err != nil:
		return fmt.Errorf("reading httproute %s: %w", key, err)
	}
	if !owned(u) {
		return fmt.Errorf("httproute %s %w (label %s=%s missing): refusing to change it", key, ErrNotManaged, LabelManagedBy, ManagedBy)
	}
	spec, _ := u.Object["spec"].(map[string]any)
	next := merge(spec, w)
	if reflect.DeepEqual(spec, next) {
		return nil
	}
	u.Object["spec"] = next
	if err := g.c.Update(ctx, u, client.FieldOwner(FieldManager)); err != nil {
		return fmt.Errorf("updating httproute %s: %w", key, err)
	}
	log.Info("Updated HTTPRoute", "httproute", klog.KObj(u))
	return nil
}

// merge returns a copy of spec with the fields fledge manages set to w:
// hostnames, parentRefs, and fledge's rules (first, in w's order; of each
// only name, matches and backendRefs are set, other fields of an existing
// rule of that name are kept), followed by the other rules as they were.
func merge(spec map[string]any, w wanted) map[string]any {
	out := map[string]any{}
	if spec != nil {
		out = runtime.DeepCopyJSONValue(spec).(map[string]any)
	}
	out["hostnames"] = runtime.DeepCopyJSONValue(w.hostnames)
	out["parentRefs"] = runtime.DeepCopyJSONValue(w.parentRefs)
	old, _ := out["rules"].([]any)
	byName := map[string]map[string]any{}
	var others []any
	for _, r := range old {
		rule, ok := r.(map[string]any)
		name, _ := rule["name"].(string)
		if ok && (name == RuleSplit || name == RuleCanaryMatch) {
			if _, dup := byName[name]; !dup {
				byName[name] = rule
			}
			continue
		}
		others = append(others, r)
	}
	var rules []any
	for _, want := range w.rules {
		rule := byName[want["name"].(string)]
		if rule == nil {
			rule = map[string]any{}
		}
		for _, field := range []string{"name", "matches", "backendRefs"} {
			rule[field] = runtime.DeepCopyJSONValue(want[field])
		}
		rules = append(rules, rule)
	}
	out["rules"] = append(rules, others...)
	return out
}

// Observe reads the application's HTTPRoute back from the API server.
func (g *Router) Observe(ctx context.Context, key traffic.Key) (traffic.Route, error) {
	u := newObject()
	if err := g.c.Get(ctx, objectKey(key), u); err != nil {
		if apierrors.IsNotFound(err) {
			return traffic.Route{}, fmt.Errorf("httproute %s: %w", key, traffic.ErrNotFound)
		}
		return traffic.Route{}, fmt.Errorf("reading httproute %s: %w", key, err)
	}
	if !owned(u) {
		return traffic.Route{}, fmt.Errorf("httproute %s is not managed by fledge: %w", key, traffic.ErrNotFound)
	}
	var hr gatewayv1.HTTPRoute
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &hr); err != nil {
		return traffic.Route{}, fmt.Errorf("decoding httproute %s: %w", key, err)
	}
	r, err := routeOf(key, &hr.Spec)
	if err != nil {
		return traffic.Route{}, fmt.Errorf("httproute %s: %w", key, err)
	}
	if msg := rejection(&hr); msg != "" {
		return traffic.Route{}, fmt.Errorf("httproute %s: %w: %s", key, ErrNotAccepted, msg)
	}
	return r, nil
}

// rejection says why the implementation does not serve hr as written: the
// Accepted=False or ResolvedRefs=False conditions of hr's current generation
// for its parents, in status.parents order; "" when there is none.
func rejection(hr *gatewayv1.HTTPRoute) string {
	var msgs []string
	for _, ps := range hr.Status.Parents {
		if !slices.ContainsFunc(hr.Spec.ParentRefs, func(ref gatewayv1.ParentReference) bool {
			return sameParent(ref, ps.ParentRef, hr.Namespace)
		}) {
			continue
		}
		for _, c := range ps.Conditions {
			if c.ObservedGeneration != hr.Generation || c.Status != metav1.ConditionFalse ||
				(c.Type != string(gatewayv1.RouteConditionAccepted) && c.Type != string(gatewayv1.RouteConditionResolvedRefs)) {
				continue
			}
			msgs = append(msgs, fmt.Sprintf("parent %s (%s): %s=False (%s): %s",
				parentName(ps.ParentRef, hr.Namespace), ps.ControllerName, c.Type, c.Reason, c.Message))
		}
	}
	return strings.Join(msgs, "; ")
}

// sameParent reports whether two parent references name the same parent,
// with the API's defaults (group gateway.networking.k8s.io, kind Gateway,
// the route's namespace).
func sameParent(a, b gatewayv1.ParentReference, ns string) bool {
	group := func(r gatewayv1.ParentReference) gatewayv1.Group {
		return ptr.Deref(r.Group, gatewayv1.GroupName)
	}
	kind := func(r gatewayv1.ParentReference) gatewayv1.Kind { return ptr.Deref(r.Kind, "Gateway") }
	namespace := func(r gatewayv1.ParentReference) gatewayv1.Namespace {
		return ptr.Deref(r.Namespace, gatewayv1.Namespace(ns))
	}
	return group(a) == group(b) && kind(a) == kind(b) && namespace(a) == namespace(b) && a.Name == b.Name &&
		ptr.Deref(a.SectionName, "") == ptr.Deref(b.SectionName, "") && ptr.Deref(a.Port, 0) == ptr.Deref(b.Port, 0)
}

func parentName(r gatewayv1.ParentReference, ns string) string {
	s := string(ptr.Deref(r.Namespace, gatewayv1.Namespace(ns))) + "/" + string(r.Name)
	if r.SectionName != nil {
		s += "/" + string(*r.SectionName)
	}
	return s
}

// routeOf is the inverse of rulesFor (and the hostnames).
func routeOf(key traffic.Key, spec *gatewayv1.HTTPRouteSpec) (traffic.Route, error) {
	r := traffic.Route{Key: key}
	if len(spec.Hostnames) != 1 {
		return r, fmt.Errorf("%d hostnames %v: fledge writes exactly one", len(spec.Hostnames), spec.Hostnames)
	}
	r.Host = string(spec.Hostnames[0])
	var split, match *gatewayv1.HTTPRouteRule
	for i := range spec.Rules {
		rule := &spec.Rules[i]
		switch deref(rule.Name) {
		case RuleSplit:
			if split != nil {
				return r, fmt.Errorf("two rules named %s", RuleSplit)
			}
			split = rule
		case RuleCanaryMatch:
			if match != nil {
				return r, fmt.Errorf("two rules named %s", RuleCanaryMatch)
			}
			match = rule
		}
	}
	if split == nil {
		return r, fmt.Errorf("no rule named %s", RuleSplit)
	}
	if err := everyRequest(split); err != nil {
		return r, fmt.Errorf("rule %s: %w", RuleSplit, err)
	}
	refs := split.BackendRefs
	switch len(refs) {
	case 1:
		b, weight, err := backendOf(key, refs[0])
		if err != nil {
			return r, fmt.Errorf("rule %s: %w", RuleSplit, err)
		}
		if weight == 0 {
			return r, fmt.Errorf("rule %s: its only backend %s has weight 0", RuleSplit, b.Service)
		}
		r.Stable = b
	case 2:
		stable, sw, err := backendOf(key, refs[0])
		if err != nil {
			return r, fmt.Errorf("rule %s: stable: %w", RuleSplit, err)
		}
		canary, cw, err := backendOf(key, refs[1])
		if err != nil {
			return r, fmt.Errorf("rule %s: canary: %w", RuleSplit, err)
		}
		if sw+cw == 0 {
			return r, fmt.Errorf("rule %s: both backends have weight 0", RuleSplit)
		}
		r.Stable, r.Canary = stable, &canary
		r.CanaryWeight = int32((100*cw + (sw+cw)/2) / (sw + cw))
	default:
		return r, fmt.Errorf("rule %s has %d backends: fledge writes the stable one and at most a canary", RuleSplit, len(refs))
	}
	if match == nil {
		return r, nil
	}
	if r.Canary == nil {
		return r, fmt.Errorf("rule %s without a canary in rule %s", RuleCanaryMatch, RuleSplit)
	}
	if len(match.BackendRefs) != 1 {
		return r, fmt.Errorf("rule %s has %d backends: fledge writes the canary alone", RuleCanaryMatch, len(match.BackendRefs))
	}
	b, weight, err := backendOf(key, match.BackendRefs[0])
	switch {
	case err != nil:
		return r, fmt.Errorf("rule %s: %w", RuleCanaryMatch, err)
	case b != *r.Canary:
		return r, fmt.Errorf("rule %s sends to %s:%d, the canary of rule %s is %s:%d", RuleCanaryMatch, b.Service, b.Port, RuleSplit, r.Canary.Service, r.Canary.Port)
	case weight == 0:
		return r, fmt.Errorf("rule %s: the canary has weight 0", RuleCanaryMatch)
	case len(match.Matches) != 1:
		return r, fmt.Errorf("rule %s has %d matches: fledge writes one", RuleCanaryMatch, len(match.Matches))
	}
	ps, err := decodeMatch(match.Matches[0])
	if err != nil {
		return r, fmt.Errorf("rule %s: %w", RuleCanaryMatch, err)
	}
	if len(ps) == 0 {
		return r, fmt.Errorf("rule %s matches every request", RuleCanaryMatch)
	}
	r.Match = ps
	return r, nil
}

// everyRequest checks that a rule matches every request, as the split rule does.
func everyRequest(rule *gatewayv1.HTTPRouteRule) error {
	for _, m := range rule.Matches {
		ps, err := decodeMatch(m)
		if err != nil {
			return err
		}
		if len(ps) > 0 {
			return errors.New("matches only some requests: fledge's split rule matches every request")
		}
	}
	return nil
}

// backendOf reads a backendRef fledge wrote: a Service port in the route's
// namespace, and its weight (1 when unset, the CRD's default).
func backendOf(key traffic.Key, ref gatewayv1.HTTPBackendRef) (traffic.Backend, int64, error) {
	o := ref.BackendObjectReference
	switch {
	case deref(o.Group) != "" || o.Kind != nil && *o.Kind != "Service":
		return traffic.Backend{}, 0, fmt.Errorf("backend %s is a %s.%s, not a Service", o.Name, deref(o.Kind), deref(o.Group))
	case o.Namespace != nil && string(*o.Namespace) != key.Namespace:
		return traffic.Backend{}, 0, fmt.Errorf("backend %s is in namespace %s, not the route's", o.Name, *o.Namespace)
	case o.Port == nil:
		return traffic.Backend{}, 0, fmt.Errorf("backend %s has no port", o.Name)
	}
	weight := int64(1)
	if ref.Weight != nil {
		weight = int64(*ref.Weight)
	}
	return traffic.Backend{Service: string(o.Name), Port: *o.Port}, weight, nil
}

// Remove deletes the application's HTTPRoute if fledge created it; one it did
// not create is left alone.
func (g *Router) Remove(ctx context.Context, key traffic.Key) error {
	u := newObject()
	if err := g.c.Get(ctx, objectKey(key), u); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading httproute %s: %w", key, err)
	}
	if !owned(u) {
		return nil
	}
	uid := u.GetUID()
	if err := g.c.Delete(ctx, u, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting httproute %s: %w", key, err)
	}
	logf.FromContext(ctx).Info("Deleted HTTPRoute", "httproute", klog.KObj(u))
	return nil
}
