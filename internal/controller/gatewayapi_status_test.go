package controller_test

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/traffic/gatewayapi"
)

// TestGatewayAPIStatusParentsThroughTheController: when the Gateway API
// implementation reports, in the HTTPRoute's status.parents, that fledge's
// parent does not accept the route, the Release is Routed=False with the
// implementation's reason and message and a Warning Event; once it accepts
// the route, Routed=True again.
func TestGatewayAPIStatusParentsThroughTheController(t *testing.T) {
	ns := env.Namespace(t, "gwapi-status")
	create(t, service(ns, "v1", nil, 9011), service(ns, "v2", nil, 9011))
	rel := &fledgev1.Release{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app}, Spec: fledgev1.ReleaseSpec{
		Provider: fledgev1.ProviderGatewayAPI, GatewayParents: []string{"infra/public/http"},
		Stable: &fledgev1.ServiceRef{Name: "v1"}, Canary: &fledgev1.ServiceRef{Name: "v2"}, CanaryWeight: 30}}
	create(t, rel)
	wantStatus(t, ns, fledgev1.PhaseCanary, 30, 30)
	condition(t, ns, fledgev1.ConditionRouted, metav1.ConditionTrue, "gatewayapi serves host error-page")

	// The implementation writes status.parents, as it does, through the
	// status subresource; then something makes the controller look again.
	report := func(status metav1.ConditionStatus, reason, message string) {
		t.Helper()
		hr := &unstructured.Unstructured{}
		hr.SetGroupVersionKind(gatewayapi.GroupVersionKind)
		if err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app}, hr); err != nil {
			t.Fatal(err)
		}
		parents := []any{map[string]any{
			"parentRef":      map[string]any{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "infra", "name": "public", "sectionName": "http"},
			"controllerName": "example.com/gateway-controller",
			"conditions": []any{map[string]any{"type": "Accepted", "status": string(status), "reason": reason, "message": message,
				"observedGeneration": hr.GetGeneration(), "lastTransitionTime": metav1.Now().UTC().Format("2006-01-02T15:04:05Z")}},
		}}
		if err := unstructured.SetNestedSlice(hr.Object, parents, "status", "parents"); err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Status().Update(t.Context(), hr); err != nil {
			t.Fatal(err)
		}
		var cur fledgev1.Release
		if err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app}, &cur); err != nil {
			t.Fatal(err)
		}
		patch := client.MergeFrom(cur.DeepCopy())
		cur.Labels = map[string]string{"test/poke": string(status)}
		if err := env.Client.Patch(t.Context(), &cur, patch); err != nil {
			t.Fatal(err)
		}
	}
	report(metav1.ConditionFalse, "NotAllowedByListeners", "listener http does not admit routes from namespace "+ns)
	want := []string{"parent infra/public/http (example.com/gateway-controller): Accepted=False (NotAllowedByListeners): listener http does not admit routes from namespace " + ns}
	condition(t, ns, fledgev1.ConditionRouted, metav1.ConditionFalse, want...)
	warning(t, ns, "Release", app, want...)

	report(metav1.ConditionTrue, "Accepted", "")
	condition(t, ns, fledgev1.ConditionRouted, metav1.ConditionTrue, "gatewayapi serves host error-page")
	wantStatus(t, ns, fledgev1.PhaseCanary, 30, 30)
}
