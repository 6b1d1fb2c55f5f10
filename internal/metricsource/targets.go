package metricsource

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"

	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Targets lists the /metrics URLs of the gateway replicas, one per replica.
// A URL identifies a replica for the baselines of [Builtin].
type Targets interface {
	URLs(ctx context.Context) ([]string, error)
}

// StaticTargets is a fixed list of /metrics URLs (tests, flags).
type StaticTargets []string

// URLs returns a copy of the list.
func (s StaticTargets) URLs(context.Context) ([]string, error) { return slices.Clone(s), nil }

// Defaults of [EndpointSliceTargets].
const (
	DefaultMetricsPortName = "metrics"
	DefaultMetricsPath     = "/metrics"
	// RoutesPath is where a gateway replica says what it serves (on the
	// same port as its metrics): set it as Path to list the replicas'
	// /routes URLs.
	RoutesPath = "/routes"
)

// EndpointSliceTargets lists one URL per ready endpoint of a Service, read from
// its EndpointSlices (labelled kubernetes.io/service-name), e.g. the headless
// Service fledge-system/fledge-gateway-metrics of deploy/gateway.yaml.
//
// An endpoint is ready when conditions.ready is unset or true and
// conditions.terminating is not true (as the gateway decides for backends). Its
// first address is used. An endpoint listed more than once (a dual-stack
// Service has one IPv4 and one IPv6 slice; slices overlap briefly while being
// updated) is scraped once, identified by its targetRef (else its address),
// preferring IPv4. FQDN slices are ignored.
//
// Reader needs list on endpointslices.discovery.k8s.io in Namespace. A manager's
// cached client only serves the namespaces its cache watches: when the
// controller is limited to other namespaces (--namespace), pass the manager's
// API reader (mgr.GetAPIReader()) instead.
type EndpointSliceTargets struct {
	Reader client.Reader
	// Namespace and Service name the Service.
	Namespace, Service string
	// PortName is the name of the Service port to scrape. Default "metrics".
	PortName string
	// Path is the metrics path. Default "/metrics".
	Path string
}

// URLs returns the URLs of the ready endpoints, sorted; empty when there is none.
func (e EndpointSliceTargets) URLs(ctx context.Context) ([]string, error) {
	portName := cmp.Or(e.PortName, DefaultMetricsPortName)
	path := cmp.Or(e.Path, DefaultMetricsPath)
	var list discoveryv1.EndpointSliceList
	if err := e.Reader.List(ctx, &list, client.InNamespace(e.Namespace),
		client.MatchingLabels{discoveryv1.LabelServiceName: e.Service}); err != nil {
		return nil, fmt.Errorf("listing the EndpointSlices of Service %s/%s: %w", e.Namespace, e.Service, err)
	}
	slicesByFamily := slices.Clone(list.Items)
	slices.SortFunc(slicesByFamily, func(a, b discoveryv1.EndpointSlice) int {
		return cmp.Or(cmp.Compare(a.AddressType, b.AddressType), cmp.Compare(a.Name, b.Name)) // IPv4 < IPv6
	})
	seen := map[string]bool{}
	var urls []string
	for i := range slicesByFamily {
		es := &slicesByFamily[i]
		if es.AddressType != discoveryv1.AddressTypeIPv4 && es.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		port, ok := namedPort(es, portName)
		if !ok {
			continue
		}
		for j := range es.Endpoints {
			ep := &es.Endpoints[j]
			if len(ep.Addresses) == 0 || !endpointReady(ep) {
				continue
			}
			id := ep.Addresses[0]
			if ref := ep.TargetRef; ref != nil {
				id = ref.Kind + "/" + ref.Namespace + "/" + ref.Name + "/" + string(ref.UID)
			}
			if seen[id] {
				continue
			}
			seen[id] = true
			u := url.URL{Scheme: "http", Host: net.JoinHostPort(ep.Addresses[0], strconv.Itoa(int(port))), Path: path}
			urls = append(urls, u.String())
		}
	}
	slices.Sort(urls)
	return slices.Compact(urls), nil
}

// namedPort returns the port number of the slice's port called name.
func namedPort(es *discoveryv1.EndpointSlice, name string) (int32, bool) {
	for _, p := range es.Ports {
		if p.Name != nil && *p.Name == name && p.Port != nil {
			return *p.Port, true
		}
	}
	return 0, false
}

func endpointReady(ep *discoveryv1.Endpoint) bool {
	c := ep.Conditions
	return (c.Ready == nil || *c.Ready) && (c.Terminating == nil || !*c.Terminating)
}
