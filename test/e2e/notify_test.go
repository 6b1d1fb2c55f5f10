package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/notify"
	"github.com/fledge-dev/fledge/internal/sandbox"
)

// webhook is a local HTTP receiver of notifications.
type webhook struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies []string
	paths  map[string]int
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{paths: map[string]int{}}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.mu.Lock()
		w.paths[r.URL.Path]++
		w.bodies = append(w.bodies, string(b))
		w.mu.Unlock()
		rw.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// wait returns the first body with all parts, waiting up to timeout.
func (w *webhook) wait(t *testing.T, timeout time.Duration, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		w.mu.Lock()
		bodies := append([]string(nil), w.bodies...)
		w.mu.Unlock()
		for _, b := range bodies {
			if containsAll(b, parts) {
				return b
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no notification with %q within %v; received %q", parts, timeout, bodies)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// count is how many requests reached path.
func (w *webhook) count(path string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.paths[path]
}

// grantSecrets lets the controller get the Secrets names in the app's
// namespace, as deploy/examples/notify-rbac.yaml does.
func (a *app) grantSecrets(t *testing.T, names ...string) {
	t.Helper()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "fledge-notify"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: names, Verbs: []string{"get"}}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "fledge-notify"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "fledge-notify"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "fledge-controller", Namespace: sandbox.SystemNamespace}}}
	for _, o := range []client.Object{role, binding} {
		if err := sb.Client.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
}

func (a *app) secret(t *testing.T, name, url, format string) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: name},
		StringData: map[string]string{"url": url, "format": format}}
	if err := sb.Client.Create(t.Context(), s); err != nil {
		t.Fatal(err)
	}
}

// TestNotifyRollback: a bad canary whose Service names three webhooks in
// fledge.dev/notify: a JSON one and a Slack one, both local receivers, get
// the decisions with their numbers; the third is down, and its failure is a
// Warning Event naming its Secret, not its URL, while the rollback is as fast
// as without notifications.
func TestNotifyRollback(t *testing.T) {
	hook, slack := newWebhook(t), newWebhook(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downURL := "http://" + ln.Addr().String() + "/services/T0/B0/token-never-shown"
	ln.Close()

	a := newApp(t, "notify")
	a.secret(t, "hook", hook.srv.URL+"/fledge", "json")
	a.secret(t, "slack", slack.srv.URL, "slack")
	a.secret(t, "down", downURL, "")
	a.secret(t, "ungranted", hook.srv.URL+"/never", "json")
	// As the application's team does: the controller may get these three.
	a.grantSecrets(t, "hook", "slack", "down")
	a.service(t, "v1", "v1", map[string]string{published: a.name})
	a.served(t, "v1", "", 0)
	load := sb.StartLoad(t.Context(), rate, a.name, "/api/error_page")
	t.Cleanup(load.Stop)
	a.service(t, "v2", "v2bad", map[string]string{published: a.name, canaryKey: "true", autoPolicy: "steps=10,50",
		"fledge.dev/notify": "hook, slack, down, ungranted"})

	rel := a.waitAuto(t, 60*time.Second, "rollback", func(s *fledgev1.AutoStatus) bool { return s.Result != "" })
	if rel.Status.Auto.Result != fledgev1.AutoRolledBack {
		t.Fatalf("result %s, want RolledBack", rel.Status.Auto.Result)
	}
	first, _ := load.FirstAnswer("v2")
	if took := rel.Status.Auto.ConcludedAt.Sub(first); took > 15*time.Second {
		t.Errorf("rollback took %v after the canary's first answer, want ≤ 15s as without notifications", took)
	}

	hook.wait(t, 10*time.Second, `"decision":"AnalysisStarted"`, `"app":"notify"`)
	body := hook.wait(t, 10*time.Second, `"decision":"RolledBack"`)
	var n notify.Notification
	if err := json.Unmarshal([]byte(body), &n); err != nil {
		t.Fatal(err)
	}
	if n.Namespace != a.ns || n.App != a.name || !n.Warning || n.FromWeight != 10 || n.ToWeight != 0 || n.Verdict != "Fail" ||
		n.Canary == nil || n.Canary.Errors == 0 || n.Canary.Requests < n.Canary.Errors || n.Stable == nil || n.Stable.Requests == 0 ||
		!strings.Contains(n.Message, "rolled back v2 from 10% to 0%") || n.Time.IsZero() {
		t.Errorf("RolledBack notification = %s", body)
	}
	t.Logf("RolledBack notification: %s", body)
	slack.wait(t, 10*time.Second, `"text":`, `RolledBack `+a.ns+`/notify (10% → 0%)`, `"blocks"`)

	a.waitWarning(t, "Release", a.name, "NotificationFailed", "Secret "+a.ns+"/down", "3 attempts", "connection refused")
	a.waitWarning(t, "Release", a.name, "NotificationFailed", "Secret "+a.ns+"/ungranted", "forbidden", "notify-rbac.yaml")
	if n := hook.count("/never"); n != 0 {
		t.Errorf("the webhook of a Secret the controller was not granted got %d requests", n)
	}
	e, _ := a.event(t, "NotificationFailed")
	if strings.Contains(e.Note, "token-never-shown") || strings.Contains(e.Note, ln.Addr().String()) {
		t.Errorf("the Warning Event reveals the webhook's URL: %s", e.Note)
	}
}
