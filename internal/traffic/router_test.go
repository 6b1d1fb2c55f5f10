package traffic

import (
	"strings"
	"testing"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

func TestRouteValidate(t *testing.T) {
	valid := func() Route {
		return Route{Key: Key{Namespace: "shop", App: "web"}, Host: "web", Stable: Backend{Service: "v1", Port: 80},
			Canary: &Backend{Service: "v2", Port: 80}, CanaryWeight: 10,
			Match: []fledgev1.Predicate{{Type: fledgev1.PredicateCookie, Name: "beta", Value: "yes"}}}
	}
	tests := map[string]struct {
		edit func(*Route)
		want string // part of the error; "" when valid
	}{
		"valid":             {edit: func(*Route) {}},
		"no namespace":      {edit: func(r *Route) { r.Namespace = "" }, want: `key "/web": namespace and app are required`},
		"no app":            {edit: func(r *Route) { r.App = "" }, want: "namespace and app are required"},
		"no host":           {edit: func(r *Route) { r.Host = "" }, want: "empty host"},
		"canary port 0":     {edit: func(r *Route) { r.Canary.Port = 0 }, want: "canary: port 0 outside 1..65535"},
		"weight 101":        {edit: func(r *Route) { r.CanaryWeight = 101 }, want: "canaryWeight 101 outside 0..100"},
		"invalid predicate": {edit: func(r *Route) { r.Match[0].Name = "" }, want: "match[0]: empty name"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := valid()
			tc.edit(&r)
			err := r.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate() = %v; want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate() = %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestRouteSpec: a route's spec has its fields, not its key, and shares
// nothing with it.
func TestRouteSpec(t *testing.T) {
	r := Route{Key: Key{Namespace: "shop", App: "web"}, Host: "web", Stable: Backend{Service: "v1", Port: 80},
		Canary: &Backend{Service: "v2", Port: 8080}, CanaryWeight: 10,
		Match: []fledgev1.Predicate{{Type: fledgev1.PredicateHeader, Name: "X-Debug", Value: "1"}}}
	s := r.Spec()
	if s.Host != "web" || s.Stable != (fledgev1.BackendRef{Service: "v1", Port: 80}) || s.Canary == nil ||
		*s.Canary != (fledgev1.BackendRef{Service: "v2", Port: 8080}) || s.CanaryWeight != 10 || len(s.Match) != 1 {
		t.Fatalf("Spec() = %+v", s)
	}
	s.Match[0].Value = "2"
	if r.Match[0].Value != "1" {
		t.Error("Spec() shares its predicates with the route")
	}
	if s := (Route{Host: "web", Stable: Backend{Service: "v1", Port: 80}}).Spec(); s.Canary != nil {
		t.Errorf("Spec() of a route without canary = %+v", s)
	}
}
