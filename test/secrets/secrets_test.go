// Package secrets runs the fledge controller binary, as a cluster runs it,
// with each credential it can hold (the APISIX Admin API key from a Secret,
// a Prometheus bearer token from a file, a notification webhook's URL from a
// Secret) in use, on its happy path and on its
// error paths, and then looks for those values everywhere fledge writes: its
// logs, the Events, the status of every object, and its metrics.
package secrets

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/sandbox"
	"github.com/fledge-dev/fledge/internal/testenv"
	"github.com/fledge-dev/fledge/internal/traffic/apisix/apisixtest"
)

var (
	env          *testenv.Env
	fledgeBinary string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "fledge-secrets-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if fledgeBinary, err = sandbox.BuildBinary(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if env, err = testenv.Start(ctx, testenv.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, "secrets: starting the control plane:", err)
		return 1
	}
	defer env.Stop()
	return m.Run()
}

// secret returns a random credential that cannot appear by chance.
func secret(t *testing.T, kind string) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return kind + "-" + hex.EncodeToString(b)
}

// echoing wraps h: while on, every request is answered 500 with a body that
// repeats the credentials it carried, as a misbehaving proxy in front of the
// real server might. fledge must not pass such a body on.
type echoing struct {
	h    http.Handler
	on   atomic.Bool
	sent atomic.Int64 // answers that echoed a credential
	seen atomic.Int64 // requests that carried the right credential
	ok   func(*http.Request) bool
}

func (e *echoing) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if e.ok(r) {
		e.seen.Add(1)
	}
	if e.on.Load() {
		e.sent.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		creds := fmt.Sprintf("X-API-KEY=%s Authorization=%s URL=%s", r.Header.Get("X-API-KEY"), r.Header.Get("Authorization"), r.URL.RequestURI())
		fmt.Fprintf(w, `{"status":"error","errorType":"internal","error":"upstream refused %s","error_msg":"refused %s"}`, creds, creds)
		return
	}
	e.h.ServeHTTP(w, r)
}

// emptyPrometheus answers every instant query with an empty vector (no
// traffic yet): the analysis is inconclusive and keeps asking.
func emptyPrometheus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
}

// syncBuffer is a bytes.Buffer safe for a process's stdout and stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestSecretsNeverWritten: the APISIX key and the Prometheus token are used
// (requests carrying them reach both servers), both servers also answer for a
// while with bodies that repeat them, and afterwards neither value (nor its
// base64) appears in the controller's logs at its most verbose, in any Event,
// in the status of any Release or TrafficRoute, or in its metrics.
func TestSecretsNeverWritten(t *testing.T) {
	ctx := t.Context()
	apiKey, token, hookToken := secret(t, "apisix-key"), secret(t, "prom-token"), secret(t, "hook-token")
	dir := t.TempDir()

	// A webhook whose URL carries a token (as Slack's do), granted to the
	// controller by name as an operator does.
	hookPath := "/services/" + hookToken
	hook := &echoing{h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }),
		ok: func(r *http.Request) bool { return r.URL.Path == hookPath }}
	hookSrv := httptest.NewServer(hook)
	defer hookSrv.Close()
	if err := env.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: testenv.SystemNamespace, Name: "fledge-notify"},
		StringData: map[string]string{"url": hookSrv.URL + hookPath},
	}); err != nil {
		t.Fatal(err)
	}
	grantSecret(t, testenv.SystemNamespace, "fledge-notify")

	if err := env.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: testenv.SystemNamespace, Name: "fledge-apisix"},
		StringData: map[string]string{"key": apiKey},
	}); err != nil {
		t.Fatal(err)
	}
	apisix := apisixtest.New(t, apiKey)
	apisixFront := &echoing{h: apisix, ok: func(r *http.Request) bool { return r.Header.Get("X-API-KEY") == apiKey }}
	apisixSrv := httptest.NewServer(apisixFront)
	defer apisixSrv.Close()
	prom := &echoing{h: http.HandlerFunc(emptyPrometheus), ok: func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer "+token }}
	promSrv := httptest.NewServer(prom)
	defer promSrv.Close()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	metricsAddr := freeAddr(t)
	logs := &syncBuffer{}
	cmd := exec.CommandContext(ctx, fledgeBinary, "controller",
		"--kubeconfig", controllerKubeconfig(t, dir),
		"--leader-election-namespace", testenv.SystemNamespace,
		"--metrics-addr", metricsAddr, "--health-addr", "0",
		"--apisix-admin-url", apisixSrv.URL, "--default-provider", "apisix",
		"--prometheus-url", promSrv.URL, "--prometheus-bearer-token-file", tokenFile, "--metric-source", "prometheus",
		"--notify-secret", testenv.SystemNamespace+"/fledge-notify", "--notify-attempts", "2", "--notify-backoff", "100ms",
		"--verify-gateway-replicas=false", "--zap-log-level", "10", "--zap-devel")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	ns := env.Namespace(t, "secrets")
	for _, s := range []struct {
		name string
		ann  map[string]string
	}{
		{"sec-v1", map[string]string{"api7.cloud/published-service": "sec"}},
		{"sec-v2", map[string]string{"api7.cloud/published-service": "sec", "api7.cloud/published-canary-service": "true",
			"fledge.dev/auto-policy": "steps=10,50; source=prometheus"}},
	} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: s.name, Annotations: s.ann},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 9011}}}}
		if err := env.Client.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "the key, the token and the webhook used", func() bool {
		return apisixFront.seen.Load() > 0 && prom.seen.Load() > 0 && hook.seen.Load() > 0
	}, func() string {
		return fmt.Sprintf("APISIX %d, Prometheus %d, webhook %d requests", apisixFront.seen.Load(), prom.seen.Load(), hook.seen.Load())
	})

	// The error paths: APISIX and Prometheus echo the credentials back for a
	// while, and the release is aborted, so the controller must write to
	// APISIX. (A webhook that fails is the e2e TestNotifyRollback's: its
	// Warning names the Secret, never the URL.)
	echoes := func() string {
		return fmt.Sprintf("APISIX %d, Prometheus %d, webhook %d echoed answers", apisixFront.sent.Load(), prom.sent.Load(), hook.sent.Load())
	}
	apisixFront.on.Store(true)
	prom.on.Store(true)
	waitFor(t, 30*time.Second, "echoed Prometheus errors", func() bool { return prom.sent.Load() >= 3 }, echoes)
	annotate(t, ns, "sec-v2", "fledge.dev/auto-override", "abort")
	waitFor(t, 30*time.Second, "echoed APISIX errors", func() bool { return apisixFront.sent.Load() >= 3 }, echoes)
	time.Sleep(2 * time.Second) // the controller logs and records what it got
	apisixFront.on.Store(false)
	prom.on.Store(false)
	time.Sleep(2 * time.Second)
	written := map[string]string{"controller logs": logs.String(), "controller metrics": get(t, "http://"+metricsAddr+"/metrics")}
	written["Events"], written["status"] = events(t), statuses(t)
	// At --zap-log-level=10 a run like this logs about 110 kB; at the default
	// level, about 11 kB. Less means the flag did not take.
	if len(written["controller logs"]) < 40000 {
		t.Fatalf("the controller logged only %d bytes at its most verbose level: %q", len(written["controller logs"]), written["controller logs"])
	}
	for _, v := range []struct{ what, value string }{{"APISIX key", apiKey}, {"Prometheus token", token}, {"webhook URL's token", hookToken}} {
		for _, form := range []string{v.value, base64.StdEncoding.EncodeToString([]byte(v.value))} {
			for where, text := range written {
				if i := strings.Index(text, form); i >= 0 {
					t.Errorf("the %s appears in the %s: ...%s...", v.what, where, text[max(0, i-200):min(len(text), i+len(form)+50)])
				}
			}
		}
	}
	echoed := 0 // the echoing answers' text that fledge passed on, credentials redacted
	for _, text := range written {
		echoed += strings.Count(text, "upstream refused")
	}
	t.Logf("checked %d bytes of logs, %d of Events, %d of status, %d of metrics; %d, %d and %d requests carried the key, the token and the webhook's URL, %d, %d and %d answers echoed them; their text appears %d times",
		len(written["controller logs"]), len(written["Events"]), len(written["status"]), len(written["controller metrics"]),
		apisixFront.seen.Load(), prom.seen.Load(), hook.seen.Load(), apisixFront.sent.Load(), prom.sent.Load(), hook.sent.Load(), echoed)
}

// grantSecret lets the fledge-controller ServiceAccount get Secret name in
// namespace ns, and nothing else of it.
func grantSecret(t *testing.T, ns, name string) {
	t.Helper()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "read-" + name},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{name}, Verbs: []string{"get"}}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "read-" + name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "fledge-controller", Namespace: testenv.SystemNamespace}}}
	for _, o := range []client.Object{role, binding} {
		if err := env.Client.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
}

// controllerKubeconfig writes a kubeconfig that acts as the fledge-controller
// ServiceAccount (impersonated), so the binary has exactly its RBAC.
func controllerKubeconfig(t *testing.T, dir string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cfg.AuthInfos {
		a.Impersonate = "system:serviceaccount:" + testenv.SystemNamespace + ":fledge-controller"
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func annotate(t *testing.T, ns, name, key, value string) {
	t.Helper()
	svc := &corev1.Service{}
	if err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, svc); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(svc.DeepCopy())
	svc.Annotations[key] = value
	if err := env.Client.Patch(t.Context(), svc, patch); err != nil {
		t.Fatal(err)
	}
}

// events returns every Event of the cluster (both APIs) as JSON.
func events(t *testing.T) string {
	t.Helper()
	var core corev1.EventList
	var ev eventsv1.EventList
	if err := env.Client.List(t.Context(), &core); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.List(t.Context(), &ev); err != nil {
		t.Fatal(err)
	}
	if len(core.Items)+len(ev.Items) == 0 {
		t.Fatal("no Events at all: the run recorded nothing to check")
	}
	return marshal(t, core, ev)
}

// statuses returns every Release and TrafficRoute, status included, as JSON.
func statuses(t *testing.T) string {
	t.Helper()
	var rels fledgev1.ReleaseList
	var trs fledgev1.TrafficRouteList
	if err := env.Client.List(t.Context(), &rels); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.List(t.Context(), &trs); err != nil {
		t.Fatal(err)
	}
	if len(rels.Items) == 0 {
		t.Fatal("no Release: the run wrote nothing to check")
	}
	return marshal(t, rels, trs)
}

func marshal(t *testing.T, vs ...any) string {
	t.Helper()
	var b strings.Builder
	for _, v := range vs {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(j)
	}
	return b.String()
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %v %s", url, err, resp.Status)
	}
	return string(b)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitFor waits until cond holds; state says how far it got.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool, state func() string) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (%s)", what, timeout, state())
		}
	}
}
