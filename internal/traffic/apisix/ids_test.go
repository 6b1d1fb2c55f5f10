package apisix

import (
	"strings"
	"testing"

	"github.com/fledge-dev/fledge/internal/traffic"
)

func TestIDs(t *testing.T) {
	long := strings.Repeat("a", 63)
	tests := []struct {
		name     string
		key      traffic.Key
		backend  traffic.Backend
		route    string // "" means: only check validity
		upstream string
		label    string
	}{
		{
			name:     "short names are readable",
			key:      traffic.Key{Namespace: "default", App: "error-page"},
			backend:  traffic.Backend{Service: "error-page-v1", Port: 9011},
			route:    "fledge.default.error-page",
			upstream: "fledge.default.error-page.error-page-v1.9011",
			label:    "default.error-page",
		},
		{
			name:    "long names are hashed",
			key:     traffic.Key{Namespace: long, App: long},
			backend: traffic.Backend{Service: long, Port: 65535},
		},
		{
			name:    "app with characters outside the id alphabet",
			key:     traffic.Key{Namespace: "shop", App: "web/ui v2"},
			backend: traffic.Backend{Service: "web", Port: 80},
		},
		{
			name:    "app with dots is hashed to stay unambiguous",
			key:     traffic.Key{Namespace: "shop", App: "web.v2"},
			backend: traffic.Backend{Service: "web", Port: 80},
			label:   "shop.web.v2",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rid, uid, label := RouteID(tc.key), UpstreamID(tc.key, tc.backend), appLabel(tc.key)
			for what, id := range map[string]string{"route id": rid, "upstream id": uid} {
				if !idRE.MatchString(id) {
					t.Errorf("%s %q is not a valid APISIX id (1-64 of [A-Za-z0-9._-])", what, id)
				}
			}
			if !labelValueRE.MatchString(label) {
				t.Errorf("app label %q is not a valid label value", label)
			}
			if tc.route != "" && rid != tc.route {
				t.Errorf("RouteID = %q; want %q", rid, tc.route)
			}
			if tc.upstream != "" && uid != tc.upstream {
				t.Errorf("UpstreamID = %q; want %q", uid, tc.upstream)
			}
			if tc.label != "" && label != tc.label {
				t.Errorf("appLabel = %q; want %q", label, tc.label)
			}
			if RouteID(tc.key) != rid || UpstreamID(tc.key, tc.backend) != uid || appLabel(tc.key) != label {
				t.Error("ids are not deterministic")
			}
		})
	}
}

func TestIDsAreDistinct(t *testing.T) {
	long := strings.Repeat("n", 63)
	keys := []traffic.Key{
		{Namespace: "a", App: "b"},
		{Namespace: "a", App: "b.c"},
		{Namespace: "a.b", App: "c"}, // not a valid namespace, but must not collide
		{Namespace: "a", App: "b-c"},
		{Namespace: long, App: long + "x"},
		{Namespace: long, App: long + "y"},
		{Namespace: "a", App: "b c"},
		{Namespace: "a", App: "b/c"},
	}
	routes, labels := map[string]traffic.Key{}, map[string]traffic.Key{}
	for _, k := range keys {
		if other, ok := routes[RouteID(k)]; ok {
			t.Errorf("RouteID(%v) = RouteID(%v) = %q", k, other, RouteID(k))
		}
		routes[RouteID(k)] = k
		if other, ok := labels[appLabel(k)]; ok {
			t.Errorf("appLabel(%v) = appLabel(%v) = %q", k, other, appLabel(k))
		}
		labels[appLabel(k)] = k
	}
	key := traffic.Key{Namespace: "a", App: "b"}
	ups := map[string]bool{}
	for _, b := range []traffic.Backend{{Service: "s", Port: 80}, {Service: "s", Port: 8080}, {Service: "t", Port: 80}} {
		id := UpstreamID(key, b)
		if ups[id] {
			t.Errorf("UpstreamID collision for %v: %q", b, id)
		}
		ups[id] = true
	}
	// The same Service in two applications gets two upstreams.
	b := traffic.Backend{Service: "web", Port: 80}
	if UpstreamID(traffic.Key{Namespace: "a", App: "x"}, b) == UpstreamID(traffic.Key{Namespace: "a", App: "y"}, b) {
		t.Error("two applications share an upstream id")
	}
}
