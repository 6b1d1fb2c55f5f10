package e2e

import (
	"net/http"
	"testing"
)

const canaryMatch = "fledge.dev/canary-match"

var debug = http.Header{"X-Debug": {"1"}}

// TestPredicateDarkLaunch: at weight 0 with predicate header X-Debug: 1, only
// requests with the header reach the canary.
func TestPredicateDarkLaunch(t *testing.T) {
	a := newApp(t, "dark-launch")
	a.service(t, "v1", "v1", map[string]string{published: a.name})
	a.service(t, "v2", "v2", map[string]string{published: a.name, canaryKey: "true", percentage: "0",
		canaryMatch: "header:X-Debug=1"})
	a.served(t, "v1", "v2", 0)
	a.wantCounts(t, debug, map[string]int{"v2": 100})
	a.wantCounts(t, nil, map[string]int{"v1": 100})
	a.wantCounts(t, http.Header{"X-Debug": {"2"}}, map[string]int{"v1": 100})
}

// TestPredicateWithWeight: at weight 10 with the predicate, requests with the
// header all reach the canary and the others split exactly 90/10.
func TestPredicateWithWeight(t *testing.T) {
	a := newApp(t, "predicate-weight")
	a.service(t, "v1", "v1", map[string]string{published: a.name})
	a.service(t, "v2", "v2", map[string]string{published: a.name, canaryKey: "true", percentage: "10",
		canaryMatch: "header:X-Debug=1"})
	a.served(t, "v1", "v2", 10)
	a.wantCounts(t, debug, map[string]int{"v2": 100})
	a.wantCounts(t, nil, map[string]int{"v1": 90, "v2": 10})
}

// TestPredicateKinds: cookie, query, regex and presence predicates, combined.
func TestPredicateKinds(t *testing.T) {
	a := newApp(t, "predicate-kinds")
	a.service(t, "v1", "v1", map[string]string{published: a.name})
	a.service(t, "v2", "v2", map[string]string{published: a.name, canaryKey: "true",
		canaryMatch: "cookie:beta=yes; header:User-Agent~^canary/[0-9]+$; header:X-Trace"})
	a.served(t, "v1", "v2", 0)
	all := http.Header{"Cookie": {"a=b; beta=yes"}, "User-Agent": {"canary/7"}, "X-Trace": {""}}
	a.wantCounts(t, all, map[string]int{"v2": 100})
	for name, h := range map[string]http.Header{
		"without the cookie":     {"User-Agent": {"canary/7"}, "X-Trace": {"x"}},
		"with another UA":        {"Cookie": {"beta=yes"}, "User-Agent": {"canary/x"}, "X-Trace": {"x"}},
		"without X-Trace header": {"Cookie": {"beta=yes"}, "User-Agent": {"canary/7"}},
	} {
		t.Run(name, func(t *testing.T) { a.wantCounts(t, h, map[string]int{"v1": 100}) })
	}

	b := newApp(t, "predicate-query")
	b.service(t, "v1", "v1", map[string]string{published: b.name})
	b.service(t, "v2", "v2", map[string]string{published: b.name, canaryKey: "true", canaryMatch: "query:debug=1"})
	b.served(t, "v1", "v2", 0)
	c, err := sb.Get(t.Context(), 100, b.name, "/api/error_page?debug=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.ByVersion["v2"] != 100 {
		t.Errorf("with ?debug=1: %v, want all v2", c.ByVersion)
	}
	b.wantCounts(t, nil, map[string]int{"v1": 100})
}

// TestInvalidPredicateKeepsTraffic: a bad predicate is a Warning event, and
// the traffic stays as it was.
func TestInvalidPredicateKeepsTraffic(t *testing.T) {
	for i, bad := range []string{"header:X-Debug~(", "header:=1", "ip:10.0.0.1"} {
		t.Run(bad, func(t *testing.T) {
			a := newApp(t, "bad-match-"+string(rune('a'+i)))
			a.service(t, "v1", "v1", map[string]string{published: a.name})
			a.service(t, "v2", "v2", map[string]string{published: a.name, canaryKey: "true", percentage: "10",
				canaryMatch: "header:X-Debug=1"})
			a.served(t, "v1", "v2", 10)
			a.kubectl(t, "annotate", "service", "v2", canaryMatch+"="+bad, "--overwrite")
			a.warning(t, "v2", canaryMatch, bad)
			a.wantCounts(t, debug, map[string]int{"v2": 100})
			a.wantCounts(t, nil, map[string]int{"v1": 90, "v2": 10})
		})
	}
}
