package apisix

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"strconv"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/traffic"
)

const (
	pluginTrafficSplit = "traffic-split"
	// routeURI makes the route serve every path of its host.
	routeURI = "/*"
	// maxNameLen is APISIX's limit for the name of a route or upstream.
	maxNameLen = 100
	// discoveryKubernetes is the discovery_type of APISIX's Kubernetes discovery.
	discoveryKubernetes = "kubernetes"
)

// trafficSplit is the traffic-split plugin configuration fledge writes.
type trafficSplit struct {
	Rules []splitRule `json:"rules"`
}

type splitRule struct {
	Match             []splitMatch       `json:"match,omitempty"`
	WeightedUpstreams []weightedUpstream `json:"weighted_upstreams"`
}

type splitMatch struct {
	Vars [][]string `json:"vars"`
}

// weightedUpstream is one entry of weighted_upstreams. Weight is always written:
// APISIX defaults a missing weight to 1, so omitting 0 would change its meaning.
// An entry without UpstreamID means the route's own upstream.
type weightedUpstream struct {
	UpstreamID string `json:"upstream_id,omitempty"`
	Weight     int32  `json:"weight"`
}

// buildSplit returns the traffic-split configuration for r, or nil when r has no
// canary. The predicate rule (when r.Match is set) comes first and sends every
// matching request to the canary; the weighted rule sends CanaryWeight percent of
// the others to the canary (weights w and 100-w, the second entry being the
// route's own upstream, which is the stable one). The weighted rule is left out
// only when the predicate rule already names the canary and the weight is 0, so
// that Observe can always read the canary back. Weight 100 keeps the route's
// upstream on stable and gives the canary entry weight 100 and stable 0.
func buildSplit(r traffic.Route, canaryID string) (*trafficSplit, error) {
	if r.Canary == nil {
		return nil, nil
	}
	ts := &trafficSplit{}
	if len(r.Match) > 0 {
		vars, err := encodeVars(r.Match)
		if err != nil {
			return nil, err
		}
		ts.Rules = append(ts.Rules, splitRule{
			Match:             []splitMatch{{Vars: vars}},
			WeightedUpstreams: []weightedUpstream{{UpstreamID: canaryID, Weight: 1}},
		})
	}
	if r.CanaryWeight > 0 || len(r.Match) == 0 {
		ts.Rules = append(ts.Rules, splitRule{
			WeightedUpstreams: []weightedUpstream{
				{UpstreamID: canaryID, Weight: r.CanaryWeight},
				{Weight: 100 - r.CanaryWeight},
			},
		})
	}
	return ts, nil
}

// upstreamFields are the fields fledge manages on an upstream.
type upstreamFields struct {
	Name          string
	Labels        map[string]string
	Nodes         map[string]int // "host:port" -> weight; nil with discovery
	ServiceName   string         // discovery only: "namespace/name:port"
	DiscoveryType string         // discovery only
}

func nodesMap(nodes []Node) map[string]int {
	m := make(map[string]int, len(nodes))
	for _, n := range nodes {
		m[net.JoinHostPort(n.Host, strconv.Itoa(int(n.Port)))] = n.Weight
	}
	return m
}

// mergeUpstream returns the body to PUT: current (nil when absent) with the
// fields fledge manages replaced and every other field kept.
func mergeUpstream(current object, f upstreamFields) object {
	next := stripServerFields(current)
	if _, ok := next["type"]; !ok {
		next["type"] = mustJSON("roundrobin")
	}
	next["name"] = mustJSON(truncate(f.Name, maxNameLen))
	next["labels"] = mustJSON(mergeLabels(next["labels"], f.Labels))
	if f.DiscoveryType != "" {
		next["service_name"] = mustJSON(f.ServiceName)
		next["discovery_type"] = mustJSON(f.DiscoveryType)
		delete(next, "nodes")
	} else {
		next["nodes"] = mustJSON(f.Nodes)
		delete(next, "service_name")
		delete(next, "discovery_type")
	}
	return next
}

// mergeRoute returns the route body to PUT: current (nil when absent) with the
// fields fledge manages replaced (name, host, uri, upstream_id, its labels, the
// traffic-split plugin, status) and every other field and plugin kept.
func mergeRoute(current object, r traffic.Route, stableID string, split *trafficSplit) object {
	next := stripServerFields(current)
	next["name"] = mustJSON(truncate(r.App, maxNameLen))
	next["host"] = mustJSON(r.Host)
	delete(next, "hosts")
	next["uri"] = mustJSON(routeURI)
	delete(next, "uris")
	next["upstream_id"] = mustJSON(stableID)
	delete(next, "upstream")
	var status int
	if raw, ok := next["status"]; ok && (json.Unmarshal(raw, &status) != nil || status != 1) {
		delete(next, "status") // default 1: enabled
	}
	next["labels"] = mustJSON(mergeLabels(next["labels"], ownLabels(r.Key)))

	plugins := map[string]json.RawMessage{}
	if raw, ok := next["plugins"]; ok {
		_ = json.Unmarshal(raw, &plugins) // not an object: replaced below
	}
	if split != nil {
		plugins[pluginTrafficSplit] = mustJSON(split)
	} else {
		delete(plugins, pluginTrafficSplit)
	}
	if len(plugins) == 0 {
		delete(next, "plugins")
	} else {
		next["plugins"] = mustJSON(plugins)
	}
	return next
}

func stripServerFields(o object) object {
	next := make(object, len(o)+8)
	maps.Copy(next, o)
	for _, f := range serverFields {
		delete(next, f)
	}
	return next
}

func mergeLabels(raw json.RawMessage, own map[string]string) map[string]string {
	labels := map[string]string{}
	if raw != nil {
		_ = json.Unmarshal(raw, &labels) // malformed labels are replaced
	}
	maps.Copy(labels, own)
	return labels
}

// sameObject reports whether PUTting next over current would change nothing.
func sameObject(current, next object) bool {
	if current == nil {
		return false
	}
	a, errA := canonical(stripServerFields(current))
	b, errB := canonical(next)
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

// canonical re-encodes v with sorted keys and numbers as written.
func canonical(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, err
	}
	return json.Marshal(x)
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("apisix: encoding %T: %v", v, err)) // only fledge's own types
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func labelsOf(o object) map[string]string {
	labels := map[string]string{}
	if raw, ok := o["labels"]; ok {
		if err := json.Unmarshal(raw, &labels); err != nil {
			return nil
		}
	}
	return labels
}

// routeState is what a stored route says about the routing in effect.
type routeState struct {
	Host       string
	Disabled   bool
	UpstreamID string
	CanaryID   string // "" without canary
	Weight     int32
	Match      []fledgev1.Predicate
}

// readRoute parses a stored route. Anything fledge does not write (several
// hosts, an inline upstream, traffic-split rules of another shape) is an error.
func readRoute(o object) (routeState, error) {
	var v struct {
		Host       string          `json:"host"`
		Hosts      []string        `json:"hosts"`
		UpstreamID json.RawMessage `json:"upstream_id"`
		Status     *int            `json:"status"`
	}
	if err := json.Unmarshal(mustJSON(o), &v); err != nil {
		return routeState{}, fmt.Errorf("decoding route: %w", err)
	}
	var st routeState
	switch {
	case v.Host != "":
		st.Host = v.Host
	case len(v.Hosts) == 1:
		st.Host = v.Hosts[0]
	default:
		return routeState{}, fmt.Errorf("route has hosts %q, fledge writes exactly one host", v.Hosts)
	}
	st.Disabled = v.Status != nil && *v.Status == 0
	st.UpstreamID = idString(v.UpstreamID)
	if st.UpstreamID == "" {
		return routeState{}, fmt.Errorf("route has no upstream_id")
	}
	raw, ok := o["plugins"]
	if !ok {
		return st, nil
	}
	var plugins map[string]json.RawMessage
	if err := json.Unmarshal(raw, &plugins); err != nil {
		return routeState{}, fmt.Errorf("decoding plugins: %w", err)
	}
	conf, ok := plugins[pluginTrafficSplit]
	if !ok {
		return st, nil
	}
	var ts splitR
	if err := json.Unmarshal(conf, &ts); err != nil {
		return routeState{}, fmt.Errorf("decoding traffic-split: %w", err)
	}
	if ts.Meta != nil && ts.Meta.Disable {
		return st, nil // disabled plugin: everything goes to the route's upstream
	}
	if err := readSplit(ts, &st); err != nil {
		return routeState{}, fmt.Errorf("traffic-split: %w", err)
	}
	return st, nil
}

// splitR is the traffic-split configuration as read, tolerant of what others write.
type splitR struct {
	Meta *struct {
		Disable bool `json:"disable"`
	} `json:"_meta"`
	Rules []struct {
		Match *[]struct {
			Vars [][]any `json:"vars"`
		} `json:"match"`
		WeightedUpstreams []struct {
			UpstreamID json.RawMessage `json:"upstream_id"`
			Upstream   json.RawMessage `json:"upstream"`
			Weight     *int64          `json:"weight"`
		} `json:"weighted_upstreams"`
	} `json:"rules"`
}

// readSplit reads back the shapes buildSplit writes: an optional predicate rule
// (one match with vars, one entry naming the canary) followed by an optional
// weighted rule (entries naming the canary, and entries without upstream, which
// mean the route's own upstream). The canary weight is 100 × canary / total,
// rounded; fledge writes w and 100-w, so it reads back exactly.
func readSplit(ts splitR, st *routeState) error {
	setCanary := func(id string) error {
		if st.CanaryID != "" && st.CanaryID != id {
			return fmt.Errorf("rules name two canaries, %q and %q", st.CanaryID, id)
		}
		st.CanaryID = id
		return nil
	}
	sawWeighted := false
	for i, rule := range ts.Rules {
		if sawWeighted {
			return fmt.Errorf("rule %d follows a rule without match and is never used; not written by fledge", i)
		}
		for _, wu := range rule.WeightedUpstreams {
			if len(wu.Upstream) > 0 && string(wu.Upstream) != "null" {
				return fmt.Errorf("rule %d has an inline upstream; not written by fledge", i)
			}
		}
		if rule.Match != nil {
			if i != 0 || len(*rule.Match) != 1 || len((*rule.Match)[0].Vars) == 0 || len(rule.WeightedUpstreams) != 1 {
				return fmt.Errorf("rule %d: match rule not written by fledge", i)
			}
			id := idString(rule.WeightedUpstreams[0].UpstreamID)
			if id == "" {
				return fmt.Errorf("rule %d: match rule does not name a canary upstream", i)
			}
			if err := setCanary(id); err != nil {
				return err
			}
			ps, err := decodeVars((*rule.Match)[0].Vars)
			if err != nil {
				return fmt.Errorf("rule %d: %w", i, err)
			}
			st.Match = ps
			continue
		}
		sawWeighted = true
		var canary, total int64
		for _, wu := range rule.WeightedUpstreams {
			w := int64(1) // APISIX's default
			if wu.Weight != nil {
				w = *wu.Weight
			}
			total += w
			if id := idString(wu.UpstreamID); id != "" {
				if err := setCanary(id); err != nil {
					return err
				}
				canary += w
			}
		}
		if st.CanaryID == "" {
			return fmt.Errorf("rule %d: weighted rule names no canary upstream", i)
		}
		if total <= 0 {
			return fmt.Errorf("rule %d: weights add up to %d", i, total)
		}
		st.Weight = int32((canary*100 + total/2) / total)
	}
	return nil
}

// idString reads an id given as a JSON string or number; "" when absent.
func idString(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	return objectID(object{"id": raw})
}
