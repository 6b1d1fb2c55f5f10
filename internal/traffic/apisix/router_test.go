package apisix

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/traffic"
	"github.com/fledge-dev/fledge/internal/traffic/apisix/apisixtest"
	"github.com/fledge-dev/fledge/internal/traffic/routertest"
)

var (
	webKey    = traffic.Key{Namespace: "default", App: "web"}
	webStable = traffic.Backend{Service: "web-stable", Port: 8080}
	webCanary = traffic.Backend{Service: "web-canary", Port: 8080}
	webNext   = traffic.Backend{Service: "web-next", Port: 9090}
)

func webRoute(canary *traffic.Backend, weight int32, ps ...fledgev1.Predicate) traffic.Route {
	return traffic.Route{Key: webKey, Host: "web.example", Stable: webStable, Canary: canary, CanaryWeight: weight, Match: ps}
}

// admin sends a request to the in-test Admin API as another client would.
func admin(t *testing.T, srv *apisixtest.Server, method, path, body string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+"/apisix/admin/"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-KEY", testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode > 299 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
}

func mustEnsure(t *testing.T, r *Router, route traffic.Route) {
	t.Helper()
	if err := r.Ensure(t.Context(), route); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
}

func writes(srv *apisixtest.Server, from int) []string {
	var out []string
	for _, q := range srv.Requests()[from:] {
		if q.Method != http.MethodGet {
			out = append(out, q.Method+" "+q.Path)
		}
	}
	return out
}

func TestNewValidatesConfig(t *testing.T) {
	ok := Config{BaseURL: "http://apisix-admin:9180", APIKey: "k", Resolver: fakeResolver{}}
	tests := []struct {
		name   string
		modify func(*Config)
		base   string // wanted admin base when valid
	}{
		{name: "host and port get the admin path", modify: func(*Config) {}, base: "http://apisix-admin:9180/apisix/admin"},
		{name: "explicit path is kept", modify: func(c *Config) { c.BaseURL = "https://gw.example/custom/admin" }, base: "https://gw.example/custom/admin"},
		{name: "no scheme", modify: func(c *Config) { c.BaseURL = "apisix-admin:9180" }},
		{name: "credentials in URL", modify: func(c *Config) { c.BaseURL = "http://user:pass@apisix-admin:9180" }},
		{name: "query in URL", modify: func(c *Config) { c.BaseURL = "http://apisix-admin:9180/apisix/admin?api_key=x" }},
		{name: "no API key", modify: func(c *Config) { c.APIKey = "" }},
		{name: "no resolver", modify: func(c *Config) { c.Resolver = nil }},
		{name: "discovery without port names", modify: func(c *Config) { c.Discovery = true; c.Resolver = ClusterDNSResolver{} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.modify(&cfg)
			r, err := New(cfg)
			if tc.base == "" {
				if err == nil {
					t.Fatalf("New(%v) succeeded; want an error", cfg)
				}
				if strings.Contains(err.Error(), "pass") {
					t.Errorf("error repeats the URL's credentials: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if got := r.client.base.String(); got != tc.base {
				t.Errorf("admin base = %q; want %q", got, tc.base)
			}
		})
	}
}

func TestRefusesObjectsItDoesNotManage(t *testing.T) {
	foreignUpstream := map[string]any{"type": "roundrobin", "nodes": map[string]any{"10.1.1.1:80": 1}}
	tests := []struct {
		name string
		seed func(t *testing.T, srv *apisixtest.Server)
	}{
		{"route without labels", func(t *testing.T, srv *apisixtest.Server) {
			seed(t, srv, apisixtest.Upstreams, "user-up", foreignUpstream)
			seed(t, srv, apisixtest.Routes, RouteID(webKey), map[string]any{"uri": "/*", "host": "web.example", "upstream_id": "user-up"})
		}},
		{"route of another tool", func(t *testing.T, srv *apisixtest.Server) {
			seed(t, srv, apisixtest.Upstreams, "user-up", foreignUpstream)
			seed(t, srv, apisixtest.Routes, RouteID(webKey), map[string]any{"uri": "/*", "upstream_id": "user-up",
				"labels": map[string]any{"managed-by": "apisix-ingress-controller"}})
		}},
		{"upstream of another fledge app", func(t *testing.T, srv *apisixtest.Server) {
			up := map[string]any{"nodes": map[string]any{"10.1.1.1:80": 1},
				"labels": map[string]any{LabelManagedBy: ManagedByValue, LabelApp: "default.other"}}
			seed(t, srv, apisixtest.Upstreams, UpstreamID(webKey, webStable), up)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, srv := newTestRouter(t, false)
			tc.seed(t, srv)
			before, objs := srv.Dump(nil), srv.Objects()

			err := r.Ensure(t.Context(), webRoute(&webCanary, 10))
			if !errors.Is(err, ErrNotManaged) {
				t.Errorf("Ensure = %v; want ErrNotManaged", err)
			}
			if err != nil && !strings.Contains(err.Error(), "fledge.default.web") {
				t.Errorf("error does not name the object: %v", err)
			}
			if _, err := r.Observe(t.Context(), webKey); tc.name != "upstream of another fledge app" &&
				(!errors.Is(err, ErrNotManaged) || errors.Is(err, traffic.ErrNotFound)) {
				t.Errorf("Observe = %v; want ErrNotManaged, not ErrNotFound", err)
			}
			if err := r.Remove(t.Context(), webKey); tc.name != "upstream of another fledge app" && !errors.Is(err, ErrNotManaged) {
				t.Errorf("Remove = %v; want ErrNotManaged", err)
			}
			if after := srv.Dump(nil); after != before {
				t.Errorf("objects fledge does not manage were changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if got := srv.Objects(); !slices.Equal(got, objs) {
				t.Errorf("objects = %v; want only the seeded %v", got, objs)
			}
		})
	}
}

func seed(t *testing.T, srv *apisixtest.Server, k apisixtest.Kind, id string, v map[string]any) {
	t.Helper()
	if err := srv.Seed(k, id, v); err != nil {
		t.Fatal(err)
	}
}

func TestCleanupSparesOthersUpstreams(t *testing.T) {
	r, srv := newTestRouter(t, false)
	seed(t, srv, apisixtest.Upstreams, "user-up", map[string]any{"nodes": map[string]any{"10.1.1.1:80": 1}})
	seed(t, srv, apisixtest.Upstreams, "other-app-up", map[string]any{"nodes": map[string]any{"10.1.1.1:80": 1},
		"labels": map[string]any{LabelManagedBy: ManagedByValue, LabelApp: "default.other"}})
	mustEnsure(t, r, webRoute(&webCanary, 10))
	mustEnsure(t, r, webRoute(nil, 0))
	if err := r.Remove(t.Context(), webKey); err != nil {
		t.Fatal(err)
	}
	if got, want := srv.Objects(), []string{"upstreams/other-app-up", "upstreams/user-up"}; !slices.Equal(got, want) {
		t.Errorf("objects = %v; want %v", got, want)
	}
}

func TestKeepsFieldsItDoesNotManage(t *testing.T) {
	r, srv := newTestRouter(t, false)
	mustEnsure(t, r, webRoute(&webCanary, 10))
	routeID, upID := RouteID(webKey), UpstreamID(webKey, webStable)
	// Someone adds a plugin, a description and a label, and tunes the upstream.
	admin(t, srv, http.MethodPatch, "routes/"+routeID, `{"desc":"shop front","labels":{"team":"shop"},
		"plugins":{"limit-count":{"count":100,"time_window":60}}}`)
	admin(t, srv, http.MethodPatch, "upstreams/"+upID, `{"timeout":{"connect":3,"send":3,"read":3}}`)

	n := len(srv.Requests())
	mustEnsure(t, r, webRoute(&webCanary, 10))
	if w := writes(srv, n); len(w) != 0 {
		t.Errorf("Ensure of an unchanged route after unrelated edits wrote %v; want nothing", w)
	}

	mustEnsure(t, r, webRoute(&webCanary, 50))
	route, _ := srv.Get(apisixtest.Routes, routeID)
	plugins, _ := route["plugins"].(map[string]any)
	labels, _ := route["labels"].(map[string]any)
	if plugins["limit-count"] == nil || route["desc"] != "shop front" || labels["team"] != "shop" {
		t.Errorf("route lost fields fledge does not manage: %v", route)
	}
	up, _ := srv.Get(apisixtest.Upstreams, upID)
	if up["timeout"] == nil {
		t.Errorf("upstream lost its timeout: %v", up)
	}
	got, err := r.Observe(t.Context(), webKey)
	if err != nil {
		t.Fatal(err)
	}
	if d := routertest.Equal(got, webRoute(&webCanary, 50)); d != "" {
		t.Error(d)
	}

	// Without canary the plugin goes, the other plugin stays.
	mustEnsure(t, r, webRoute(nil, 0))
	route, _ = srv.Get(apisixtest.Routes, routeID)
	plugins, _ = route["plugins"].(map[string]any)
	if plugins["traffic-split"] != nil || plugins["limit-count"] == nil {
		t.Errorf("plugins = %v; want limit-count only", plugins)
	}
}

// TestObserveShowsDrift: Observe reports what APISIX serves after someone else
// changed it, and Ensure repairs it.
func TestObserveShowsDrift(t *testing.T) {
	want := webRoute(&webCanary, 10, fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: "X-Debug", Value: "1"})
	routeID := "routes/" + RouteID(webKey)
	canaryUp := UpstreamID(webKey, webCanary)
	tests := []struct {
		name     string
		edit     func(t *testing.T, srv *apisixtest.Server)
		observed func(r traffic.Route) traffic.Route // nil: Observe must fail
		notFound bool
	}{
		{
			name: "weights edited",
			edit: func(t *testing.T, srv *apisixtest.Server) {
				admin(t, srv, http.MethodPatch, routeID+"/plugins", `{"traffic-split":{"rules":[{"weighted_upstreams":[
					{"upstream_id":"`+canaryUp+`","weight":1},{"weight":3}]}]}}`)
			},
			observed: func(r traffic.Route) traffic.Route { r.CanaryWeight, r.Match = 25, nil; return r },
		},
		{
			name: "plugin disabled",
			edit: func(t *testing.T, srv *apisixtest.Server) {
				admin(t, srv, http.MethodPatch, routeID, `{"plugins":{"traffic-split":{"_meta":{"disable":true}}}}`)
			},
			observed: func(r traffic.Route) traffic.Route { r.Canary, r.CanaryWeight, r.Match = nil, 0, nil; return r },
		},
		{
			name:     "route disabled",
			edit:     func(t *testing.T, srv *apisixtest.Server) { admin(t, srv, http.MethodPatch, routeID, `{"status":0}`) },
			notFound: true,
		},
		{
			name: "host changed",
			edit: func(t *testing.T, srv *apisixtest.Server) {
				admin(t, srv, http.MethodPatch, routeID, `{"host":"shop.example"}`)
			},
			observed: func(r traffic.Route) traffic.Route { r.Host = "shop.example"; return r },
		},
		{
			name: "predicate fledge does not write",
			edit: func(t *testing.T, srv *apisixtest.Server) {
				admin(t, srv, http.MethodPatch, routeID+"/plugins", `{"traffic-split":{"rules":[{"match":[{"vars":[["http_x_debug","!","==","1"]]}],
					"weighted_upstreams":[{"upstream_id":"`+canaryUp+`","weight":1}]}]}}`)
			},
		},
		{
			name: "canary upstream force-deleted",
			edit: func(t *testing.T, srv *apisixtest.Server) {
				admin(t, srv, http.MethodDelete, "upstreams/"+canaryUp+"?force=true", "")
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := apisixtest.New(t, testKey) // not newTestRouter: some edits leave dangling references on purpose
			r, err := New(Config{BaseURL: srv.URL, APIKey: testKey, Resolver: fakeResolver{}})
			if err != nil {
				t.Fatal(err)
			}
			mustEnsure(t, r, want)
			tc.edit(t, srv)
			got, err := r.Observe(t.Context(), webKey)
			switch {
			case tc.notFound:
				if !errors.Is(err, traffic.ErrNotFound) {
					t.Errorf("Observe = %v; want ErrNotFound", err)
				}
			case tc.observed == nil:
				if err == nil || errors.Is(err, traffic.ErrNotFound) {
					t.Errorf("Observe = %+v, %v; want an error that is not ErrNotFound", got, err)
				}
			case err != nil:
				t.Errorf("Observe: %v", err)
			default:
				if d := routertest.Equal(got, tc.observed(want)); d != "" {
					t.Errorf("Observe after the edit:\n%s", d)
				}
			}
			mustEnsure(t, r, want)
			got, err = r.Observe(t.Context(), webKey)
			if err != nil {
				t.Fatalf("Observe after repair: %v", err)
			}
			if d := routertest.Equal(got, want); d != "" {
				t.Errorf("Ensure did not repair the drift:\n%s", d)
			}
		})
	}
}

func TestWriteOrder(t *testing.T) {
	r, srv := newTestRouter(t, false)
	stableUp, canaryUp, nextUp := UpstreamID(webKey, webStable), UpstreamID(webKey, webCanary), UpstreamID(webKey, webNext)
	route := "routes/" + RouteID(webKey)
	steps := []struct {
		name string
		do   func() error
		want []string
	}{
		{"publish with canary", func() error { return r.Ensure(t.Context(), webRoute(&webCanary, 10)) },
			[]string{"PUT upstreams/" + stableUp, "PUT upstreams/" + canaryUp, "PUT " + route}},
		{"switch canary", func() error { return r.Ensure(t.Context(), webRoute(&webNext, 10)) },
			[]string{"PUT upstreams/" + nextUp, "PUT " + route, "DELETE upstreams/" + canaryUp}},
		{"drop canary", func() error { return r.Ensure(t.Context(), webRoute(nil, 0)) },
			[]string{"PUT " + route, "DELETE upstreams/" + nextUp}},
		{"remove", func() error { return r.Remove(t.Context(), webKey) },
			[]string{"DELETE " + route, "DELETE upstreams/" + stableUp}},
	}
	for _, s := range steps {
		n := len(srv.Requests())
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := writes(srv, n); !slices.Equal(got, s.want) {
			t.Errorf("%s wrote\n%s\nwant\n%s", s.name, strings.Join(got, "\n"), strings.Join(s.want, "\n"))
		}
	}
}

func TestErrorsNameObjectStatusAndMessage(t *testing.T) {
	t.Run("outage", func(t *testing.T) {
		r, srv := newTestRouter(t, false)
		srv.Break()
		err := r.Ensure(t.Context(), webRoute(nil, 0))
		var ae *APIError
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("Ensure = %v; want an *APIError with status 503", err)
		}
		for _, s := range []string{`route "fledge.default.web"`, "503", "has no healthy etcd endpoint available"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not contain %q", err, s)
			}
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		srv := apisixtest.New(t, testKey)
		r, err := New(Config{BaseURL: srv.URL, APIKey: "not-the-key", Resolver: fakeResolver{}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Observe(t.Context(), webKey)
		var ae *APIError
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusUnauthorized || ae.Message != "failed to check token" {
			t.Errorf("Observe = %#v; want 401 failed to check token", err)
		}
	})
	t.Run("no ready endpoints", func(t *testing.T) {
		srv := apisixtest.New(t, testKey)
		r, err := New(Config{BaseURL: srv.URL, APIKey: testKey, Resolver: noEndpoints{}})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Ensure(t.Context(), webRoute(nil, 0)); !errors.Is(err, ErrNoEndpoints) || !strings.Contains(err.Error(), "web-stable") {
			t.Errorf("Ensure = %v; want ErrNoEndpoints naming the service", err)
		}
		if objs := srv.Objects(); len(objs) != 0 {
			t.Errorf("objects written although a backend could not be resolved: %v", objs)
		}
	})
	t.Run("invalid routes are rejected before any request", func(t *testing.T) {
		r, srv := newTestRouter(t, false)
		bad := []traffic.Route{
			{Key: webKey, Stable: webStable}, // no host
			{Key: webKey, Host: "web.example", Stable: traffic.Backend{Service: "Web", Port: 80}}, // not a Service name
			{Key: webKey, Host: "web.example", Stable: webStable, CanaryWeight: 10},               // weight without canary
			webRoute(&webCanary, 10, fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: "X_Debug", Value: "1"}),
		}
		for _, b := range bad {
			if err := r.Ensure(t.Context(), b); err == nil {
				t.Errorf("Ensure(%+v) succeeded; want an error", b)
			}
		}
		if n := len(srv.Requests()); n != 0 {
			t.Errorf("%d requests sent for invalid routes; want none", n)
		}
	})
}

type noEndpoints struct{}

func (noEndpoints) Nodes(_ context.Context, ns, svc string, port int32) ([]Node, error) {
	return nil, fmt.Errorf("service %s/%s port %d: %w", ns, svc, port, ErrNoEndpoints)
}

func TestDiscoveryUpstreams(t *testing.T) {
	srv := apisixtest.New(t, testKey)
	plain, err := New(Config{BaseURL: srv.URL, APIKey: testKey, Resolver: fakeResolver{}})
	if err != nil {
		t.Fatal(err)
	}
	disc, err := New(Config{BaseURL: srv.URL, APIKey: testKey, Resolver: fakeResolver{}, Discovery: true})
	if err != nil {
		t.Fatal(err)
	}
	mustEnsure(t, plain, webRoute(nil, 0))
	mustEnsure(t, disc, webRoute(nil, 0)) // switching mode rewrites the upstream
	up, _ := srv.Get(apisixtest.Upstreams, UpstreamID(webKey, webStable))
	if up["service_name"] != "default/web-stable:http" || up["discovery_type"] != "kubernetes" || up["nodes"] != nil {
		t.Errorf("upstream = %v; want service_name default/web-stable:http, discovery_type kubernetes, no nodes", up)
	}
	mustEnsure(t, plain, webRoute(nil, 0))
	up, _ = srv.Get(apisixtest.Upstreams, UpstreamID(webKey, webStable))
	if up["service_name"] != nil || up["discovery_type"] != nil || up["nodes"] == nil {
		t.Errorf("upstream = %v; want nodes only", up)
	}
}

// TestAPIKeyNeverLeaks runs successful and failing calls with verbose logging
// and checks that the key is in no error, no log line and no formatting of Config.
func TestAPIKeyNeverLeaks(t *testing.T) {
	const secret = "s3cr3t-admin-key-0123456789"
	var logs bytes.Buffer
	ctx := logr.NewContext(t.Context(), funcr.New(func(prefix, args string) {
		fmt.Fprintln(&logs, prefix, args)
	}, funcr.Options{Verbosity: 10}))

	var texts []string
	record := func(err error) {
		if err != nil {
			texts = append(texts, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
		}
	}
	srv := apisixtest.New(t, secret)
	good := Config{BaseURL: srv.URL, APIKey: secret, Resolver: fakeResolver{}}
	r, err := New(good)
	if err != nil {
		t.Fatal(err)
	}
	record(r.Ensure(ctx, webRoute(&webCanary, 10)))
	_, err = r.Observe(ctx, webKey)
	record(err)
	record(r.Remove(ctx, webKey))
	if len(texts) != 0 {
		t.Fatalf("calls with the right key failed: %v", texts)
	}
	if !strings.Contains(logs.String(), "Wrote APISIX route") {
		t.Fatalf("no verbose logs were captured; the test would prove nothing:\n%s", logs.String())
	}

	srv.Break()
	record(r.Ensure(ctx, webRoute(nil, 0)))
	srv.Repair()

	wrong := good
	wrong.APIKey = secret + "-wrong"
	rw, err := New(wrong)
	if err != nil {
		t.Fatal(err)
	}
	record(rw.Ensure(ctx, webRoute(nil, 0)))

	// A server that echoes the key back in its error message.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error_msg":"bad key %s"}`, req.Header.Get("X-API-KEY"))
	}))
	t.Cleanup(echo.Close)
	re, err := New(Config{BaseURL: echo.URL, APIKey: secret, Resolver: fakeResolver{}})
	if err != nil {
		t.Fatal(err)
	}
	record(re.Ensure(ctx, webRoute(nil, 0)))

	down := good
	down.BaseURL = "http://127.0.0.1:1"
	rd, err := New(down)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rd.Observe(ctx, webKey)
	record(err)

	if len(texts) < 4*3 {
		t.Fatalf("only %d error texts recorded; the failing calls did not fail", len(texts))
	}
	logr.FromContextOrDiscard(ctx).Info("config", "config", good)
	texts = append(texts, logs.String(), fmt.Sprintf("%v", good), fmt.Sprintf("%+v", good), fmt.Sprintf("%#v", good), fmt.Sprint(&good))
	for _, s := range texts {
		if strings.Contains(s, secret) {
			t.Errorf("API key leaked into: %s", s)
		}
	}
}
