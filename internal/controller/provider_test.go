package controller_test

import (
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/annotations"
	"github.com/fledge-dev/fledge/internal/traffic"
	"github.com/fledge-dev/fledge/internal/traffic/apisix"
	"github.com/fledge-dev/fledge/internal/traffic/apisix/apisixtest"
	"github.com/fledge-dev/fledge/internal/traffic/gatewayapi"
)

// TestAPISIXProviderThroughTheController: a Release with provider apisix is
// served by APISIX (an in-test server of its Admin API: APISIX cannot run
// here), an APISIX outage is a condition and a Warning event, not a panic or a
// silent success, and deleting the Release removes fledge's APISIX objects.
func TestAPISIXProviderThroughTheController(t *testing.T) {
	srv := apisixtest.New(t, apisixKey)
	var h http.Handler = srv
	apisixAdmin.Store(&h)
	t.Cleanup(func() { apisixAdmin.Store(nil) })

	ns := env.Namespace(t, "apisix")
	create(t, service(ns, "v1", nil, 9011), service(ns, "v2", nil, 9011))
	rel := &fledgev1.Release{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app}, Spec: fledgev1.ReleaseSpec{
		Provider: fledgev1.ProviderAPISIX, Stable: &fledgev1.ServiceRef{Name: "v1"}, Canary: &fledgev1.ServiceRef{Name: "v2"},
		CanaryWeight: 10, Match: []fledgev1.Predicate{{Type: fledgev1.PredicateHeader, Name: "X-Debug", Value: "1"}}}}
	create(t, rel)
	wantStatus(t, ns, fledgev1.PhaseCanary, 10, 10)

	key := traffic.Key{Namespace: ns, App: app}
	stable := apisix.UpstreamID(key, traffic.Backend{Service: "v1", Port: 9011})
	canary := apisix.UpstreamID(key, traffic.Backend{Service: "v2", Port: 9011})
	targets := func(h http.Header) map[string]int {
		got, err := srv.Targets(apisixtest.Probe{Host: app, Path: "/api/error_page", Header: h})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got, want := targets(nil), map[string]int{stable: 90, canary: 10}; !maps.Equal(got, want) {
		t.Errorf("APISIX splits %v, want %v", got, want)
	}
	if got, want := targets(http.Header{"X-Debug": {"1"}}), map[string]int{canary: 1}; len(got) != 1 || got[canary] == 0 {
		t.Errorf("APISIX sends X-Debug: 1 to %v, want only %v", got, want)
	}

	// An outage: the change cannot be applied, and the Release says so.
	srv.Break()
	patch := client.MergeFrom(rel.DeepCopy())
	rel.Spec.CanaryWeight = 50
	if err := env.Client.Patch(t.Context(), rel, patch); err != nil {
		t.Fatal(err)
	}
	condition(t, ns, fledgev1.ConditionRouted, metav1.ConditionFalse, "503")
	warning(t, ns, "Release", app, "503")
	wantPhase(t, ns, fledgev1.PhaseFailed)

	srv.Repair()
	wantStatus(t, ns, fledgev1.PhaseCanary, 50, 50)
	if got, want := targets(nil), map[string]int{stable: 50, canary: 50}; !maps.Equal(got, want) {
		t.Errorf("after repair APISIX splits %v, want %v", got, want)
	}

	if err := env.Client.Delete(t.Context(), rel); err != nil {
		t.Fatal(err)
	}
	eventually(t, "APISIX objects removed", func() string {
		if objs := srv.Objects(); len(objs) > 0 {
			return fmt.Sprintf("left behind: %s", strings.Join(objs, ", "))
		}
		return ""
	})
}

// TestGatewayAPIProviderThroughTheController: a Release with provider
// gatewayapi and its own parent Gateway gets an HTTPRoute (written with the
// controller's RBAC, accepted by the real Gateway API CRDs), and deleting the
// Release removes it.
func TestGatewayAPIProviderThroughTheController(t *testing.T) {
	ns := env.Namespace(t, "gwapi")
	create(t, service(ns, "v1", nil, 9011), service(ns, "v2", nil, 9011))
	rel := &fledgev1.Release{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app}, Spec: fledgev1.ReleaseSpec{
		Provider: fledgev1.ProviderGatewayAPI, GatewayParents: []string{"infra/public/http"},
		Stable: &fledgev1.ServiceRef{Name: "v1"}, Canary: &fledgev1.ServiceRef{Name: "v2"}, CanaryWeight: 30,
		Match: []fledgev1.Predicate{{Type: fledgev1.PredicateCookie, Name: "beta", Value: "yes"}}}}
	create(t, rel)
	wantStatus(t, ns, fledgev1.PhaseCanary, 30, 30)

	route := &unstructured.Unstructured{}
	route.SetGroupVersionKind(gatewayapi.GroupVersionKind)
	if err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app}, route); err != nil {
		t.Fatal(err)
	}
	parents, _, _ := unstructured.NestedSlice(route.Object, "spec", "parentRefs")
	if len(parents) != 1 || parents[0].(map[string]any)["name"] != "public" || parents[0].(map[string]any)["namespace"] != "infra" ||
		parents[0].(map[string]any)["sectionName"] != "http" {
		t.Errorf("parentRefs = %v, want infra/public/http", parents)
	}
	hosts, _, _ := unstructured.NestedStringSlice(route.Object, "spec", "hostnames")
	if len(hosts) != 1 || hosts[0] != app {
		t.Errorf("hostnames = %v", hosts)
	}

	// A bad parent in the spec is refused and changes nothing.
	patch := client.MergeFrom(rel.DeepCopy())
	rel.Spec.GatewayParents = []string{"public"}
	rel.Spec.CanaryWeight = 60
	if err := env.Client.Patch(t.Context(), rel, patch); err != nil {
		t.Fatal(err)
	}
	condition(t, ns, fledgev1.ConditionAccepted, metav1.ConditionFalse, "spec.gatewayParents[0]")
	wantStatus(t, ns, fledgev1.PhaseCanary, 30, 30)

	if err := env.Client.Delete(t.Context(), rel); err != nil {
		t.Fatal(err)
	}
	eventually(t, "HTTPRoute removed", func() string {
		if err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app}, route); !apierrors.IsNotFound(err) {
			return fmt.Sprintf("HTTPRoute still there (err %v)", err)
		}
		return ""
	})
}

// TestSwitchingProviderRemovesTheOldRouting: moving an application from the
// embedded gateway to APISIX leaves no TrafficRoute behind.
func TestSwitchingProviderRemovesTheOldRouting(t *testing.T) {
	srv := apisixtest.New(t, apisixKey)
	var h http.Handler = srv
	apisixAdmin.Store(&h)
	t.Cleanup(func() { apisixAdmin.Store(nil) })

	ns := env.Namespace(t, "switch")
	create(t, service(ns, "v1", map[string]string{annotations.PublishedService: app}, 9011))
	wantRoute(t, ns, "v1", "", 0)
	annotate(t, ns, "v1", annotations.Provider, "apisix")
	wantNoRoute(t, ns)
	eventually(t, "APISIX route", func() string {
		if len(srv.Objects()) == 0 {
			return "nothing in APISIX"
		}
		return ""
	})
	// The status is written after the routing: wait for it.
	eventually(t, "status.provider apisix", func() string {
		rel, err := release(t, ns)
		if err != nil || rel.Status.Provider != fledgev1.ProviderAPISIX {
			return fmt.Sprintf("release provider = %q (err %v), want apisix", rel.Status.Provider, err)
		}
		return ""
	})
}
