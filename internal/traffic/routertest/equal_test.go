package routertest

import (
	"strings"
	"testing"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/traffic"
)

func TestEqual(t *testing.T) {
	key := traffic.Key{Namespace: "default", App: "web"}
	canary := traffic.Backend{Service: "web-canary", Port: 8080}
	other := traffic.Backend{Service: "web-next", Port: 8080}
	base := traffic.Route{Key: key, Host: "web.example", Stable: traffic.Backend{Service: "web-stable", Port: 8080}}
	with := func(r traffic.Route, f func(*traffic.Route)) traffic.Route { f(&r); return r }
	hdr := func(name string, m fledgev1.MatchType, v string) fledgev1.Predicate {
		return fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: name, Match: m, Value: v}
	}
	cookie := fledgev1.Predicate{Type: fledgev1.PredicateCookie, Name: "canary", Match: fledgev1.MatchExact, Value: "1"}

	tests := []struct {
		name      string
		got, want traffic.Route
		diff      []string // substrings of the diff; nil means equal
	}{
		{name: "identical", got: base, want: base},
		{name: "host case is ignored", got: with(base, func(r *traffic.Route) { r.Host = "WEB.example" }), want: base},
		{name: "empty match type means exact",
			got: with(base, func(r *traffic.Route) { r.Canary = &canary; r.Match = []fledgev1.Predicate{hdr("X-Debug", "", "1")} }),
			want: with(base, func(r *traffic.Route) {
				r.Canary = &canary
				r.Match = []fledgev1.Predicate{hdr("X-Debug", fledgev1.MatchExact, "1")}
			})},
		{name: "header name case is ignored",
			got:  with(base, func(r *traffic.Route) { r.Canary = &canary; r.Match = []fledgev1.Predicate{hdr("x-debug", "", "1")} }),
			want: with(base, func(r *traffic.Route) { r.Canary = &canary; r.Match = []fledgev1.Predicate{hdr("X-Debug", "", "1")} })},
		{name: "cookie name case matters",
			got: with(base, func(r *traffic.Route) {
				r.Canary = &canary
				c := cookie
				c.Name = "Canary"
				r.Match = []fledgev1.Predicate{c}
			}),
			want: with(base, func(r *traffic.Route) { r.Canary = &canary; r.Match = []fledgev1.Predicate{cookie} }),
			diff: []string{"match:"}},
		{name: "predicate order is ignored",
			got: with(base, func(r *traffic.Route) {
				r.Canary = &canary
				r.Match = []fledgev1.Predicate{cookie, hdr("X-Debug", "", "1")}
			}),
			want: with(base, func(r *traffic.Route) {
				r.Canary = &canary
				r.Match = []fledgev1.Predicate{hdr("X-Debug", "", "1"), cookie}
			})},
		{name: "present ignores value",
			got: with(base, func(r *traffic.Route) {
				r.Canary = &canary
				r.Match = []fledgev1.Predicate{hdr("X-Canary", fledgev1.MatchPresent, "")}
			}),
			want: with(base, func(r *traffic.Route) {
				r.Canary = &canary
				r.Match = []fledgev1.Predicate{hdr("X-Canary", fledgev1.MatchPresent, "x")}
			})},
		{name: "regular expression value matters",
			got: with(base, func(r *traffic.Route) {
				r.Canary = &canary
				r.Match = []fledgev1.Predicate{hdr("X-A", fledgev1.MatchRegularExpression, "a.*")}
			}),
			want: with(base, func(r *traffic.Route) {
				r.Canary = &canary
				r.Match = []fledgev1.Predicate{hdr("X-A", fledgev1.MatchRegularExpression, "a.+")}
			}),
			diff: []string{"match:"}},
		{name: "present is not a regular expression",
			got: with(base, func(r *traffic.Route) {
				r.Canary = &canary
				r.Match = []fledgev1.Predicate{hdr("X-A", fledgev1.MatchPresent, "")}
			}),
			want: with(base, func(r *traffic.Route) {
				r.Canary = &canary
				r.Match = []fledgev1.Predicate{hdr("X-A", fledgev1.MatchRegularExpression, ".*")}
			}),
			diff: []string{"match:"}},
		{name: "no canary ignores weight and match",
			got:  base,
			want: with(base, func(r *traffic.Route) { r.CanaryWeight = 50; r.Match = []fledgev1.Predicate{cookie} })},
		{name: "empty and nil match are equal",
			got:  with(base, func(r *traffic.Route) { r.Canary = &canary; r.Match = []fledgev1.Predicate{} }),
			want: with(base, func(r *traffic.Route) { r.Canary = &canary })},
		{name: "weight differs",
			got:  with(base, func(r *traffic.Route) { r.Canary = &canary; r.CanaryWeight = 10 }),
			want: with(base, func(r *traffic.Route) { r.Canary = &canary; r.CanaryWeight = 50 }),
			diff: []string{"canaryWeight: got 10, want 50"}},
		{name: "canary missing",
			got:  base,
			want: with(base, func(r *traffic.Route) { r.Canary = &canary }),
			diff: []string{"canary: got none, want web-canary:8080"}},
		{name: "canary differs",
			got:  with(base, func(r *traffic.Route) { r.Canary = &other }),
			want: with(base, func(r *traffic.Route) { r.Canary = &canary }),
			diff: []string{"canary: got web-next:8080"}},
		{name: "stable port differs",
			got:  with(base, func(r *traffic.Route) { r.Stable.Port = 80 }),
			want: base,
			diff: []string{"stable: got web-stable:80, want web-stable:8080"}},
		{name: "key and host differ",
			got:  with(base, func(r *traffic.Route) { r.App = "other"; r.Host = "other.example" }),
			want: base,
			diff: []string{"key:", "host:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Equal(tc.got, tc.want)
			if tc.diff == nil {
				if d != "" {
					t.Errorf("Equal = %q; want equal", d)
				}
				return
			}
			if d == "" {
				t.Fatal("Equal reports equal; want a difference")
			}
			for _, s := range tc.diff {
				if !strings.Contains(d, s) {
					t.Errorf("Equal = %q; want it to contain %q", d, s)
				}
			}
		})
	}
}

func TestNormalizeDoesNotModifyInput(t *testing.T) {
	canary := traffic.Backend{Service: "c", Port: 1}
	in := traffic.Route{Host: "A.example", Canary: &canary, Match: []fledgev1.Predicate{
		{Type: fledgev1.PredicateQuery, Name: "b"},
		{Type: fledgev1.PredicateHeader, Name: "X-A"},
	}}
	out := Normalize(in)
	out.Canary.Port = 2
	if in.Host != "A.example" || in.Match[0].Name != "b" || in.Match[1].Name != "X-A" || in.Match[1].Match != "" || canary.Port != 1 {
		t.Errorf("Normalize modified its input: %+v (canary %+v)", in, canary)
	}
}
