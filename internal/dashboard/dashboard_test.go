package dashboard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
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

// TestVendoredAssets: the embedded uPlot is the pinned npm release, unchanged.
func TestVendoredAssets(t *testing.T) {
	for name, want := range map[string]string{
		"assets/uPlot.iife.min.js": "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f",
		"assets/uPlot.min.css":     "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04",
	} {
		b, err := files.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != want {
			t.Errorf("%s: sha256 %x, want %s (the pinned uplot@1.6.32)", name, sum, want)
		}
	}
}

func do(t *testing.T, h http.Handler, method, path string, header map[string]string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

func TestServer(t *testing.T) {
	ns := env.Namespace(t, "dash")
	rel := &fledgev1.Release{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cart"}, Spec: fledgev1.ReleaseSpec{
		Stable: &fledgev1.ServiceRef{Name: "v1"}, Canary: &fledgev1.ServiceRef{Name: "v2"}, Auto: &fledgev1.AutoPolicy{}}}
	if err := env.Client.Create(t.Context(), rel); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	setCounts := func(stable, canary, canaryErrs int64) {
		t.Helper()
		rel.Status = fledgev1.ReleaseStatus{Phase: fledgev1.PhaseProgressing, Stable: "v1", Canary: "v2", DesiredWeight: 10, EffectiveWeight: 10,
			Auto: &fledgev1.AutoStatus{Canary: "v2", Weight: 10, StartedAt: metav1.NewTime(start), StepStartedAt: metav1.NewTime(start),
				Verdict: "Inconclusive", Reason: "TooFewRequests",
				Current: &fledgev1.StepCounts{Weight: 10, Stable: fledgev1.SampleCounts{Requests: stable}, Canary: fledgev1.SampleCounts{Requests: canary, Errors: canaryErrs}}}}
		if err := env.Client.Status().Update(t.Context(), rel); err != nil {
			t.Fatal(err)
		}
	}
	s := New(Options{Client: env.Client})
	for i := int64(0); i < 3; i++ {
		setCounts(90*i, 10*i, i)
		s.sample(t.Context(), start.Add(time.Duration(i)*time.Second))
	}

	code, body := do(t, s, http.MethodGet, "/api/apps", nil)
	var apps []AppSummary
	if err := json.Unmarshal([]byte(body), &apps); code != http.StatusOK || err != nil {
		t.Fatalf("GET /api/apps: %d %s", code, body)
	}
	found := false
	for _, a := range apps {
		if a.Namespace == ns && a.Name == "cart" {
			found = a.Effective == 10 && a.Phase == "Progressing" && a.Automated && strings.HasPrefix(a.Step, "1/")
		}
	}
	if !found {
		t.Errorf("the list lacks %s/cart as it is: %s", ns, body)
	}

	code, body = do(t, s, http.MethodGet, "/api/apps/"+ns+"/cart", nil)
	var detail struct {
		Points []Point `json:"points"`
	}
	if err := json.Unmarshal([]byte(body), &detail); code != http.StatusOK || err != nil || len(detail.Points) != 3 {
		t.Fatalf("GET the app: %d %s", code, body)
	}
	last := detail.Points[2]
	if last.CanaryRate == nil || *last.CanaryRate != 10 || *last.StableRate != 90 || *last.CanaryErrors != 0.1 || last.CanaryRequests != 20 {
		t.Errorf("last point = %+v, want 90/s and 10/s, 10%% canary errors, 20 canary requests", last)
	}
	if detail.Points[0].CanaryRate != nil {
		t.Errorf("the first point has a rate from one reading: %+v", detail.Points[0])
	}
	if code, _ := do(t, s, http.MethodGet, "/api/apps/"+ns+"/nope", nil); code != http.StatusNotFound {
		t.Errorf("an unknown app: %d, want 404", code)
	}

	get := func() fledgev1.Override {
		var r fledgev1.Release
		if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(rel), &r); err != nil {
			t.Fatal(err)
		}
		return r.Spec.Auto.Override
	}
	path := "/api/apps/" + ns + "/cart/"
	for _, tc := range []struct {
		name, action, confirm string
		code                  int
		want                  fledgev1.Override
	}{
		{"unconfirmed", "pause", "", http.StatusBadRequest, ""},
		{"confirmed for another action", "abort", "pause", http.StatusBadRequest, ""},
		{"unknown action", "restart", "restart", http.StatusNotFound, ""},
		{"confirmed", "pause", "pause", http.StatusOK, fledgev1.OverridePause},
	} {
		code, body := do(t, s, http.MethodPost, path+tc.action, map[string]string{ConfirmHeader: tc.confirm})
		if code != tc.code || get() != tc.want {
			t.Errorf("%s: %d %s, override %q; want %d and %q", tc.name, code, body, get(), tc.code, tc.want)
		}
	}
	if code, body := do(t, s, http.MethodPost, "/api/apps/"+ns+"/gone/pause", map[string]string{ConfirmHeader: "pause"}); code != http.StatusNotFound {
		t.Errorf("pause of an unknown app: %d %s, want 404", code, body)
	}

	ro := New(Options{Client: env.Client, ReadOnly: true})
	if code, _ := do(t, ro, http.MethodPost, path+"abort", map[string]string{ConfirmHeader: "abort"}); code != http.StatusForbidden || get() != fledgev1.OverridePause {
		t.Errorf("abort on a read-only dashboard: %d, override %q; want 403 and nothing changed", code, get())
	}
	if _, page := do(t, ro, http.MethodGet, "/", nil); !strings.Contains(page, `data-readonly="true"`) {
		t.Error("the read-only page does not say so")
	}
	code, page := do(t, s, http.MethodGet, "/", nil)
	if code != http.StatusOK || !strings.Contains(page, `data-readonly="false"`) || !strings.Contains(page, "/assets/uPlot.iife.min.js") {
		t.Errorf("GET /: %d %s", code, page)
	}
	if code, js := do(t, s, http.MethodGet, "/assets/app.js", nil); code != http.StatusOK || !strings.Contains(js, "X-Fledge-Confirm") {
		t.Errorf("GET /assets/app.js: %d", code)
	}
}
