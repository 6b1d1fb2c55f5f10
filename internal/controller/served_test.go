package controller

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/gateway"
	"github.com/fledge-dev/fledge/internal/metricsource"
	"github.com/fledge-dev/fledge/internal/traffic"
)

func TestJudgeReplicas(t *testing.T) {
	key := traffic.Key{Namespace: "shop", App: "web"}
	want := traffic.Route{Key: key, Host: "Web", Stable: traffic.Backend{Service: "v1", Port: 80},
		Canary: &traffic.Backend{Service: "v2", Port: 80}, CanaryWeight: 10}
	at := func(w int32) servedRoute {
		return servedRoute{Namespace: "shop", Name: "web", Host: "web", Stable: servedBackend{"v1", 80}, Canary: &servedBackend{"v2", 80}, CanaryWeight: w}
	}
	otherCanary := at(10)
	otherCanary.Canary = &servedBackend{"v3", 80}
	other := servedRoute{Namespace: "old", Name: "web", Host: "web", Stable: servedBackend{"v0", 80}}
	elsewhere := servedRoute{Namespace: "old", Name: "api", Host: "api", Stable: servedBackend{"v0", 80}}
	ok := func(routes ...servedRoute) replicaAnswer { return replicaAnswer{Routes: routes} }
	tests := map[string]struct {
		answers []replicaAnswer
		want    replicaView
	}{
		"no replica": {},
		"all serve it": {answers: []replicaAnswer{ok(at(10)), ok(elsewhere, at(10))},
			want: replicaView{asked: 2, answered: 2, agree: 2}},
		"one still serves the old weight": {answers: []replicaAnswer{ok(at(10)), ok(at(0))},
			want: replicaView{asked: 2, answered: 2, agree: 1, lagging: []servedCount{{"canary 0%", 1}}}},
		"one serves nothing for the host yet": {answers: []replicaAnswer{ok(at(10)), ok()},
			want: replicaView{asked: 2, answered: 2, agree: 1, lagging: []servedCount{{"nothing", 1}}}},
		"same weight, another canary: described in full": {answers: []replicaAnswer{ok(otherCanary)},
			want: replicaView{asked: 1, answered: 1, lagging: []servedCount{{"host web -> v1:80 90%, canary v3:80 10%", 1}}}},
		"another application holds the host": {answers: []replicaAnswer{ok(other), {Routes: []servedRoute{other},
			Problems: []string{`TrafficRoute shop/web skipped: host "web" is served by the older TrafficRoute old/web`}}},
			want: replicaView{asked: 2, answered: 2, conflicted: 2, conflicts: []string{"old/web"}}},
		"skipped for another reason": {answers: []replicaAnswer{{Problems: []string{
			"TrafficRoute shop/web skipped: invalid predicate", "TrafficRoute shop/webshop skipped: other", "TrafficRoute shop/web: Service v1 not found"}}},
			want: replicaView{asked: 1, answered: 1, rejectedOn: 1, rejected: []string{"invalid predicate"}}},
		"one does not answer": {answers: []replicaAnswer{ok(at(10)), {Err: errors.New("timeout")}},
			want: replicaView{asked: 2, answered: 1, agree: 1, unreachable: errors.New("timeout")}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := judgeReplicas(key, want, tc.answers)
			if got.asked != tc.want.asked || got.answered != tc.want.answered || got.agree != tc.want.agree ||
				!slices.Equal(got.lagging, tc.want.lagging) || got.conflicted != tc.want.conflicted ||
				!slices.Equal(got.conflicts, tc.want.conflicts) || got.rejectedOn != tc.want.rejectedOn ||
				!slices.Equal(got.rejected, tc.want.rejected) || (got.unreachable == nil) != (tc.want.unreachable == nil) {
				t.Errorf("judgeReplicas = %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestGatewayReplicasReadTheGateway: the answers are what a real gateway's
// /routes says, and judge as its table serves.
func TestGatewayReplicasReadTheGateway(t *testing.T) {
	ctx := t.Context()
	tr := func(ns, name string, created time.Time, weight int32) *fledgev1.TrafficRoute {
		return &fledgev1.TrafficRoute{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(created)},
			Spec: fledgev1.TrafficRouteSpec{Host: "web", Stable: fledgev1.BackendRef{Service: "v1", Port: 80},
				Canary: &fledgev1.BackendRef{Service: "v2", Port: 80}, CanaryWeight: weight},
		}
	}
	svc := func(ns, name string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.invalid"}}
	}
	now := time.Now()
	older, newer := tr("old", "web", now.Add(-time.Hour), 0), tr("shop", "web", now, 10)
	g := gateway.New(gateway.Options{})
	g.Update(ctx, gateway.Objects{TrafficRoutes: []*fledgev1.TrafficRoute{newer, older},
		Services: []*corev1.Service{svc("old", "v1"), svc("old", "v2"), svc("shop", "v1"), svc("shop", "v2")}})
	srv := httptest.NewServer(g.AdminHandler())
	t.Cleanup(srv.Close)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "waiting for the first routing table", http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)

	reps := newGatewayReplicas(metricsource.StaticTargets{srv.URL + metricsource.RoutesPath, down.URL + metricsource.RoutesPath})
	answers, err := reps.answers(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(answers) != 2 || answers[0].Err != nil || answers[1].Err == nil {
		t.Fatalf("answers = %+v; want the gateway's, then an error", answers)
	}
	if got := answers[0].Routes; len(got) != 1 || got[0].Namespace != "old" || got[0].Stable != (servedBackend{"v1", 80}) ||
		got[0].Canary == nil || *got[0].Canary != (servedBackend{"v2", 80}) {
		t.Errorf("routes = %+v; want old/web's", got)
	}
	key := traffic.Key{Namespace: "shop", App: "web"}
	v := judgeReplicas(key, routeOf(newer), answers)
	if v.asked != 2 || v.answered != 1 || v.conflicted != 1 || !slices.Equal(v.conflicts, []string{"old/web"}) {
		t.Errorf("judged %+v; want a conflict with old/web on the one replica that answered", v)
	}
	if v := judgeReplicas(traffic.Key{Namespace: "old", App: "web"}, routeOf(older), answers); v.agree != 1 || v.answered != 1 {
		t.Errorf("judged the older route %+v; want it served", v)
	}
}

func routeOf(tr *fledgev1.TrafficRoute) traffic.Route {
	r := traffic.Route{Key: traffic.Key{Namespace: tr.Namespace, App: tr.Name}, Host: tr.Spec.Host,
		Stable: traffic.Backend{Service: tr.Spec.Stable.Service, Port: tr.Spec.Stable.Port}, CanaryWeight: tr.Spec.CanaryWeight}
	if c := tr.Spec.Canary; c != nil {
		r.Canary = &traffic.Backend{Service: c.Service, Port: c.Port}
	}
	return r
}

// TestGatewayReplicasCache: a recent fetch is reused unless a fresh one is
// asked for; recent counts from when a fetch ended (a slow replica does not
// make every reconcile wait for it).
func TestGatewayReplicasCache(t *testing.T) {
	var hits atomic.Int32
	var clock atomic.Int64 // Unix nanoseconds
	clock.Store(time.Now().UnixNano())
	var slow atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		if slow.Load() {
			clock.Add(int64(2 * replicaMaxAge))
		}
		_, _ = w.Write([]byte(`{"routes":[]}`))
	}))
	t.Cleanup(srv.Close)
	reps := newGatewayReplicas(metricsource.StaticTargets{srv.URL})
	reps.now = func() time.Time { return time.Unix(0, clock.Load()) }
	for i, step := range []struct {
		fresh, slow bool
		advance     time.Duration
		hits        int32
	}{
		{false, false, 0, 1},                 // first: fetched
		{false, false, replicaMaxAge / 2, 1}, // recent: reused
		{true, false, 0, 2},                  // fresh asked: fetched
		{false, false, replicaMaxAge, 3},     // too old: fetched
		{false, true, replicaMaxAge, 4},      // too old: fetched, slowly
		{false, false, replicaMaxAge / 2, 4}, // ended recently: reused
	} {
		clock.Add(int64(step.advance))
		slow.Store(step.slow)
		if _, err := reps.answers(t.Context(), step.fresh); err != nil {
			t.Fatal(err)
		}
		if got := hits.Load(); got != step.hits {
			t.Errorf("step %d: %d fetches, want %d", i, got, step.hits)
		}
	}
}

// TestRoutedEvents: a host conflict is a Warning Event once; replicas coming
// and going (the message's verification part) are no Event.
func TestRoutedEvents(t *testing.T) {
	rec := events.NewFakeRecorder(10)
	r := &ReleaseReconciler{Recorder: rec}
	rel := &fledgev1.Release{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}
	status := func(reason, msg string) *fledgev1.ReleaseStatus {
		st := &fledgev1.ReleaseStatus{}
		cs := metav1.ConditionTrue
		if reason != fledgev1.ReasonRouteApplied {
			cs = metav1.ConditionFalse
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: fledgev1.ConditionAccepted, Status: metav1.ConditionTrue, Reason: fledgev1.ReasonValid})
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: fledgev1.ConditionRouted, Status: cs, Reason: reason, Message: msg})
		return st
	}
	served := "embedded serves host web -> v1:80 (100%)"
	conflict := "host web is served by another application, TrafficRoute old/web (older), on 2 of 2 gateway replicas; web is not served there"
	steps := []struct {
		name   string
		from   *fledgev1.ReleaseStatus
		to     *fledgev1.ReleaseStatus
		events []string
	}{
		{"replicas come", status(fledgev1.ReasonRouteApplied, served+"; not verified on the gateway replicas: none is ready"),
			status(fledgev1.ReasonRouteApplied, served+"; so do all 2 ready gateway replicas"), nil},
		{"a conflict", status(fledgev1.ReasonRouteApplied, served+"; so do all 2 ready gateway replicas"),
			status(ReasonHostConflict, conflict), []string{"Warning HostConflict " + conflict}},
		{"the same conflict", status(ReasonHostConflict, conflict), status(ReasonHostConflict, conflict), nil},
		{"served again", status(ReasonHostConflict, conflict), status(fledgev1.ReasonRouteApplied, served+"; so do all 2 ready gateway replicas"),
			[]string{"Normal Routed " + served + "; so do all 2 ready gateway replicas"}},
	}
	for _, s := range steps {
		r.recordEvents(rel, nil, s.from, s.to, nil, routingPlan{})
		var got []string
		for len(rec.Events) > 0 {
			got = append(got, <-rec.Events)
		}
		if !slices.Equal(got, s.events) {
			t.Errorf("%s: events %q, want %q", s.name, got, s.events)
		}
	}
}
