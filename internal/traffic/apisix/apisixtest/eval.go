package apisixtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// Probe is a request to evaluate against the stored configuration.
type Probe struct {
	// Host is the request's Host (without port).
	Host string
	// Path is the request path; "/" when empty.
	Path string
	// Header holds request headers, cookies included ("Cookie").
	Header http.Header
	// Query is the raw query string, without "?".
	Query string
}

// ErrNoRoute is returned by Targets when no route serves the probe (APISIX: 404).
var ErrNoRoute = errors.New("no route matches")

// Targets returns the upstreams APISIX would split the probe between, as
// upstream id -> weight (entries of weight 0 left out). It follows APISIX 3.x:
// the enabled route matching host and uri with the highest priority (a tie is an
// error: the test set up overlapping routes); its traffic-split rules in order,
// the first whose match passes (a rule without match always passes) choosing the
// weighted_upstreams; an entry without upstream_id is the route's own upstream;
// no passing rule means the route's own upstream. Every upstream in the answer
// must exist (APISIX answers 500 otherwise).
func (s *Server) Targets(p Probe) (map[string]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.Path == "" {
		p.Path = "/"
	}
	routeID, route, err := s.matchRoute(p)
	if err != nil {
		return nil, err
	}
	own := fmt.Sprint(route["upstream_id"])
	if _, ok := route["upstream_id"]; !ok {
		return nil, fmt.Errorf("route %s has no upstream_id (inline upstreams are not supported by apisixtest)", routeID)
	}
	out := map[string]int{own: 1}
	plugins, _ := route["plugins"].(map[string]any)
	if ts, ok := plugins["traffic-split"].(map[string]any); ok && !disabled(ts) {
		wus, passed, err := chooseRule(ts, p)
		if err != nil {
			return nil, fmt.Errorf("route %s: traffic-split: %w", routeID, err)
		}
		if passed {
			if out, err = weights(wus, own); err != nil {
				return nil, fmt.Errorf("route %s: traffic-split: %w", routeID, err)
			}
		}
	}
	for id := range out {
		if _, ok := s.store[Upstreams][id]; !ok {
			return nil, fmt.Errorf("route %s: upstream %s does not exist (APISIX answers 500)", routeID, id)
		}
	}
	return out, nil
}

func disabled(conf map[string]any) bool {
	meta, _ := conf["_meta"].(map[string]any)
	d, _ := meta["disable"].(bool)
	return d
}

func (s *Server) matchRoute(p Probe) (string, map[string]any, error) {
	var best []string
	var bestPrio int64
	for _, id := range sortedIDs(s.store[Routes]) {
		v := s.store[Routes][id].value
		if st, _ := integer(v["status"]); st == 0 {
			continue
		}
		if !hostMatches(v, p.Host) || !uriMatches(v, p.Path) {
			continue
		}
		prio, _ := integer(v["priority"])
		switch {
		case len(best) == 0 || prio > bestPrio:
			best, bestPrio = []string{id}, prio
		case prio == bestPrio:
			best = append(best, id)
		}
	}
	switch len(best) {
	case 0:
		return "", nil, fmt.Errorf("host %q path %q: %w", p.Host, p.Path, ErrNoRoute)
	case 1:
		return best[0], s.store[Routes][best[0]].value, nil
	}
	return "", nil, fmt.Errorf("host %q path %q: routes %v match with the same priority", p.Host, p.Path, best)
}

func hostMatches(route map[string]any, host string) bool {
	var hosts []string
	if h, ok := route["host"].(string); ok {
		hosts = append(hosts, h)
	}
	if hs, ok := route["hosts"].([]any); ok {
		for _, h := range hs {
			hosts = append(hosts, fmt.Sprint(h))
		}
	}
	if len(hosts) == 0 {
		return true
	}
	host = strings.ToLower(host)
	for _, h := range hosts {
		h = strings.ToLower(h)
		if suffix, ok := strings.CutPrefix(h, "*"); ok {
			if strings.HasSuffix(host, suffix) {
				return true
			}
		} else if h == host {
			return true
		}
	}
	return false
}

func uriMatches(route map[string]any, path string) bool {
	var uris []string
	if u, ok := route["uri"].(string); ok {
		uris = append(uris, u)
	}
	if us, ok := route["uris"].([]any); ok {
		for _, u := range us {
			uris = append(uris, fmt.Sprint(u))
		}
	}
	for _, u := range uris {
		if prefix, ok := strings.CutSuffix(u, "*"); ok {
			if strings.HasPrefix(path, prefix) {
				return true
			}
		} else if u == path {
			return true
		}
	}
	return false
}

// chooseRule mirrors traffic-split's access phase (APISIX >= 2.13), including
// that an empty match list keeps the previous rule's outcome.
func chooseRule(ts map[string]any, p Probe) ([]any, bool, error) {
	rules, ok := ts["rules"].([]any)
	if !ok {
		return nil, false, nil
	}
	passed := true
	for _, r := range rules {
		rule, _ := r.(map[string]any)
		wus, _ := rule["weighted_upstreams"].([]any)
		match, hasMatch := rule["match"]
		if !hasMatch {
			return wus, true, nil
		}
		list, _ := match.([]any)
		for _, m := range list {
			mm, _ := m.(map[string]any)
			ok, err := evalVars(mm["vars"], p)
			if err != nil {
				return nil, false, err
			}
			passed = ok
			if passed {
				break
			}
		}
		if passed {
			return wus, true, nil
		}
	}
	if passed {
		return nil, false, errors.New("no weighted_upstreams chosen (APISIX answers 500)")
	}
	return nil, false, nil
}

// weights mirrors new_rr_obj + resty.roundrobin: entries keyed by upstream_id
// (a later duplicate replaces an earlier one), the route's own upstream for an
// entry without one; a single entry is always picked; weight 0 is never picked
// otherwise.
func weights(wus []any, own string) (map[string]int, error) {
	type key struct {
		id  string
		own bool
	}
	server := map[key]int64{}
	var order []key
	for _, w := range wus {
		wu, _ := w.(map[string]any)
		if _, ok := wu["upstream"]; ok {
			return nil, errors.New("inline upstreams are not supported by apisixtest")
		}
		k := key{id: own, own: true}
		if id, ok := wu["upstream_id"]; ok {
			k = key{id: fmt.Sprint(id)}
		}
		weight, _ := integer(wu["weight"])
		if _, seen := server[k]; !seen {
			order = append(order, k)
		}
		server[k] = weight
	}
	out := map[string]int{}
	if len(order) == 1 {
		out[order[0].id] = 1
		return out, nil
	}
	for _, k := range order {
		if w := server[k]; w > 0 {
			out[k.id] += int(w)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("all weights are 0")
	}
	return out, nil
}

func evalVars(vars any, p Probe) (bool, error) {
	if vars == nil {
		return true, nil
	}
	exprs, err := compileVars(vars)
	if err != nil {
		return false, err
	}
	for _, x := range exprs {
		ok, err := x.eval(p)
		if err != nil {
			return false, err
		}
		if ok == x.reverse {
			return false, nil
		}
	}
	return true, nil
}

// eval mirrors lua-resty-expr's compare functions; an absent variable is nil.
func (x expr) eval(p Probe) (bool, error) {
	l, present := lookup(x.name, p)
	switch x.op {
	case "==", "~=":
		eq := false
		if n, ok := x.value.(json.Number); ok {
			lf, err := strconv.ParseFloat(l, 64)
			rf, _ := n.Float64()
			eq = present && err == nil && lf == rf
		} else {
			rs, isStr := x.value.(string)
			eq = present && isStr && l == rs
		}
		if x.op == "==" {
			return eq, nil
		}
		return !eq, nil
	case ">", ">=", "<", "<=":
		lf, err1 := strconv.ParseFloat(l, 64)
		rf, err2 := strconv.ParseFloat(fmt.Sprint(x.value), 64)
		if !present || err1 != nil || err2 != nil {
			return false, nil
		}
		switch x.op {
		case ">":
			return lf > rf, nil
		case ">=":
			return lf >= rf, nil
		case "<":
			return lf < rf, nil
		}
		return lf <= rf, nil
	case "~~", "~*":
		if !present {
			return false, nil
		}
		pat, _ := x.value.(string)
		if x.op == "~*" {
			pat = "(?i)" + pat
		}
		re, err := regexp.Compile(pat)
		if err != nil {
			return false, fmt.Errorf("regular expression %q: %v", pat, err)
		}
		return re.MatchString(l), nil
	case "in":
		list, _ := x.value.([]any)
		for _, v := range list {
			if present && fmt.Sprint(v) == l {
				return true, nil
			}
		}
		return false, nil
	case "has":
		return false, nil // nginx variables are strings, never tables
	}
	return false, fmt.Errorf("operator %q is not supported by apisixtest", x.op)
}

// lookup returns the nginx variable name for p, and whether it is set.
//   - http_<name>: the first header whose lowercased name with "-" as "_" is
//     <name>; headers with "_" in their name are dropped (nginx default
//     underscores_in_headers off).
//   - cookie_<name>: the cookie, name compared case-insensitively (as nginx).
//   - arg_<name>: the raw (not URL-decoded) value of the first "<name>=" in the
//     query, name compared case-insensitively; "?name" without "=" is unset.
//   - host, uri.
func lookup(name string, p Probe) (string, bool) {
	switch {
	case strings.HasPrefix(name, "http_"):
		want := strings.TrimPrefix(name, "http_")
		for h, vs := range p.Header {
			if strings.Contains(h, "_") || len(vs) == 0 {
				continue
			}
			if strings.ReplaceAll(strings.ToLower(h), "-", "_") == want {
				return vs[0], true
			}
		}
	case strings.HasPrefix(name, "cookie_"):
		want := strings.TrimPrefix(name, "cookie_")
		for _, line := range p.Header.Values("Cookie") {
			for _, pair := range strings.Split(line, ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(k, want) {
					return v, true
				}
			}
		}
	case strings.HasPrefix(name, "arg_"):
		want := strings.TrimPrefix(name, "arg_")
		for _, pair := range strings.Split(p.Query, "&") {
			k, v, ok := strings.Cut(pair, "=")
			if ok && strings.EqualFold(k, want) {
				return v, true
			}
		}
	case name == "host":
		return p.Host, true
	case name == "uri":
		return p.Path, true
	}
	return "", false
}
