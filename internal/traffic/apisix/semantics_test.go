package apisix

import (
	"errors"
	"maps"
	"net/http"
	"testing"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/traffic"
	"github.com/fledge-dev/fledge/internal/traffic/apisix/apisixtest"
)

// TestRoutingSemantics publishes routes and asks the in-test APISIX where
// requests would go, so the meaning of the JSON is checked, not only its shape.
func TestRoutingSemantics(t *testing.T) {
	key := traffic.Key{Namespace: "default", App: "web"}
	stable := traffic.Backend{Service: "web-stable", Port: 8080}
	canary := traffic.Backend{Service: "web-canary", Port: 8080}
	s, c := UpstreamID(key, stable), UpstreamID(key, canary)
	base := traffic.Route{Key: key, Host: "web.example", Stable: stable}
	split := func(w int32, ps ...fledgev1.Predicate) traffic.Route {
		r := base
		r.Canary, r.CanaryWeight, r.Match = &canary, w, ps
		return r
	}
	header := func(name string, m fledgev1.MatchType, v string) fledgev1.Predicate {
		return fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: name, Match: m, Value: v}
	}
	debug := header("X-Debug", fledgev1.MatchExact, "1")
	cookie := fledgev1.Predicate{Type: fledgev1.PredicateCookie, Name: "canary", Match: fledgev1.MatchExact, Value: "always"}
	query := fledgev1.Predicate{Type: fledgev1.PredicateQuery, Name: "canary", Match: fledgev1.MatchExact, Value: "true"}
	h := func(kv ...string) http.Header {
		hd := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			hd.Add(kv[i], kv[i+1])
		}
		return hd
	}
	type probe struct {
		name   string
		header http.Header
		query  string
		want   map[string]int
	}
	allStable, allCanary := map[string]int{s: 1}, map[string]int{c: 1}

	tests := []struct {
		name   string
		route  traffic.Route
		probes []probe
	}{
		{"stable only", base, []probe{{"any request", nil, "", allStable}}},
		{"weight 0 sends nothing to the canary", split(0), []probe{{"any request", nil, "", map[string]int{s: 100}}}},
		{"weight 10", split(10), []probe{{"any request", h("X-Debug", "1"), "", map[string]int{c: 10, s: 90}}}},
		{"weight 100 sends everything to the canary", split(100), []probe{{"any request", nil, "", map[string]int{c: 100}}}},
		{"header exact", split(0, debug), []probe{
			{"matching", h("X-Debug", "1"), "", allCanary},
			{"other value", h("X-Debug", "2"), "", allStable},
			{"absent", nil, "", allStable},
		}},
		{"header present", split(0, header("X-Canary", fledgev1.MatchPresent, "")), []probe{
			{"with a value", h("X-Canary", "yes"), "", allCanary},
			{"empty value", h("X-Canary", ""), "", allCanary},
			{"absent", h("X-Other", "yes"), "", allStable},
		}},
		{"header regular expression", split(0, header("User-Agent", fledgev1.MatchRegularExpression, "Firefox/[0-9]+")), []probe{
			{"matching", h("User-Agent", "Mozilla/5.0 Firefox/128.0"), "", allCanary},
			{"not matching", h("User-Agent", "Mozilla/5.0 Chrome/126.0"), "", allStable},
		}},
		{"cookie exact", split(0, cookie), []probe{
			{"matching", h("Cookie", "session=x; canary=always"), "", allCanary},
			{"other value", h("Cookie", "canary=never"), "", allStable},
		}},
		{"query exact", split(0, query), []probe{
			{"matching", nil, "page=2&canary=true", allCanary},
			{"other value", nil, "canary=false", allStable},
		}},
		{"combined predicates are AND'ed", split(0, debug, cookie, query), []probe{
			{"all match", h("X-Debug", "1", "Cookie", "canary=always"), "canary=true", allCanary},
			{"cookie missing", h("X-Debug", "1"), "canary=true", allStable},
		}},
		{"predicate with weight", split(20, debug), []probe{
			{"matching goes to the canary", h("X-Debug", "1"), "", allCanary},
			{"others are split", h("X-Debug", "0"), "", map[string]int{c: 20, s: 80}},
		}},
		{"predicate with weight 100", split(100, debug), []probe{
			{"not matching still goes to the canary", nil, "", map[string]int{c: 100}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, srv := newTestRouter(t, false)
			if err := r.Ensure(t.Context(), tc.route); err != nil {
				t.Fatalf("Ensure: %v", err)
			}
			for _, p := range tc.probes {
				got, err := srv.Targets(apisixtest.Probe{Host: "web.example", Path: "/some/page", Header: p.header, Query: p.query})
				if err != nil {
					t.Errorf("%s: Targets: %v", p.name, err)
					continue
				}
				if !maps.Equal(got, p.want) {
					t.Errorf("%s: request reaches %v; want %v", p.name, got, p.want)
				}
			}
			if _, err := srv.Targets(apisixtest.Probe{Host: "other.example"}); !errors.Is(err, apisixtest.ErrNoRoute) {
				t.Errorf("a request for another host: %v; want ErrNoRoute", err)
			}
		})
	}
}
