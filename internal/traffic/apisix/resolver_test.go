package apisix

import (
	"context"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func slice(addrType discoveryv1.AddressType, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) discoveryv1.EndpointSlice {
	return discoveryv1.EndpointSlice{AddressType: addrType, Ports: ports, Endpoints: eps}
}

func port(name string, number int32, proto corev1.Protocol) discoveryv1.EndpointPort {
	p := discoveryv1.EndpointPort{Port: &number}
	if name != "" {
		p.Name = &name
	}
	if proto != "" {
		p.Protocol = &proto
	}
	return p
}

func endpoint(ready *bool, addrs ...string) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: addrs, Conditions: discoveryv1.EndpointConditions{Ready: ready}}
}

func TestReadyNodes(t *testing.T) {
	yes, no := true, false
	http := corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("web")}
	unnamed := corev1.ServicePort{Port: 80, TargetPort: intstr.FromInt32(8080)}
	tests := []struct {
		name   string
		sp     corev1.ServicePort
		slices []discoveryv1.EndpointSlice
		want   []Node
	}{
		{
			name: "ready and unset conditions count, not-ready is skipped",
			sp:   http,
			slices: []discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4,
				[]discoveryv1.EndpointPort{port("http", 8080, "")},
				endpoint(&yes, "10.0.0.2"), endpoint(nil, "10.0.0.1"), endpoint(&no, "10.0.0.3"))},
			want: []Node{{"10.0.0.1", 8080, 1}, {"10.0.0.2", 8080, 1}},
		},
		{
			name: "port chosen by name, not by number",
			sp:   http,
			slices: []discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4,
				[]discoveryv1.EndpointPort{port("metrics", 9090, ""), port("http", 8081, "")},
				endpoint(&yes, "10.0.0.1"))},
			want: []Node{{"10.0.0.1", 8081, 1}},
		},
		{
			name: "unnamed service port matches unnamed slice port",
			sp:   unnamed,
			slices: []discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4,
				[]discoveryv1.EndpointPort{port("", 8080, corev1.ProtocolTCP)}, endpoint(&yes, "10.0.0.1"))},
			want: []Node{{"10.0.0.1", 8080, 1}},
		},
		{
			name: "protocol must match",
			sp:   http,
			slices: []discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4,
				[]discoveryv1.EndpointPort{port("http", 8080, corev1.ProtocolUDP)}, endpoint(&yes, "10.0.0.1"))},
		},
		{
			name: "first address only, duplicates across slices dropped, IPv6 kept",
			sp:   http,
			slices: []discoveryv1.EndpointSlice{
				slice(discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("http", 8080, "")}, endpoint(&yes, "10.0.0.1", "10.0.0.9")),
				slice(discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("http", 8080, "")}, endpoint(&yes, "10.0.0.1")),
				slice(discoveryv1.AddressTypeIPv6, []discoveryv1.EndpointPort{port("http", 8080, "")}, endpoint(&yes, "fd00::1")),
			},
			want: []Node{{"10.0.0.1", 8080, 1}, {"fd00::1", 8080, 1}},
		},
		{
			name: "FQDN slices are skipped",
			sp:   http,
			slices: []discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeFQDN,
				[]discoveryv1.EndpointPort{port("http", 8080, "")}, endpoint(&yes, "example.com"))},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := readyNodes(tc.sp, tc.slices); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("readyNodes = %v; want %v", got, tc.want)
			}
		})
	}
	if got := nodesMap([]Node{{"fd00::1", 8080, 1}, {"10.0.0.1", 80, 2}}); !reflect.DeepEqual(got, map[string]int{"[fd00::1]:8080": 1, "10.0.0.1:80": 2}) {
		t.Errorf("nodesMap = %v", got)
	}
}

func TestDiscoveryPortName(t *testing.T) {
	yes := true
	tests := []struct {
		name    string
		sp      corev1.ServicePort
		slices  []discoveryv1.EndpointSlice
		want    string
		wantErr bool
	}{
		{name: "named port", sp: corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}, want: "http"},
		{name: "unnamed port uses the target port", sp: corev1.ServicePort{Port: 80, TargetPort: intstr.FromInt32(8080)}, want: "8080"},
		{name: "unset target port is the port", sp: corev1.ServicePort{Port: 80}, want: "80"},
		{
			name: "named target port resolved from slices",
			sp:   corev1.ServicePort{Port: 80, TargetPort: intstr.FromString("web")},
			slices: []discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4,
				[]discoveryv1.EndpointPort{port("", 8081, "")}, endpoint(&yes, "10.0.0.1"))},
			want: "8081",
		},
		{name: "named target port without slices", sp: corev1.ServicePort{Port: 80, TargetPort: intstr.FromString("web")}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := discoveryPortName(tc.sp, tc.slices)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("discoveryPortName = %q, %v; want %q (error: %t)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestClusterDNSResolver(t *testing.T) {
	nodes, err := ClusterDNSResolver{}.Nodes(t.Context(), "default", "web", 80)
	if err != nil || !reflect.DeepEqual(nodes, []Node{{"web.default.svc.cluster.local", 80, 1}}) {
		t.Errorf("Nodes = %v, %v", nodes, err)
	}
}

// secretReader is a client.Reader holding one Secret; Get of anything else fails.
type secretReader struct {
	client.Reader
	secret corev1.Secret
}

func (r secretReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	s, ok := obj.(*corev1.Secret)
	if !ok || key.Namespace != r.secret.Namespace || key.Name != r.secret.Name {
		return errNotFoundForTest
	}
	r.secret.DeepCopyInto(s)
	return nil
}

var errNotFoundForTest = &APIError{Method: "GET", Object: "secret", StatusCode: 404}

func TestAPIKeyFromSecret(t *testing.T) {
	r := secretReader{}
	r.secret.Namespace, r.secret.Name = "fledge-system", "apisix-admin"
	r.secret.Data = map[string][]byte{"key": []byte("s3cr3t\n"), "empty": nil}
	if got, err := APIKeyFromSecret(t.Context(), r, "fledge-system", "apisix-admin", "key"); err != nil || got != "s3cr3t" {
		t.Errorf("APIKeyFromSecret = %q, %v; want s3cr3t", got, err)
	}
	for _, tc := range []struct{ name, secret, key string }{
		{"missing entry", "apisix-admin", "other"},
		{"empty entry", "apisix-admin", "empty"},
		{"missing secret", "nope", "key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := APIKeyFromSecret(t.Context(), r, "fledge-system", tc.secret, tc.key)
			if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "fledge-system/"+tc.secret) {
				t.Errorf("APIKeyFromSecret = %v; want an error naming the secret, not the key", err)
			}
		})
	}
}
