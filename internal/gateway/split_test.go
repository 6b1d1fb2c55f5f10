package gateway

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// splitObjects is a route "web" with canary weight w and one endpoint per backend.
func splitObjects(w int32, stableAddrs ...string) Objects {
	if len(stableAddrs) == 0 {
		stableAddrs = []string{"10.0.0.1"}
	}
	var stable []discoveryv1.Endpoint
	for _, a := range stableAddrs {
		stable = append(stable, ready(a))
	}
	return Objects{
		TrafficRoutes: []*fledgev1.TrafficRoute{trafficRoute("web", "web.example", withCanary(w))},
		Services:      []*corev1.Service{service("web-stable"), service("web-canary")},
		EndpointSlices: []*discoveryv1.EndpointSlice{
			endpointSlice("web-stable-a", "web-stable", "http", 8080, stable...),
			endpointSlice("web-canary-a", "web-canary", "http", 8080, ready("10.0.1.1")),
		},
	}
}

// picks routes n requests through g's table and reports, per request, whether it
// went to the canary.
func picks(t *testing.T, g *Gateway, n int) []bool {
	t.Helper()
	rt := g.Table().lookup("web.example")
	if rt == nil {
		t.Fatal("web.example not served")
	}
	r := request("web.example", "/")
	out := make([]bool, n)
	for i := range out {
		out[i] = rt.pick(r).service == "web-canary"
	}
	return out
}

func count(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// checkWindows fails unless every 100 consecutive picks carry exactly w canary
// requests.
func checkWindows(t *testing.T, seq []bool, w int) {
	t.Helper()
	for i := 0; i+100 <= len(seq); i++ {
		if got := count(seq[i : i+100]); got != w {
			t.Fatalf("requests %d..%d carried %d canary requests, want exactly %d", i, i+99, got, w)
		}
	}
}

func TestSplitExact(t *testing.T) {
	for _, w := range []int{0, 1, 10, 33, 50, 90, 100} {
		for _, n := range []int{100, 1000} {
			t.Run(fmt.Sprintf("weight %d over %d", w, n), func(t *testing.T) {
				g := New(Options{})
				g.Update(t.Context(), splitObjects(int32(w)))
				seq := picks(t, g, n)
				if got, want := count(seq), w*n/100; got != want {
					t.Errorf("%d of %d requests went to the canary, want %d", got, n, want)
				}
				checkWindows(t, seq, w)
			})
		}
	}
}

func TestSplitAfterWeightChange(t *testing.T) {
	tests := map[string]struct{ before, after, warmup int }{
		"10 to 33 mid-sequence":  {before: 10, after: 33, warmup: 37},
		"33 to 1":                {before: 33, after: 1, warmup: 99},
		"90 to 50":               {before: 90, after: 50, warmup: 1},
		"0 to 100":               {before: 0, after: 100, warmup: 50},
		"100 to 0":               {before: 100, after: 0, warmup: 3},
		"50 to 90 after 1000":    {before: 50, after: 90, warmup: 1000},
		"1 to 10 before any hit": {before: 1, after: 10, warmup: 98},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			g := New(Options{})
			g.Update(t.Context(), splitObjects(int32(tc.before)))
			picks(t, g, tc.warmup)
			g.Update(t.Context(), splitObjects(int32(tc.after)))
			seq := picks(t, g, 300)
			if got := count(seq[:100]); got != tc.after {
				t.Errorf("first 100 requests after the change carried %d canary requests, want %d", got, tc.after)
			}
			checkWindows(t, seq, tc.after)
		})
	}
}

// TestSplitSurvivesRebuild: a rebuild that changes neither weight nor canary (an
// endpoint came) keeps the sequence, so windows across it stay exact.
func TestSplitSurvivesRebuild(t *testing.T) {
	g := New(Options{})
	g.Update(t.Context(), splitObjects(1))
	seq := picks(t, g, 50)
	g.Update(t.Context(), splitObjects(1, "10.0.0.1", "10.0.0.2"))
	seq = append(seq, picks(t, g, 250)...)
	checkWindows(t, seq, 1) // a restarted sequence would put no canary request in 0..99
}

// TestSplitMatchBypassesSequence: requests matching the predicates go to the
// canary and do not consume the weighted sequence.
func TestSplitMatchBypassesSequence(t *testing.T) {
	objs := splitObjects(10)
	objs.TrafficRoutes[0].Spec.Match = []fledgev1.Predicate{{Type: fledgev1.PredicateHeader, Name: "x-canary", Value: "always"}}
	g := New(Options{})
	g.Update(t.Context(), objs)
	rt := g.Table().lookup("web.example")
	forced := request("web.example", "/")
	forced.Header.Set("X-Canary", "always")
	plain := request("web.example", "/")
	var seq []bool
	for i := range 300 {
		if i%3 == 0 {
			if b := rt.pick(forced); b.service != "web-canary" {
				t.Fatalf("request %d matching the predicates went to %s", i, b.service)
			}
			continue
		}
		seq = append(seq, rt.pick(plain).service == "web-canary")
	}
	checkWindows(t, seq, 10)
}

func TestRoundRobin(t *testing.T) {
	g := New(Options{})
	g.Update(t.Context(), splitObjects(0, "10.0.0.1", "10.0.0.2", "10.0.0.3"))
	b := g.Table().lookup("web.example").stable
	got := map[string]int{}
	for range 300 {
		got[b.next().addr]++
	}
	for _, a := range []string{"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"} {
		if got[a] != 100 {
			t.Errorf("%s got %d of 300 requests, want 100 (all: %v)", a, got[a], got)
		}
	}
}
