package traffic

import (
	"cmp"
	"slices"
	"strings"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// Normalize returns r in the canonical form in which a route read back from a
// provider is compared with the route that was set:
//
//   - Host is lowercased (hosts are case-insensitive);
//   - without a Canary, CanaryWeight and Match mean nothing and are cleared;
//   - in Match, an empty MatchType becomes Exact, header names are lowercased
//     (they are case-insensitive; cookie and query names are not), the Value of
//     a Present predicate is cleared, and the predicates are sorted (they are
//     AND'ed, so their order means nothing); an empty Match is nil.
//
// Everything else (Key, Stable, Canary, CanaryWeight) must round-trip exactly.
func Normalize(r Route) Route {
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

// Same reports whether two routes are the same once normalized.
func Same(a, b Route) bool {
	a, b = Normalize(a), Normalize(b)
	return a.Key == b.Key && a.Host == b.Host && a.Stable == b.Stable &&
		(a.Canary == nil) == (b.Canary == nil) && (a.Canary == nil || *a.Canary == *b.Canary) &&
		a.CanaryWeight == b.CanaryWeight && slices.Equal(a.Match, b.Match) && a.TLSSecret == b.TLSSecret
}
