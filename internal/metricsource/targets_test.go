package metricsource_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fledge-dev/fledge/internal/controller"
	"github.com/fledge-dev/fledge/internal/metricsource"
	"github.com/fledge-dev/fledge/internal/testenv"
)

var kube struct {
	once sync.Once
	env  *testenv.Env
	err  error
}

// controlPlane returns the kube-apiserver shared by the tests of this binary
// (with deploy/'s namespace and RBAC), starting it on first use (about 5 s).
func controlPlane(t *testing.T) *testenv.Env {
	t.Helper()
	kube.once.Do(func() {
		kube.err = errors.New("starting the control plane failed in an earlier test")
		kube.env, kube.err = testenv.Start(context.Background(), testenv.Options{})
		if kube.err == nil {
			atExit(func() { _ = kube.env.Stop() })
		}
	})
	if kube.err != nil {
		t.Fatal(kube.err)
	}
	return kube.env
}

func TestEndpointSliceTargets(t *testing.T) {
	env := controlPlane(t)
	ns := env.Namespace(t, "metricsource")
	pod := func(name string) *corev1.ObjectReference {
		return &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: name, UID: types.UID(name + "-uid")}
	}
	endpoint := func(addr, podName string, ready, terminating *bool) discoveryv1.Endpoint {
		ep := discoveryv1.Endpoint{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: ready, Terminating: terminating}}
		if podName != "" {
			ep.TargetRef = pod(podName)
		}
		return ep
	}
	slice := func(name, svc string, family discoveryv1.AddressType, port string, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
			AddressType: family,
			Ports: []discoveryv1.EndpointPort{
				{Name: ptr.To("http"), Port: ptr.To(int32(8080))},
				{Name: ptr.To(port), Port: ptr.To(int32(9090))},
			},
			Endpoints: eps,
		}
	}
	for _, es := range []*discoveryv1.EndpointSlice{
		slice("gw-v4-a", "gw-metrics", discoveryv1.AddressTypeIPv4, "metrics",
			endpoint("10.213.0.1", "gw-1", ptr.To(true), nil),
			endpoint("10.213.0.2", "gw-2", nil, nil),                   // ready unset: ready
			endpoint("10.213.0.3", "gw-3", ptr.To(false), nil),         // not ready
			endpoint("10.213.0.4", "gw-4", ptr.To(true), ptr.To(true)), // terminating
			endpoint("10.213.0.5", "", ptr.To(true), ptr.To(false)),    // no targetRef
		),
		// Another slice of the same Service (a Service has one per 100 endpoints),
		// with an endpoint listed twice while slices are being updated.
		slice("gw-v4-b", "gw-metrics", discoveryv1.AddressTypeIPv4, "metrics",
			endpoint("10.213.0.6", "gw-6", ptr.To(true), nil),
			endpoint("10.213.0.1", "gw-1", ptr.To(true), nil),
		),
		// Dual stack: the same pods again, by IPv6 (scraped once, by IPv4), and
		// one pod only known by IPv6.
		slice("gw-v6", "gw-metrics", discoveryv1.AddressTypeIPv6, "metrics",
			endpoint("fd00:213::1", "gw-1", ptr.To(true), nil),
			endpoint("fd00:213::7", "gw-7", ptr.To(true), nil),
		),
		slice("gw-other-port", "gw-metrics", discoveryv1.AddressTypeIPv4, "admin",
			endpoint("10.213.0.8", "gw-8", ptr.To(true), nil)),
		slice("other-service", "other", discoveryv1.AddressTypeIPv4, "metrics",
			endpoint("10.213.0.9", "other-1", ptr.To(true), nil)),
	} {
		if err := env.Client.Create(t.Context(), es); err != nil {
			t.Fatalf("creating EndpointSlice %s: %v", es.Name, err)
		}
	}

	// Read as the controller, with exactly the rights deploy/rbac gives it.
	asController, err := client.New(env.ServiceAccountConfig("fledge-controller"), client.Options{Scheme: controller.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	got, err := metricsource.EndpointSliceTargets{Reader: asController, Namespace: ns, Service: "gw-metrics"}.URLs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"http://10.213.0.1:9090/metrics",
		"http://10.213.0.2:9090/metrics",
		"http://10.213.0.5:9090/metrics",
		"http://10.213.0.6:9090/metrics",
		"http://[fd00:213::7]:9090/metrics",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}

	got, err = metricsource.EndpointSliceTargets{Reader: asController, Namespace: ns, Service: "gw-metrics", PortName: "admin", Path: "/m"}.URLs(t.Context())
	if err != nil || !slices.Equal(got, []string{"http://10.213.0.8:9090/m"}) {
		t.Fatalf("port admin, path /m: got %q, %v", got, err)
	}

	got, err = metricsource.EndpointSliceTargets{Reader: asController, Namespace: ns, Service: "none"}.URLs(t.Context())
	if err != nil || len(got) != 0 {
		t.Fatalf("Service without slices: got %q, %v; want none", got, err)
	}

	// Without the right to list EndpointSlices: an error naming the Service.
	nobody, err := client.New(env.ServiceAccountConfig("nobody"), client.Options{Scheme: controller.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = metricsource.EndpointSliceTargets{Reader: nobody, Namespace: ns, Service: "gw-metrics"}.URLs(t.Context())
	if !apierrors.IsForbidden(err) {
		t.Fatalf("got %v, want forbidden", err)
	}
}
