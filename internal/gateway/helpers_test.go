package gateway

import (
	"net"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// t0 is the creation time of test objects; routes created later add minutes.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// trafficRoute returns a TrafficRoute in namespace "shop" created at t0 +
// age minutes; mutate adjusts the spec.
func trafficRoute(name, host string, mutate ...func(*fledgev1.TrafficRoute)) *fledgev1.TrafficRoute {
	tr := &fledgev1.TrafficRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, CreationTimestamp: metav1.NewTime(t0)},
		Spec: fledgev1.TrafficRouteSpec{
			Host:   host,
			Stable: fledgev1.BackendRef{Service: name + "-stable", Port: 80},
		},
	}
	for _, m := range mutate {
		m(tr)
	}
	return tr
}

func withCanary(weight int32) func(*fledgev1.TrafficRoute) {
	return func(tr *fledgev1.TrafficRoute) {
		tr.Spec.Canary = &fledgev1.BackendRef{Service: tr.Name + "-canary", Port: 80}
		tr.Spec.CanaryWeight = weight
	}
}

func withMatch(ps ...fledgev1.Predicate) func(*fledgev1.TrafficRoute) {
	return func(tr *fledgev1.TrafficRoute) { tr.Spec.Match = ps }
}

func createdAt(minutes int) func(*fledgev1.TrafficRoute) {
	return func(tr *fledgev1.TrafficRoute) {
		tr.CreationTimestamp = metav1.NewTime(t0.Add(time.Duration(minutes) * time.Minute))
	}
}

func inNamespace(ns string) func(*fledgev1.TrafficRoute) {
	return func(tr *fledgev1.TrafficRoute) { tr.Namespace = ns }
}

// service returns a ClusterIP Service in "shop" with one port 80 named "http"
// targeting 8080, unless ports are given.
func service(name string, ports ...corev1.ServicePort) *corev1.Service {
	if len(ports) == 0 {
		ports = []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}
	}
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: ports},
	}
}

// endpointSlice returns an IPv4 EndpointSlice of Service svc in "shop" with one
// port (name, number).
func endpointSlice(name, svc, portName string, port int32, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "shop", Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints:   eps,
	}
}

// ready, notReady and terminating are endpoints at addr.
func ready(addr string) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}
}

func readyUnset(addr string) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{addr}}
}

func notReady(addr string) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}}
}

func terminating(addr string) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{
		Ready: ptr.To(true), Terminating: ptr.To(true),
	}}
}

// backendObjects returns a Service with port 80 named "http" and a slice with
// the given loopback endpoints "127.0.0.1:port" (port becomes the slice's port:
// all endpoints of one slice share it, so each address gets its own slice).
func backendObjects(t testing.TB, svc string, addrs ...string) (*corev1.Service, []*discoveryv1.EndpointSlice) {
	t.Helper()
	var slices []*discoveryv1.EndpointSlice
	for i, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			t.Fatal(err)
		}
		slices = append(slices, endpointSlice(svc+"-"+strconv.Itoa(i), svc, "http", int32(p), ready(host)))
	}
	return service(svc), slices
}

// hostOf returns the "host:port" of an httptest server URL.
func hostOf(t testing.TB, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// request returns a GET request for host (Host header) and target path.
func request(host, target string) *http.Request {
	r, err := http.NewRequest(http.MethodGet, "http://"+host+target, nil)
	if err != nil {
		panic(err)
	}
	return r
}

// serveConns accepts connections on a new loopback listener until the test
// ends, serving each with handle on its own goroutine (which closes it
// after), and returns the listener's address.
func serveConns(tb testing.TB, handle func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}
