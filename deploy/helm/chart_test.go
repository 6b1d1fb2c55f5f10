// Package helm_test keeps the Helm chart deploy/helm/fledge and the kustomize
// manifests of deploy/ in step: with default values the chart renders the same
// objects as `kubectl kustomize deploy/` (except the Namespace, which
// `helm install --create-namespace` makes), and its values do what they say.
//
// It runs a real helm (hack/helm.sh, or $FLEDGE_HELM) and kubectl
// ($KUBEBUILDER_ASSETS/kubectl, else hack/controlplane.sh builds it).
package helm_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

const chart = "fledge"

// tool returns the path of helm or kubectl, building it when needed.
func tool(t *testing.T, name string) string {
	t.Helper()
	switch name {
	case "helm":
		if p := os.Getenv("FLEDGE_HELM"); p != "" {
			return p
		}
		return script(t, "../../hack/helm.sh")
	case "kubectl":
		if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
			if p := filepath.Join(d, "kubectl"); fileExists(p) {
				return p
			}
		}
		return filepath.Join(script(t, "../../hack/controlplane.sh"), "kubectl")
	}
	t.Fatalf("unknown tool %s", name)
	return ""
}

func script(t *testing.T, path string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), "bash", path)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v: %s", path, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// run runs a tool and returns its standard output; a failure is an error with
// its standard error.
func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), tool(t, name), args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// object is one decoded manifest.
type object = map[string]any

func decode(t *testing.T, stream string) map[string]object {
	t.Helper()
	objs := map[string]object{}
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(stream), 4096)
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("decoding manifests: %v", err)
		}
		if o == nil {
			continue
		}
		k := key(o)
		if _, dup := objs[k]; dup {
			t.Fatalf("%s appears twice", k)
		}
		objs[k] = o
	}
	return objs
}

func key(o object) string {
	meta, _ := o["metadata"].(map[string]any)
	return fmt.Sprintf("%v/%v/%v", o["kind"], meta["namespace"], meta["name"])
}

// withoutHelmLabels removes the labels the chart adds to every object for Helm.
func withoutHelmLabels(o object) object {
	meta, _ := o["metadata"].(map[string]any)
	if labels, ok := meta["labels"].(map[string]any); ok {
		delete(labels, "app.kubernetes.io/managed-by")
		delete(labels, "helm.sh/chart")
		if len(labels) == 0 {
			delete(meta, "labels")
		}
	}
	return o
}

func template(t *testing.T, args ...string) (string, error) {
	return run(t, "helm", append([]string{"template", "fledge", chart, "--namespace", "fledge-system", "--include-crds"}, args...)...)
}

func TestDefaultRenderMatchesKustomize(t *testing.T) {
	rendered, err := template(t)
	if err != nil {
		t.Fatal(err)
	}
	kustomized, err := run(t, "kubectl", "kustomize", "../../deploy")
	if err != nil {
		t.Fatal(err)
	}
	fromHelm, fromKustomize := decode(t, rendered), decode(t, kustomized)
	if len(fromKustomize) < 10 {
		t.Fatalf("kustomize rendered only %d objects", len(fromKustomize))
	}
	ns := "Namespace/<nil>/fledge-system"
	if _, ok := fromKustomize[ns]; !ok {
		t.Fatalf("kustomize did not render %s", ns)
	}
	delete(fromKustomize, ns) // helm install --create-namespace makes it
	for k, want := range fromKustomize {
		got, ok := fromHelm[k]
		if !ok {
			t.Errorf("the chart does not render %s", k)
			continue
		}
		got = withoutHelmLabels(got)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s differs at %s\nchart:     %s\nkustomize: %s", k, firstDiff("", got, want), compact(got), compact(want))
		}
	}
	for k := range fromHelm {
		if _, ok := fromKustomize[k]; !ok {
			t.Errorf("the chart renders %s, which deploy/ does not have", k)
		}
	}
}

// firstDiff names the first path where a and b differ, with both values.
func firstDiff(path string, a, b any) string {
	switch av := a.(type) {
	case map[string]any:
		if bv, ok := b.(map[string]any); ok {
			keys := map[string]bool{}
			for k := range av {
				keys[k] = true
			}
			for k := range bv {
				keys[k] = true
			}
			sorted := make([]string, 0, len(keys))
			for k := range keys {
				sorted = append(sorted, k)
			}
			slices.Sort(sorted)
			for _, k := range sorted {
				if !reflect.DeepEqual(av[k], bv[k]) {
					return firstDiff(path+"."+k, av[k], bv[k])
				}
			}
		}
	case []any:
		if bv, ok := b.([]any); ok && len(av) == len(bv) {
			for i := range av {
				if !reflect.DeepEqual(av[i], bv[i]) {
					return firstDiff(fmt.Sprintf("%s[%d]", path, i), av[i], bv[i])
				}
			}
		}
	}
	return fmt.Sprintf("%s: chart %v, kustomize %v", path, a, b)
}

func compact(o object) string {
	b, _ := json.Marshal(o)
	return string(b)
}

func TestChartCRDsAreDeployCRDs(t *testing.T) {
	want, err := filepath.Glob("../../deploy/crds/*.yaml")
	if err != nil || len(want) == 0 {
		t.Fatalf("no CRDs in deploy/crds: %v", err)
	}
	got, _ := filepath.Glob(filepath.Join(chart, "crds", "*.yaml"))
	if names(got) != names(want) {
		t.Fatalf("chart CRDs %s, deploy/crds %s (copy them: cp deploy/crds/*.yaml deploy/helm/fledge/crds/)", names(got), names(want))
	}
	for _, w := range want {
		a, _ := os.ReadFile(w)
		b, _ := os.ReadFile(filepath.Join(chart, "crds", filepath.Base(w)))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from deploy/crds (copy it: cp deploy/crds/*.yaml deploy/helm/fledge/crds/)", filepath.Base(w))
		}
	}
}

func names(paths []string) string {
	var n []string
	for _, p := range paths {
		n = append(n, filepath.Base(p))
	}
	slices.Sort(n)
	return strings.Join(n, ",")
}

func TestLint(t *testing.T) {
	if out, err := run(t, "helm", "lint", "--strict", chart); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// container returns the only container of a Deployment.
func container(t *testing.T, objs map[string]object, name string) map[string]any {
	t.Helper()
	d, ok := objs["Deployment/fledge-system/"+name]
	if !ok {
		t.Fatalf("no Deployment %s", name)
	}
	var c []any
	if err := dig(d, &c, "spec", "template", "spec", "containers"); err != nil || len(c) != 1 {
		t.Fatalf("Deployment %s containers: %v", name, err)
	}
	return c[0].(map[string]any)
}

// dig reads the value at path into out (through JSON).
func dig(o any, out any, path ...string) error {
	for _, p := range path {
		m, ok := o.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: not an object", p)
		}
		if o, ok = m[p]; !ok {
			return fmt.Errorf("%s: missing", p)
		}
	}
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

func TestValues(t *testing.T) {
	rendered, err := template(t,
		"--set", "image.repository=registry.example/fledge,image.tag=v9,image.pullPolicy=Always",
		"--set", "controller.replicas=3,gateway.replicas=4,gateway.metricsPort=9191",
		"--set", "controller.defaultProvider=apisix,controller.apisix.adminURL=http://apisix-admin.apisix:9180,controller.apisix.key=s3cret",
		"--set", "controller.metricSource=prometheus,controller.prometheus.url=http://prometheus.monitoring:9090",
		"--set", "controller.resources.limits.memory=1Gi",
		"--set", "serviceMonitor.enabled=true,serviceMonitor.interval=5s",
		"--set", "controller.notifySecrets={team-slack,audit/hook},grafanaDashboard.enabled=true,grafanaDashboard.labels.team=sre",
	)
	if err != nil {
		t.Fatal(err)
	}
	objs := decode(t, rendered)
	ctrl, gw := container(t, objs, "fledge-controller"), container(t, objs, "fledge-gateway")
	for _, c := range []map[string]any{ctrl, gw} {
		if c["image"] != "registry.example/fledge:v9" || c["imagePullPolicy"] != "Always" {
			t.Errorf("container %v: image %v, pull policy %v", c["name"], c["image"], c["imagePullPolicy"])
		}
	}
	var args []string
	if err := dig(ctrl, &args, "args"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--default-provider=apisix", "--apisix-admin-url=http://apisix-admin.apisix:9180",
		"--metric-source=prometheus", "--prometheus-url=http://prometheus.monitoring:9090",
		"--notify-secret=fledge-system/team-slack", "--notify-secret=audit/hook"} {
		if !slices.Contains(args, want) {
			t.Errorf("controller args %v lack %s", args, want)
		}
	}
	var key string
	if err := dig(objs["Secret/fledge-system/fledge-apisix"], &key, "stringData", "key"); err != nil || key != "s3cret" {
		t.Errorf("Secret fledge-apisix key %q (%v), want s3cret", key, err)
	}
	var replicas int
	if err := dig(objs["Deployment/fledge-system/fledge-controller"], &replicas, "spec", "replicas"); err != nil || replicas != 3 {
		t.Errorf("controller replicas %d (%v), want 3", replicas, err)
	}
	if err := dig(objs["Deployment/fledge-system/fledge-gateway"], &replicas, "spec", "replicas"); err != nil || replicas != 4 {
		t.Errorf("gateway replicas %d (%v), want 4", replicas, err)
	}
	if err := dig(gw, &args, "args"); err != nil || !slices.Contains(args, "--metrics-addr=:9191") {
		t.Errorf("gateway args %v (%v) lack --metrics-addr=:9191", args, err)
	}
	var ports []map[string]any
	if err := dig(objs["Service/fledge-system/fledge-gateway-metrics"], &ports, "spec", "ports"); err != nil || len(ports) != 1 || ports[0]["port"] != 9191.0 {
		t.Errorf("metrics Service ports %v (%v), want 9191", ports, err)
	}
	var mem string
	if err := dig(ctrl, &mem, "resources", "limits", "memory"); err != nil || mem != "1Gi" {
		t.Errorf("controller memory limit %q (%v), want 1Gi", mem, err)
	}
	var endpoints []map[string]any
	if err := dig(objs["ServiceMonitor/fledge-system/fledge-gateway"], &endpoints, "spec", "endpoints"); err != nil ||
		len(endpoints) != 1 || endpoints[0]["port"] != "metrics" || endpoints[0]["interval"] != "5s" {
		t.Errorf("ServiceMonitor endpoints %v (%v), want port metrics every 5s", endpoints, err)
	}
	// The Grafana dashboard's ConfigMap carries deploy/grafana/fledge.json as it is.
	var dashboard, sidecar, team string
	cm := objs["ConfigMap/fledge-system/fledge-grafana-dashboard"]
	if err := dig(cm, &dashboard, "data", "fledge.json"); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../grafana/fledge.json")
	if err != nil {
		t.Fatal(err)
	}
	if dashboard != strings.TrimSuffix(string(want), "\n") {
		t.Error("the chart's Grafana dashboard is not deploy/grafana/fledge.json")
	}
	if err := dig(cm, &sidecar, "metadata", "labels", "grafana_dashboard"); err != nil || sidecar != "1" {
		t.Errorf("dashboard ConfigMap label grafana_dashboard %q (%v), want 1", sidecar, err)
	}
	if err := dig(cm, &team, "metadata", "labels", "team"); err != nil || team != "sre" {
		t.Errorf("dashboard ConfigMap label team %q (%v), want sre", team, err)
	}
}

func TestOtherNamespace(t *testing.T) {
	rendered, err := run(t, "helm", "template", "fledge", chart, "--namespace", "canary", "--set", "controller.apisix.existingSecret=my-key")
	if err != nil {
		t.Fatal(err)
	}
	objs := decode(t, rendered)
	d, ok := objs["Deployment/canary/fledge-controller"]
	if !ok {
		t.Fatal("no controller Deployment in namespace canary")
	}
	var args []string
	var containers []map[string]any
	if err := dig(d, &containers, "spec", "template", "spec", "containers"); err != nil {
		t.Fatal(err)
	}
	if err := dig(containers[0], &args, "args"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--leader-election-namespace=canary", "--apisix-key-secret=canary/my-key",
		"--gateway-metrics-service=canary/fledge-gateway-metrics"} {
		if !slices.Contains(args, want) {
			t.Errorf("controller args %v lack %s", args, want)
		}
	}
	var rules []map[string]any
	if err := dig(objs["Role/canary/fledge-controller"], &rules, "rules"); err != nil || len(rules) != 2 ||
		!reflect.DeepEqual(rules[1]["resourceNames"], []any{"my-key"}) {
		t.Errorf("Role rules %v (%v): want the Secret my-key readable", rules, err)
	}
	if _, ok := objs["Secret/canary/fledge-apisix"]; ok {
		t.Error("with an existing Secret the chart must not make one")
	}
}

func TestBadValues(t *testing.T) {
	for name, tc := range map[string]struct{ set, want string }{
		"key and existing secret":      {"controller.apisix.key=a,controller.apisix.existingSecret=b", "set key or existingSecret, not both"},
		"apisix without admin url":     {"controller.defaultProvider=apisix", "needs controller.apisix.adminURL"},
		"gatewayapi without parent":    {"controller.defaultProvider=gatewayapi", "needs controller.gatewayAPIParents"},
		"prometheus without url":       {"controller.metricSource=prometheus", "needs controller.prometheus.url"},
		"TLS Secret without namespace": {"gateway.tlsSecrets={shop-tls}", `gateway.tlsSecrets: "shop-tls" is not namespace/name`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := template(t, "--set", tc.set)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("helm template --set %s: %v, want an error saying %q", tc.set, err, tc.want)
			}
		})
	}
}

// TestTLSSecretRoles: each of gateway.tlsSecrets gets a Role granting the
// gateway get, list and watch on that one Secret (resourceNames), bound to
// its ServiceAccount; the HTTPS and h2c flags follow the values.
func TestTLSSecretRoles(t *testing.T) {
	rendered, err := template(t, "--set", "gateway.tlsSecrets={shop/shop-tls,pay/pay-tls},gateway.h2c=true,gateway.defaultTLSSecret=shop/shop-tls")
	if err != nil {
		t.Fatal(err)
	}
	objs := decode(t, rendered)
	for _, ref := range []struct{ ns, name string }{{"shop", "shop-tls"}, {"pay", "pay-tls"}} {
		role := objs["Role/"+ref.ns+"/fledge-gateway-tls-"+ref.name]
		var rules []map[string]any
		if err := dig(role, &rules, "rules"); err != nil || len(rules) != 1 {
			t.Fatalf("Role for %s/%s: rules %v (%v)", ref.ns, ref.name, rules, err)
		}
		if got := fmt.Sprint(rules[0]["resources"], rules[0]["resourceNames"], rules[0]["verbs"]); got != "[secrets] ["+ref.name+"] [get list watch]" {
			t.Errorf("Role for %s/%s grants %s, want [secrets] [%s] [get list watch]", ref.ns, ref.name, got, ref.name)
		}
		var subjects []map[string]any
		if err := dig(objs["RoleBinding/"+ref.ns+"/fledge-gateway-tls-"+ref.name], &subjects, "subjects"); err != nil ||
			len(subjects) != 1 || subjects[0]["name"] != "fledge-gateway" || subjects[0]["namespace"] != "fledge-system" {
			t.Errorf("RoleBinding for %s/%s: subjects %v (%v), want the gateway's ServiceAccount", ref.ns, ref.name, subjects, err)
		}
	}
	var args []string
	if err := dig(container(t, objs, "fledge-gateway"), &args, "args"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--https-addr=:8443", "--h2c", "--default-tls-secret=shop/shop-tls"} {
		if !slices.Contains(args, want) {
			t.Errorf("gateway args %v lack %s", args, want)
		}
	}
}
