package controller

import (
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/analysis"
	"github.com/fledge-dev/fledge/internal/annotations"
	"github.com/fledge-dev/fledge/internal/metricsource"
	"github.com/fledge-dev/fledge/internal/strategy"
	"github.com/fledge-dev/fledge/internal/traffic"
)

// These tests are pure: plan and nextStatus need no API server.

var planNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func svcWithPorts(name string, ports ...int32) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: p})
	}
	return s
}

func releaseOf(spec fledgev1.ReleaseSpec) *fledgev1.Release {
	return &fledgev1.Release{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Generation: 3}, Spec: spec}
}

func TestPlan(t *testing.T) {
	services := map[string]*corev1.Service{"v1": svcWithPorts("v1", 80, 81), "v2": svcWithPorts("v2", 9011), "none": svcWithPorts("none")}
	key := traffic.Key{Namespace: "shop", App: "web"}
	v1, v2 := traffic.Backend{Service: "v1", Port: 80}, traffic.Backend{Service: "v2", Port: 9011}
	ref := func(name string, port int32) *fledgev1.ServiceRef {
		return &fledgev1.ServiceRef{Name: name, Port: port}
	}
	debug := []fledgev1.Predicate{{Type: fledgev1.PredicateHeader, Name: "X-Debug", Value: "1"}}
	noLatency := false
	auto := func(p fledgev1.AutoPolicy) *fledgev1.AutoPolicy { p.Latency = &noLatency; return &p }
	// running is an automated release at its first step (10%), started a minute ago.
	running := &fledgev1.AutoStatus{Canary: "v2", Weight: 10, StartedAt: metav1.NewTime(planNow.Add(-time.Minute)),
		StepStartedAt: metav1.NewTime(planNow.Add(-time.Minute))}
	tests := map[string]struct {
		spec       fledgev1.ReleaseSpec
		autoStatus *fledgev1.AutoStatus
		m          *measurement
		want       *traffic.Route // nil: unpublish or hold
		hold       bool
		canaryOnly bool
		problem    string // part of the first problem
		// With automation: the step's weight and decision.
		autoWeight   int32
		autoDecision string
	}{
		"stable only: host is the name, port the first": {
			spec: fledgev1.ReleaseSpec{Stable: ref("v1", 0)},
			want: &traffic.Route{Key: key, Host: "web", Stable: v1},
		},
		"stable and canary at 10% with a predicate": {
			spec: fledgev1.ReleaseSpec{Host: "shop.example", Stable: ref("v1", 81), Canary: ref("v2", 0), CanaryWeight: 10, Match: debug},
			want: &traffic.Route{Key: key, Host: "shop.example", Stable: traffic.Backend{Service: "v1", Port: 81}, Canary: &v2, CanaryWeight: 10, Match: debug},
		},
		"no Services named: unpublished": {
			problem: "no stable Service",
		},
		"canary alone at 100%: it serves all": {
			spec: fledgev1.ReleaseSpec{Canary: ref("v2", 0), CanaryWeight: 100},
			want: &traffic.Route{Key: key, Host: "web", Stable: v2}, canaryOnly: true,
		},
		"canary alone below 100%: unpublished": {
			spec:    fledgev1.ReleaseSpec{Canary: ref("v2", 0), CanaryWeight: 50},
			problem: `canary Service "v2" has no stable Service and is at 50%`,
		},
		"canary alone at 100% with predicates: unpublished": {
			spec:    fledgev1.ReleaseSpec{Canary: ref("v2", 0), CanaryWeight: 100, Match: debug},
			problem: `canary Service "v2" has no stable Service`,
		},
		"stable Service missing: hold": {
			spec: fledgev1.ReleaseSpec{Stable: ref("v0", 0)}, hold: true, problem: `spec.stable: Service "v0" not found`,
		},
		"Service without ports: hold": {
			spec: fledgev1.ReleaseSpec{Stable: ref("none", 0)}, hold: true, problem: `spec.stable: Service "none" has no ports`,
		},
		"port the Service lacks: hold": {
			spec: fledgev1.ReleaseSpec{Stable: ref("v1", 82)}, hold: true, problem: `spec.stable: Service "v1" has no port 82`,
		},
		"stable and canary the same Service: hold": {
			spec: fledgev1.ReleaseSpec{Stable: ref("v1", 0), Canary: ref("v1", 0)}, hold: true, problem: `both Service "v1"`,
		},
		"invalid spec: hold": {
			spec: fledgev1.ReleaseSpec{Stable: ref("v1", 0), Canary: ref("v2", 0), CanaryWeight: 101}, hold: true, problem: "spec.canaryWeight 101",
		},
		"invalid gateway parent: hold": {
			spec: fledgev1.ReleaseSpec{Stable: ref("v1", 0), GatewayParents: []string{"public"}}, hold: true, problem: "spec.gatewayParents[0]",
		},
		"automated, invalid policy: hold": {
			spec: fledgev1.ReleaseSpec{Stable: ref("v1", 0), Canary: ref("v2", 0), Auto: auto(fledgev1.AutoPolicy{Steps: []int32{50, 10}})},
			hold: true, problem: "spec.auto.steps[1]",
		},
		"automated, new: the first step, not spec.canaryWeight": {
			spec:       fledgev1.ReleaseSpec{Stable: ref("v1", 0), Canary: ref("v2", 0), CanaryWeight: 50, Auto: auto(fledgev1.AutoPolicy{})},
			want:       &traffic.Route{Key: key, Host: "web", Stable: v1, Canary: &v2, CanaryWeight: 10},
			autoWeight: 10, autoDecision: strategy.ReasonStarted,
		},
		"automated, a failing canary: rolled back to 0": {
			spec: fledgev1.ReleaseSpec{Stable: ref("v1", 0), Canary: ref("v2", 0), Auto: auto(fledgev1.AutoPolicy{})}, autoStatus: running,
			m:          &measurement{window: &analysis.Window{Stable: analysis.Sample{Requests: 2000}, Canary: analysis.Sample{Requests: 400, Errors: 200}}},
			want:       &traffic.Route{Key: key, Host: "web", Stable: v1, Canary: &v2, CanaryWeight: 0},
			autoWeight: 0, autoDecision: strategy.ReasonRolledBack,
		},
		"automated, metrics unavailable: the weight holds": {
			spec: fledgev1.ReleaseSpec{Stable: ref("v1", 0), Canary: ref("v2", 0), Auto: auto(fledgev1.AutoPolicy{})}, autoStatus: running,
			m:          &measurement{err: errors.New("no gateway replica answers")},
			want:       &traffic.Route{Key: key, Host: "web", Stable: v1, Canary: &v2, CanaryWeight: 10},
			autoWeight: 10,
		},
		"automated, metric source not enabled: not accepted, traffic held": {
			spec: fledgev1.ReleaseSpec{Stable: ref("v1", 0), Canary: ref("v2", 0), Auto: auto(fledgev1.AutoPolicy{MetricSource: fledgev1.MetricSourcePrometheus})},
			m:    &measurement{unavailable: errors.New(`spec.auto.metricSource "prometheus" is not enabled in this controller`)},
			hold: true, problem: `spec.auto.metricSource "prometheus" is not enabled`,
		},
		"automated, promoted by override": {
			spec:       fledgev1.ReleaseSpec{Stable: ref("v1", 0), Canary: ref("v2", 0), Auto: auto(fledgev1.AutoPolicy{Override: fledgev1.OverridePromote})},
			autoStatus: running,
			want:       &traffic.Route{Key: key, Host: "web", Stable: v1, Canary: &v2, CanaryWeight: 100},
			autoWeight: 100, autoDecision: strategy.ReasonPromoted,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rel := releaseOf(tc.spec)
			rel.Status.Auto = tc.autoStatus
			got := plan(rel, services, tc.m, planNow)
			if got.hold != tc.hold || got.canaryOnly != tc.canaryOnly {
				t.Errorf("hold %v, canaryOnly %v; want %v, %v (problems %q)", got.hold, got.canaryOnly, tc.hold, tc.canaryOnly, got.problems)
			}
			switch {
			case tc.want == nil && got.route != nil:
				t.Errorf("route %s; want none", describe(*got.route))
			case tc.want != nil && (got.route == nil || !traffic.Same(*got.route, *tc.want)):
				t.Errorf("route %+v; want %s", got.route, describe(*tc.want))
			}
			if tc.problem != "" && (len(got.problems) == 0 || !strings.Contains(got.problems[0], tc.problem)) {
				t.Errorf("problems %q; want the first to contain %q", got.problems, tc.problem)
			}
			if tc.problem == "" && len(got.problems) > 0 {
				t.Errorf("problems %q; want none", got.problems)
			}
			if tc.spec.Auto == nil || tc.hold {
				if got.auto != nil {
					t.Errorf("auto %+v; want none", got.auto)
				}
				return
			}
			if got.auto == nil {
				t.Fatal("no automation step")
			}
			if got.auto.State.Weight != tc.autoWeight || got.route.CanaryWeight != tc.autoWeight {
				t.Errorf("automation weight %d, route weight %d; want %d", got.auto.State.Weight, got.route.CanaryWeight, tc.autoWeight)
			}
			switch {
			case tc.autoDecision == "" && got.auto.Decision != nil:
				t.Errorf("decision %+v; want none", got.auto.Decision)
			case tc.autoDecision != "" && (got.auto.Decision == nil || got.auto.Decision.Reason != tc.autoDecision):
				t.Errorf("decision %+v; want %s", got.auto.Decision, tc.autoDecision)
			}
		})
	}
}

func TestNextStatus(t *testing.T) {
	key := traffic.Key{Namespace: "shop", App: "web"}
	v1, v2 := traffic.Backend{Service: "v1", Port: 80}, traffic.Backend{Service: "v2", Port: 9011}
	split := func(w int32, match ...fledgev1.Predicate) *traffic.Route {
		return &traffic.Route{Key: key, Host: "web", Stable: v1, Canary: &v2, CanaryWeight: w, Match: match}
	}
	stable := &traffic.Route{Key: key, Host: "web", Stable: v1}
	debug := fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: "X-Debug", Value: "1"}
	previous := fledgev1.ReleaseStatus{Stable: "v0", Canary: "v1", DesiredWeight: 30, Phase: fledgev1.PhaseCanary, EffectiveWeight: 30}
	progressing := &strategy.Outcome{State: fledgev1.AutoStatus{Canary: "v2", Weight: 10}}
	type cond struct {
		status  metav1.ConditionStatus
		reason  string
		message string // part of it
	}
	tests := map[string]struct {
		prev          fledgev1.ReleaseStatus
		inputProblems []annotations.Problem
		plan          routingPlan
		observed      *traffic.Route
		routerErr     error
		replicas      *replicaView
		// want
		phase              fledgev1.Phase
		stable, canary     string
		desired, effective int32
		accepted, routed   cond
		analysis           *cond // nil: no Analysis condition
	}{
		"routed as planned": {
			plan: routingPlan{route: split(10)}, observed: split(10),
			phase: fledgev1.PhaseCanary, stable: "v1", canary: "v2", desired: 10, effective: 10,
			accepted: cond{metav1.ConditionTrue, fledgev1.ReasonValid, "valid"},
			routed:   cond{metav1.ConditionTrue, fledgev1.ReasonRouteApplied, "embedded serves host web -> v1:80 90%, canary v2:9011 10%"},
		},
		"every gateway replica serves it": {
			plan: routingPlan{route: split(10)}, observed: split(10), replicas: &replicaView{asked: 2, answered: 2, agree: 2},
			phase: fledgev1.PhaseCanary, stable: "v1", canary: "v2", desired: 10, effective: 10,
			accepted: cond{metav1.ConditionTrue, fledgev1.ReasonValid, ""},
			routed:   cond{metav1.ConditionTrue, fledgev1.ReasonRouteApplied, "canary v2:9011 10%; so do all 2 ready gateway replicas"},
		},
		"a gateway replica still serves the old weight: propagating, effective weight kept": {
			prev: previous, plan: routingPlan{route: split(10)}, observed: split(10),
			replicas: &replicaView{asked: 2, answered: 2, agree: 1, lagging: []servedCount{{"canary 30%", 1}}},
			phase:    fledgev1.PhaseCanary, stable: "v1", canary: "v2", desired: 10, effective: 30,
			accepted: cond{metav1.ConditionTrue, fledgev1.ReasonValid, ""},
			routed:   cond{metav1.ConditionFalse, ReasonPropagating, "1 of 2 gateway replicas serve canary 10%; 1 still serve canary 30%"},
		},
		"no gateway replica serves it yet": {
			plan: routingPlan{route: stable}, observed: stable,
			replicas: &replicaView{asked: 2, answered: 2, lagging: []servedCount{{"nothing", 2}}},
			phase:    fledgev1.PhaseStable, stable: "v1",
			accepted: cond{metav1.ConditionTrue, fledgev1.ReasonValid, ""},
			routed:   cond{metav1.ConditionFalse, ReasonPropagating, "0 of 2 gateway replicas serve stable v1 only; 2 still serve nothing"},
		},
		"the host is held by an older application: not served": {
			prev: previous, plan: routingPlan{route: split(100)}, observed: split(100),
			replicas: &replicaView{asked: 2, answered: 2, conflicted: 2, conflicts: []string{"other/web"}},
			phase:    fledgev1.PhaseUnpublished, stable: "v1", canary: "v2", desired: 100,
			accepted: cond{metav1.ConditionTrue, fledgev1.ReasonValid, ""},
			routed: cond{metav1.ConditionFalse, ReasonHostConflict,
				"host web is served by another application, TrafficRoute other/web (older), on 2 of 2 gateway replicas; web is not served there"},
		},
		"a gateway replica skips the route": {
			plan: routingPlan{route: split(10)}, observed: split(10),
			replicas: &replicaView{asked: 1, answered: 1, rejectedOn: 1, rejected: []string{"bad match"}},
			phase:    fledgev1.PhaseUnpublished, stable: "v1", canary: "v2", desired: 10,
			accepted: cond{metav1.ConditionTrue, fledgev1.ReasonValid, ""},
			routed:   cond{metav1.ConditionFalse, ReasonRouteRejected, "1 of 1 gateway replicas do not serve TrafficRoute shop/web: bad match"},
		},
		"no gateway replica is ready: the TrafficRoute read back, said so": {
			plan: routingPlan{route: split(10)}, observed: split(10), replicas: &replicaView{},
			phase: fledgev1.PhaseCanary, stable: "v1", canary: "v2", desired: 10, effective: 10,
			accepted: cond{metav1.ConditionTrue, fledgev1.ReasonValid, ""},
			routed:   cond{metav1.ConditionTrue, fledgev1.ReasonRouteApplied, "; not verified on the gateway replicas: none is ready"},
		},
		"no gateway replica answers: the TrafficRoute read back, said so": {
			plan: routingPlan{route: split(10)}, observed: split(10), replicas: &replicaView{asked: 2},
			phase: fledgev1.PhaseCanary, stable: "v1", canary: "v2", desired: 10, effective: 10,
			accepted: cond{metav1.ConditionTrue, fledgev1.ReasonValid, ""},
			routed:   cond{metav1.ConditionTrue, fledgev1.ReasonRouteApplied, "none of the 2 ready answered"},
		},
		"the gateway replicas cannot be listed: the TrafficRoute read back, said so": {
			plan: routingPlan{route: split(10)}, observed: split(10), replicas: &replicaView{listFailed: true},
			phase: fledgev1.PhaseCanary, stable: "v1", canary: "v2", desired: 10, effective: 10,
			accepted: cond{metav1.ConditionTrue, fledgev1.ReasonValid, ""},
			routed:   cond{metav1.ConditionTrue, fledgev1.ReasonRouteApplied, "they could not be listed"},
		},
		"one of two gateway replicas answers and serves it": {
			plan: routingPlan{route: split(10)}, observed: split(10), replicas: &replicaView{asked: 2, answered: 1, agree: 1},
			phase: fledgev1.PhaseCanary, stable: "v1", canary: "v2", desired: 10, effective: 10,
			accepted: cond{metav1.ConditionTrue, fledgev1.ReasonValid, ""},
			routed:   cond{metav1.ConditionTrue, fledgev1.ReasonRouteApplied, "so do 1 of 2 ready gateway replicas (1 did not answer)"},
		},
		"stable only": {
			plan: routingPlan{route: stable}, observed: stable,
			phase: fledgev1.PhaseStable, stable: "v1",
			accepted: cond{metav1.ConditionTrue, fledgev1.ReasonValid, ""},
			routed:   cond{metav1.ConditionTrue, fledgev1.ReasonRouteApplied, "(100%)"},
		},
		"canary at 100%: released": {
			plan: routingPlan{route: split(100)}, observed: split(100),
			phase: fledgev1.PhaseReleased, stable: "v1", canary: "v2", desired: 100, effective: 100,
			accepted: cond{metav1.ConditionTrue, fledgev1.ReasonValid, ""},
			routed:   cond{metav1.ConditionTrue, fledgev1.ReasonRouteApplied, ""},
		},
		"canary at 0% with a predicate: a dark launch": {
			plan: routingPlan{route: split(0, debug)}, observed: split(0, debug),
			phase: fledgev1.PhaseCanary, stable: "v1", canary: "v2",
			accepted: cond{metav1.ConditionTrue, fledgev1.ReasonValid, ""},
			routed:   cond{metav1.ConditionTrue, fledgev1.ReasonRouteApplied, `every request matching header X-Debug = "1"`},
		},
		"canary at 0% without a predicate: stable": {
			plan: routingPlan{route: split(0)}, observed: split(0),
			phase: fledgev1.PhaseStable, stable: "v1", canary: "v2",
			accepted: cond{metav1.ConditionTrue, fledgev1.ReasonValid, ""},
			routed:   cond{metav1.ConditionTrue, fledgev1.ReasonRouteApplied, ""},
		},
		"canary alone at 100%": {
			plan:     routingPlan{route: &traffic.Route{Key: key, Host: "web", Stable: v2}, canaryOnly: true},
			observed: &traffic.Route{Key: key, Host: "web", Stable: v2},
			phase:    fledgev1.PhaseReleased, canary: "v2", desired: 100, effective: 100,
			accepted: cond{metav1.ConditionTrue, fledgev1.ReasonValid, ""},
			routed:   cond{metav1.ConditionTrue, fledgev1.ReasonRouteApplied, ""},
		},
		"the provider serves something else": {
			plan: routingPlan{route: split(10)}, observed: split(50),
			phase: fledgev1.PhaseCanary, stable: "v1", canary: "v2", desired: 10, effective: 50,
			accepted: cond{metav1.ConditionTrue, fledgev1.ReasonValid, ""},
			routed:   cond{metav1.ConditionFalse, fledgev1.ReasonRouteMismatch, "serves host web -> v1:80 50%, canary v2:9011 50%, want host web -> v1:80 90%"},
		},
		"the provider fails": {
			plan: routingPlan{route: split(10)}, routerErr: errors.New("apisix is down"),
			phase: fledgev1.PhaseFailed, stable: "v1", canary: "v2", desired: 10,
			accepted: cond{metav1.ConditionTrue, fledgev1.ReasonValid, ""},
			routed:   cond{metav1.ConditionFalse, fledgev1.ReasonRouteFailed, "apisix is down"},
		},
		"unpublished: the reason is the Routed message": {
			plan:     routingPlan{problems: []string{"no stable Service: the application is not published"}},
			phase:    fledgev1.PhaseUnpublished,
			accepted: cond{metav1.ConditionTrue, fledgev1.ReasonValid, ""},
			routed:   cond{metav1.ConditionFalse, fledgev1.ReasonNotRouted, "no stable Service"},
		},
		"hold: the status keeps what is in effect": {
			prev: previous, plan: routingPlan{hold: true, problems: []string{"spec.canaryWeight 101: want an integer from 0 to 100"}},
			observed: &traffic.Route{Key: key, Host: "web", Stable: traffic.Backend{Service: "v0", Port: 80}, Canary: &traffic.Backend{Service: "v1", Port: 80}, CanaryWeight: 30},
			phase:    fledgev1.PhaseCanary, stable: "v0", canary: "v1", desired: 30, effective: 30,
			accepted: cond{metav1.ConditionFalse, fledgev1.ReasonInvalidInput, "spec.canaryWeight 101: want an integer from 0 to 100; the routing was left as it was"},
			routed:   cond{metav1.ConditionTrue, fledgev1.ReasonRouteApplied, ""},
		},
		"invalid annotations": {
			inputProblems: []annotations.Problem{{Service: "v2", Annotation: annotations.CanaryPercentage, Value: "10%", Err: annotations.ErrInvalidValue}},
			plan:          routingPlan{route: stable}, observed: stable,
			phase: fledgev1.PhaseStable, stable: "v1",
			accepted: cond{metav1.ConditionFalse, fledgev1.ReasonInvalidInput, `service v2: annotation api7.cloud/published-service-canary-percentage="10%"`},
			routed:   cond{metav1.ConditionTrue, fledgev1.ReasonRouteApplied, ""},
		},
		"automated, running": {
			plan: routingPlan{route: split(10), auto: progressing}, observed: split(10),
			phase: fledgev1.PhaseProgressing, stable: "v1", canary: "v2", desired: 10, effective: 10,
			accepted: cond{metav1.ConditionTrue, fledgev1.ReasonValid, ""},
			routed:   cond{metav1.ConditionTrue, fledgev1.ReasonRouteApplied, ""},
			analysis: &cond{metav1.ConditionUnknown, "Started", "the analysis has started"},
		},
		"automated, rolled back": {
			plan: routingPlan{route: split(0), auto: &strategy.Outcome{State: fledgev1.AutoStatus{Canary: "v2", Result: fledgev1.AutoRolledBack,
				Verdict: string(analysis.Fail), Reason: "ErrorRate", Evidence: "canary failed 3 of 61 requests"}}},
			observed: split(0),
			phase:    fledgev1.PhaseRolledBack, stable: "v1", canary: "v2",
			accepted: cond{metav1.ConditionTrue, fledgev1.ReasonValid, ""},
			routed:   cond{metav1.ConditionTrue, fledgev1.ReasonRouteApplied, ""},
			analysis: &cond{metav1.ConditionFalse, "ErrorRate", "canary failed 3 of 61"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rel := releaseOf(fledgev1.ReleaseSpec{})
			rel.Status = tc.prev
			st := nextStatus(rel, fledgev1.ProviderEmbedded, tc.inputProblems, tc.plan, tc.observed, tc.routerErr, tc.replicas)
			if st.Phase != tc.phase || st.Stable != tc.stable || st.Canary != tc.canary || st.DesiredWeight != tc.desired || st.EffectiveWeight != tc.effective {
				t.Errorf("phase %s, stable %q, canary %q, desired %d, effective %d; want %s, %q, %q, %d, %d",
					st.Phase, st.Stable, st.Canary, st.DesiredWeight, st.EffectiveWeight, tc.phase, tc.stable, tc.canary, tc.desired, tc.effective)
			}
			if st.ObservedGeneration != 3 || st.Host != "web" || st.Provider != fledgev1.ProviderEmbedded {
				t.Errorf("observedGeneration %d, host %q, provider %q; want 3, web, embedded", st.ObservedGeneration, st.Host, st.Provider)
			}
			check := func(typ string, want *cond) {
				t.Helper()
				c := meta.FindStatusCondition(st.Conditions, typ)
				switch {
				case want == nil && c != nil:
					t.Errorf("%s = %+v; want none", typ, c)
				case want == nil:
				case c == nil:
					t.Errorf("no %s condition", typ)
				case c.Status != want.status || c.Reason != want.reason || !strings.Contains(c.Message, want.message) || c.ObservedGeneration != 3:
					t.Errorf("%s = %s %s %q (generation %d); want %s %s containing %q", typ, c.Status, c.Reason, c.Message, c.ObservedGeneration,
						want.status, want.reason, want.message)
				}
			}
			check(fledgev1.ConditionAccepted, &tc.accepted)
			check(fledgev1.ConditionRouted, &tc.routed)
			check(fledgev1.ConditionAnalysis, tc.analysis)
			if (st.Auto != nil) != (tc.plan.auto != nil) {
				t.Errorf("status.auto %+v; want it set: %v", st.Auto, tc.plan.auto != nil)
			}
		})
	}
}

// TestSourceEnabled: a policy naming a metric source this controller does not
// run is refused (the default source stands in when it names none).
func TestSourceEnabled(t *testing.T) {
	r := &ReleaseReconciler{MetricSources: map[fledgev1.MetricSource]metricsource.Source{fledgev1.MetricSourceBuiltin: nil},
		DefaultMetricSource: fledgev1.MetricSourceBuiltin}
	if err := r.sourceEnabled(""); err != nil {
		t.Errorf("default source: %v", err)
	}
	if err := r.sourceEnabled(fledgev1.MetricSourceBuiltin); err != nil {
		t.Errorf("builtin: %v", err)
	}
	if err := r.sourceEnabled(fledgev1.MetricSourcePrometheus); err == nil || !strings.Contains(err.Error(), `"prometheus" is not enabled`) {
		t.Errorf("prometheus without it: %v, want not enabled", err)
	}
}
