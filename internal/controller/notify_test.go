package controller_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fledge-dev/fledge/internal/controller"
	"github.com/fledge-dev/fledge/internal/notify"
)

// TestNotificationTargets: the controller, with exactly the rights
// deploy/rbac grants it plus the namespace's Role of
// deploy/examples/notify-rbac.yaml, reads webhooks from the Secrets that Role
// names; an unusable Secret, or one it was not granted, is an error naming it
// and what is wrong, never its URL.
func TestNotificationTargets(t *testing.T) {
	ns := env.Namespace(t, "notify")
	for name, data := range map[string]map[string]string{
		"json":    {"url": "https://hooks.example/a/token-1"},
		"slack":   {"url": " https://hooks.slack.example/services/T/B/token-2\n", "format": "Slack"},
		"no-url":  {"format": "json"},
		"bad-fmt": {"url": "https://hooks.example/b/token-3", "format": "teams"},
	} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: data}
		if err := env.Client.Create(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.Client.Create(t.Context(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ungranted"},
		StringData: map[string]string{"url": "https://hooks.example/c/token-4"}}); err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join(env.Root, "deploy", "examples", "notify-rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	grant := strings.ReplaceAll(string(example), "  name: fledge-notify\n", "  name: fledge-notify\n  namespace: "+ns+"\n")
	grant = strings.Replace(grant, "[deploy-hook, slack-hook]", "[json, slack, no-url, bad-fmt, missing]", 1)
	if err := env.ApplyYAML(t.Context(), []byte(grant)); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.ServiceAccountConfig("fledge-controller"), client.Options{Scheme: controller.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	n := &controller.Notifications{Secrets: c}
	refs := []types.NamespacedName{{Namespace: ns, Name: "json"}, {Namespace: ns, Name: "slack"}, {Namespace: ns, Name: "no-url"},
		{Namespace: ns, Name: "bad-fmt"}, {Namespace: ns, Name: "missing"}, {Namespace: ns, Name: "ungranted"}}
	targets, errs := n.Targets(t.Context(), refs)
	if len(targets) != 2 || targets[0].URL != "https://hooks.example/a/token-1" || targets[0].Format != notify.FormatJSON ||
		targets[1].URL != "https://hooks.slack.example/services/T/B/token-2" || targets[1].Format != notify.FormatSlack ||
		targets[1].Name != "Secret "+ns+"/slack" {
		t.Errorf("targets = %+v", targets)
	}
	want := map[string]string{"no-url": `no key "url"`, "bad-fmt": `key "format": format "teams"`, "missing": "not found",
		"ungranted": "forbidden"}
	if len(errs) != len(want) {
		t.Fatalf("errors = %+v, want one for each of %v", errs, want)
	}
	for _, e := range errs {
		name := strings.TrimPrefix(e.Target.Name, "Secret "+ns+"/")
		if !strings.Contains(e.Err.Error(), want[name]) || want[name] == "" {
			t.Errorf("%s: %v, want %q", e.Target.Name, e.Err, want[name])
		}
		if strings.Contains(e.Err.Error(), "token") {
			t.Errorf("%s: the error reveals the URL: %v", e.Target.Name, e.Err)
		}
	}
}
