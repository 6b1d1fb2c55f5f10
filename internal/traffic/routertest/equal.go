package routertest

import (
	"fmt"
	"slices"
	"strings"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/traffic"
)

// Normalize is traffic.Normalize: the canonical form in which read-back is
// compared.
func Normalize(r traffic.Route) traffic.Route { return traffic.Normalize(r) }

// Equal compares got and want after Normalize and returns "" when they are
// equal, otherwise one line per difference, e.g. "canaryWeight: got 10, want 50".
func Equal(got, want traffic.Route) (diff string) {
	g, w := Normalize(got), Normalize(want)
	var lines []string
	add := func(field string, gv, wv any) {
		lines = append(lines, fmt.Sprintf("%s: got %v, want %v", field, gv, wv))
	}
	if g.Key != w.Key {
		add("key", g.Key, w.Key)
	}
	if g.Host != w.Host {
		add("host", fmt.Sprintf("%q", g.Host), fmt.Sprintf("%q", w.Host))
	}
	if g.Stable != w.Stable {
		add("stable", backend(&g.Stable), backend(&w.Stable))
	}
	if (g.Canary == nil) != (w.Canary == nil) || (g.Canary != nil && *g.Canary != *w.Canary) {
		add("canary", backend(g.Canary), backend(w.Canary))
	}
	if g.CanaryWeight != w.CanaryWeight {
		add("canaryWeight", g.CanaryWeight, w.CanaryWeight)
	}
	if !slices.Equal(g.Match, w.Match) {
		add("match", predicates(g.Match), predicates(w.Match))
	}
	return strings.Join(lines, "\n")
}

func backend(b *traffic.Backend) string {
	if b == nil {
		return "none"
	}
	return fmt.Sprintf("%s:%d", b.Service, b.Port)
}

func predicates(ps []fledgev1.Predicate) string {
	if len(ps) == 0 {
		return "[]"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = describePredicate(p)
	}
	return "[" + strings.Join(s, " AND ") + "]"
}

func describePredicate(p fledgev1.Predicate) string {
	m := p.Match
	if m == "" {
		m = fledgev1.MatchExact
	}
	if m == fledgev1.MatchPresent {
		return fmt.Sprintf("%s %s %s", p.Type, p.Name, m)
	}
	return fmt.Sprintf("%s %s %s %q", p.Type, p.Name, m, p.Value)
}

// describe is a one-line description of r for failure messages.
func describe(r traffic.Route) string {
	s := fmt.Sprintf("%s host=%s stable=%s", r.Key, r.Host, backend(&r.Stable))
	if r.Canary != nil {
		s += fmt.Sprintf(" canary=%s weight=%d match=%s", backend(r.Canary), r.CanaryWeight, predicates(r.Match))
	}
	return s
}
