package ctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/annotations"
	"github.com/fledge-dev/fledge/internal/controller"
)

// release creates a Release and writes its status, as the controller would.
func release(t *testing.T, ns, name string, spec fledgev1.ReleaseSpec, st fledgev1.ReleaseStatus, labels map[string]string) *fledgev1.Release {
	t.Helper()
	rel := &fledgev1.Release{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}, Spec: spec}
	if err := env.Client.Create(t.Context(), rel); err != nil {
		t.Fatal(err)
	}
	rel.Status = st
	if err := env.Client.Status().Update(t.Context(), rel); err != nil {
		t.Fatal(err)
	}
	return rel
}

func autoStatus(step, weight int32, verdict string) *fledgev1.AutoStatus {
	return &fledgev1.AutoStatus{Canary: "v2", Step: step, Weight: weight, Verdict: verdict, Reason: "NotEnoughData",
		StartedAt: metav1.NewTime(now), StepStartedAt: metav1.NewTime(now)}
}

func TestGet(t *testing.T) {
	ns := env.Namespace(t, "ctlget")
	other := env.Namespace(t, "ctlget2")
	release(t, ns, "beta", fledgev1.ReleaseSpec{Stable: &fledgev1.ServiceRef{Name: "b1"}, Canary: &fledgev1.ServiceRef{Name: "b2"}, CanaryWeight: 30},
		fledgev1.ReleaseStatus{Phase: fledgev1.PhaseCanary, Host: "beta.example", Provider: fledgev1.ProviderEmbedded, Stable: "b1", Canary: "b2",
			DesiredWeight: 30, EffectiveWeight: 20}, nil)
	release(t, ns, "alpha", fledgev1.ReleaseSpec{Stable: &fledgev1.ServiceRef{Name: "v1"}, Canary: &fledgev1.ServiceRef{Name: "v2"},
		Auto: &fledgev1.AutoPolicy{Steps: []int32{10, 25, 50}}},
		fledgev1.ReleaseStatus{Phase: fledgev1.PhaseProgressing, Host: "alpha", Stable: "v1", Canary: "v2", DesiredWeight: 25, EffectiveWeight: 25,
			Auto: autoStatus(1, 25, "Inconclusive")}, nil)
	release(t, other, "gamma", fledgev1.ReleaseSpec{Stable: &fledgev1.ServiceRef{Name: "g1"}},
		fledgev1.ReleaseStatus{Phase: fledgev1.PhaseStable, Host: "gamma", Stable: "g1"}, nil)
	get := func(opts GetOptions) string {
		t.Helper()
		opts.Now = time.Now()
		var out bytes.Buffer
		if err := Get(t.Context(), env.Client, opts, &out); err != nil {
			t.Fatalf("Get(%+v): %v", opts, err)
		}
		return out.String()
	}

	table := get(GetOptions{Namespace: ns})
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 3 {
		t.Fatalf("table has %d lines, want a header and 2 rows:\n%s", len(lines), table)
	}
	for i, want := range [][]string{
		{"NAME", "HOST", "STABLE", "CANARY", "DESIRED", "EFFECTIVE", "PHASE", "STEP", "VERDICT", "AGE"},
		{"alpha", "alpha", "v1", "v2", "25%", "25%", "Progressing", "2/3", "25%", "Inconclusive"},
		{"beta", "beta.example", "b1", "b2", "30%", "20%", "Canary", "-", "-"},
	} {
		if got := strings.Fields(lines[i]); len(got) < len(want) || !equal(got[:len(want)], want) {
			t.Errorf("line %d = %q, want it to start with %q", i, got, want)
		}
	}
	if strings.Contains(table, "gamma") {
		t.Errorf("the table of %s shows another namespace's application:\n%s", ns, table)
	}

	all := get(GetOptions{AllNamespaces: true})
	for _, want := range []string{"NAMESPACE", ns + " ", other + " ", "gamma"} {
		if !strings.Contains(all, want) {
			t.Errorf("-A table lacks %q:\n%s", want, all)
		}
	}
	if wide := get(GetOptions{Namespace: ns, Output: OutputWide}); !strings.Contains(wide, "PROVIDER") || !strings.Contains(wide, "embedded") {
		t.Errorf("wide table lacks the provider:\n%s", wide)
	}

	var one fledgev1.Release
	if err := json.Unmarshal([]byte(get(GetOptions{Namespace: ns, App: "alpha", Output: OutputJSON})), &one); err != nil {
		t.Fatal(err)
	}
	if one.Kind != "Release" || one.Name != "alpha" || one.Status.Auto == nil || one.Status.Auto.Weight != 25 {
		t.Errorf("-o json of alpha = %+v", one)
	}
	var list fledgev1.ReleaseList
	if err := yaml.Unmarshal([]byte(get(GetOptions{Namespace: ns, Output: OutputYAML})), &list); err != nil {
		t.Fatal(err)
	}
	if list.Kind != "ReleaseList" || len(list.Items) != 2 || list.Items[0].Name != "alpha" || list.Items[1].Status.EffectiveWeight != 20 {
		t.Errorf("-o yaml list = %+v", list)
	}
	if out := get(GetOptions{Namespace: other + "x"}); !strings.Contains(out, "No applications found in namespace") {
		t.Errorf("empty namespace: %q", out)
	}
	if err := Get(t.Context(), env.Client, GetOptions{Namespace: ns, Output: "table"}, &bytes.Buffer{}); ExitCode(err) != ExitUsage {
		t.Errorf("-o table: %v (exit %d), want a usage error", err, ExitCode(err))
	}
}

func equal(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

// TestErrorsNameWhatIsWrong: an unknown application or namespace, a missing
// permission and an unreachable API server each have their own message and
// exit code.
func TestErrorsNameWhatIsWrong(t *testing.T) {
	ns := env.Namespace(t, "ctlerr")
	release(t, ns, "app", fledgev1.ReleaseSpec{Stable: &fledgev1.ServiceRef{Name: "v1"}, Canary: &fledgev1.ServiceRef{Name: "v2"}},
		fledgev1.ReleaseStatus{Phase: fledgev1.PhaseStable}, nil)
	// A user who may read Releases but not change them.
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "viewer"}, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{fledgev1.GroupVersion.Group}, Resources: []string{"releases"}, Verbs: []string{"get", "list"}}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "viewer"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "viewer"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "viewer"}}}
	for _, o := range []client.Object{role, binding} {
		if err := env.Client.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "viewer"}
	viewer, err := client.New(cfg, client.Options{Scheme: controller.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	down := rest.CopyConfig(env.Config)
	down.Host = "https://127.0.0.1:1"
	unreachable, err := client.New(down, client.Options{Scheme: controller.Scheme(), Mapper: env.Client.RESTMapper()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		do   func() error
		code int
		want []string
	}{
		{"unknown application", func() error { return Status(t.Context(), env.Client, ns, "nope", &bytes.Buffer{}) },
			ExitNotFound, []string{"no application nope in namespace " + ns, "fledge get -n " + ns}},
		{"unknown namespace", func() error { return Status(t.Context(), env.Client, ns+"-gone", "app", &bytes.Buffer{}) },
			ExitNotFound, []string{"namespace " + ns + "-gone not found"}},
		{"missing verb", func() error { _, err := SetWeight(t.Context(), viewer, ns, "app", 20, false); return err },
			ExitForbidden, []string{`missing RBAC verb "patch" on releases.fledge.dev`, "kubectl auth can-i patch releases.fledge.dev -n " + ns}},
		{"no permission to list", func() error { return Get(t.Context(), viewer, GetOptions{AllNamespaces: true}, &bytes.Buffer{}) },
			ExitForbidden, []string{`missing RBAC verb "list"`, "in any namespace", "kubectl auth can-i list releases.fledge.dev -A"}},
		{"unreachable", func() error { return Get(t.Context(), unreachable, GetOptions{Namespace: ns}, &bytes.Buffer{}) },
			ExitUnreachable, []string{"cannot reach the API server"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if got := ExitCode(err); got != tc.code {
				t.Errorf("exit code %d, want %d (err %v)", got, tc.code, err)
			}
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v lacks %q", err, w)
				}
			}
		})
	}
}

func TestSetWeight(t *testing.T) {
	ns := env.Namespace(t, "ctlweight")
	release(t, ns, "manual", fledgev1.ReleaseSpec{Stable: &fledgev1.ServiceRef{Name: "v1"}, Canary: &fledgev1.ServiceRef{Name: "v2"}, CanaryWeight: 10},
		fledgev1.ReleaseStatus{Phase: fledgev1.PhaseCanary}, nil)
	release(t, ns, "auto", fledgev1.ReleaseSpec{Stable: &fledgev1.ServiceRef{Name: "v1"}, Canary: &fledgev1.ServiceRef{Name: "v2"},
		Auto: &fledgev1.AutoPolicy{MaxErrorRate: "2%"}},
		fledgev1.ReleaseStatus{Phase: fledgev1.PhaseProgressing, Auto: autoStatus(0, 10, "Inconclusive")}, nil)
	get := func(name string) *fledgev1.Release {
		t.Helper()
		var rel fledgev1.Release
		if err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &rel); err != nil {
			t.Fatal(err)
		}
		return &rel
	}

	if _, err := SetWeight(t.Context(), env.Client, ns, "manual", 40, false); err != nil {
		t.Fatal(err)
	}
	if w := get("manual").Spec.CanaryWeight; w != 40 {
		t.Errorf("manual release's weight = %d, want 40", w)
	}
	if _, err := SetWeight(t.Context(), env.Client, ns, "manual", 101, false); ExitCode(err) != ExitUsage {
		t.Errorf("weight 101: %v, want a usage error", err)
	}

	_, err := SetWeight(t.Context(), env.Client, ns, "auto", 40, false)
	if !errors.Is(err, ErrAutomated) || ExitCode(err) != ExitRefused || !strings.Contains(err.Error(), "running at step 1, 10%") {
		t.Errorf("set-weight on a running automation: %v (exit %d), want refused naming its step", err, ExitCode(err))
	}
	if rel := get("auto"); rel.Spec.Auto == nil || rel.Spec.CanaryWeight != 0 {
		t.Errorf("a refused set-weight changed the release: %+v", rel.Spec)
	}
	did, err := SetWeight(t.Context(), env.Client, ns, "auto", 40, true)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(did, "automation turned off") {
		t.Errorf("--force says %q, want it to say the automation is off", did)
	}
	if rel := get("auto"); rel.Spec.Auto != nil || rel.Spec.CanaryWeight != 40 {
		t.Errorf("after --force: spec %+v, want no automation and weight 40", rel.Spec)
	}
}

func TestSetWeightOnAnnotatedRelease(t *testing.T) {
	ns := env.Namespace(t, "ctlweightann")
	canary := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "v2", Annotations: map[string]string{
		annotations.PublishedService: "app", annotations.CanaryService: "true", annotations.Auto: "true",
		annotations.AutoPolicy: "steps=10,50", annotations.AutoOverride: "pause"}},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
	if err := env.Client.Create(t.Context(), canary); err != nil {
		t.Fatal(err)
	}
	release(t, ns, "app", fledgev1.ReleaseSpec{Stable: &fledgev1.ServiceRef{Name: "v1"}, Canary: &fledgev1.ServiceRef{Name: "v2"}, Auto: &fledgev1.AutoPolicy{}},
		fledgev1.ReleaseStatus{Phase: fledgev1.PhasePaused, Auto: func() *fledgev1.AutoStatus { a := autoStatus(0, 10, ""); a.Paused = true; return a }()},
		map[string]string{controller.LabelSource: controller.SourceAnnotations})
	svc := func() map[string]string {
		t.Helper()
		var s corev1.Service
		if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(canary), &s); err != nil {
			t.Fatal(err)
		}
		return s.Annotations
	}
	if _, err := SetWeight(t.Context(), env.Client, ns, "app", 30, false); ExitCode(err) != ExitRefused || !strings.Contains(err.Error(), "paused at step 1") {
		t.Errorf("set-weight on a paused automation: %v, want refused", err)
	}
	if _, ok := svc()[annotations.CanaryPercentage]; ok {
		t.Error("a refused set-weight wrote the percentage")
	}
	if _, err := SetWeight(t.Context(), env.Client, ns, "app", 30, true); err != nil {
		t.Fatal(err)
	}
	a := svc()
	if a[annotations.CanaryPercentage] != "30" {
		t.Errorf("percentage annotation = %q, want 30", a[annotations.CanaryPercentage])
	}
	for _, k := range []string{annotations.Auto, annotations.AutoPolicy, annotations.AutoOverride} {
		if v, ok := a[k]; ok {
			t.Errorf("after --force the canary still has %s=%s", k, v)
		}
	}
	if a[annotations.PublishedService] != "app" || a[annotations.CanaryService] != "true" {
		t.Errorf("set-weight changed annotations it does not own: %v", a)
	}
}
