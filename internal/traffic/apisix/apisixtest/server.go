// Package apisixtest is an in-test Apache APISIX Admin API v3 server
// (httptest.Server) that behaves as documented in APISIX's admin-api.md and
// traffic-split.md for what fledge relies on:
//
//   - authentication: X-API-KEY header or api_key query parameter; 401 otherwise;
//   - PUT (create 201 / replace 200), GET, DELETE and PATCH on
//     /apisix/admin/routes/{id} and /apisix/admin/upstreams/{id}, list on the
//     collections, v3 envelopes ({"key","value","createdIndex","modifiedIndex"},
//     {"list","total"}), 404 for missing objects, 400 {"error_msg"} otherwise;
//   - ids of 1-64 characters [A-Za-z0-9._-];
//   - schema checks: a route needs exactly one of uri/uris, an upstream_id that
//     exists (or an inline upstream), valid host, labels (at most 16, values 1-64
//     non-space characters); an upstream needs exactly one of nodes or
//     service_name+discovery_type; traffic-split rules allow only match and
//     weighted_upstreams, 1-20 weighted_upstreams of integer weight >= 0 (default
//     1, injected as APISIX stores schema defaults), match[].vars lists of
//     [var, op, value] or [var, "!", op, value] with a known operator;
//     create_time/update_time in a body are refused (APISIX 3);
//   - defaults stored like APISIX: route status 1 and priority 0, upstream type
//     roundrobin, scheme http, pass_host pass, hash_on vars;
//   - deleting an upstream still referenced by a route's upstream_id or by a
//     traffic-split weighted_upstreams upstream_id is refused with 400 unless
//     ?force=true; a route's traffic-split upstream_id is NOT checked on write
//     (APISIX only fails such requests with 500), but every such dangling
//     reference is recorded and reported by Dangling;
//   - Break makes every request answer 503 (as when etcd is unreachable).
//
// Targets evaluates a request against the stored routes and traffic-split
// configuration the way APISIX 3.x does (rules in order, lua-resty-expr
// operators on nginx variables), so tests can check routing semantics, not only
// JSON. Nested logical expressions ("AND"/"OR" lists) are not supported.
package apisixtest

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Kind is an Admin API collection.
type Kind string

const (
	Routes    Kind = "routes"
	Upstreams Kind = "upstreams"
)

// Request is one request the server answered.
type Request struct {
	Method string
	// Path is relative to /apisix/admin/, e.g. "routes/r1" or "upstreams".
	Path string
	// Query is the raw query string.
	Query string
	// Body is the request body (PUT and PATCH).
	Body   string
	Status int
}

type entry struct {
	value    map[string]any
	created  int64
	modified int64
}

// Server is the in-test Admin API. Create it with New.
type Server struct {
	// URL is the server address without path; the Admin API is at URL + "/apisix/admin".
	URL string

	apiKey string
	mu     sync.Mutex
	store  map[Kind]map[string]*entry
	rev    int64
	broken bool
	log    []Request
	dangl  []string
}

// New starts a server that accepts apiKey and stops it when the test ends.
func New(t testing.TB, apiKey string) *Server {
	t.Helper()
	s := &Server{
		apiKey: apiKey,
		store:  map[Kind]map[string]*entry{Routes: {}, Upstreams: {}},
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	s.URL = hs.URL
	return s
}

// Break makes every later request answer 503 until Repair.
func (s *Server) Break() { s.mu.Lock(); s.broken = true; s.mu.Unlock() }

// Repair undoes Break.
func (s *Server) Repair() { s.mu.Lock(); s.broken = false; s.mu.Unlock() }

// Objects returns every stored object as "routes/<id>" or "upstreams/<id>", sorted.
func (s *Server) Objects() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k, m := range s.store {
		for id := range m {
			out = append(out, string(k)+"/"+id)
		}
	}
	sort.Strings(out)
	return out
}

// Get returns a copy of the stored object.
func (s *Server) Get(k Kind, id string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.store[k][id]
	if !ok {
		return nil, false
	}
	return deepCopy(e.value), true
}

// Seed stores value as if PUT by someone else (validated, but not logged).
func (s *Server) Seed(k Kind, id string, value map[string]any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := deepCopy(value)
	if msg := s.check(k, id, v); msg != "" {
		return fmt.Errorf("seeding %s/%s: %s", k, id, msg)
	}
	s.put(k, id, v)
	return nil
}

// Dump returns a canonical dump (one line per object, sorted, with its
// modifiedIndex) of the objects keep accepts; keep nil accepts all.
func (s *Server) Dump(keep func(k Kind, id string, value map[string]any) bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lines []string
	for k, m := range s.store {
		for id, e := range m {
			if keep != nil && !keep(k, id, e.value) {
				continue
			}
			b, _ := json.Marshal(e.value)
			lines = append(lines, fmt.Sprintf("%s/%s modifiedIndex=%d %s", k, id, e.modified, b))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// Requests returns the requests answered so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

// Dangling returns every moment a route's traffic-split referred to an upstream
// that did not exist (APISIX would have answered 500 to requests routed there).
func (s *Server) Dangling() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.dangl...)
}

var (
	idRE         = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	hostRE       = regexp.MustCompile(`^\*?[0-9a-zA-Z._-]+$`)
	labelValueRE = regexp.MustCompile(`^\S+$`)
)

const adminPrefix = "/apisix/admin/"

type answer struct {
	status int
	body   any
}

func errAnswer(status int, format string, args ...any) answer {
	return answer{status, map[string]string{"error_msg": fmt.Sprintf(format, args...)}}
}

var notFound = answer{http.StatusNotFound, map[string]string{"message": "Key not found"}}

// ServeHTTP implements the Admin API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.mu.Lock()
	a := s.handle(r)
	s.log = append(s.log, Request{Method: r.Method, Path: strings.TrimPrefix(r.URL.Path, adminPrefix), Query: r.URL.RawQuery, Body: string(body), Status: a.status})
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	_ = json.NewEncoder(w).Encode(a.body)
}

func (s *Server) handle(r *http.Request) answer {
	if s.broken {
		return errAnswer(http.StatusServiceUnavailable, "has no healthy etcd endpoint available")
	}
	if !strings.HasPrefix(r.URL.Path, adminPrefix) {
		return errAnswer(http.StatusNotFound, "not found")
	}
	key := r.Header.Get("X-API-KEY")
	if key == "" {
		key = r.URL.Query().Get("api_key")
	}
	if s.apiKey == "" || subtle.ConstantTimeCompare([]byte(key), []byte(s.apiKey)) != 1 {
		return errAnswer(http.StatusUnauthorized, "failed to check token")
	}
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, adminPrefix), "/"), "/")
	k := Kind(parts[0])
	if k != Routes && k != Upstreams {
		return errAnswer(http.StatusNotFound, "not found")
	}
	id := ""
	if len(parts) > 1 {
		id = parts[1]
		if !idRE.MatchString(id) {
			return errAnswer(http.StatusBadRequest, "invalid configuration: property \"id\" validation failed: failed to match pattern \"^[a-zA-Z0-9-_.]+$\" with %q", id)
		}
	}
	sub := parts[min(2, len(parts)):]
	switch {
	case r.Method == http.MethodGet && id == "":
		return s.list(k)
	case r.Method == http.MethodGet && len(sub) == 0:
		e, ok := s.store[k][id]
		if !ok {
			return notFound
		}
		return answer{http.StatusOK, s.envelope(k, id, e)}
	case r.Method == http.MethodPut && id != "" && len(sub) == 0:
		body, msg := decodeBody(r)
		if msg != "" {
			return errAnswer(http.StatusBadRequest, "%s", msg)
		}
		return s.write(k, id, body)
	case r.Method == http.MethodPut && id == "":
		return errAnswer(http.StatusBadRequest, "missing %s id", strings.TrimSuffix(string(k), "s"))
	case r.Method == http.MethodPatch && id != "":
		return s.patch(r, k, id, sub)
	case r.Method == http.MethodDelete && id != "" && len(sub) == 0:
		return s.delete(k, id, r.URL.Query().Get("force") == "true")
	}
	return errAnswer(http.StatusMethodNotAllowed, "method %s not allowed on %s", r.Method, r.URL.Path)
}

func (s *Server) envelope(k Kind, id string, e *entry) map[string]any {
	return map[string]any{
		"key":           "/apisix/" + string(k) + "/" + id,
		"value":         deepCopy(e.value),
		"createdIndex":  e.created,
		"modifiedIndex": e.modified,
	}
}

func (s *Server) list(k Kind) answer {
	ids := make([]string, 0, len(s.store[k]))
	for id := range s.store[k] {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	list := make([]any, 0, len(ids))
	for _, id := range ids {
		list = append(list, s.envelope(k, id, s.store[k][id]))
	}
	return answer{http.StatusOK, map[string]any{"list": list, "total": len(list)}}
}

func decodeBody(r *http.Request) (map[string]any, string) {
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	var body map[string]any
	if err := dec.Decode(&body); err != nil || body == nil {
		return nil, fmt.Sprintf("invalid request body: %v", err)
	}
	return body, ""
}

func (s *Server) write(k Kind, id string, body map[string]any) answer {
	for _, f := range []string{"create_time", "update_time"} {
		if _, ok := body[f]; ok {
			return errAnswer(http.StatusBadRequest, "the property is forbidden: %s", f)
		}
	}
	if v, ok := body["id"]; ok && fmt.Sprint(v) != id {
		return errAnswer(http.StatusBadRequest, "wrong %s id", strings.TrimSuffix(string(k), "s"))
	}
	if msg := s.check(k, id, body); msg != "" {
		return errAnswer(http.StatusBadRequest, "%s", msg)
	}
	status := http.StatusOK
	if _, ok := s.store[k][id]; !ok {
		status = http.StatusCreated
	}
	e := s.put(k, id, body)
	s.checkDangling(fmt.Sprintf("after writing %s/%s", k, id))
	return answer{status, map[string]any{"key": "/apisix/" + string(k) + "/" + id, "value": deepCopy(e.value)}}
}

func (s *Server) put(k Kind, id string, v map[string]any) *entry {
	s.rev++
	now := time.Now().Unix()
	v["id"] = id
	v["update_time"] = now
	e, ok := s.store[k][id]
	if ok {
		v["create_time"] = e.value["create_time"]
		e.value, e.modified = v, s.rev
		return e
	}
	v["create_time"] = now
	e = &entry{value: v, created: s.rev, modified: s.rev}
	s.store[k][id] = e
	return e
}

// patch merges the body into the object (objects merged, arrays and scalars
// replaced, null deletes), or replaces the field at sub (PATCH /routes/{id}/plugins).
func (s *Server) patch(r *http.Request, k Kind, id string, sub []string) answer {
	e, ok := s.store[k][id]
	if !ok {
		return notFound
	}
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	var body any
	if err := dec.Decode(&body); err != nil {
		return errAnswer(http.StatusBadRequest, "invalid request body: %v", err)
	}
	v := deepCopy(e.value)
	for _, f := range []string{"id", "create_time", "update_time"} {
		delete(v, f)
	}
	if len(sub) == 0 {
		obj, ok := body.(map[string]any)
		if !ok {
			return errAnswer(http.StatusBadRequest, "invalid request body: not an object")
		}
		for _, f := range []string{"create_time", "update_time"} {
			if _, ok := obj[f]; ok {
				return errAnswer(http.StatusBadRequest, "the property is forbidden: %s", f)
			}
		}
		delete(obj, "id")
		merge(v, obj)
	} else {
		cur := v
		for _, p := range sub[:len(sub)-1] {
			next, ok := cur[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				cur[p] = next
			}
			cur = next
		}
		if body == nil {
			delete(cur, sub[len(sub)-1])
		} else {
			cur[sub[len(sub)-1]] = body
		}
	}
	if msg := s.check(k, id, v); msg != "" {
		return errAnswer(http.StatusBadRequest, "%s", msg)
	}
	e = s.put(k, id, v)
	s.checkDangling(fmt.Sprintf("after patching %s/%s", k, id))
	return answer{http.StatusOK, map[string]any{"key": "/apisix/" + string(k) + "/" + id, "value": deepCopy(e.value)}}
}

func merge(dst, src map[string]any) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

func (s *Server) delete(k Kind, id string, force bool) answer {
	if _, ok := s.store[k][id]; !ok {
		return notFound
	}
	if k == Upstreams && !force {
		for _, rid := range sortedIDs(s.store[Routes]) {
			rv := s.store[Routes][rid].value
			if fmt.Sprint(rv["upstream_id"]) == id {
				return errAnswer(http.StatusBadRequest, "can not delete this upstream, route [%s] is still using it now", rid)
			}
			for _, ref := range splitUpstreamIDs(rv) {
				if ref == id {
					return errAnswer(http.StatusBadRequest, "can not delete this upstream, plugin in route [%s] is still using it now", rid)
				}
			}
		}
	}
	delete(s.store[k], id)
	s.rev++
	s.checkDangling(fmt.Sprintf("after deleting %s/%s", k, id))
	return answer{http.StatusOK, map[string]any{"deleted": "1", "key": "/apisix/" + string(k) + "/" + id}}
}

func (s *Server) checkDangling(when string) {
	for _, rid := range sortedIDs(s.store[Routes]) {
		for _, ref := range splitUpstreamIDs(s.store[Routes][rid].value) {
			if _, ok := s.store[Upstreams][ref]; !ok {
				s.dangl = append(s.dangl, fmt.Sprintf("%s: route %s: traffic-split refers to missing upstream %s", when, rid, ref))
			}
		}
	}
}

// splitUpstreamIDs lists the upstream_ids of a route's traffic-split rules.
func splitUpstreamIDs(route map[string]any) []string {
	var ids []string
	plugins, _ := route["plugins"].(map[string]any)
	ts, _ := plugins["traffic-split"].(map[string]any)
	rules, _ := ts["rules"].([]any)
	for _, r := range rules {
		rule, _ := r.(map[string]any)
		wus, _ := rule["weighted_upstreams"].([]any)
		for _, w := range wus {
			wu, _ := w.(map[string]any)
			if id, ok := wu["upstream_id"]; ok {
				ids = append(ids, fmt.Sprint(id))
			}
		}
	}
	return ids
}

func sortedIDs(m map[string]*entry) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func deepCopy(v map[string]any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out map[string]any
	if err := dec.Decode(&out); err != nil {
		panic(err)
	}
	return out
}
