// Package routertest is the conformance suite every traffic.Router provider
// passes: the same test code runs against the embedded (TrafficRoute), Gateway
// API (HTTPRoute) and APISIX providers.
//
// A provider's test calls Run with a Harness whose New returns a fresh Instance
// for each subtest:
//
//	func TestConformance(t *testing.T) {
//		routertest.Run(t, routertest.Harness{
//			New: func(t *testing.T) *routertest.Instance {
//				ns := createNamespace(t)               // fresh, so Objects starts empty
//				c := newBreakableClient(t)             // e.g. controller-runtime's interceptor.NewClient
//				return &routertest.Instance{
//					Router:    gatewayapi.New(c),
//					Namespace: ns,
//					Objects:   func(ctx context.Context) ([]string, error) { return listHTTPRoutes(ctx, c, ns) },
//					Snapshot:  func(ctx context.Context, k traffic.Key) (string, error) { return dumpWithResourceVersion(ctx, c, k) },
//					Break:     c.Break,
//					Repair:    c.Repair,
//				}
//			},
//			Unsupported: []routertest.PredicateKind{{Type: fledgev1.PredicateCookie}},
//		})
//	}
//
// What the suite checks, each in its own subtest: publishing stable only;
// canary weights 0, 10, 50, 100 and back, read back equal; weights outside 0..100
// rejected; each predicate kind (header exact, regular expression, present;
// cookie exact; query exact; several combined) on and then off, alone and with a
// weight; removing the canary and promoting it; idempotency (a second identical
// Ensure changes no Snapshot, revisions included); Remove leaving Objects as
// before and being repeatable; Observe of an unknown key wrapping
// traffic.ErrNotFound; two applications (sharing a stable Service) not
// disturbing each other; concurrent Ensure of several applications; and a
// provider outage (Break) making Ensure, Observe and Remove fail (Observe not
// with ErrNotFound) and the provider recovering after Repair.
//
// Read-back equality is Equal: see Normalize for what must round-trip.
//
// Predicates a provider cannot represent are listed in Harness.Unsupported;
// for those Ensure must fail with an error wrapping errors.ErrUnsupported (the
// standard library's sentinel; traffic has no own one) and leave what is served
// unchanged.
//
// The suite routes to the Services in Backends (in Instance.Namespace); a
// harness whose provider needs them to exist (or to have endpoints) creates
// them in New.
package routertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/traffic"
)

// Harness adapts a provider to the suite.
type Harness struct {
	// New returns a fresh provider with nothing published, for one subtest.
	// Clean up with t.Cleanup.
	New func(t *testing.T) *Instance
	// Unsupported lists the predicates the provider cannot represent.
	Unsupported []PredicateKind
}

// PredicateKind is a predicate type and match type; an empty Match stands for
// every match type of Type.
type PredicateKind struct {
	Type  fledgev1.PredicateType
	Match fledgev1.MatchType
}

// Instance is one provider under test and handles on its backing store.
type Instance struct {
	// Router is the provider under test.
	Router traffic.Router
	// Namespace is where the suite publishes its applications (Key.Namespace).
	// Providers backed by a kube-apiserver use a fresh namespace per Instance.
	Namespace string
	// Objects lists every object in the backing store that the provider could
	// have created, whether or not it carries the provider's labels (e.g. every
	// TrafficRoute in Namespace, every APISIX route and upstream). The suite
	// compares it before publishing and after Remove.
	Objects func(ctx context.Context) ([]string, error)
	// Snapshot returns a canonical dump of everything the provider stores for
	// key, including each object's revision (resourceVersion, modifiedIndex) so
	// that rewriting identical content counts as a change.
	Snapshot func(ctx context.Context, key traffic.Key) (string, error)
	// Break makes every later call to the backing store fail until Repair.
	Break func()
	// Repair undoes Break.
	Repair func()
}

var (
	// StableBackend is the stable Service port of the suite's applications.
	StableBackend = traffic.Backend{Service: "web-stable", Port: 8080}
	// CanaryBackend is the canary Service port.
	CanaryBackend = traffic.Backend{Service: "web-canary", Port: 8080}
	// NextBackend is a second canary (another Service, another port).
	NextBackend = traffic.Backend{Service: "web-next", Port: 9090}
)

// Backends lists every Service port the suite routes to.
func Backends() []traffic.Backend {
	return []traffic.Backend{StableBackend, CanaryBackend, NextBackend}
}

// Run runs the conformance suite against the provider h adapts.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("routertest: Harness.New is nil")
	}
	s := suite{h: h}
	t.Run("publish stable only", s.publishStableOnly)
	t.Run("observe unknown key is not found", s.observeUnknown)
	t.Run("canary weight changes", s.weightChanges)
	t.Run("weight outside 0..100 is rejected", s.weightOutOfRange)
	t.Run("predicates on and off", s.predicatesOnOff)
	t.Run("predicate with weight", s.predicateWithWeight)
	t.Run("canary removed serves stable only", s.canaryRemoved)
	t.Run("canary promoted to stable", s.promoted)
	t.Run("ensure twice changes nothing", s.idempotent)
	t.Run("remove leaves nothing behind", s.remove)
	t.Run("remove unknown key is fine", s.removeUnknown)
	t.Run("two apps do not disturb each other", s.twoApps)
	t.Run("concurrent ensure of several apps", s.concurrent)
	t.Run("provider outage surfaces as errors", s.outage)
}

type suite struct{ h Harness }

func (s suite) instance(t *testing.T) *Instance {
	t.Helper()
	in := s.h.New(t)
	switch {
	case in == nil:
		t.Fatal("routertest: Harness.New returned nil")
	case in.Router == nil || in.Objects == nil || in.Snapshot == nil || in.Break == nil || in.Repair == nil:
		t.Fatal("routertest: Instance needs Router, Objects, Snapshot, Break and Repair")
	case in.Namespace == "":
		t.Fatal("routertest: Instance.Namespace is empty")
	}
	return in
}

func (s suite) unsupported(ps []fledgev1.Predicate) bool {
	for _, p := range ps {
		m := p.Match
		if m == "" {
			m = fledgev1.MatchExact
		}
		for _, u := range s.h.Unsupported {
			if u.Type == p.Type && (u.Match == "" || u.Match == m) {
				return true
			}
		}
	}
	return false
}

// app returns a route of app in in.Namespace serving stable only.
func app(in *Instance, name string) traffic.Route {
	return traffic.Route{
		Key:    traffic.Key{Namespace: in.Namespace, App: name},
		Host:   name + ".example.test",
		Stable: StableBackend,
	}
}

func withCanary(r traffic.Route, c traffic.Backend, weight int32, match ...fledgev1.Predicate) traffic.Route {
	r.Canary = &c
	r.CanaryWeight = weight
	r.Match = match
	return r
}

func ensure(t *testing.T, in *Instance, r traffic.Route) {
	t.Helper()
	if err := in.Router.Ensure(t.Context(), r); err != nil {
		t.Fatalf("Ensure(%s): %v", describe(r), err)
	}
}

// served asserts that Observe reads back want.
func served(t *testing.T, in *Instance, want traffic.Route) {
	t.Helper()
	got, err := in.Router.Observe(t.Context(), want.Key)
	if err != nil {
		t.Fatalf("Observe(%s) after Ensure(%s): %v", want.Key, describe(want), err)
	}
	if d := Equal(got, want); d != "" {
		t.Errorf("Observe(%s) differs from what was set (%s):\n%s", want.Key, describe(want), d)
	}
}

func notServed(t *testing.T, in *Instance, key traffic.Key) {
	t.Helper()
	got, err := in.Router.Observe(t.Context(), key)
	if !errors.Is(err, traffic.ErrNotFound) {
		t.Errorf("Observe(%s) = %s, %v; want an error wrapping traffic.ErrNotFound", key, describe(got), err)
	}
}

func objects(t *testing.T, in *Instance) []string {
	t.Helper()
	objs, err := in.Objects(t.Context())
	if err != nil {
		t.Fatalf("Objects: %v", err)
	}
	slices.Sort(objs)
	return objs
}

func snapshot(t *testing.T, in *Instance, key traffic.Key) string {
	t.Helper()
	snap, err := in.Snapshot(t.Context(), key)
	if err != nil {
		t.Fatalf("Snapshot(%s): %v", key, err)
	}
	return snap
}

func (s suite) publishStableOnly(t *testing.T) {
	in := s.instance(t)
	before := objects(t, in)
	r := app(in, "web")
	ensure(t, in, r)
	served(t, in, r)
	if after := objects(t, in); slices.Equal(after, before) {
		t.Errorf("Objects unchanged after publishing (%v): Objects does not see what the provider creates", after)
	}
	if snapshot(t, in, r.Key) == "" {
		t.Errorf("Snapshot(%s) is empty after publishing", r.Key)
	}
}

func (s suite) observeUnknown(t *testing.T) {
	in := s.instance(t)
	notServed(t, in, traffic.Key{Namespace: in.Namespace, App: "never-published"})
	// Another app being published does not make the unknown one appear.
	ensure(t, in, app(in, "web"))
	notServed(t, in, traffic.Key{Namespace: in.Namespace, App: "never-published"})
}

func (s suite) weightChanges(t *testing.T) {
	in := s.instance(t)
	base := app(in, "web")
	ensure(t, in, base)
	for _, w := range []int32{0, 10, 50, 100, 10, 0} {
		t.Run(fmt.Sprintf("%d percent", w), func(t *testing.T) {
			r := withCanary(base, CanaryBackend, w)
			ensure(t, in, r)
			served(t, in, r)
		})
	}
}

func (s suite) weightOutOfRange(t *testing.T) {
	in := s.instance(t)
	good := withCanary(app(in, "web"), CanaryBackend, 10)
	ensure(t, in, good)
	for _, w := range []int32{-1, 101} {
		t.Run(fmt.Sprintf("%d percent", w), func(t *testing.T) {
			bad := withCanary(good, CanaryBackend, w)
			if err := in.Router.Ensure(t.Context(), bad); err == nil {
				t.Errorf("Ensure(%s) succeeded; want an error", describe(bad))
			}
			served(t, in, good)
		})
	}
}

// predicateCases are the predicate sets the suite publishes.
var predicateCases = []struct {
	name  string
	match []fledgev1.Predicate
}{
	{"header exact", []fledgev1.Predicate{{Type: fledgev1.PredicateHeader, Name: "X-Debug", Match: fledgev1.MatchExact, Value: "1"}}},
	{"header with empty match type means exact", []fledgev1.Predicate{{Type: fledgev1.PredicateHeader, Name: "X-Debug", Value: "1"}}},
	{"header regular expression", []fledgev1.Predicate{{Type: fledgev1.PredicateHeader, Name: "User-Agent", Match: fledgev1.MatchRegularExpression, Value: "Firefox/[0-9]+"}}},
	{"header present", []fledgev1.Predicate{{Type: fledgev1.PredicateHeader, Name: "X-Canary", Match: fledgev1.MatchPresent}}},
	{"cookie exact", []fledgev1.Predicate{{Type: fledgev1.PredicateCookie, Name: "canary", Match: fledgev1.MatchExact, Value: "always"}}},
	{"query exact", []fledgev1.Predicate{{Type: fledgev1.PredicateQuery, Name: "canary", Match: fledgev1.MatchExact, Value: "true"}}},
	{"several combined", []fledgev1.Predicate{
		{Type: fledgev1.PredicateHeader, Name: "X-Debug", Match: fledgev1.MatchExact, Value: "1"},
		{Type: fledgev1.PredicateCookie, Name: "canary", Match: fledgev1.MatchExact, Value: "always"},
		{Type: fledgev1.PredicateQuery, Name: "canary", Match: fledgev1.MatchExact, Value: "true"},
	}},
	{"header-only combination", []fledgev1.Predicate{
		{Type: fledgev1.PredicateHeader, Name: "X-Debug", Match: fledgev1.MatchExact, Value: "1"},
		{Type: fledgev1.PredicateHeader, Name: "X-Tenant", Match: fledgev1.MatchRegularExpression, Value: "^beta-"},
	}},
}

func (s suite) predicatesOnOff(t *testing.T) {
	for _, tc := range predicateCases {
		t.Run(tc.name, func(t *testing.T) {
			in := s.instance(t)
			off := withCanary(app(in, "web"), CanaryBackend, 0)
			ensure(t, in, off)
			on := withCanary(off, CanaryBackend, 0, tc.match...)
			if s.unsupported(tc.match) {
				err := in.Router.Ensure(t.Context(), on)
				if !errors.Is(err, errors.ErrUnsupported) {
					t.Fatalf("Ensure(%s) = %v; want an error wrapping errors.ErrUnsupported (Harness.Unsupported)", describe(on), err)
				}
				served(t, in, off)
				return
			}
			ensure(t, in, on)
			served(t, in, on)
			ensure(t, in, off)
			served(t, in, off)
		})
	}
}

func (s suite) predicateWithWeight(t *testing.T) {
	match := []fledgev1.Predicate{{Type: fledgev1.PredicateHeader, Name: "X-Debug", Match: fledgev1.MatchExact, Value: "1"}}
	if s.unsupported(match) {
		t.Skip("header exact match is unsupported by this provider")
	}
	in := s.instance(t)
	base := app(in, "web")
	for _, w := range []int32{20, 100, 0} {
		t.Run(fmt.Sprintf("%d percent", w), func(t *testing.T) {
			r := withCanary(base, CanaryBackend, w, match...)
			ensure(t, in, r)
			served(t, in, r)
		})
	}
}

func (s suite) canaryRemoved(t *testing.T) {
	in := s.instance(t)
	stable := app(in, "web")
	match := []fledgev1.Predicate{{Type: fledgev1.PredicateHeader, Name: "X-Debug", Match: fledgev1.MatchExact, Value: "1"}}
	if s.unsupported(match) {
		match = nil
	}
	ensure(t, in, withCanary(stable, CanaryBackend, 30, match...))
	ensure(t, in, stable)
	served(t, in, stable)
}

func (s suite) promoted(t *testing.T) {
	in := s.instance(t)
	r := app(in, "web")
	ensure(t, in, withCanary(r, CanaryBackend, 100))
	r.Stable = CanaryBackend
	ensure(t, in, r)
	served(t, in, r)
	// And a next release starts from the promoted stable.
	next := withCanary(r, NextBackend, 10)
	ensure(t, in, next)
	served(t, in, next)
}

func (s suite) idempotent(t *testing.T) {
	header := fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: "X-Debug", Match: fledgev1.MatchExact, Value: "1"}
	cases := []struct {
		name  string
		route func(in *Instance) traffic.Route
	}{
		{"stable only", func(in *Instance) traffic.Route { return app(in, "web") }},
		{"canary at 10 percent", func(in *Instance) traffic.Route { return withCanary(app(in, "web"), CanaryBackend, 10) }},
		{"canary at 0 percent", func(in *Instance) traffic.Route { return withCanary(app(in, "web"), CanaryBackend, 0) }},
		{"predicate at 0 percent", func(in *Instance) traffic.Route {
			return withCanary(app(in, "web"), CanaryBackend, 0, header)
		}},
		{"predicate at 100 percent", func(in *Instance) traffic.Route {
			return withCanary(app(in, "web"), CanaryBackend, 100, header)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := s.instance(t)
			r := tc.route(in)
			if s.unsupported(r.Match) {
				t.Skip("predicate unsupported by this provider")
			}
			ensure(t, in, r)
			first, objs := snapshot(t, in, r.Key), objects(t, in)
			ensure(t, in, r)
			if second := snapshot(t, in, r.Key); second != first {
				t.Errorf("second identical Ensure(%s) changed the provider's state:\nbefore:\n%s\nafter:\n%s", describe(r), first, second)
			}
			if after := objects(t, in); !slices.Equal(after, objs) {
				t.Errorf("second identical Ensure changed Objects: before %v, after %v", objs, after)
			}
			served(t, in, r)
			// The snapshot does see real changes.
			changed := withCanary(r, NextBackend, 50)
			ensure(t, in, changed)
			if snapshot(t, in, r.Key) == first {
				t.Errorf("Snapshot(%s) did not change when the route changed to %s", r.Key, describe(changed))
			}
		})
	}
}

func (s suite) remove(t *testing.T) {
	in := s.instance(t)
	before := objects(t, in)
	match := []fledgev1.Predicate{{Type: fledgev1.PredicateHeader, Name: "X-Debug", Match: fledgev1.MatchExact, Value: "1"}}
	if s.unsupported(match) {
		match = nil
	}
	r := withCanary(app(in, "web"), CanaryBackend, 40, match...)
	ensure(t, in, r)
	if err := in.Router.Remove(t.Context(), r.Key); err != nil {
		t.Fatalf("Remove(%s): %v", r.Key, err)
	}
	notServed(t, in, r.Key)
	if after := objects(t, in); !slices.Equal(after, before) {
		t.Errorf("Remove(%s) left objects behind: before publishing %v, after Remove %v", r.Key, before, after)
	}
	if snap := snapshot(t, in, r.Key); snap != "" {
		t.Errorf("Snapshot(%s) after Remove is not empty:\n%s", r.Key, snap)
	}
	if err := in.Router.Remove(t.Context(), r.Key); err != nil {
		t.Errorf("second Remove(%s): %v; want nil", r.Key, err)
	}
	// Publishing again after Remove works.
	ensure(t, in, r)
	served(t, in, r)
}

func (s suite) removeUnknown(t *testing.T) {
	in := s.instance(t)
	if err := in.Router.Remove(t.Context(), traffic.Key{Namespace: in.Namespace, App: "never-published"}); err != nil {
		t.Errorf("Remove of a never published key: %v; want nil", err)
	}
}

func (s suite) twoApps(t *testing.T) {
	in := s.instance(t)
	match := []fledgev1.Predicate{{Type: fledgev1.PredicateHeader, Name: "X-Debug", Match: fledgev1.MatchExact, Value: "1"}}
	if s.unsupported(match) {
		match = nil
	}
	a := withCanary(app(in, "shop"), CanaryBackend, 10, match...)
	// b shares a's stable Service but has its own canary.
	b := withCanary(app(in, "shop-admin"), NextBackend, 50)

	ensure(t, in, a)
	objsA, snapA := objects(t, in), snapshot(t, in, a.Key)
	unchanged := func(step string) {
		t.Helper()
		served(t, in, a)
		if snap := snapshot(t, in, a.Key); snap != snapA {
			t.Errorf("%s changed app %s:\nbefore:\n%s\nafter:\n%s", step, a.Key, snapA, snap)
		}
	}
	ensure(t, in, b)
	served(t, in, b)
	unchanged("publishing " + b.Key.String())

	b2 := withCanary(b, NextBackend, 100)
	ensure(t, in, b2)
	served(t, in, b2)
	unchanged("changing " + b.Key.String())

	b3 := b2
	b3.Stable, b3.Canary, b3.CanaryWeight = NextBackend, nil, 0
	ensure(t, in, b3)
	served(t, in, b3)
	unchanged("promoting " + b.Key.String())

	if err := in.Router.Remove(t.Context(), b.Key); err != nil {
		t.Fatalf("Remove(%s): %v", b.Key, err)
	}
	notServed(t, in, b.Key)
	unchanged("removing " + b.Key.String())
	if objs := objects(t, in); !slices.Equal(objs, objsA) {
		t.Errorf("after removing %s, Objects = %v; want what %s alone had: %v", b.Key, objs, a.Key, objsA)
	}
}

func (s suite) concurrent(t *testing.T) {
	in := s.instance(t)
	routes := []traffic.Route{
		app(in, "app-a"),
		withCanary(app(in, "app-b"), CanaryBackend, 10),
		withCanary(app(in, "app-c"), NextBackend, 50),
		withCanary(app(in, "app-d"), CanaryBackend, 100),
	}
	var wg sync.WaitGroup
	for _, r := range routes {
		wg.Go(func() {
			if err := in.Router.Ensure(t.Context(), r); err != nil {
				t.Errorf("concurrent Ensure(%s): %v", describe(r), err)
			}
		})
	}
	wg.Wait()
	for _, r := range routes {
		served(t, in, r)
	}
}

func (s suite) outage(t *testing.T) {
	in := s.instance(t)
	r := withCanary(app(in, "web"), CanaryBackend, 10)
	ensure(t, in, r)
	changed := withCanary(r, CanaryBackend, 50)

	in.Break()
	t.Cleanup(in.Repair)
	if err := in.Router.Ensure(t.Context(), changed); err == nil {
		t.Errorf("Ensure(%s) during an outage succeeded; want an error", describe(changed))
	}
	got, err := in.Router.Observe(t.Context(), r.Key)
	switch {
	case err == nil:
		t.Errorf("Observe(%s) during an outage = %s; want an error", r.Key, describe(got))
	case errors.Is(err, traffic.ErrNotFound):
		t.Errorf("Observe(%s) during an outage = %v; want an error that is not traffic.ErrNotFound", r.Key, err)
	}
	if err := in.Router.Remove(t.Context(), r.Key); err == nil {
		t.Errorf("Remove(%s) during an outage succeeded; want an error", r.Key)
	}
	if err := in.Router.Remove(t.Context(), traffic.Key{Namespace: in.Namespace, App: "never-published"}); err == nil {
		t.Errorf("Remove of an unknown key during an outage succeeded; want an error (the provider cannot know)")
	}

	in.Repair()
	ensure(t, in, changed)
	served(t, in, changed)
}
