package apisix

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Node is one address an upstream sends to.
type Node struct {
	// Host is an IP address or a DNS name.
	Host string
	// Port is the port on Host.
	Port int32
	// Weight is the node's relative weight (APISIX: integer >= 0).
	Weight int
}

// Resolver finds the nodes behind a Service port.
type Resolver interface {
	// Nodes returns the nodes serving port of Service namespace/service, or an
	// error (ErrNoEndpoints, wrapped, when none is ready).
	Nodes(ctx context.Context, namespace, service string, port int32) ([]Node, error)
}

// PortNamer names a Service port the way APISIX's Kubernetes discovery keys it:
// the port's name, or for an unnamed port the endpoint (target) port number.
// APISIX looks up service_name "namespace/name:<that>"; the Service port number
// itself only works when it equals the target port of an unnamed port.
type PortNamer interface {
	DiscoveryPort(ctx context.Context, namespace, service string, port int32) (string, error)
}

// ErrNoEndpoints is returned (wrapped) when a Service port has no ready endpoint.
var ErrNoEndpoints = errors.New("no ready endpoints")

// EndpointSliceResolver resolves Service ports to the ready endpoints of the
// Service's EndpointSlices. It implements Resolver and PortNamer. Reader is
// typically the manager's cached client (it needs get on services and list on
// discovery.k8s.io endpointslices).
type EndpointSliceResolver struct {
	Reader client.Reader
}

// Nodes returns one node (weight 1) per ready endpoint, sorted, using each
// endpoint's first address and the slice port that corresponds to port.
func (r EndpointSliceResolver) Nodes(ctx context.Context, namespace, service string, port int32) ([]Node, error) {
	sp, slices, err := r.gather(ctx, namespace, service, port)
	if err != nil {
		return nil, err
	}
	nodes := readyNodes(sp, slices)
	if len(nodes) == 0 {
		return nil, fmt.Errorf("service %s/%s port %d: %w", namespace, service, port, ErrNoEndpoints)
	}
	return nodes, nil
}

// DiscoveryPort implements PortNamer.
func (r EndpointSliceResolver) DiscoveryPort(ctx context.Context, namespace, service string, port int32) (string, error) {
	sp, slices, err := r.gather(ctx, namespace, service, port)
	if err != nil {
		return "", err
	}
	name, err := discoveryPortName(sp, slices)
	if err != nil {
		return "", fmt.Errorf("service %s/%s port %d: %w", namespace, service, port, err)
	}
	return name, nil
}

func (r EndpointSliceResolver) gather(ctx context.Context, namespace, service string, port int32) (corev1.ServicePort, []discoveryv1.EndpointSlice, error) {
	var svc corev1.Service
	if err := r.Reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: service}, &svc); err != nil {
		return corev1.ServicePort{}, nil, fmt.Errorf("getting service %s/%s: %w", namespace, service, err)
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return corev1.ServicePort{}, nil, fmt.Errorf("service %s/%s is of type ExternalName, which has no endpoints", namespace, service)
	}
	sp, ok := servicePort(&svc, port)
	if !ok {
		return corev1.ServicePort{}, nil, fmt.Errorf("service %s/%s has no port %d", namespace, service, port)
	}
	var list discoveryv1.EndpointSliceList
	if err := r.Reader.List(ctx, &list, client.InNamespace(namespace),
		client.MatchingLabels{discoveryv1.LabelServiceName: service}); err != nil {
		return corev1.ServicePort{}, nil, fmt.Errorf("listing endpointslices of service %s/%s: %w", namespace, service, err)
	}
	return sp, list.Items, nil
}

func servicePort(svc *corev1.Service, port int32) (corev1.ServicePort, bool) {
	for _, sp := range svc.Spec.Ports {
		if sp.Port == port {
			return sp, true
		}
	}
	return corev1.ServicePort{}, false
}

func protocolOf(p *corev1.Protocol) corev1.Protocol {
	if p == nil || *p == "" {
		return corev1.ProtocolTCP
	}
	return *p
}

// slicePort returns the port of slice that carries Service port sp: slice ports
// have the Service port's name ("" for an unnamed port) and the resolved target
// port number.
func slicePort(sp corev1.ServicePort, slice *discoveryv1.EndpointSlice) (int32, bool) {
	want := sp.Protocol
	if want == "" {
		want = corev1.ProtocolTCP
	}
	for _, p := range slice.Ports {
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		if name == sp.Name && protocolOf(p.Protocol) == want && p.Port != nil {
			return *p.Port, true
		}
	}
	return 0, false
}

// readyNodes selects the nodes of Service port sp from slices: endpoints whose
// Ready condition is not false (unset means ready), their first address (the
// API says all addresses of an endpoint are fungible), the slice's resolved
// port; duplicates across slices are dropped and the result is sorted.
func readyNodes(sp corev1.ServicePort, slices []discoveryv1.EndpointSlice) []Node {
	seen := map[string]bool{}
	var nodes []Node
	for i := range slices {
		slice := &slices[i]
		if slice.AddressType == discoveryv1.AddressTypeFQDN {
			continue // deprecated, and not produced for Services with selectors
		}
		port, ok := slicePort(sp, slice)
		if !ok {
			continue
		}
		for _, ep := range slice.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			if len(ep.Addresses) == 0 {
				continue
			}
			addr := net.JoinHostPort(ep.Addresses[0], strconv.Itoa(int(port)))
			if seen[addr] {
				continue
			}
			seen[addr] = true
			nodes = append(nodes, Node{Host: ep.Addresses[0], Port: port, Weight: 1})
		}
	}
	sort.Slice(nodes, func(i, j int) bool {
		if nodes[i].Host != nodes[j].Host {
			return nodes[i].Host < nodes[j].Host
		}
		return nodes[i].Port < nodes[j].Port
	})
	return nodes
}

// discoveryPortName is the port part of an APISIX Kubernetes discovery
// service_name for sp: the port's name; for an unnamed port, the target port
// number (from the Service, or from the slices when the target is a named
// container port).
func discoveryPortName(sp corev1.ServicePort, slices []discoveryv1.EndpointSlice) (string, error) {
	if sp.Name != "" {
		return sp.Name, nil
	}
	switch {
	case sp.TargetPort.Type == intstr.Int && sp.TargetPort.IntVal != 0:
		return strconv.Itoa(int(sp.TargetPort.IntVal)), nil
	case sp.TargetPort.Type == intstr.Int:
		return strconv.Itoa(int(sp.Port)), nil // unset target port defaults to port
	}
	for i := range slices {
		if port, ok := slicePort(sp, &slices[i]); ok {
			return strconv.Itoa(int(port)), nil
		}
	}
	return "", fmt.Errorf("target port %q is a container port name not yet resolved by any endpointslice", sp.TargetPort.StrVal)
}

// ClusterDNSResolver resolves a Service port to a single node, the Service's
// cluster DNS name and port, so APISIX sends to the Service's virtual IP and
// kube-proxy picks the pod. Domain is the cluster domain ("cluster.local" when
// empty). This is what APISIX's documentation examples use; it loses APISIX's
// own load balancing and health checks across pods.
type ClusterDNSResolver struct {
	Domain string
}

// Nodes implements Resolver.
func (r ClusterDNSResolver) Nodes(_ context.Context, namespace, service string, port int32) ([]Node, error) {
	domain := r.Domain
	if domain == "" {
		domain = "cluster.local"
	}
	return []Node{{Host: service + "." + namespace + ".svc." + domain, Port: port, Weight: 1}}, nil
}
