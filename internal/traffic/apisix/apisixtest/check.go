package apisixtest

import (
	"encoding/json"
	"fmt"
	"strings"
)

// knownPlugins are the plugin names the server accepts; only traffic-split is
// checked in depth.
var knownPlugins = map[string]bool{
	"traffic-split": true, "proxy-rewrite": true, "limit-count": true, "key-auth": true,
	"prometheus": true, "cors": true, "response-rewrite": true,
}

// operators known to lua-resty-expr (APISIX 3.x).
var operators = map[string]bool{
	"==": true, "~=": true, ">": true, ">=": true, "<": true, "<=": true,
	"~~": true, "~*": true, "in": true, "has": true, "ipmatch": true,
}

// check validates v as APISIX would on PUT/PATCH and injects the defaults
// APISIX stores. It returns the error_msg, or "" when v is valid.
func (s *Server) check(k Kind, id string, v map[string]any) string {
	if msg := checkCommon(v); msg != "" {
		return msg
	}
	if k == Upstreams {
		return checkUpstream(v)
	}
	return s.checkRoute(v)
}

func checkCommon(v map[string]any) string {
	if name, ok := v["name"]; ok {
		s, ok := name.(string)
		if !ok || len(s) < 1 || len(s) > 100 {
			return `invalid configuration: property "name" validation failed: want a string of 1..100 characters`
		}
	}
	if raw, ok := v["labels"]; ok {
		labels, ok := raw.(map[string]any)
		if !ok {
			return `invalid configuration: property "labels" validation failed: wrong type: expected object`
		}
		if len(labels) > 16 {
			return `invalid configuration: property "labels" validation failed: expect object to have at most 16 properties`
		}
		for lk, lv := range labels {
			s, ok := lv.(string)
			if !ok || len(s) < 1 || len(s) > 64 || !labelValueRE.MatchString(s) {
				return fmt.Sprintf(`invalid configuration: property "labels" validation failed: label %q: value must be 1..64 non-space characters`, lk)
			}
		}
	}
	return ""
}

func (s *Server) checkRoute(v map[string]any) string {
	_, hasURI := v["uri"]
	_, hasURIs := v["uris"]
	if hasURI == hasURIs {
		return "invalid configuration: value should match only one schema, but matches none (need exactly one of uri, uris)"
	}
	if hasURI {
		if u, ok := v["uri"].(string); !ok || u == "" {
			return `invalid configuration: property "uri" validation failed: want a non-empty string`
		}
	}
	if hasURIs {
		if msg := stringList(v["uris"], "uris", nil); msg != "" {
			return msg
		}
	}
	_, hasHost := v["host"]
	_, hasHosts := v["hosts"]
	if hasHost && hasHosts {
		return "invalid configuration: only one of host, hosts is allowed"
	}
	if hasHost {
		if h, ok := v["host"].(string); !ok || !hostRE.MatchString(h) {
			return fmt.Sprintf(`invalid configuration: property "host" validation failed: failed to match pattern "^\\*?[0-9a-zA-Z-._]+$" with %v`, v["host"])
		}
	}
	if hasHosts {
		if msg := stringList(v["hosts"], "hosts", func(h string) bool { return hostRE.MatchString(h) }); msg != "" {
			return msg
		}
	}
	if st, ok := v["status"]; ok {
		if n, ok := integer(st); !ok || (n != 0 && n != 1) {
			return `invalid configuration: property "status" validation failed: matches none of the enum values`
		}
	} else {
		v["status"] = json.Number("1")
	}
	if _, ok := v["priority"]; !ok {
		v["priority"] = json.Number("0")
	}
	upID, hasUpID := v["upstream_id"]
	up, hasUp := v["upstream"]
	_, hasService := v["service_id"]
	switch {
	case hasUpID && hasUp:
		return "invalid configuration: only one of upstream, upstream_id is allowed"
	case hasUpID:
		if !validID(upID) {
			return `invalid configuration: property "upstream_id" validation failed: invalid id`
		}
		if _, ok := s.store[Upstreams][fmt.Sprint(upID)]; !ok {
			return fmt.Sprintf("failed to fetch upstream info by upstream id [%v], response code: 404", upID)
		}
	case hasUp:
		u, ok := up.(map[string]any)
		if !ok {
			return `invalid configuration: property "upstream" validation failed: wrong type: expected object`
		}
		if msg := checkUpstream(u); msg != "" {
			return msg
		}
	case !hasService:
		return "missing upstream configuration in Route or Service"
	}
	if raw, ok := v["plugins"]; ok {
		plugins, ok := raw.(map[string]any)
		if !ok {
			return `invalid configuration: property "plugins" validation failed: wrong type: expected object`
		}
		for name, conf := range plugins {
			if !knownPlugins[name] {
				return fmt.Sprintf("unknown plugin [%s]", name)
			}
			if name == "traffic-split" {
				if msg := checkTrafficSplit(conf); msg != "" {
					return "failed to check the configuration of plugin traffic-split err: " + msg
				}
			}
		}
	}
	return ""
}

func checkUpstream(v map[string]any) string {
	nodes, hasNodes := v["nodes"]
	_, hasSN := v["service_name"]
	_, hasDT := v["discovery_type"]
	switch {
	case hasNodes && (hasSN || hasDT):
		return "invalid configuration: value should match only one schema, but matches both (nodes, service_name)"
	case hasNodes:
		if msg := checkNodes(nodes); msg != "" {
			return msg
		}
	case hasSN && hasDT:
		sn, ok1 := v["service_name"].(string)
		dt, ok2 := v["discovery_type"].(string)
		if !ok1 || !ok2 || sn == "" || dt == "" {
			return "invalid configuration: service_name and discovery_type must be non-empty strings"
		}
	default:
		return "invalid configuration: value should match only one schema, but matches none (need nodes, or service_name and discovery_type)"
	}
	if t, ok := v["type"]; ok {
		switch t {
		case "roundrobin", "chash", "ewma", "least_conn":
		default:
			return `invalid configuration: property "type" validation failed: matches none of the enum values`
		}
	} else {
		v["type"] = "roundrobin"
	}
	for f, d := range map[string]string{"scheme": "http", "pass_host": "pass", "hash_on": "vars"} {
		if _, ok := v[f]; !ok {
			v[f] = d
		}
	}
	return ""
}

func checkNodes(nodes any) string {
	switch n := nodes.(type) {
	case map[string]any:
		for addr, w := range n {
			if wi, ok := integer(w); !ok || wi < 0 {
				return fmt.Sprintf(`invalid configuration: property "nodes" validation failed: node %q: weight must be an integer >= 0`, addr)
			}
		}
	case []any:
		for i, e := range n {
			node, ok := e.(map[string]any)
			if !ok {
				return fmt.Sprintf(`invalid configuration: property "nodes" validation failed: node %d: wrong type`, i)
			}
			if _, ok := node["host"].(string); !ok {
				return fmt.Sprintf(`invalid configuration: property "nodes" validation failed: node %d: missing host`, i)
			}
			if w, ok := integer(node["weight"]); !ok || w < 0 {
				return fmt.Sprintf(`invalid configuration: property "nodes" validation failed: node %d: weight must be an integer >= 0`, i)
			}
		}
	default:
		return `invalid configuration: property "nodes" validation failed: wrong type`
	}
	return ""
}

func checkTrafficSplit(conf any) string {
	c, ok := conf.(map[string]any)
	if !ok {
		return "wrong type: expected object"
	}
	for f := range c {
		if f != "rules" && f != "_meta" {
			return fmt.Sprintf("additional properties forbidden, found %s", f)
		}
	}
	raw, ok := c["rules"]
	if !ok {
		return ""
	}
	rules, ok := raw.([]any)
	if !ok {
		return `property "rules" validation failed: wrong type: expected array`
	}
	for i, r := range rules {
		rule, ok := r.(map[string]any)
		if !ok {
			return fmt.Sprintf("rule %d: wrong type: expected object", i)
		}
		for f := range rule {
			if f != "match" && f != "weighted_upstreams" {
				return fmt.Sprintf("rule %d: additional properties forbidden, found %s", i, f)
			}
		}
		if m, ok := rule["match"]; ok {
			if msg := checkMatch(m); msg != "" {
				return fmt.Sprintf("rule %d: %s", i, msg)
			}
		}
		wus, ok := rule["weighted_upstreams"]
		if !ok {
			rule["weighted_upstreams"] = []any{map[string]any{"weight": json.Number("1")}}
			continue
		}
		list, ok := wus.([]any)
		if !ok || len(list) < 1 || len(list) > 20 {
			return fmt.Sprintf(`rule %d: property "weighted_upstreams" validation failed: want an array of 1..20 items`, i)
		}
		for j, w := range list {
			wu, ok := w.(map[string]any)
			if !ok {
				return fmt.Sprintf("rule %d: weighted_upstreams %d: wrong type: expected object", i, j)
			}
			if id, ok := wu["upstream_id"]; ok && !validID(id) {
				return fmt.Sprintf(`rule %d: weighted_upstreams %d: property "upstream_id" validation failed`, i, j)
			}
			if up, ok := wu["upstream"]; ok {
				u, ok := up.(map[string]any)
				if !ok {
					return fmt.Sprintf("rule %d: weighted_upstreams %d: upstream: wrong type", i, j)
				}
				if _, ok := u["service_name"]; ok {
					return fmt.Sprintf("rule %d: weighted_upstreams %d: inline upstream does not support service discovery", i, j)
				}
				if msg := checkUpstream(u); msg != "" {
					return fmt.Sprintf("rule %d: weighted_upstreams %d: %s", i, j, msg)
				}
			}
			weight, ok := wu["weight"]
			if !ok {
				wu["weight"] = json.Number("1") // schema default, stored
				continue
			}
			if n, ok := integer(weight); !ok || n < 0 {
				return fmt.Sprintf(`rule %d: weighted_upstreams %d: property "weight" validation failed: want an integer >= 0`, i, j)
			}
		}
	}
	return ""
}

func checkMatch(m any) string {
	list, ok := m.([]any)
	if !ok {
		return `property "match" validation failed: wrong type: expected array`
	}
	for i, e := range list {
		mm, ok := e.(map[string]any)
		if !ok {
			return fmt.Sprintf("match %d: wrong type: expected object", i)
		}
		vars, ok := mm["vars"]
		if !ok {
			continue
		}
		if _, err := compileVars(vars); err != nil {
			return fmt.Sprintf("failed to validate the 'vars' expression: %v", err)
		}
	}
	return ""
}

// expr is one compiled lua-resty-expr expression.
type expr struct {
	name    string
	op      string
	value   any
	reverse bool
}

// compileVars mirrors lua-resty-expr's compile for a flat list of expressions.
func compileVars(vars any) ([]expr, error) {
	list, ok := vars.([]any)
	if !ok {
		return nil, fmt.Errorf("vars must be an array")
	}
	out := make([]expr, 0, len(list))
	for _, e := range list {
		items, ok := e.([]any)
		if !ok {
			return nil, fmt.Errorf("rule should be wrapped inside brackets (nested AND/OR lists are not supported by apisixtest)")
		}
		var x expr
		switch len(items) {
		case 3:
			x.op, _ = items[1].(string)
			x.value = items[2]
		case 4:
			if items[1] != "!" {
				return nil, fmt.Errorf("bad 'not' expression")
			}
			x.reverse = true
			x.op, _ = items[2].(string)
			x.value = items[3]
		default:
			return nil, fmt.Errorf("invalid expression %v", items)
		}
		name, ok := items[0].(string)
		if !ok || name == "" {
			return nil, fmt.Errorf("invalid expression %v", items)
		}
		x.name = name
		x.op = strings.ToLower(x.op)
		if !operators[x.op] {
			return nil, fmt.Errorf("invalid operator '%v'", x.op)
		}
		out = append(out, x)
	}
	return out, nil
}

func integer(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := n.Int64()
	return i, err == nil
}

func validID(v any) bool {
	switch id := v.(type) {
	case string:
		return idRE.MatchString(id)
	case json.Number:
		n, err := id.Int64()
		return err == nil && n >= 1
	}
	return false
}

func stringList(v any, field string, ok func(string) bool) string {
	list, isList := v.([]any)
	if !isList || len(list) == 0 {
		return fmt.Sprintf(`invalid configuration: property %q validation failed: want a non-empty array`, field)
	}
	for _, e := range list {
		s, isStr := e.(string)
		if !isStr || s == "" || (ok != nil && !ok(s)) {
			return fmt.Sprintf(`invalid configuration: property %q validation failed: invalid item %v`, field, e)
		}
	}
	return ""
}
