package controller

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fledge-dev/fledge/internal/traffic"
)

// Routed reasons from the gateway replicas (embedded provider).
const (
	// ReasonPropagating: some ready replicas still serve another routing of
	// the application.
	ReasonPropagating = "Propagating"
	// ReasonHostConflict: the host is served by another application (an older
	// TrafficRoute) on some replica.
	ReasonHostConflict = "HostConflict"
	// ReasonRouteRejected: a replica skipped the TrafficRoute for another reason.
	ReasonRouteRejected = "RouteRejected"
)

// replicaView is what the ready gateway replicas serve for one application's
// route, judged from their /routes answers (judgeReplicas).
type replicaView struct {
	// asked is how many ready replicas were asked, answered how many answered.
	asked, answered int
	// agree is how many serve exactly the route.
	agree int
	// lagging says, for the others that serve some other routing of the
	// application (or nothing) for its host, what they serve and how many do,
	// sorted by what.
	lagging []servedCount
	// conflicts are the other applications' TrafficRoutes ("namespace/name")
	// serving the host on some replica, sorted; conflicted is on how many.
	conflicts  []string
	conflicted int
	// rejected are the replicas' reasons for skipping the TrafficRoute
	// (other than the host), sorted; on how many replicas.
	rejected   []string
	rejectedOn int
	// unreachable is the first error of a replica that did not answer.
	unreachable error
	// listFailed: the replicas could not be listed (nothing was asked).
	listFailed bool
}

type servedCount struct {
	what string
	n    int
}

// olderRoute is how a replica's problems name the TrafficRoute that keeps a
// host (package gateway, addRoute).
const olderRoute = "is served by the older TrafficRoute "

// judgeReplicas compares what each replica answered with want, the route of
// key; pure. A replica that serves another application for the host, or says
// it skipped key's TrafficRoute for its host, is a conflict; one that skipped
// it for another reason, a rejection; one that serves key's route otherwise,
// or nothing for the host, lags.
func judgeReplicas(key traffic.Key, want traffic.Route, answers []replicaAnswer) replicaView {
	v := replicaView{asked: len(answers)}
	host := strings.TrimSuffix(strings.ToLower(want.Host), ".")
	skipped := fmt.Sprintf("TrafficRoute %s/%s skipped: ", key.Namespace, key.App)
	lagging := map[string]int{}
	for _, a := range answers {
		if a.Err != nil {
			if v.unreachable == nil {
				v.unreachable = a.Err
			}
			continue
		}
		v.answered++
		var conflicts, rejected []string
		for _, p := range a.Problems {
			reason, ok := strings.CutPrefix(p, skipped)
			if !ok {
				continue
			}
			if _, older, ok := strings.Cut(reason, olderRoute); ok {
				conflicts = append(conflicts, older)
			} else {
				rejected = append(rejected, reason)
			}
		}
		var served *servedRoute
		for i := range a.Routes {
			if a.Routes[i].Host == host {
				served = &a.Routes[i]
				break
			}
		}
		if served != nil && (served.Namespace != key.Namespace || served.Name != key.App) {
			conflicts = append(conflicts, served.Namespace+"/"+served.Name)
		}
		switch {
		case len(conflicts) > 0:
			v.conflicted++
			v.conflicts = append(v.conflicts, conflicts...)
		case len(rejected) > 0:
			v.rejectedOn++
			v.rejected = append(v.rejected, rejected...)
		case served != nil && traffic.Same(served.route(), want):
			v.agree++
		case served != nil:
			what := weightText(served.route())
			if what == weightText(want) {
				what = describe(served.route())
			}
			lagging[what]++
		default:
			lagging["nothing"]++
		}
	}
	slices.Sort(v.conflicts)
	v.conflicts = slices.Compact(v.conflicts)
	slices.Sort(v.rejected)
	v.rejected = slices.Compact(v.rejected)
	for what, n := range lagging {
		v.lagging = append(v.lagging, servedCount{what, n})
	}
	slices.SortFunc(v.lagging, func(a, b servedCount) int { return strings.Compare(a.what, b.what) })
	return v
}

// route is the served route as a traffic.Route.
func (s *servedRoute) route() traffic.Route {
	r := traffic.Route{
		Key:          traffic.Key{Namespace: s.Namespace, App: s.Name},
		Host:         s.Host,
		Stable:       traffic.Backend{Service: s.Stable.Service, Port: s.Stable.Port},
		CanaryWeight: s.CanaryWeight,
		Match:        slices.Clone(s.Match),
		TLSSecret:    s.TLSSecret,
	}
	if c := s.Canary; c != nil {
		r.Canary = &traffic.Backend{Service: c.Service, Port: c.Port}
	}
	return r
}

// weightText says in short what share a route gives its canary: "canary 10%",
// or "stable v1 only".
func weightText(r traffic.Route) string {
	if r.Canary == nil {
		return fmt.Sprintf("stable %s only", r.Stable.Service)
	}
	return fmt.Sprintf("canary %d%%", r.CanaryWeight)
}

// lagText lists what the lagging replicas serve: "1 still serve canary 0%".
func (v replicaView) lagText() string {
	parts := make([]string, 0, len(v.lagging))
	for _, l := range v.lagging {
		parts = append(parts, fmt.Sprintf("%d still serve %s", l.n, l.what))
	}
	return strings.Join(parts, ", ")
}
