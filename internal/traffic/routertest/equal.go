package routertest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/traffic"
)

// Normalize returns r in the canonical form in which read-back is compared:
//
//   - Host is lowercased (hosts are case-insensitive);
//   - without a Canary, CanaryWeight and Match mean nothing and are cleared;
//   - in Match, an empty MatchType becomes Exact, header names are lowercased
//     (they are case-insensitive; cookie and query names are not), the Value of
//     a Present predicate is cleared, and the predicates are sorted (they are
//     AND'ed, so their order means nothing); an empty Match is nil.
//
// Everything else (Key, Stable, Canary, CanaryWeight) must round-trip exactly.
func Normalize(r traffic.Route) traffic.Route {
	out := r
	out.Host = strings.ToLower(r.Host)
	if r.Canary == nil {
		out.CanaryWeight = 0
		out.Match = nil
		return out
	}
	c := *r.Canary
	out.Canary = &c
	out.Match = nil
	for _, p := range r.Match {
		if p.Match == "" {
			p.Match = fledgev1.MatchExact
		}
		if p.Type == fledgev1.PredicateHeader {
			p.Name = strings.ToLower(p.Name)
		}
		if p.Match == fledgev1.MatchPresent {
			p.Value = ""
		}
		out.Match = append(out.Match, p)
	}
	slices.SortFunc(out.Match, func(a, b fledgev1.Predicate) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.Match, b.Match), cmp.Compare(a.Value, b.Value))
	})
	return out
}

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
