package apisix

import (
	"context"
	"strings"
	"testing"

	"github.com/fledge-dev/fledge/internal/traffic"
	"github.com/fledge-dev/fledge/internal/traffic/apisix/apisixtest"
	"github.com/fledge-dev/fledge/internal/traffic/routertest"
)

const testKey = "edd1c9f034335f136f87ad84b625c8f1"

// fakeResolver gives every Service port two nodes and names ports "http".
type fakeResolver struct{}

func (fakeResolver) Nodes(_ context.Context, namespace, service string, port int32) ([]Node, error) {
	return []Node{
		{Host: "10.0.0.1", Port: port + 1, Weight: 1},
		{Host: "10.0.0.2", Port: port + 1, Weight: 1},
	}, nil
}

func (fakeResolver) DiscoveryPort(context.Context, string, string, int32) (string, error) {
	return "http", nil
}

// newTestRouter starts an in-test Admin API and a Router talking to it. At the
// end of the test it fails if APISIX ever had a route referring to a missing
// upstream.
func newTestRouter(t *testing.T, discovery bool) (*Router, *apisixtest.Server) {
	t.Helper()
	srv := apisixtest.New(t, testKey)
	r, err := New(Config{BaseURL: srv.URL, APIKey: testKey, Discovery: discovery, Resolver: fakeResolver{}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if d := srv.Dangling(); len(d) > 0 {
			t.Errorf("a route referred to a missing upstream:\n%s", strings.Join(d, "\n"))
		}
	})
	return r, srv
}

func harness(discovery bool) routertest.Harness {
	return routertest.Harness{New: func(t *testing.T) *routertest.Instance {
		r, srv := newTestRouter(t, discovery)
		return &routertest.Instance{
			Router:    r,
			Namespace: "default",
			Objects:   func(context.Context) ([]string, error) { return srv.Objects(), nil },
			Snapshot: func(_ context.Context, key traffic.Key) (string, error) {
				return srv.Dump(func(_ apisixtest.Kind, _ string, v map[string]any) bool {
					labels, _ := v["labels"].(map[string]any)
					return labels[LabelApp] == appLabel(key)
				}), nil
			},
			Break:  srv.Break,
			Repair: srv.Repair,
		}
	}}
}

func TestConformance(t *testing.T) {
	routertest.Run(t, harness(false))
}

func TestConformanceWithDiscovery(t *testing.T) {
	routertest.Run(t, harness(true))
}
