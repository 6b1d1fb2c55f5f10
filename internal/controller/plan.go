package controller

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/analysis"
	"github.com/fledge-dev/fledge/internal/strategy"
	"github.com/fledge-dev/fledge/internal/traffic"
)

// routingPlan is what the controller should make the provider serve for a
// Release, and why.
type routingPlan struct {
	// route is the routing to serve; nil means unpublish (unless hold).
	route *traffic.Route
	// hold means the input is invalid: leave the provider as it is.
	hold bool
	// canaryOnly means the stable Service is gone and the canary, at 100%,
	// serves alone (route.Stable is the canary Service).
	canaryOnly bool
	// problems explain hold, or why the application is unpublished.
	problems []string
	// auto is the automation's step, for an automated Release with a canary
	// (its weight is route.CanaryWeight); nil otherwise.
	auto *strategy.Outcome
}

// measurement is what the automation measured of its current step before
// plan: the counts, or why there are none.
type measurement struct {
	window *analysis.Window
	err    error
	// unavailable: the policy's metric source is not enabled in this
	// controller; the Release is not accepted and its traffic held.
	unavailable error
}

// plan decides, without I/O, the routing of a Release from its spec, the
// Services of its namespace (by name) and, for an automated Release, the
// current step's counts (m, nil when none was taken) at time now. Invalid
// input holds the current traffic.
//
// Without a stable Service the application is unpublished, unless its canary is
// at 100%: then the canary keeps serving all traffic (the release is complete and
// the old version may be taken offline).
//
// The canary weight is spec.canaryWeight, or with spec.auto the weight the
// automation decides (strategy.Next), which may be a step up, a promotion or
// a rollback.
func plan(rel *fledgev1.Release, services map[string]*corev1.Service, m *measurement, now time.Time) routingPlan {
	spec := &rel.Spec
	key := traffic.Key{Namespace: rel.Namespace, App: rel.Name}
	host := spec.Host
	if host == "" {
		host = rel.Name
	}
	var problems []string
	for _, err := range spec.Validate() {
		problems = append(problems, err.Error())
	}
	stable, err := backend("spec.stable", spec.Stable, services)
	if err != nil {
		problems = append(problems, err.Error())
	}
	canary, err := backend("spec.canary", spec.Canary, services)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if stable != nil && canary != nil && stable.Service == canary.Service {
		problems = append(problems, fmt.Sprintf("spec.stable and spec.canary are both Service %q", stable.Service))
	}
	if m != nil && m.unavailable != nil && spec.Auto != nil {
		problems = append(problems, m.unavailable.Error())
	}
	if len(problems) > 0 {
		return routingPlan{hold: true, problems: problems}
	}
	switch {
	case stable == nil && canary == nil:
		return routingPlan{problems: []string{"no stable Service: the application is not published"}}
	case stable == nil && spec.CanaryWeight == 100 && len(spec.Match) == 0:
		return routingPlan{route: &traffic.Route{Key: key, Host: host, Stable: *canary, TLSSecret: tlsSecret(spec)}, canaryOnly: true}
	case stable == nil:
		return routingPlan{problems: []string{fmt.Sprintf(
			"canary Service %q has no stable Service and is at %d%% (not 100%%): the application is unpublished", canary.Service, spec.CanaryWeight)}}
	}
	route := &traffic.Route{Key: key, Host: host, Stable: *stable, TLSSecret: tlsSecret(spec)}
	if canary == nil {
		return routingPlan{route: route}
	}
	route.Canary = canary
	route.CanaryWeight = spec.CanaryWeight
	route.Match = spec.Match
	if spec.Auto == nil {
		return routingPlan{route: route}
	}
	policy, err := strategy.PolicyFrom(spec.Auto)
	if err != nil {
		return routingPlan{hold: true, problems: []string{err.Error()}}
	}
	st, measure, started := strategy.Begin(policy, canary.Service, rel.Status.Auto, now)
	var current *analysis.Window
	var merr error
	if measure && m != nil {
		current, merr = m.window, m.err
	}
	out := strategy.Next(policy, st, started, current, merr, now)
	route.CanaryWeight = out.State.Weight
	return routingPlan{route: route, auto: &out}
}

// backend resolves a ServiceRef to a Service port; the Service's first port
// when the ref names none.
func backend(field string, ref *fledgev1.ServiceRef, services map[string]*corev1.Service) (*traffic.Backend, error) {
	if ref == nil {
		return nil, nil
	}
	svc, ok := services[ref.Name]
	if !ok {
		return nil, fmt.Errorf("%s: Service %q not found", field, ref.Name)
	}
	if len(svc.Spec.Ports) == 0 {
		return nil, fmt.Errorf("%s: Service %q has no ports", field, ref.Name)
	}
	if ref.Port == 0 {
		return &traffic.Backend{Service: ref.Name, Port: svc.Spec.Ports[0].Port}, nil
	}
	for _, p := range svc.Spec.Ports {
		if p.Port == ref.Port {
			return &traffic.Backend{Service: ref.Name, Port: ref.Port}, nil
		}
	}
	return nil, fmt.Errorf("%s: Service %q has no port %d", field, ref.Name, ref.Port)
}

// tlsSecret is the Secret the Release's host is served with over HTTPS, ""
// for none.
func tlsSecret(spec *fledgev1.ReleaseSpec) string {
	if spec.TLS == nil {
		return ""
	}
	return spec.TLS.SecretName
}
