// Package node_test runs fledge as a user does, on a real single-node
// Kubernetes (hack/cluster.sh): its own image, installed with Helm and with
// `kubectl apply -k deploy/`, then the original walkthrough verbatim — kubectl
// annotate, kubectl port-forward to the gateway Service and curl — and what only
// a real cluster shows (Pods coming and going, rolling restarts, leader
// takeover, automated rollback, a StatefulSet canary).
//
// The tests need the node: hack/test.sh brings it up and sets
// FLEDGE_NODE_KUBECONFIG (and FLEDGE_NODE_KUBECTL, FLEDGE_HELM). Without it they
// are skipped.
package node_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	demoNS   = "canary-release-demo"
	systemNS = "fledge-system"
)

var (
	kubeconfig = os.Getenv("FLEDGE_NODE_KUBECONFIG")
	kubectlBin = envOr("FLEDGE_NODE_KUBECTL", "kubectl")
	helmBin    = os.Getenv("FLEDGE_HELM")
	repoRoot   = func() string {
		_, file, _, _ := runtime.Caller(0)
		return filepath.Join(filepath.Dir(file), "..", "..")
	}()
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func needNode(t *testing.T) {
	t.Helper()
	if kubeconfig == "" {
		t.Skip("no real node: FLEDGE_NODE_KUBECONFIG is not set (hack/test.sh brings up hack/cluster.sh and sets it)")
	}
}

// kubectl runs kubectl on the node from the repository root, as a user types it.
func kubectl(ctx context.Context, args ...string) (string, error) {
	return command(ctx, kubectlBin, args...)
}

// kubectlCmd is kubectl on the node, to run.
func kubectlCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, kubectlBin, args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	return cmd
}

func command(ctx context.Context, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

func mustKubectl(t *testing.T, args ...string) string {
	t.Helper()
	t.Logf("$ kubectl %s", shellQuote(args))
	out, err := kubectl(t.Context(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " =%'\"") && !strings.HasPrefix(a, "-") {
			a = `"` + a + `"`
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// eventually retries cond every 250 ms until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// podList is the part of `kubectl get pods -o json` the tests read.
type podList struct {
	Items []struct {
		Metadata struct {
			Name              string            `json:"name"`
			Labels            map[string]string `json:"labels"`
			DeletionTimestamp *string           `json:"deletionTimestamp"`
		} `json:"metadata"`
		Spec struct {
			ServiceAccountName string `json:"serviceAccountName"`
		} `json:"spec"`
		Status struct {
			Phase      string `json:"phase"`
			PodIP      string `json:"podIP"`
			Conditions []struct {
				Type   string `json:"type"`
				Status string `json:"status"`
			} `json:"conditions"`
			ContainerStatuses []struct {
				Ready        bool `json:"ready"`
				RestartCount int  `json:"restartCount"`
			} `json:"containerStatuses"`
		} `json:"status"`
	} `json:"items"`
}

type pod struct {
	Name, IP string
	Ready    bool
	Restarts int
}

func pods(ctx context.Context, ns, selector string) ([]pod, error) {
	out, err := kubectl(ctx, "get", "pods", "-n", ns, "-l", selector, "-o", "json")
	if err != nil {
		return nil, err
	}
	var list podList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, err
	}
	var ps []pod
	for _, it := range list.Items {
		if it.Metadata.DeletionTimestamp != nil {
			continue
		}
		p := pod{Name: it.Metadata.Name, IP: it.Status.PodIP}
		for _, c := range it.Status.Conditions {
			if c.Type == "Ready" && c.Status == "True" {
				p.Ready = true
			}
		}
		for _, c := range it.Status.ContainerStatuses {
			p.Restarts += c.RestartCount
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// waitReady waits until selector matches exactly n Pods, all Ready.
func waitReady(t *testing.T, ns, selector string, n int, timeout time.Duration) []pod {
	t.Helper()
	var ps []pod
	eventually(t, timeout, fmt.Sprintf("%d Ready pods %s in %s", n, selector, ns), func() error {
		var err error
		if ps, err = pods(t.Context(), ns, selector); err != nil {
			return err
		}
		ready := 0
		for _, p := range ps {
			if p.Ready {
				ready++
			}
		}
		if len(ps) != n || ready != n {
			return fmt.Errorf("%d pods, %d ready", len(ps), ready)
		}
		return nil
	})
	return ps
}

// routeInfo is a gateway's /routes entry (see internal/gateway RouteInfo).
type routeInfo struct {
	Host   string `json:"host"`
	Stable struct {
		Service string   `json:"service"`
		Targets []string `json:"targets"`
	} `json:"stable"`
	Canary *struct {
		Service string   `json:"service"`
		Targets []string `json:"targets"`
	} `json:"canary"`
	CanaryWeight int32 `json:"canaryWeight"`
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// served reports how gateway Pod IP serves host.
func served(ip, host string) (*routeInfo, error) {
	resp, err := httpClient.Get("http://" + ip + ":9090/routes")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Routes []routeInfo `json:"routes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	for _, r := range body.Routes {
		if r.Host == host {
			return &r, nil
		}
	}
	return nil, fmt.Errorf("gateway %s does not serve %s", ip, host)
}

// waitServed waits until every gateway replica serves host with stable, canary
// ("" for none) at weight, with the given number of ready targets each (0: any).
func waitServed(t *testing.T, host, stable, canary string, weight int32, stableTargets, canaryTargets int) {
	t.Helper()
	eventually(t, 60*time.Second, fmt.Sprintf("gateways serving %s -> %s / %s at %d%%", host, stable, canary, weight), func() error {
		gws, err := pods(t.Context(), systemNS, "app.kubernetes.io/name=fledge-gateway")
		if err != nil {
			return err
		}
		if len(gws) == 0 {
			return fmt.Errorf("no gateway pods")
		}
		for _, g := range gws {
			r, err := served(g.IP, host)
			if err != nil {
				return err
			}
			gotCanary, nCanary := "", 0
			if r.Canary != nil {
				gotCanary, nCanary = r.Canary.Service, len(r.Canary.Targets)
			}
			switch {
			case r.Stable.Service != stable || gotCanary != canary || r.CanaryWeight != weight:
				return fmt.Errorf("gateway %s serves %s / %s at %d%%", g.Name, r.Stable.Service, gotCanary, r.CanaryWeight)
			case len(r.Stable.Targets) == 0 || (canary != "" && nCanary == 0):
				return fmt.Errorf("gateway %s has no ready targets yet", g.Name)
			case stableTargets > 0 && len(r.Stable.Targets) != stableTargets:
				return fmt.Errorf("gateway %s: %d stable targets, want %d", g.Name, len(r.Stable.Targets), stableTargets)
			case canaryTargets > 0 && nCanary != canaryTargets:
				return fmt.Errorf("gateway %s: %d canary targets, want %d", g.Name, nCanary, canaryTargets)
			}
		}
		return nil
	})
}

// portForward runs `kubectl port-forward -n fledge-system service/fledge-gateway
// 10080:80` until the test ends.
func portForward(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := kubectlCmd(ctx, "port-forward", "-n", systemNS, "service/fledge-gateway", "10080:80")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	t.Logf("$ kubectl port-forward -n %s service/fledge-gateway 10080:80 &", systemNS)
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "Forwarding from 127.0.0.1:10080") {
				ready <- true
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("kubectl port-forward exited: %s", stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("kubectl port-forward did not start: %s", stderr.String())
	}
}

// curl runs `curl -s http://127.0.0.1:10080/api/error_page -H 'Host: error-page'`
// n times, one after the other, and counts the versions that answer; an answer
// that is not the application's JSON counts as "error".
func curl(t *testing.T, n int) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for range n {
		out, err := command(t.Context(), "curl", "-sf", "--max-time", "5", "http://127.0.0.1:10080/api/error_page", "-H", "Host: error-page")
		var answer struct {
			Error   string `json:"error"`
			Version string `json:"version"`
		}
		if err != nil || json.Unmarshal([]byte(out), &answer) != nil || answer.Version == "" {
			counts["error"]++
			continue
		}
		counts[answer.Version]++
	}
	return counts
}

func nonZero(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

func equalCounts(a, b map[string]int) bool {
	a, b = nonZero(a), nonZero(b)
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func annotate(kv ...string) []string {
	return append([]string{"annotate", "service", "-n", demoNS}, kv...)
}

// walkthroughStep is one step of the original walkthrough.
type walkthroughStep struct {
	title          string
	kubectl        [][]string
	stable, canary string
	weight         int32
	want           map[string]int
}

var walkthroughSteps = []walkthroughStep{
	{
		title:   "publish error-page-v1 as application error-page",
		kubectl: [][]string{annotate("error-page-v1", "api7.cloud/published-service=error-page")},
		stable:  "error-page-v1", want: map[string]int{"v1": 100},
	},
	{
		title: "canary error-page-v2 at 10%",
		kubectl: [][]string{
			annotate("error-page-v2", "api7.cloud/published-canary-service=true", "api7.cloud/published-service-canary-percentage=10"),
			annotate("error-page-v2", "api7.cloud/published-service=error-page"),
		},
		stable: "error-page-v1", canary: "error-page-v2", weight: 10, want: map[string]int{"v1": 90, "v2": 10},
	},
	{
		title:   "roll back: 0%",
		kubectl: [][]string{annotate("error-page-v2", "api7.cloud/published-service-canary-percentage=0", "--overwrite")},
		stable:  "error-page-v1", canary: "error-page-v2", weight: 0, want: map[string]int{"v1": 100},
	},
	{
		title:   "release: 100%",
		kubectl: [][]string{annotate("error-page-v2", "api7.cloud/published-service-canary-percentage=100", "--overwrite")},
		stable:  "error-page-v1", canary: "error-page-v2", weight: 100, want: map[string]int{"v2": 100},
	},
}

// installed checks fledge as installed: 2 controllers and 2 gateways Ready
// through their probes, no restarts, and one controller holding the Lease.
func installed(t *testing.T) {
	t.Helper()
	start := time.Now()
	mustKubectl(t, "rollout", "status", "-n", systemNS, "deployment/fledge-controller", "--timeout=180s")
	mustKubectl(t, "rollout", "status", "-n", systemNS, "deployment/fledge-gateway", "--timeout=180s")
	ctrls := waitReady(t, systemNS, "app.kubernetes.io/name=fledge-controller", 2, time.Minute)
	gws := waitReady(t, systemNS, "app.kubernetes.io/name=fledge-gateway", 2, time.Minute)
	t.Logf("controllers and gateways Ready %.1fs after the install command returned", time.Since(start).Seconds())
	for _, p := range append(slices.Clone(ctrls), gws...) {
		if p.Restarts != 0 {
			t.Errorf("pod %s restarted %d times", p.Name, p.Restarts)
		}
	}
	for _, p := range append(slices.Clone(ctrls), gws...) {
		checkContainer(t, p.Name)
	}
	// The leader took its Lease with its own ServiceAccount token.
	eventually(t, 60*time.Second, "a controller Pod holding the Lease", func() error {
		holder, err := kubectl(t.Context(), "get", "lease", "-n", systemNS, "fledge-controller", "-o", "jsonpath={.spec.holderIdentity}")
		if err != nil {
			return err
		}
		for _, p := range ctrls {
			if strings.HasPrefix(holder, p.Name) {
				return nil
			}
		}
		return fmt.Errorf("holder %q is none of %v", holder, ctrls)
	})
}

// checkContainer checks, from the node, how a fledge Pod's process runs: as
// user 65532, on a read-only root file system, with no capabilities, in an
// image without a shell, having written nothing to its /tmp.
func checkContainer(t *testing.T, podName string) {
	t.Helper()
	id := mustKubectl(t, "get", "pod", "-n", systemNS, podName, "-o", "jsonpath={.status.containerStatuses[0].containerID}")
	id, ok := strings.CutPrefix(id, "containerd://")
	if !ok {
		t.Fatalf("pod %s: container %q", podName, id)
	}
	tasks, err := command(t.Context(), "bash", "hack/cluster.sh", "ctr", "-n", "k8s.io", "tasks", "ls")
	if err != nil {
		t.Fatal(err)
	}
	pid := ""
	for _, line := range strings.Split(tasks, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == id {
			pid = f[1]
		}
	}
	if pid == "" {
		t.Fatalf("pod %s: no task %s on the node", podName, id)
	}
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 5 && f[0] == "Uid:" && (f[1] != "65532" || f[2] != "65532"):
			t.Errorf("pod %s runs as %s, want 65532", podName, line)
		case len(f) == 2 && (f[0] == "CapEff:" || f[0] == "CapPrm:") && f[1] != "0000000000000000":
			t.Errorf("pod %s has capabilities: %s", podName, line)
		}
	}
	mounts, err := os.ReadFile("/proc/" + pid + "/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	rootRO := false
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 5 && f[4] == "/" {
			rootRO = strings.HasPrefix(f[5], "ro")
		}
	}
	if !rootRO {
		t.Errorf("pod %s: root file system not read-only", podName)
	}
	root := "/proc/" + pid + "/root"
	if _, err := os.Stat(root + "/fledge"); err != nil {
		t.Errorf("pod %s: cannot see its root file system: %v", podName, err)
	}
	for _, sh := range []string{"/bin/sh", "/bin/bash", "/busybox"} {
		if _, err := os.Lstat(root + sh); err == nil {
			t.Errorf("pod %s: the image has a shell: %s", podName, sh)
		}
	}
	if entries, err := os.ReadDir(root + "/tmp"); err != nil || len(entries) != 0 {
		t.Errorf("pod %s: /tmp holds %v (%v), want nothing", podName, entries, err)
	}
}

// walkthrough runs the original walkthrough verbatim and checks its counts.
func walkthrough(t *testing.T) {
	mustKubectl(t, "create", "namespace", demoNS)
	mustKubectl(t, "apply", "-n", demoNS, "-f", "deploy/examples/error-page/manifest-v1.yaml")
	mustKubectl(t, "apply", "-n", demoNS, "-f", "deploy/examples/error-page/manifest-v2.yaml")
	mustKubectl(t, "rollout", "status", "-n", demoNS, "deployment/error-page-v1", "--timeout=120s")
	mustKubectl(t, "rollout", "status", "-n", demoNS, "deployment/error-page-v2", "--timeout=120s")
	portForward(t)
	for i, step := range walkthroughSteps {
		t.Logf("step %d: %s", i+1, step.title)
		for _, args := range step.kubectl {
			mustKubectl(t, args...)
		}
		waitServed(t, "error-page", step.stable, step.canary, step.weight, 0, 0)
		got := curl(t, 100)
		t.Logf("  100 x curl http://127.0.0.1:10080/api/error_page -H 'Host: error-page': v1 %d, v2 %d, errors %d (want v1 %d, v2 %d)",
			got["v1"], got["v2"], got["error"], step.want["v1"], step.want["v2"])
		if !equalCounts(got, step.want) {
			t.Errorf("step %d (%s): got %v, want %v", i+1, step.title, got, step.want)
		}
	}
	out := mustKubectl(t, "get", "all", "-n", demoNS)
	t.Logf("$ kubectl get all -n %s\n%s", demoNS, out)
	for _, d := range []string{"error-page-v1", "error-page-v2"} {
		ready := mustKubectl(t, "get", "deployment", "-n", demoNS, d, "-o", "jsonpath={.status.readyReplicas}/{.status.replicas}")
		if ready != "1/1" {
			t.Errorf("deployment %s: %s ready", d, ready)
		}
	}
	for _, p := range waitReady(t, demoNS, "app=error-page", 2, 10*time.Second) {
		if p.Restarts != 0 {
			t.Errorf("pod %s restarted %d times", p.Name, p.Restarts)
		}
	}
	rel := mustKubectl(t, "get", "releases", "-n", demoNS)
	t.Logf("$ kubectl get releases -n %s\n%s", demoNS, rel)
	// The status follows what the gateway replicas serve, a moment after them.
	var phase string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		phase = mustKubectl(t, "get", "release", "-n", demoNS, "error-page", "-o", "jsonpath={.status.phase} {.status.effectiveWeight}")
		if phase == "Released 100" || time.Now().After(deadline) {
			break
		}
	}
	if phase != "Released 100" {
		t.Errorf("release error-page: phase and effective weight %q, want \"Released 100\"", phase)
	}
}

func deleteNamespace(t *testing.T, ns string) {
	t.Helper()
	mustKubectl(t, "delete", "namespace", ns, "--ignore-not-found", "--timeout=120s")
}

// TestRealNode installs fledge with Helm, runs the walkthrough, uninstalls it,
// installs it with kustomize, runs the walkthrough again, then the cases only
// a real cluster shows. The subtests depend on each other and run in order.
func TestRealNode(t *testing.T) {
	needNode(t)
	if helmBin == "" {
		t.Fatal("FLEDGE_HELM is not set (hack/helm.sh builds helm)")
	}
	helm := func(args ...string) string {
		t.Helper()
		t.Logf("$ helm %s", strings.Join(args, " "))
		out, err := command(t.Context(), helmBin, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// A clean slate, should an earlier run have stopped half way.
	_, _ = command(t.Context(), helmBin, "uninstall", "fledge", "-n", systemNS, "--wait", "--ignore-not-found")
	_, _ = kubectl(t.Context(), "delete", "namespace", demoNS, "--ignore-not-found", "--timeout=120s")
	_, _ = kubectl(t.Context(), "delete", "-k", "deploy/", "--ignore-not-found", "--timeout=120s")
	ok := t.Run("helm install", func(t *testing.T) {
		helm("install", "fledge", "deploy/helm/fledge", "-n", systemNS, "--create-namespace", "--wait", "--timeout", "3m")
		installed(t)
	})
	ok = ok && t.Run("walkthrough on the Helm install", walkthrough)
	ok = ok && t.Run("helm uninstall", func(t *testing.T) {
		deleteNamespace(t, demoNS)
		helm("uninstall", "fledge", "-n", systemNS, "--wait", "--timeout", "2m")
		// Helm keeps CRDs (and so the Releases) on uninstall; remove them as a user would.
		mustKubectl(t, "delete", "-f", "deploy/helm/fledge/crds/", "--timeout=60s")
		deleteNamespace(t, systemNS)
	})
	ok = ok && t.Run("kubectl apply -k deploy/", func(t *testing.T) {
		mustKubectl(t, "apply", "-k", "deploy/")
		installed(t)
	})
	ok = ok && t.Run("walkthrough", walkthrough)
	if !ok {
		return
	}
	for _, c := range realClusterCases {
		t.Run(c.name, c.run)
	}
}

// realClusterCases run after the walkthrough, on the kustomize install.
var realClusterCases []struct {
	name string
	run  func(t *testing.T)
}
