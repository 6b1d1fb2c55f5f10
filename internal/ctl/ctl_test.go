package ctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/annotations"
	"github.com/fledge-dev/fledge/internal/controller"
	"github.com/fledge-dev/fledge/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start(context.Background(), testenv.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestActionsOnHandWrittenRelease(t *testing.T) {
	ns := env.Namespace(t, "ctl")
	rel := &fledgev1.Release{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}, Spec: fledgev1.ReleaseSpec{
		Stable: &fledgev1.ServiceRef{Name: "v1"}, Canary: &fledgev1.ServiceRef{Name: "v2"}, Auto: &fledgev1.AutoPolicy{}}}
	if err := env.Client.Create(t.Context(), rel); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		a        Action
		override fledgev1.Override
		restart  bool
	}{{Pause, fledgev1.OverridePause, false}, {Resume, "", false}, {Abort, fledgev1.OverrideAbort, false},
		{Restart, "", true}, {Promote, fledgev1.OverridePromote, true}} {
		if err := Do(t.Context(), env.Client, ns, "app", tc.a, now); err != nil {
			t.Fatalf("%s: %v", tc.a, err)
		}
		var got fledgev1.Release
		if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(rel), &got); err != nil {
			t.Fatal(err)
		}
		if got.Spec.Auto.Override != tc.override || (got.Spec.Auto.RestartAt != nil) != tc.restart {
			t.Errorf("after %s: auto = %+v", tc.a, got.Spec.Auto)
		}
		if tc.restart && !got.Spec.Auto.RestartAt.Time.Equal(now) {
			t.Errorf("restartAt = %v, want %v", got.Spec.Auto.RestartAt, now)
		}
	}
}

func TestActionsOnAnnotatedRelease(t *testing.T) {
	ns := env.Namespace(t, "ctlann")
	canary := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "v2", Annotations: map[string]string{
		annotations.PublishedService: "app", annotations.CanaryService: "true", annotations.Auto: "true"}},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
	rel := &fledgev1.Release{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app",
		Labels: map[string]string{controller.LabelSource: controller.SourceAnnotations}},
		Spec: fledgev1.ReleaseSpec{Stable: &fledgev1.ServiceRef{Name: "v1"}, Canary: &fledgev1.ServiceRef{Name: "v2"}, Auto: &fledgev1.AutoPolicy{}}}
	for _, o := range []client.Object{canary, rel} {
		if err := env.Client.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	check := func(a Action, override string, restart bool) {
		t.Helper()
		if err := Do(t.Context(), env.Client, ns, "app", a, now); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		var svc corev1.Service
		if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(canary), &svc); err != nil {
			t.Fatal(err)
		}
		_, hasRestart := svc.Annotations[annotations.AutoRestart]
		if svc.Annotations[annotations.AutoOverride] != override || hasRestart != restart {
			t.Errorf("after %s: annotations %v", a, svc.Annotations)
		}
	}
	check(Pause, "pause", false)
	check(Resume, "", false)
	check(Abort, "abort", false)
	check(Restart, "", true)
}

func TestActionNeedsAutomation(t *testing.T) {
	ns := env.Namespace(t, "ctlmanual")
	rel := &fledgev1.Release{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}, Spec: fledgev1.ReleaseSpec{
		Stable: &fledgev1.ServiceRef{Name: "v1"}}}
	if err := env.Client.Create(t.Context(), rel); err != nil {
		t.Fatal(err)
	}
	if err := Do(t.Context(), env.Client, ns, "app", Promote, now); !errors.Is(err, ErrNotAutomated) {
		t.Errorf("Do = %v, want ErrNotAutomated", err)
	}
}

func TestStatus(t *testing.T) {
	ns := env.Namespace(t, "ctlstatus")
	rel := &fledgev1.Release{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}, Spec: fledgev1.ReleaseSpec{
		Stable: &fledgev1.ServiceRef{Name: "v1"}, Canary: &fledgev1.ServiceRef{Name: "v2"}, Auto: &fledgev1.AutoPolicy{}}}
	if err := env.Client.Create(t.Context(), rel); err != nil {
		t.Fatal(err)
	}
	rel.Status = fledgev1.ReleaseStatus{Phase: fledgev1.PhaseRolledBack, Stable: "v1", Canary: "v2", Host: "app",
		Auto: &fledgev1.AutoStatus{Canary: "v2", Result: fledgev1.AutoRolledBack, Verdict: "Fail", Reason: "ErrorRateHigher",
			Evidence: "canary 8/150 errors", StartedAt: metav1.NewTime(now), StepStartedAt: metav1.NewTime(now)}}
	if err := env.Client.Status().Update(t.Context(), rel); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Status(t.Context(), env.Client, ns, "app", &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"phase:   RolledBack", "RolledBack", "Fail (ErrorRateHigher): canary 8/150 errors"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
	}
}
