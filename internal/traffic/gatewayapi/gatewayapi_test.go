package gatewayapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/testenv"
	"github.com/fledge-dev/fledge/internal/traffic"
	"github.com/fledge-dev/fledge/internal/traffic/gatewayapi"
	"github.com/fledge-dev/fledge/internal/traffic/routertest"
)

var (
	env *testenv.Env
	// kube is an admin client that knows the Gateway API types: it plays the
	// other users of the HTTPRoutes and inspects them.
	kube client.WithWatch
)

// TestMain starts one real kube-apiserver with fledge's and the standard
// Gateway API CRDs for the package.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var err error
	env, err = testenv.Start(ctx, testenv.Options{GatewayAPI: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting control plane:", err)
		return 1
	}
	defer env.Stop()
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), gatewayv1.Install(scheme)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if kube, err = client.NewWithWatch(env.Config, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

var publicGateway = mustParentRef("infra/public/https")

func mustParentRef(s string) gatewayv1.ParentReference {
	ref, err := gatewayapi.ParseParentRef(s)
	if err != nil {
		panic(err)
	}
	return ref
}

// testClient is a client of the test API server that fails every call while
// broken and counts the writes that reach the API server.
type testClient struct {
	broken atomic.Bool
	writes atomic.Int64
}

// newRouter returns a Router on a fresh testClient (tc may be nil). The client
// has client-go's scheme only: the Router needs none for HTTPRoutes.
func newRouter(t *testing.T, tc *testClient, parents ...gatewayv1.ParentReference) *gatewayapi.Router {
	t.Helper()
	if tc == nil {
		tc = new(testClient)
	}
	if parents == nil {
		parents = []gatewayv1.ParentReference{publicGateway}
	}
	c, err := client.NewWithWatch(env.Config, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	r, err := gatewayapi.New(tc.wrap(c), gatewayapi.Config{ParentRefs: parents})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (tc *testClient) wrap(c client.WithWatch) client.WithWatch {
	return testenv.Breakable(c, tc.broken.Load, func() { tc.writes.Add(1) })
}

// TestConformance runs the shared suite; every predicate kind it publishes is
// supported (cookies through the Cookie header, Present through ".*").
func TestConformance(t *testing.T) {
	routertest.Run(t, routertest.Harness{New: func(t *testing.T) *routertest.Instance {
		ns := env.Namespace(t, "gatewayapi")
		tc := new(testClient)
		return &routertest.Instance{
			Router:    newRouter(t, tc),
			Namespace: ns,
			Objects: func(ctx context.Context) ([]string, error) {
				var list gatewayv1.HTTPRouteList
				if err := kube.List(ctx, &list, client.InNamespace(ns)); err != nil {
					return nil, err
				}
				var names []string
				for _, hr := range list.Items {
					names = append(names, hr.Namespace+"/"+hr.Name)
				}
				return names, nil
			},
			Snapshot: func(ctx context.Context, key traffic.Key) (string, error) { return snapshot(ctx, key) },
			Break:    func() { tc.broken.Store(true) },
			Repair:   func() { tc.broken.Store(false) },
		}
	}})
}

func getRoute(ctx context.Context, key traffic.Key) (*gatewayv1.HTTPRoute, error) {
	var hr gatewayv1.HTTPRoute
	if err := kube.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: key.App}, &hr); err != nil {
		return nil, err
	}
	return &hr, nil
}

// snapshot dumps the app's HTTPRoute (name, resourceVersion, labels,
// annotations, spec); "" when there is none.
func snapshot(ctx context.Context, key traffic.Key) (string, error) {
	hr, err := getRoute(ctx, key)
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	dump := struct {
		Name            string                  `json:"name"`
		ResourceVersion string                  `json:"resourceVersion"`
		Labels          map[string]string       `json:"labels"`
		Annotations     map[string]string       `json:"annotations"`
		Spec            gatewayv1.HTTPRouteSpec `json:"spec"`
	}{hr.Namespace + "/" + hr.Name, hr.ResourceVersion, hr.Labels, hr.Annotations, hr.Spec}
	b, err := json.MarshalIndent(dump, "", "  ")
	return string(b), err
}

func mustSnapshot(t *testing.T, key traffic.Key) string {
	t.Helper()
	s, err := snapshot(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustGet(t *testing.T, key traffic.Key) *gatewayv1.HTTPRoute {
	t.Helper()
	hr, err := getRoute(t.Context(), key)
	if err != nil {
		t.Fatalf("reading httproute %s: %v", key, err)
	}
	return hr
}

func mustEnsure(t *testing.T, r traffic.Router, route traffic.Route) {
	t.Helper()
	if err := r.Ensure(t.Context(), route); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
}

func mustServe(t *testing.T, r traffic.Router, want traffic.Route) {
	t.Helper()
	got, err := r.Observe(t.Context(), want.Key)
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	if d := routertest.Equal(got, want); d != "" {
		t.Errorf("Observe differs from what was set:\n%s", d)
	}
}

var debugHeader = fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: "X-Debug", Match: fledgev1.MatchExact, Value: "1"}

func webRoute(ns string, weight int32, match ...fledgev1.Predicate) traffic.Route {
	c := routertest.CanaryBackend
	return traffic.Route{
		Key: traffic.Key{Namespace: ns, App: "web"}, Host: "web.example.test",
		Stable: routertest.StableBackend, Canary: &c, CanaryWeight: weight, Match: match,
	}
}

func rule(t *testing.T, hr *gatewayv1.HTTPRoute, name string) *gatewayv1.HTTPRouteRule {
	t.Helper()
	for i := range hr.Spec.Rules {
		if r := &hr.Spec.Rules[i]; r.Name != nil && string(*r.Name) == name {
			return r
		}
	}
	t.Fatalf("httproute %s/%s has no rule %s: %+v", hr.Namespace, hr.Name, name, hr.Spec.Rules)
	return nil
}

// TestWrittenObject pins the HTTPRoute fledge writes, as the API server
// stores it: the documented shape, with nothing defaulted behind fledge's back.
func TestWrittenObject(t *testing.T) {
	ns := env.Namespace(t, "gatewayapi-shape")
	route := webRoute(ns, 30, debugHeader)
	route.Host = "Web.Example.TEST"
	mustEnsure(t, newRouter(t, nil), route)
	hr := mustGet(t, route.Key)

	if hr.Labels[gatewayapi.LabelManagedBy] != "fledge" || hr.Labels[gatewayapi.LabelApp] != "web" {
		t.Errorf("labels = %v; want managed-by=fledge and fledge.dev/app=web", hr.Labels)
	}
	spec, err := json.Marshal(hr.Spec)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"parentRefs":[{"group":"gateway.networking.k8s.io","kind":"Gateway","namespace":"infra","name":"public","sectionName":"https"}],` +
		`"hostnames":["web.example.test"],"rules":[` +
		`{"name":"fledge-canary-match","matches":[{"path":{"type":"PathPrefix","value":"/"},"headers":[{"type":"Exact","name":"X-Debug","value":"1"}]}],` +
		`"backendRefs":[{"group":"","kind":"Service","name":"web-canary","port":8080,"weight":100}]},` +
		`{"name":"fledge-split","matches":[{"path":{"type":"PathPrefix","value":"/"}}],` +
		`"backendRefs":[{"group":"","kind":"Service","name":"web-stable","port":8080,"weight":70},{"group":"","kind":"Service","name":"web-canary","port":8080,"weight":30}]}]}`
	if string(spec) != want {
		t.Errorf("stored spec:\n%s\nwant:\n%s", spec, want)
	}
	var mine []string
	for _, mf := range hr.ManagedFields {
		mine = append(mine, mf.Manager+"/"+string(mf.Operation))
	}
	if !slices.Contains(mine, gatewayapi.FieldManager+"/"+string(metav1.ManagedFieldsOperationUpdate)) {
		t.Errorf("managedFields managers = %v; want fledge's writes recorded under %q", mine, gatewayapi.FieldManager)
	}
}

// TestEveryEncodingIsAccepted publishes predicates beyond the suite's through
// the real CRD validation and reads them back.
func TestEveryEncodingIsAccepted(t *testing.T) {
	cases := []struct {
		name  string
		match []fledgev1.Predicate
	}{
		{"cookie present", []fledgev1.Predicate{{Type: fledgev1.PredicateCookie, Name: "beta", Match: fledgev1.MatchPresent}}},
		{"cookie with regular expression characters", []fledgev1.Predicate{{Type: fledgev1.PredicateCookie, Name: "a.b$c|d", Value: "x+y=(z)*[1]"}}},
		{"cookie with empty value", []fledgev1.Predicate{{Type: fledgev1.PredicateCookie, Name: "canary", Value: ""}}},
		{"query present", []fledgev1.Predicate{{Type: fledgev1.PredicateQuery, Name: "debug", Match: fledgev1.MatchPresent}}},
		{"query regular expression", []fledgev1.Predicate{{Type: fledgev1.PredicateQuery, Name: "v", Match: fledgev1.MatchRegularExpression, Value: "^2\\.[0-9]+$"}}},
		{"header regular expression that is .*", []fledgev1.Predicate{{Type: fledgev1.PredicateHeader, Name: "X-Any", Match: fledgev1.MatchRegularExpression, Value: ".*"}}},
		{"header present beside header regular expression", []fledgev1.Predicate{
			{Type: fledgev1.PredicateHeader, Name: "X-Canary", Match: fledgev1.MatchPresent},
			{Type: fledgev1.PredicateHeader, Name: "User-Agent", Match: fledgev1.MatchRegularExpression, Value: "(?i)firefox|chrome"},
		}},
		{"header on Cookie without cookie predicates", []fledgev1.Predicate{{Type: fledgev1.PredicateHeader, Name: "Cookie", Match: fledgev1.MatchRegularExpression, Value: "session="}}},
		{"every kind at once", []fledgev1.Predicate{
			{Type: fledgev1.PredicateHeader, Name: "X-A", Value: "1"},
			{Type: fledgev1.PredicateHeader, Name: "X-B", Match: fledgev1.MatchPresent},
			{Type: fledgev1.PredicateCookie, Name: "c", Match: fledgev1.MatchPresent},
			{Type: fledgev1.PredicateQuery, Name: "q", Value: "1"},
			{Type: fledgev1.PredicateQuery, Name: "r", Match: fledgev1.MatchPresent},
		}},
	}
	ns := env.Namespace(t, "gatewayapi-encodings")
	r := newRouter(t, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			route := webRoute(ns, 10, tc.match...)
			mustEnsure(t, r, route)
			mustServe(t, r, route)
		})
	}
}

// TestUnsupportedLeavesRouteUnchanged: what Gateway API cannot express fails
// with errors.ErrUnsupported before anything is written.
func TestUnsupportedLeavesRouteUnchanged(t *testing.T) {
	cases := []struct {
		name  string
		match []fledgev1.Predicate
	}{
		{"cookie regular expression", []fledgev1.Predicate{{Type: fledgev1.PredicateCookie, Name: "beta", Match: fledgev1.MatchRegularExpression, Value: "^y"}}},
		{"two cookies", []fledgev1.Predicate{
			{Type: fledgev1.PredicateCookie, Name: "a", Value: "1"},
			{Type: fledgev1.PredicateCookie, Name: "b", Value: "2"},
		}},
		{"the same header twice, in any case", []fledgev1.Predicate{
			{Type: fledgev1.PredicateHeader, Name: "X-Tenant", Value: "a"},
			{Type: fledgev1.PredicateHeader, Name: "x-tenant", Match: fledgev1.MatchPresent},
		}},
		{"query name that is not a token", []fledgev1.Predicate{{Type: fledgev1.PredicateQuery, Name: "filter[id]", Value: "1"}}},
	}
	ns := env.Namespace(t, "gatewayapi-unsupported")
	r := newRouter(t, nil)
	good := webRoute(ns, 10, debugHeader)
	mustEnsure(t, r, good)
	before := mustSnapshot(t, good.Key)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := r.Ensure(t.Context(), webRoute(ns, 10, tc.match...))
			if !errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("Ensure = %v; want an error wrapping errors.ErrUnsupported", err)
			}
			if after := mustSnapshot(t, good.Key); after != before {
				t.Errorf("the route changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// TestOthersFieldsSurvive: what another user adds to fledge's HTTPRoute
// (labels, annotations, a filter and a timeout on fledge's rules, a rule of
// their own) survives Ensure, and does not make Ensure write when fledge's
// fields already say the route.
func TestOthersFieldsSurvive(t *testing.T) {
	ns := env.Namespace(t, "gatewayapi-others")
	tc := new(testClient)
	r := newRouter(t, tc)
	route := webRoute(ns, 10, debugHeader)
	mustEnsure(t, r, route)

	// Someone else edits the route, as kubectl edit or another controller would.
	hr := mustGet(t, route.Key)
	metav1.SetMetaDataLabel(&hr.ObjectMeta, "team", "payments")
	metav1.SetMetaDataAnnotation(&hr.ObjectMeta, "external-dns.alpha.kubernetes.io/ttl", "60")
	filter := gatewayv1.HTTPRouteFilter{
		Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier,
		RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{
			Set: []gatewayv1.HTTPHeader{{Name: "X-Served-By", Value: "fledge-route"}},
		},
	}
	split := rule(t, hr, gatewayapi.RuleSplit)
	split.Filters = append(split.Filters, filter)
	timeout := gatewayv1.Duration("5s")
	rule(t, hr, gatewayapi.RuleCanaryMatch).Timeouts = &gatewayv1.HTTPRouteTimeouts{Request: &timeout}
	legacy := gatewayv1.HTTPRouteRule{
		Name: ptr(gatewayv1.SectionName("legacy")),
		Matches: []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{
			Type: ptr(gatewayv1.PathMatchPathPrefix), Value: ptr("/legacy"),
		}}},
		BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{
			Name: "legacy", Port: ptr(gatewayv1.PortNumber(80)),
		}}}},
	}
	hr.Spec.Rules = append(hr.Spec.Rules, legacy)
	if err := kube.Update(t.Context(), hr, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatalf("someone else's update: %v", err)
	}
	edited := mustSnapshot(t, route.Key)

	// An identical Ensure writes nothing (not even an update the API server
	// would find to be a no-op).
	tc.writes.Store(0)
	mustEnsure(t, r, route)
	if n := tc.writes.Load(); n != 0 {
		t.Errorf("identical Ensure after someone else's edit sent %d writes; want none", n)
	}
	if after := mustSnapshot(t, route.Key); after != edited {
		t.Errorf("identical Ensure after someone else's edit changed the route:\nbefore:\n%s\nafter:\n%s", edited, after)
	}
	mustServe(t, r, route)

	// A real change keeps their fields.
	changed := webRoute(ns, 50, fledgev1.Predicate{Type: fledgev1.PredicateCookie, Name: "canary", Value: "always"})
	mustEnsure(t, r, changed)
	mustServe(t, r, changed)
	hr = mustGet(t, route.Key)
	if hr.Labels["team"] != "payments" || hr.Labels[gatewayapi.LabelManagedBy] != "fledge" {
		t.Errorf("labels = %v; want theirs and fledge's", hr.Labels)
	}
	if hr.Annotations["external-dns.alpha.kubernetes.io/ttl"] != "60" {
		t.Errorf("annotations = %v; want theirs kept", hr.Annotations)
	}
	if got := rule(t, hr, gatewayapi.RuleSplit).Filters; len(got) != 1 || got[0].RequestHeaderModifier == nil ||
		got[0].RequestHeaderModifier.Set[0] != filter.RequestHeaderModifier.Set[0] {
		t.Errorf("split rule filters = %+v; want their RequestHeaderModifier kept", got)
	}
	if got := rule(t, hr, gatewayapi.RuleCanaryMatch).Timeouts; got == nil || got.Request == nil || *got.Request != timeout {
		t.Errorf("match rule timeouts = %+v; want their request timeout kept", got)
	}
	if got := rule(t, hr, "legacy"); got.Matches[0].Path.Value == nil || *got.Matches[0].Path.Value != "/legacy" || got.BackendRefs[0].Name != "legacy" {
		t.Errorf("their rule = %+v; want it kept as written", got)
	}
	if names := ruleNames(hr); !slices.Equal(names, []string{gatewayapi.RuleCanaryMatch, gatewayapi.RuleSplit, "legacy"}) {
		t.Errorf("rules = %v; want fledge's first, then theirs", names)
	}

	// Dropping the predicates drops fledge's match rule, and only it.
	noMatch := webRoute(ns, 50)
	mustEnsure(t, r, noMatch)
	mustServe(t, r, noMatch)
	if names := ruleNames(mustGet(t, route.Key)); !slices.Equal(names, []string{gatewayapi.RuleSplit, "legacy"}) {
		t.Errorf("rules = %v; want fledge's split rule and theirs", names)
	}
}

func ruleNames(hr *gatewayv1.HTTPRoute) []string {
	var names []string
	for _, r := range hr.Spec.Rules {
		names = append(names, string(ptrValue(r.Name)))
	}
	return names
}

// TestForeignHTTPRouteIsRefused: an HTTPRoute of the application's name that
// fledge did not create is neither changed, read back nor deleted.
func TestForeignHTTPRouteIsRefused(t *testing.T) {
	ns := env.Namespace(t, "gatewayapi-foreign")
	foreign := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web", Labels: map[string]string{"app.kubernetes.io/managed-by": "argocd"}},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "theirs"}}},
			Hostnames:       []gatewayv1.Hostname{"web.example.test"},
			Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
				BackendObjectReference: gatewayv1.BackendObjectReference{Name: "theirs", Port: ptr(gatewayv1.PortNumber(80))},
			}}}}},
		},
	}
	if err := kube.Create(t.Context(), foreign); err != nil {
		t.Fatal(err)
	}
	route := webRoute(ns, 10, debugHeader)
	before := mustSnapshot(t, route.Key)
	r := newRouter(t, nil)

	err := r.Ensure(t.Context(), route)
	if !errors.Is(err, gatewayapi.ErrNotManaged) || !strings.Contains(err.Error(), "app.kubernetes.io/managed-by=fledge") {
		t.Errorf("Ensure over a foreign HTTPRoute = %v; want ErrNotManaged naming the missing label", err)
	}
	if _, err := r.Observe(t.Context(), route.Key); !errors.Is(err, traffic.ErrNotFound) {
		t.Errorf("Observe of a foreign HTTPRoute = %v; want traffic.ErrNotFound", err)
	}
	if err := r.Remove(t.Context(), route.Key); err != nil {
		t.Errorf("Remove of a foreign HTTPRoute = %v; want nil (nothing of fledge's to remove)", err)
	}
	if after := mustSnapshot(t, route.Key); after != before {
		t.Errorf("the foreign HTTPRoute changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestReadBackAndRepair: Observe reports what the route says after someone
// else changed fledge's fields, a route fledge cannot read is an error, and
// Ensure restores fledge's fields.
func TestReadBackAndRepair(t *testing.T) {
	ns := env.Namespace(t, "gatewayapi-repair")
	r := newRouter(t, nil)
	route := webRoute(ns, 10)
	mustEnsure(t, r, route)

	hr := mustGet(t, route.Key)
	refs := rule(t, hr, gatewayapi.RuleSplit).BackendRefs
	*refs[0].Weight, *refs[1].Weight = 1, 3 // someone "fixes" the weights by hand
	hr.Spec.ParentRefs = []gatewayv1.ParentReference{{Name: "elsewhere"}}
	if err := kube.Update(t.Context(), hr); err != nil {
		t.Fatal(err)
	}
	got, err := r.Observe(t.Context(), route.Key)
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	if got.CanaryWeight != 75 {
		t.Errorf("Observe after weights 1:3 = canary weight %d; want 75 (what is served)", got.CanaryWeight)
	}

	mustEnsure(t, r, route)
	mustServe(t, r, route)
	hr = mustGet(t, route.Key)
	if len(hr.Spec.ParentRefs) != 1 || hr.Spec.ParentRefs[0].Name != "public" {
		t.Errorf("parentRefs after Ensure = %+v; want the configured infra/public/https", hr.Spec.ParentRefs)
	}

	// A split rule sending to a third backend is not something fledge guesses at.
	split := rule(t, hr, gatewayapi.RuleSplit)
	split.BackendRefs = append(split.BackendRefs, split.BackendRefs[0])
	if err := kube.Update(t.Context(), hr); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Observe(t.Context(), route.Key); err == nil || errors.Is(err, traffic.ErrNotFound) {
		t.Errorf("Observe of a split rule with 3 backends = %v; want an error that is not ErrNotFound", err)
	}
	mustEnsure(t, r, route)
	mustServe(t, r, route)
}

// TestParentRefsFollowConfig: a Router made with other parents (a new flag
// value, or an application's override) moves the route.
func TestParentRefsFollowConfig(t *testing.T) {
	ns := env.Namespace(t, "gatewayapi-parents")
	route := webRoute(ns, 10)
	mustEnsure(t, newRouter(t, nil), route)

	internal := gatewayv1.ParentReference{Name: "internal"} // group, kind and namespace left to their defaults
	moved := newRouter(t, nil, internal, mustParentRef("infra/public/http"))
	mustEnsure(t, moved, route)
	hr := mustGet(t, route.Key)
	got, err := json.Marshal(hr.Spec.ParentRefs)
	if err != nil {
		t.Fatal(err)
	}
	const want = `[{"group":"gateway.networking.k8s.io","kind":"Gateway","name":"internal"},` +
		`{"group":"gateway.networking.k8s.io","kind":"Gateway","namespace":"infra","name":"public","sectionName":"http"}]`
	if string(got) != want {
		t.Errorf("parentRefs = %s; want %s", got, want)
	}
	rv := hr.ResourceVersion
	mustEnsure(t, moved, route)
	if hr := mustGet(t, route.Key); hr.ResourceVersion != rv {
		t.Errorf("second Ensure with defaulted parent fields wrote (resourceVersion %s -> %s)", rv, hr.ResourceVersion)
	}
}

func TestNewNeedsAParent(t *testing.T) {
	if _, err := gatewayapi.New(kube, gatewayapi.Config{}); err == nil {
		t.Error("New without parent references succeeded; want an error")
	}
	if _, err := gatewayapi.New(kube, gatewayapi.Config{ParentRefs: []gatewayv1.ParentReference{{}}}); err == nil {
		t.Error("New with a parent reference without a name succeeded; want an error")
	}
}

func ptr[T any](v T) *T { return &v }

func ptrValue[T any](p *T) T {
	var zero T
	if p != nil {
		return *p
	}
	return zero
}

// TestIdenticalEnsureSendsNoWrite: fledge compares before writing, for every
// shape of route, rather than relying on the API server to drop no-op updates.
func TestIdenticalEnsureSendsNoWrite(t *testing.T) {
	ns := env.Namespace(t, "gatewayapi-nowrite")
	stableOnly := webRoute(ns, 0)
	stableOnly.Canary = nil
	routes := map[string]traffic.Route{
		"stable only":     stableOnly,
		"canary at 0":     webRoute(ns, 0),
		"canary at 100":   webRoute(ns, 100),
		"header and host": func() traffic.Route { r := webRoute(ns, 5, debugHeader); r.Host = "WEB.example.test"; return r }(),
		"every predicate kind": webRoute(ns, 40,
			fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: "X-A", Match: fledgev1.MatchRegularExpression, Value: "^a"},
			fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: "X-B", Match: fledgev1.MatchPresent},
			fledgev1.Predicate{Type: fledgev1.PredicateCookie, Name: "c", Value: "1"},
			fledgev1.Predicate{Type: fledgev1.PredicateQuery, Name: "q", Match: fledgev1.MatchPresent},
		),
	}
	for name, route := range routes {
		t.Run(name, func(t *testing.T) {
			route.App = strings.ReplaceAll(name, " ", "-")
			tc := new(testClient)
			r := newRouter(t, tc)
			mustEnsure(t, r, route)
			if n := tc.writes.Load(); n != 1 {
				t.Errorf("first Ensure sent %d writes; want 1", n)
			}
			tc.writes.Store(0)
			mustEnsure(t, r, route)
			if n := tc.writes.Load(); n != 0 {
				t.Errorf("identical Ensure sent %d writes; want none", n)
			}
		})
	}
}

// TestConcurrentEnsureOfOneApp: Routers racing on one application (two
// controller replicas during a hand-over, or a per-app Router beside the
// default one) all succeed, retrying on conflicts and on the create race, and
// one of them wins whole.
func TestConcurrentEnsureOfOneApp(t *testing.T) {
	ns := env.Namespace(t, "gatewayapi-race")
	routes := []traffic.Route{webRoute(ns, 10), webRoute(ns, 20, debugHeader), webRoute(ns, 30)}
	errs := make(chan error, len(routes))
	for _, r := range routes {
		router := newRouter(t, nil)
		go func() { errs <- router.Ensure(t.Context(), r) }()
	}
	for range routes {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Ensure of one app: %v", err)
		}
	}
	got, err := newRouter(t, nil).Observe(t.Context(), routes[0].Key)
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	if !slices.ContainsFunc(routes, func(r traffic.Route) bool { return routertest.Equal(got, r) == "" }) {
		t.Errorf("Observe after the race = %+v; want exactly one of the routes ensured", got)
	}
}

func TestRemoverObservesAndRemovesButNeverEnsures(t *testing.T) {
	tc := new(testClient)
	r := newRouter(t, tc)
	ns := env.Namespace(t, "remover")
	route := traffic.Route{Key: traffic.Key{Namespace: ns, App: "app"}, Host: "app", Stable: traffic.Backend{Service: "v1", Port: 80}}
	if err := r.Ensure(t.Context(), route); err != nil {
		t.Fatal(err)
	}
	rm := gatewayapi.NewRemover(kube)
	if err := rm.Ensure(t.Context(), route); err == nil {
		t.Error("a remover's Ensure succeeded")
	}
	if got, err := rm.Observe(t.Context(), route.Key); err != nil || got.Stable != route.Stable {
		t.Errorf("Observe = %+v, %v", got, err)
	}
	if err := rm.Remove(t.Context(), route.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := rm.Observe(t.Context(), route.Key); !errors.Is(err, traffic.ErrNotFound) {
		t.Errorf("after Remove, Observe = %v, want ErrNotFound", err)
	}
}

// TestStatusParentsRejection: the implementation's word in status.parents,
// written through the status subresource as an implementation does: Accepted
// or ResolvedRefs False for the route's parent, at its generation, makes
// Observe fail with the implementation's message; other parents, older
// generations and True conditions do not.
func TestStatusParentsRejection(t *testing.T) {
	ns := env.Namespace(t, "gatewayapi-status")
	r := newRouter(t, nil)
	route := webRoute(ns, 10)
	mustEnsure(t, r, route)
	parent := publicGateway
	parent.Namespace = ptr(gatewayv1.Namespace("infra"))
	elsewhere := gatewayv1.ParentReference{Name: "elsewhere"}
	report := func(ref gatewayv1.ParentReference, generationBehind int64, conds ...metav1.Condition) {
		t.Helper()
		hr := mustGet(t, route.Key)
		for i := range conds {
			conds[i].ObservedGeneration = hr.Generation - generationBehind
			conds[i].LastTransitionTime = metav1.Now()
		}
		hr.Status.Parents = []gatewayv1.RouteParentStatus{{ParentRef: ref, ControllerName: "example.com/gateway", Conditions: conds}}
		if err := kube.Status().Update(t.Context(), hr); err != nil {
			t.Fatal(err)
		}
	}
	cond := func(typ string, status metav1.ConditionStatus, reason, msg string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg}
	}
	accepted := cond("Accepted", metav1.ConditionTrue, "Accepted", "")
	resolved := cond("ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs", "")

	tests := []struct {
		name    string
		ref     gatewayv1.ParentReference
		behind  int64
		conds   []metav1.Condition
		wantErr string // "" when Observe reads the route back
	}{
		{"accepted and resolved", parent, 0, []metav1.Condition{accepted, resolved}, ""},
		{"not accepted by the listener", parent, 0, []metav1.Condition{cond("Accepted", metav1.ConditionFalse, "NotAllowedByListeners", "no listener admits namespace "+ns), resolved},
			"parent infra/public/https (example.com/gateway): Accepted=False (NotAllowedByListeners): no listener admits namespace " + ns},
		{"a backend it cannot resolve", parent, 0, []metav1.Condition{accepted, cond("ResolvedRefs", metav1.ConditionFalse, "BackendNotFound", "service v2 not found")},
			"ResolvedRefs=False (BackendNotFound): service v2 not found"},
		{"about an older generation", parent, 1, []metav1.Condition{cond("Accepted", metav1.ConditionFalse, "NotAllowedByListeners", "old")}, ""},
		{"about a parent the route does not have", elsewhere, 0, []metav1.Condition{cond("Accepted", metav1.ConditionFalse, "NoMatchingParent", "other")}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.behind > 0 {
				// A new generation the implementation has not seen yet.
				mustEnsure(t, r, webRoute(ns, 20))
			}
			report(tc.ref, tc.behind, tc.conds...)
			got, err := r.Observe(t.Context(), route.Key)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Observe: %v; want the route read back", err)
			case tc.wantErr == "" && got.Host != route.Host:
				t.Errorf("Observe = %+v; want %+v", got, route)
			case tc.wantErr != "" && (!errors.Is(err, gatewayapi.ErrNotAccepted) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Observe error %v; want ErrNotAccepted with %q", err, tc.wantErr)
			}
		})
	}
}
