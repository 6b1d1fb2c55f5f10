package controller_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/annotations"
)

const app = "error-page"

func service(ns, name string, ann map[string]string, ports ...int32) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: ann},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP}}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "http", Port: p})
	}
	return s
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Create(t.Context(), o); err != nil {
			t.Fatalf("creating %s: %v", o.GetName(), err)
		}
	}
}

// annotate sets (or, with value "-", removes) annotations of a Service.
func annotate(t *testing.T, ns, name string, kv ...string) {
	t.Helper()
	var svc corev1.Service
	if err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &svc); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(svc.DeepCopy())
	if svc.Annotations == nil {
		svc.Annotations = map[string]string{}
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "-" {
			delete(svc.Annotations, kv[i])
		} else {
			svc.Annotations[kv[i]] = kv[i+1]
		}
	}
	if err := env.Client.Patch(t.Context(), &svc, patch); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it returns "" (success) or the deadline passes.
func eventually(t *testing.T, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		if last = cond(); last == "" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: %s", what, last)
}

func route(t *testing.T, ns string) (*fledgev1.TrafficRoute, error) {
	var tr fledgev1.TrafficRoute
	err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app}, &tr)
	return &tr, err
}

func release(t *testing.T, ns string) (*fledgev1.Release, error) {
	var rel fledgev1.Release
	err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app}, &rel)
	return &rel, err
}

// wantRoute waits until the app's TrafficRoute says stable (and canary at weight).
func wantRoute(t *testing.T, ns, stable, canary string, weight int32) *fledgev1.TrafficRoute {
	t.Helper()
	var tr *fledgev1.TrafficRoute
	eventually(t, "trafficroute", func() string {
		var err error
		if tr, err = route(t, ns); err != nil {
			return err.Error()
		}
		gotCanary := ""
		if tr.Spec.Canary != nil {
			gotCanary = tr.Spec.Canary.Service
		}
		if tr.Spec.Host != app || tr.Spec.Stable.Service != stable || gotCanary != canary || tr.Spec.CanaryWeight != weight {
			return fmt.Sprintf("spec = %+v, want stable %s canary %q weight %d", tr.Spec, stable, canary, weight)
		}
		return ""
	})
	return tr
}

func wantNoRoute(t *testing.T, ns string) {
	t.Helper()
	eventually(t, "no trafficroute", func() string {
		tr, err := route(t, ns)
		if apierrors.IsNotFound(err) {
			return ""
		}
		return fmt.Sprintf("trafficroute still there: %+v (err %v)", tr.Spec, err)
	})
}

func wantStatus(t *testing.T, ns string, phase fledgev1.Phase, desired, effective int32) *fledgev1.Release {
	t.Helper()
	var rel *fledgev1.Release
	eventually(t, "release status", func() string {
		var err error
		if rel, err = release(t, ns); err != nil {
			return err.Error()
		}
		st := rel.Status
		if st.Phase != phase || st.DesiredWeight != desired || st.EffectiveWeight != effective ||
			!meta.IsStatusConditionTrue(st.Conditions, fledgev1.ConditionRouted) {
			return fmt.Sprintf("status = %+v, want phase %s desired %d effective %d and Routed", st, phase, desired, effective)
		}
		return ""
	})
	return rel
}

// warning waits for a Warning event about the named object whose note contains all parts.
func warning(t *testing.T, ns, kind, name string, parts ...string) {
	t.Helper()
	eventually(t, "warning event on "+kind+" "+name, func() string {
		var list eventsv1.EventList
		if err := env.Client.List(t.Context(), &list, client.InNamespace(ns)); err != nil {
			return err.Error()
		}
		var notes []string
		for _, e := range list.Items {
			if e.Type != corev1.EventTypeWarning || e.Regarding.Kind != kind || e.Regarding.Name != name {
				continue
			}
			notes = append(notes, e.Note)
			if slices.IndexFunc(parts, func(p string) bool { return !strings.Contains(e.Note, p) }) < 0 {
				return ""
			}
		}
		return fmt.Sprintf("warnings %q lack %q", notes, parts)
	})
}

func condition(t *testing.T, ns, typ string, status metav1.ConditionStatus, parts ...string) {
	t.Helper()
	eventually(t, "condition "+typ, func() string {
		rel, err := release(t, ns)
		if err != nil {
			return err.Error()
		}
		c := meta.FindStatusCondition(rel.Status.Conditions, typ)
		if c == nil || c.Status != status {
			return fmt.Sprintf("condition %s = %+v, want %s", typ, c, status)
		}
		for _, p := range parts {
			if !strings.Contains(c.Message, p) {
				return fmt.Sprintf("condition %s message %q lacks %q", typ, c.Message, p)
			}
		}
		return ""
	})
}

func TestWalkthroughRouting(t *testing.T) {
	ns := env.Namespace(t, "walk")
	create(t, service(ns, "error-page-v1", nil, 9011), service(ns, "error-page-v2", nil, 9011))

	annotate(t, ns, "error-page-v1", annotations.PublishedService, app)
	wantRoute(t, ns, "error-page-v1", "", 0)
	wantStatus(t, ns, fledgev1.PhaseStable, 0, 0)

	annotate(t, ns, "error-page-v2", annotations.CanaryService, "true", annotations.CanaryPercentage, "10")
	annotate(t, ns, "error-page-v2", annotations.PublishedService, app)
	wantRoute(t, ns, "error-page-v1", "error-page-v2", 10)
	rel := wantStatus(t, ns, fledgev1.PhaseCanary, 10, 10)
	if rel.Status.Stable != "error-page-v1" || rel.Status.Canary != "error-page-v2" {
		t.Errorf("status stable/canary = %s/%s", rel.Status.Stable, rel.Status.Canary)
	}

	annotate(t, ns, "error-page-v2", annotations.CanaryPercentage, "0")
	wantRoute(t, ns, "error-page-v1", "error-page-v2", 0)
	wantStatus(t, ns, fledgev1.PhaseStable, 0, 0)

	annotate(t, ns, "error-page-v2", annotations.CanaryPercentage, "100")
	wantRoute(t, ns, "error-page-v1", "error-page-v2", 100)
	wantStatus(t, ns, fledgev1.PhaseReleased, 100, 100)

	// v1 is taken offline: the canary at 100% keeps serving alone.
	if err := env.Client.Delete(t.Context(), service(ns, "error-page-v1", nil)); err != nil {
		t.Fatal(err)
	}
	wantRoute(t, ns, "error-page-v2", "", 0)
	wantStatus(t, ns, fledgev1.PhaseReleased, 100, 100)

	// The last published Service goes: Release and routing are removed.
	if err := env.Client.Delete(t.Context(), service(ns, "error-page-v2", nil)); err != nil {
		t.Fatal(err)
	}
	wantNoRoute(t, ns)
	eventually(t, "release deleted", func() string {
		if _, err := release(t, ns); !apierrors.IsNotFound(err) {
			return fmt.Sprintf("release still there (err %v)", err)
		}
		return ""
	})
}

func TestBadInputLeavesTrafficAsItWas(t *testing.T) {
	tests := map[string]struct {
		apply func(t *testing.T, ns string)
		// warned is the Service that gets the Warning event; parts must be in its note.
		warned string
		parts  []string
	}{
		"percentage 10%": {
			apply:  func(t *testing.T, ns string) { annotate(t, ns, "v2", annotations.CanaryPercentage, "10%") },
			warned: "v2", parts: []string{annotations.CanaryPercentage, `"10%"`},
		},
		"percentage abc": {
			apply:  func(t *testing.T, ns string) { annotate(t, ns, "v2", annotations.CanaryPercentage, "abc") },
			warned: "v2", parts: []string{annotations.CanaryPercentage, `"abc"`},
		},
		"percentage -5": {
			apply:  func(t *testing.T, ns string) { annotate(t, ns, "v2", annotations.CanaryPercentage, "-5") },
			warned: "v2", parts: []string{annotations.CanaryPercentage, `"-5"`},
		},
		"percentage 150": {
			apply:  func(t *testing.T, ns string) { annotate(t, ns, "v2", annotations.CanaryPercentage, "150") },
			warned: "v2", parts: []string{annotations.CanaryPercentage, `"150"`},
		},
		"percentage 10.5": {
			apply:  func(t *testing.T, ns string) { annotate(t, ns, "v2", annotations.CanaryPercentage, "10.5") },
			warned: "v2", parts: []string{annotations.CanaryPercentage, `"10.5"`},
		},
		"two stables": {
			apply: func(t *testing.T, ns string) {
				create(t, service(ns, "v1b", map[string]string{annotations.PublishedService: app}, 9011))
			},
			warned: "v1b", parts: []string{"2 stable Services"},
		},
		"two canaries": {
			apply: func(t *testing.T, ns string) {
				create(t, service(ns, "v3", map[string]string{annotations.PublishedService: app,
					annotations.CanaryService: "true", annotations.CanaryPercentage: "50"}, 9011))
			},
			warned: "v3", parts: []string{"2 canary Services"},
		},
		"service without ports": {
			apply: func(t *testing.T, ns string) {
				s := service(ns, "v4", map[string]string{annotations.PublishedService: app, annotations.CanaryService: "true"})
				s.Spec.Type = corev1.ServiceTypeExternalName
				s.Spec.ExternalName = "example.invalid"
				create(t, s)
			},
			warned: "v4", parts: []string{"needs a port"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ns := env.Namespace(t, "bad")
			create(t, service(ns, "v1", map[string]string{annotations.PublishedService: app}, 9011),
				service(ns, "v2", map[string]string{annotations.PublishedService: app, annotations.CanaryService: "true",
					annotations.CanaryPercentage: "10"}, 9011))
			before := wantRoute(t, ns, "v1", "v2", 10)
			wantStatus(t, ns, fledgev1.PhaseCanary, 10, 10)

			tc.apply(t, ns)
			warning(t, ns, "Service", tc.warned, tc.parts...)
			condition(t, ns, fledgev1.ConditionAccepted, metav1.ConditionFalse, tc.parts...)
			// The routing did not move: same object, same version, same status weights.
			after := wantRoute(t, ns, "v1", "v2", 10)
			if after.ResourceVersion != before.ResourceVersion {
				t.Errorf("trafficroute changed: resourceVersion %s -> %s", before.ResourceVersion, after.ResourceVersion)
			}
			wantStatus(t, ns, fledgev1.PhaseCanary, 10, 10)
		})
	}
}

func TestCanaryWithoutStableIsNotPublished(t *testing.T) {
	ns := env.Namespace(t, "nostable")
	create(t, service(ns, "v2", map[string]string{annotations.PublishedService: app, annotations.CanaryService: "true",
		annotations.CanaryPercentage: "10"}, 9011))
	condition(t, ns, fledgev1.ConditionRouted, metav1.ConditionFalse, "no stable Service")
	warning(t, ns, "Service", "v2", "no stable Service")
	wantNoRoute(t, ns)
	rel, err := release(t, ns)
	if err != nil || rel.Status.Phase != fledgev1.PhaseUnpublished {
		t.Errorf("release = %+v, %v; want phase Unpublished", rel.Status, err)
	}
}

func TestDeletingStableBelow100Unpublishes(t *testing.T) {
	ns := env.Namespace(t, "delstable")
	create(t, service(ns, "v1", map[string]string{annotations.PublishedService: app}, 9011),
		service(ns, "v2", map[string]string{annotations.PublishedService: app, annotations.CanaryService: "true",
			annotations.CanaryPercentage: "10"}, 9011))
	wantRoute(t, ns, "v1", "v2", 10)
	if err := env.Client.Delete(t.Context(), service(ns, "v1", nil)); err != nil {
		t.Fatal(err)
	}
	wantNoRoute(t, ns)
	wantPhase(t, ns, fledgev1.PhaseUnpublished)
}

func wantPhase(t *testing.T, ns string, phase fledgev1.Phase) {
	t.Helper()
	eventually(t, "phase", func() string {
		rel, err := release(t, ns)
		if err != nil || rel.Status.Phase != phase {
			return fmt.Sprintf("release status %+v (err %v), want phase %s", rel.Status, err, phase)
		}
		return ""
	})
}

func TestRemovingCanaryReturnsToStable(t *testing.T) {
	for _, how := range []string{"delete", "unannotate"} {
		t.Run(how, func(t *testing.T) {
			ns := env.Namespace(t, "rmcanary")
			create(t, service(ns, "v1", map[string]string{annotations.PublishedService: app}, 9011),
				service(ns, "v2", map[string]string{annotations.PublishedService: app, annotations.CanaryService: "true",
					annotations.CanaryPercentage: "50"}, 9011))
			wantRoute(t, ns, "v1", "v2", 50)
			if how == "delete" {
				if err := env.Client.Delete(t.Context(), service(ns, "v2", nil)); err != nil {
					t.Fatal(err)
				}
			} else {
				annotate(t, ns, "v2", annotations.PublishedService, "-")
			}
			wantRoute(t, ns, "v1", "", 0)
			wantStatus(t, ns, fledgev1.PhaseStable, 0, 0)
		})
	}
}

func TestStableChangesDoNotPauseCanary(t *testing.T) {
	ns := env.Namespace(t, "touchstable")
	create(t, service(ns, "v1", map[string]string{annotations.PublishedService: app}, 9011),
		service(ns, "v2", map[string]string{annotations.PublishedService: app, annotations.CanaryService: "true",
			annotations.CanaryPercentage: "30"}, 9011))
	before := wantRoute(t, ns, "v1", "v2", 30)
	annotate(t, ns, "v1", "example.com/unrelated", "x")
	var svc corev1.Service
	if err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "v1"}, &svc); err != nil {
		t.Fatal(err)
	}
	svc.Labels = map[string]string{"touched": "yes"}
	if err := env.Client.Update(t.Context(), &svc); err != nil {
		t.Fatal(err)
	}
	// Give the controller a moment to see both changes, then check nothing moved.
	time.Sleep(300 * time.Millisecond)
	after := wantRoute(t, ns, "v1", "v2", 30)
	if after.ResourceVersion != before.ResourceVersion {
		t.Errorf("trafficroute rewritten after a stable-only change: %s -> %s", before.ResourceVersion, after.ResourceVersion)
	}
	wantStatus(t, ns, fledgev1.PhaseCanary, 30, 30)
}

func TestDeletingReleaseCleansUp(t *testing.T) {
	ns := env.Namespace(t, "byhand")
	create(t, service(ns, "v1", nil, 9011), service(ns, "v2", nil, 8080))
	rel := &fledgev1.Release{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app}, Spec: fledgev1.ReleaseSpec{
		Stable: &fledgev1.ServiceRef{Name: "v1"}, Canary: &fledgev1.ServiceRef{Name: "v2"}, CanaryWeight: 25}}
	create(t, rel)
	tr := wantRoute(t, ns, "v1", "v2", 25)
	if tr.Spec.Canary.Port != 8080 || tr.Spec.Stable.Port != 9011 {
		t.Errorf("ports = %d/%d, want the Services' first ports 9011/8080", tr.Spec.Stable.Port, tr.Spec.Canary.Port)
	}
	if err := env.Client.Delete(t.Context(), rel); err != nil {
		t.Fatal(err)
	}
	wantNoRoute(t, ns)
	eventually(t, "release gone", func() string {
		if _, err := release(t, ns); !apierrors.IsNotFound(err) {
			return fmt.Sprintf("release still there: %v", err)
		}
		return ""
	})
}

func TestReleaseSpecValidation(t *testing.T) {
	ns := env.Namespace(t, "spec")
	create(t, service(ns, "v1", nil, 9011), service(ns, "v2", nil, 9011))
	// The CRD schema refuses what it can see.
	bad := &fledgev1.Release{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bad"}, Spec: fledgev1.ReleaseSpec{
		Stable: &fledgev1.ServiceRef{Name: "v1"}, CanaryWeight: 150}}
	if err := env.Client.Create(t.Context(), bad); err == nil || !strings.Contains(err.Error(), "spec.canaryWeight") {
		t.Errorf("creating a Release with canaryWeight 150: err = %v, want a spec.canaryWeight validation error", err)
	}
	// The controller refuses what only it can see, and changes nothing.
	rel := &fledgev1.Release{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app}, Spec: fledgev1.ReleaseSpec{
		Stable: &fledgev1.ServiceRef{Name: "v1"}, Canary: &fledgev1.ServiceRef{Name: "v2"}, CanaryWeight: 10}}
	create(t, rel)
	before := wantRoute(t, ns, "v1", "v2", 10)
	patch := client.MergeFrom(rel.DeepCopy())
	rel.Spec.CanaryWeight = 60
	rel.Spec.Match = []fledgev1.Predicate{{Type: fledgev1.PredicateHeader, Name: "X-Debug", Match: fledgev1.MatchRegularExpression, Value: "("}}
	if err := env.Client.Patch(t.Context(), rel, patch); err != nil {
		t.Fatal(err)
	}
	condition(t, ns, fledgev1.ConditionAccepted, metav1.ConditionFalse, "spec.match[0]", "invalid regular expression")
	warning(t, ns, "Release", app, "spec.match[0]")
	after := wantRoute(t, ns, "v1", "v2", 10)
	if after.ResourceVersion != before.ResourceVersion {
		t.Errorf("trafficroute changed on invalid spec")
	}
}

func TestRoutingIsHealed(t *testing.T) {
	ns := env.Namespace(t, "heal")
	create(t, service(ns, "v1", map[string]string{annotations.PublishedService: app}, 9011))
	tr := wantRoute(t, ns, "v1", "", 0)
	if err := env.Client.Delete(t.Context(), tr); err != nil {
		t.Fatal(err)
	}
	wantRoute(t, ns, "v1", "", 0)
}

var _ = context.Background

func TestInvalidApplicationNameIsAWarning(t *testing.T) {
	ns := env.Namespace(t, "badname")
	create(t, service(ns, "v1", map[string]string{annotations.PublishedService: "Error_Page"}, 9011))
	warning(t, ns, "Service", "v1", annotations.PublishedService, "Error_Page", "nothing was published")
	var list fledgev1.ReleaseList
	if err := env.Client.List(t.Context(), &list, client.InNamespace(ns)); err != nil || len(list.Items) != 0 {
		t.Errorf("releases = %d (err %v), want none", len(list.Items), err)
	}
}
