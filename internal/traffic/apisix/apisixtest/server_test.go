package apisixtest

import (
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"
)

const key = "test-key"

type reply struct {
	status int
	body   map[string]any
}

func do(t *testing.T, s *Server, method, path, body string, headers ...string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: answer is not a JSON object: %s", method, path, b)
	}
	return reply{resp.StatusCode, m}
}

// authed sends with the right key.
func authed(t *testing.T, s *Server, method, path, body string) reply {
	t.Helper()
	return do(t, s, method, "/apisix/admin/"+path, body, "X-API-KEY", key)
}

const upstream = `{"type":"roundrobin","nodes":{"10.0.0.1:80":1}}`

func TestAuth(t *testing.T) {
	s := New(t, key)
	tests := []struct {
		name    string
		path    string
		headers []string
		want    int
	}{
		{"missing key", "/apisix/admin/routes", nil, http.StatusUnauthorized},
		{"wrong key", "/apisix/admin/routes", []string{"X-API-KEY", "nope"}, http.StatusUnauthorized},
		{"header key", "/apisix/admin/routes", []string{"X-API-KEY", key}, http.StatusOK},
		{"query key", "/apisix/admin/routes?api_key=" + key, nil, http.StatusOK},
		{"wrong query key", "/apisix/admin/routes?api_key=nope", nil, http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, s, http.MethodGet, tc.path, "", tc.headers...)
			if r.status != tc.want {
				t.Errorf("status %d; want %d (%v)", r.status, tc.want, r.body)
			}
			if tc.want == http.StatusUnauthorized && r.body["error_msg"] != "failed to check token" {
				t.Errorf("body %v; want error_msg failed to check token", r.body)
			}
		})
	}
}

func TestCRUDAndEnvelopes(t *testing.T) {
	s := New(t, key)
	if r := authed(t, s, http.MethodGet, "upstreams/u1", ""); r.status != http.StatusNotFound || r.body["message"] != "Key not found" {
		t.Errorf("GET missing: %d %v; want 404 Key not found", r.status, r.body)
	}
	if r := authed(t, s, http.MethodPut, "upstreams/u1", upstream); r.status != http.StatusCreated {
		t.Fatalf("PUT new: %d %v; want 201", r.status, r.body)
	}
	r := authed(t, s, http.MethodPut, "upstreams/u1", `{"nodes":{"10.0.0.2:80":2}}`)
	if r.status != http.StatusOK {
		t.Fatalf("PUT existing: %d %v; want 200", r.status, r.body)
	}
	got := authed(t, s, http.MethodGet, "upstreams/u1", "")
	v, _ := got.body["value"].(map[string]any)
	if got.body["key"] != "/apisix/upstreams/u1" || got.body["modifiedIndex"] == nil || got.body["createdIndex"] == nil {
		t.Errorf("GET envelope = %v", got.body)
	}
	// Replaced whole, defaults stored.
	if v["id"] != "u1" || v["type"] != "roundrobin" || v["scheme"] != "http" || v["pass_host"] != "pass" {
		t.Errorf("stored value = %v; want id and defaults", v)
	}
	if nodes, _ := v["nodes"].(map[string]any); len(nodes) != 1 || nodes["10.0.0.2:80"] != 2.0 {
		t.Errorf("nodes = %v; want the second PUT's only", v["nodes"])
	}
	if got.body["createdIndex"] == got.body["modifiedIndex"] {
		t.Errorf("modifiedIndex did not move on replace: %v", got.body)
	}
	list := authed(t, s, http.MethodGet, "upstreams", "")
	if items, _ := list.body["list"].([]any); len(items) != 1 || list.body["total"] != 1.0 {
		t.Errorf("list = %v; want one item, total 1", list.body)
	}
	if r := authed(t, s, http.MethodDelete, "upstreams/u1", ""); r.status != http.StatusOK {
		t.Errorf("DELETE: %d %v", r.status, r.body)
	}
	if r := authed(t, s, http.MethodDelete, "upstreams/u1", ""); r.status != http.StatusNotFound {
		t.Errorf("DELETE again: %d; want 404", r.status)
	}
	if list := authed(t, s, http.MethodGet, "routes", ""); list.body["total"] != 0.0 {
		t.Errorf("empty list = %v", list.body)
	}
}

func TestValidation(t *testing.T) {
	route := func(plugins string) string {
		return `{"uri":"/*","host":"web.example","upstream_id":"u1","plugins":` + plugins + `}`
	}
	split := func(rules string) string { return route(`{"traffic-split":{"rules":` + rules + `}}`) }
	tests := []struct {
		name string
		path string
		body string
		want string // substring of error_msg; "" means accepted
	}{
		{"valid route", "routes/r1", split(`[{"match":[{"vars":[["http_x_debug","==","1"],["arg_a","!","~~","^b"]]}],"weighted_upstreams":[{"upstream_id":"u2","weight":1}]},{"weighted_upstreams":[{"upstream_id":"u2","weight":0},{"weight":100}]}]`), ""},
		{"id too long", "routes/" + strings.Repeat("a", 65), route(`{}`), `property "id" validation failed`},
		{"id with bad character", "routes/a:b", route(`{}`), `property "id" validation failed`},
		{"route without uri", "routes/r1", `{"host":"web.example","upstream_id":"u1"}`, "matches none"},
		{"route with uri and uris", "routes/r1", `{"uri":"/*","uris":["/a"],"upstream_id":"u1"}`, "matches none"},
		{"route to missing upstream", "routes/r1", `{"uri":"/*","upstream_id":"nope"}`, "failed to fetch upstream info by upstream id [nope]"},
		{"bad host", "routes/r1", `{"uri":"/*","host":"web example","upstream_id":"u1"}`, `property "host"`},
		{"create_time in body", "routes/r1", `{"uri":"/*","upstream_id":"u1","create_time":1}`, "forbidden"},
		{"other id in body", "routes/r1", `{"id":"r2","uri":"/*","upstream_id":"u1"}`, "wrong route id"},
		{"label with space", "routes/r1", `{"uri":"/*","upstream_id":"u1","labels":{"a":"b c"}}`, `"labels"`},
		{"label too long", "routes/r1", `{"uri":"/*","upstream_id":"u1","labels":{"a":"` + strings.Repeat("x", 65) + `"}}`, `"labels"`},
		{"unknown plugin", "routes/r1", route(`{"no-such-plugin":{}}`), "unknown plugin"},
		{"traffic-split extra field", "routes/r1", route(`{"traffic-split":{"rules":[],"x":1}}`), "additional properties"},
		{"rule extra field", "routes/r1", split(`[{"weighted_upstreams":[{"weight":1}],"priority":1}]`), "additional properties"},
		{"no weighted upstreams", "routes/r1", split(`[{"weighted_upstreams":[]}]`), "1..20"},
		{"21 weighted upstreams", "routes/r1", split(`[{"weighted_upstreams":[` + strings.Repeat(`{"weight":1},`, 20) + `{"weight":1}]}]`), "1..20"},
		{"negative weight", "routes/r1", split(`[{"weighted_upstreams":[{"weight":-1}]}]`), `"weight"`},
		{"fractional weight", "routes/r1", split(`[{"weighted_upstreams":[{"weight":1.5}]}]`), `"weight"`},
		{"unknown operator", "routes/r1", split(`[{"match":[{"vars":[["http_x","=~","1"]]}],"weighted_upstreams":[{"weight":1}]}]`), "invalid operator"},
		{"bad negation", "routes/r1", split(`[{"match":[{"vars":[["http_x","not","==","1"]]}],"weighted_upstreams":[{"weight":1}]}]`), "bad 'not' expression"},
		{"expression not in brackets", "routes/r1", split(`[{"match":[{"vars":["http_x","==","1"]}],"weighted_upstreams":[{"weight":1}]}]`), "brackets"},
		{"upstream without nodes", "upstreams/u3", `{"type":"roundrobin"}`, "matches none"},
		{"upstream with nodes and discovery", "upstreams/u3", `{"nodes":{"a:1":1},"service_name":"a/b:c","discovery_type":"kubernetes"}`, "matches both"},
		{"discovery upstream", "upstreams/u3", `{"service_name":"default/web:http","discovery_type":"kubernetes"}`, ""},
		{"bad node weight", "upstreams/u3", `{"nodes":{"a:1":-1}}`, `"nodes"`},
		{"bad upstream type", "upstreams/u3", `{"type":"random","nodes":{"a:1":1}}`, `"type"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(t, key)
			authed(t, s, http.MethodPut, "upstreams/u1", upstream)
			r := authed(t, s, http.MethodPut, tc.path, tc.body)
			if tc.want == "" {
				if r.status > 299 {
					t.Errorf("rejected: %d %v", r.status, r.body)
				}
				return
			}
			msg, _ := r.body["error_msg"].(string)
			if r.status != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
				t.Errorf("answer %d %v; want 400 with %q", r.status, r.body, tc.want)
			}
		})
	}
}

func TestTrafficSplitWeightDefaultIsStored(t *testing.T) {
	s := New(t, key)
	authed(t, s, http.MethodPut, "upstreams/u1", upstream)
	authed(t, s, http.MethodPut, "routes/r1", `{"uri":"/*","upstream_id":"u1","plugins":{"traffic-split":{"rules":[{"weighted_upstreams":[{"upstream_id":"u1"},{"weight":0}]}]}}}`)
	v, _ := s.Get(Routes, "r1")
	b, _ := json.Marshal(v["plugins"])
	if !strings.Contains(string(b), `{"upstream_id":"u1","weight":1}`) {
		t.Errorf("plugins = %s; want the missing weight stored as 1", b)
	}
	if v["status"] != json.Number("1") || v["priority"] != json.Number("0") {
		t.Errorf("route defaults not stored: %v", v)
	}
}

func TestDeleteReferencedUpstream(t *testing.T) {
	s := New(t, key)
	authed(t, s, http.MethodPut, "upstreams/u1", upstream)
	authed(t, s, http.MethodPut, "upstreams/u2", upstream)
	authed(t, s, http.MethodPut, "routes/r1", `{"uri":"/*","upstream_id":"u1","plugins":{"traffic-split":{"rules":[{"weighted_upstreams":[{"upstream_id":"u2","weight":1},{"weight":1}]}]}}}`)
	for id, want := range map[string]string{
		"u1": "can not delete this upstream, route [r1] is still using it now",
		"u2": "can not delete this upstream, plugin in route [r1] is still using it now",
	} {
		r := authed(t, s, http.MethodDelete, "upstreams/"+id, "")
		if r.status != http.StatusBadRequest || r.body["error_msg"] != want {
			t.Errorf("DELETE %s: %d %v; want 400 %q", id, r.status, r.body, want)
		}
	}
	if len(s.Dangling()) != 0 {
		t.Errorf("dangling before forcing: %v", s.Dangling())
	}
	if r := authed(t, s, http.MethodDelete, "upstreams/u2?force=true", ""); r.status != http.StatusOK {
		t.Errorf("forced DELETE: %d %v", r.status, r.body)
	}
	if d := s.Dangling(); len(d) != 1 || !strings.Contains(d[0], "route r1: traffic-split refers to missing upstream u2") {
		t.Errorf("Dangling = %v; want the forced deletion recorded", d)
	}
	// A route may be written with a traffic-split reference to a missing upstream (APISIX checks per request).
	if r := authed(t, s, http.MethodPut, "routes/r2", `{"uri":"/x","upstream_id":"u1","plugins":{"traffic-split":{"rules":[{"weighted_upstreams":[{"upstream_id":"u9","weight":1}]}]}}}`); r.status != http.StatusCreated {
		t.Errorf("PUT with dangling traffic-split reference: %d %v; want 201", r.status, r.body)
	}
	if d := s.Dangling(); len(d) < 2 {
		t.Errorf("Dangling = %v; want the second dangling reference recorded", d)
	}
}

func TestPatch(t *testing.T) {
	s := New(t, key)
	authed(t, s, http.MethodPut, "upstreams/u1", upstream)
	authed(t, s, http.MethodPut, "routes/r1", `{"uri":"/*","upstream_id":"u1","labels":{"a":"1","b":"2"},"plugins":{"limit-count":{"count":1}}}`)
	authed(t, s, http.MethodPatch, "routes/r1", `{"labels":{"b":null,"c":"3"},"uris":null}`)
	v, _ := s.Get(Routes, "r1")
	if labels, _ := v["labels"].(map[string]any); !maps.Equal(labels, map[string]any{"a": "1", "c": "3"}) {
		t.Errorf("labels after merge = %v; want a=1 c=3", labels)
	}
	authed(t, s, http.MethodPatch, "routes/r1/plugins", `{"cors":{}}`)
	v, _ = s.Get(Routes, "r1")
	if plugins, _ := v["plugins"].(map[string]any); len(plugins) != 1 || plugins["cors"] == nil {
		t.Errorf("plugins after sub-path PATCH = %v; want cors only", plugins)
	}
	if r := authed(t, s, http.MethodPatch, "routes/r1", `{"upstream_id":"nope"}`); r.status != http.StatusBadRequest {
		t.Errorf("PATCH to an invalid route: %d; want 400", r.status)
	}
	if r := authed(t, s, http.MethodPatch, "routes/r9", `{}`); r.status != http.StatusNotFound {
		t.Errorf("PATCH missing: %d; want 404", r.status)
	}
}

func TestBreak(t *testing.T) {
	s := New(t, key)
	s.Break()
	if r := authed(t, s, http.MethodGet, "routes", ""); r.status != http.StatusServiceUnavailable || r.body["error_msg"] == nil {
		t.Errorf("broken: %d %v; want 503 with error_msg", r.status, r.body)
	}
	s.Repair()
	if r := authed(t, s, http.MethodGet, "routes", ""); r.status != http.StatusOK {
		t.Errorf("repaired: %d", r.status)
	}
}

func TestTargets(t *testing.T) {
	s := New(t, key)
	for _, u := range []string{"stable", "canary", "other"} {
		authed(t, s, http.MethodPut, "upstreams/"+u, upstream)
	}
	put := func(id, body string) {
		t.Helper()
		if r := authed(t, s, http.MethodPut, "routes/"+id, body); r.status > 299 {
			t.Fatalf("PUT %s: %d %v", id, r.status, r.body)
		}
	}
	put("r1", `{"uri":"/*","host":"a.example","upstream_id":"stable","plugins":{"traffic-split":{"rules":[
		{"match":[{"vars":[["http_x_debug","==","1"]]},{"vars":[["cookie_beta","~~","^y"]]}],"weighted_upstreams":[{"upstream_id":"canary","weight":1}]},
		{"match":[{"vars":[["arg_n",">","10"],["http_x_n","!","==","no"]]}],"weighted_upstreams":[{"upstream_id":"other","weight":1}]},
		{"weighted_upstreams":[{"upstream_id":"canary","weight":1},{"weight":3}]}]}}}`)
	put("r2", `{"uri":"/*","host":"b.example","upstream_id":"stable","plugins":{"traffic-split":{"_meta":{"disable":true},"rules":[{"weighted_upstreams":[{"upstream_id":"canary","weight":1}]}]}}}`)
	put("r3", `{"uri":"/*","host":"c.example","upstream_id":"stable","status":0}`)
	put("r4", `{"uri":"/*","host":"d.example","upstream_id":"stable","plugins":{"traffic-split":{"rules":[{"weighted_upstreams":[{"upstream_id":"missing","weight":1}]}]}}}`)

	h := func(kv ...string) http.Header {
		hd := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			hd.Add(kv[i], kv[i+1])
		}
		return hd
	}
	tests := []struct {
		name    string
		probe   Probe
		want    map[string]int
		wantErr string
	}{
		{"first match of a rule (OR)", Probe{Host: "a.example", Header: h("X-Debug", "1")}, map[string]int{"canary": 1}, ""},
		{"second match of a rule (OR)", Probe{Host: "a.example", Header: h("Cookie", "x=1; beta=yes")}, map[string]int{"canary": 1}, ""},
		{"header name case", Probe{Host: "a.example", Header: http.Header{"x-DEBUG": {"1"}}}, map[string]int{"canary": 1}, ""},
		{"underscore header ignored", Probe{Host: "a.example", Header: http.Header{"X_Debug": {"1"}}}, map[string]int{"canary": 1, "stable": 3}, ""},
		{"numeric comparison and negation (AND)", Probe{Host: "A.EXAMPLE", Query: "n=11"}, map[string]int{"other": 1}, ""},
		{"negation fails", Probe{Host: "a.example", Query: "n=11", Header: h("X-N", "no")}, map[string]int{"canary": 1, "stable": 3}, ""},
		{"query name without = is absent", Probe{Host: "a.example", Query: "n"}, map[string]int{"canary": 1, "stable": 3}, ""},
		{"falls through to the weighted rule", Probe{Host: "a.example"}, map[string]int{"canary": 1, "stable": 3}, ""},
		{"disabled plugin", Probe{Host: "b.example"}, map[string]int{"stable": 1}, ""},
		{"disabled route", Probe{Host: "c.example"}, nil, "no route"},
		{"missing upstream", Probe{Host: "d.example"}, nil, "does not exist"},
		{"unknown host", Probe{Host: "z.example"}, nil, "no route"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Targets(tc.probe)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("Targets = %v, %v; want error %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Targets: %v", err)
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("Targets = %v; want %v", got, tc.want)
			}
		})
	}
	if _, err := s.Targets(Probe{Host: "z.example"}); !errors.Is(err, ErrNoRoute) {
		t.Errorf("unknown host: %v; want ErrNoRoute", err)
	}
}

func TestTargetsOverlappingRoutes(t *testing.T) {
	s := New(t, key)
	authed(t, s, http.MethodPut, "upstreams/u1", upstream)
	authed(t, s, http.MethodPut, "routes/r1", `{"uri":"/*","host":"a.example","upstream_id":"u1"}`)
	authed(t, s, http.MethodPut, "routes/r2", `{"uri":"/*","host":"a.example","upstream_id":"u1"}`)
	if _, err := s.Targets(Probe{Host: "a.example"}); err == nil || !strings.Contains(err.Error(), "same priority") {
		t.Errorf("Targets with two equal routes: %v; want an error", err)
	}
	authed(t, s, http.MethodPatch, "routes/r2", `{"priority":1}`)
	if got, err := s.Targets(Probe{Host: "a.example"}); err != nil || got["u1"] != 1 {
		t.Errorf("Targets with priorities: %v, %v", got, err)
	}
}
