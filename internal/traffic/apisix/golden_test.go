package apisix

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/traffic"
	"github.com/fledge-dev/fledge/internal/traffic/apisix/apisixtest"
)

// The examples of APISIX's traffic-split plugin documentation
// (https://apisix.apache.org/docs/apisix/plugins/traffic-split/): an upstream
// per version, a 90/10 weighted split and a match rule on a header, written
// for app error-page in namespace default.
const (
	goldenUpstreamV1 = `{"type":"roundrobin","nodes":{"error-page-v1.default.svc.cluster.local:9011":1}}`
	goldenUpstreamV2 = `{"type":"roundrobin","nodes":{"error-page-v2.default.svc.cluster.local:9011":1}}`
	goldenSplit9010  = `{"name":"error-page","host":"error-page","uri":"/*","upstream_id":"error-page-v1",
 "plugins":{"traffic-split":{"rules":[{"weighted_upstreams":[
   {"upstream_id":"error-page-v2","weight":10},{"weight":90}]}]}}}`
	goldenDebugOnly = `{"name":"error-page","host":"error-page","uri":"/*","upstream_id":"error-page-v1",
 "plugins":{"traffic-split":{"rules":[{"match":[{"vars":[["http_x_debug","==","1"]]}],
   "weighted_upstreams":[{"upstream_id":"error-page-v2","weight":1}]}]}}}`
)

// TestGoldenJSON checks that the bodies fledge PUTs are the documented examples,
// apart from the labels and upstream names and ids fledge chooses.
func TestGoldenJSON(t *testing.T) {
	key := traffic.Key{Namespace: "default", App: "error-page"}
	v1 := traffic.Backend{Service: "error-page-v1", Port: 9011}
	v2 := traffic.Backend{Service: "error-page-v2", Port: 9011}
	base := traffic.Route{Key: key, Host: "error-page", Stable: v1, Canary: &v2}
	rename := strings.NewReplacer(UpstreamID(key, v1), "error-page-v1", UpstreamID(key, v2), "error-page-v2")

	tests := []struct {
		name  string
		route traffic.Route
		want  string
	}{
		{name: "90/10 split", route: withWeight(base, 10), want: goldenSplit9010},
		{name: "only X-Debug: 1 to v2", route: withMatch(base, fledgev1.Predicate{
			Type: fledgev1.PredicateHeader, Name: "X-Debug", Match: fledgev1.MatchExact, Value: "1"}), want: goldenDebugOnly},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := apisixtest.New(t, testKey)
			r, err := New(Config{BaseURL: srv.URL, APIKey: testKey, Resolver: ClusterDNSResolver{}})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Ensure(t.Context(), tc.route); err != nil {
				t.Fatalf("Ensure: %v", err)
			}
			puts := map[string]string{}
			for _, req := range srv.Requests() {
				if req.Method == "PUT" {
					puts[rename.Replace(req.Path)] = rename.Replace(req.Body)
				}
			}
			for _, g := range []struct{ path, want string }{
				{"upstreams/error-page-v1", goldenUpstreamV1},
				{"upstreams/error-page-v2", goldenUpstreamV2},
				{"routes/" + RouteID(key), tc.want},
			} {
				body, ok := puts[g.path]
				if !ok {
					t.Errorf("no PUT %s; PUTs: %v", g.path, puts)
					continue
				}
				// Labels are fledge's own; so are upstream names (the examples have none).
				ignore := []string{"labels"}
				if strings.HasPrefix(g.path, "upstreams/") {
					ignore = append(ignore, "name")
				}
				got, want := decodeWithout(t, body, ignore...), decodeWithout(t, g.want)
				if !reflect.DeepEqual(got, want) {
					gb, _ := json.Marshal(got)
					wb, _ := json.Marshal(want)
					t.Errorf("PUT %s body:\n got %s\nwant %s", g.path, gb, wb)
				}
			}
			// And the documented labels are there.
			route, _ := srv.Get(apisixtest.Routes, RouteID(key))
			labels, _ := route["labels"].(map[string]any)
			if labels["managed-by"] != "fledge" || labels["fledge-app"] != "default.error-page" {
				t.Errorf("route labels = %v; want managed-by=fledge, fledge-app=default.error-page", labels)
			}
		})
	}
}

func withWeight(r traffic.Route, w int32) traffic.Route { r.CanaryWeight = w; return r }

func withMatch(r traffic.Route, ps ...fledgev1.Predicate) traffic.Route { r.Match = ps; return r }

func decodeWithout(t *testing.T, s string, fields ...string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("decoding %s: %v", s, err)
	}
	for _, f := range fields {
		delete(m, f)
	}
	return m
}
