package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func init() {
	realClusterCases = []struct {
		name string
		run  func(t *testing.T)
	}{
		{"scale the canary to 3 replicas", scaleCanary},
		{"split across the gateway replicas behind the Service", splitAcrossReplicas},
		{"delete a canary pod under load", deleteCanaryPod},
		{"rollout restart of the gateway under load", restartGateway},
		{"delete the leader controller pod", killLeader},
		{"SIGKILL the leader controller", sigkillLeader},
		{"SIGKILL the leader controller mid-release", sigkillLeaderMidRelease},
		{"a StatefulSet canary", statefulSetCanary},
		{"automated rollback of a bad v2", autoRollback},
	}
}

// gatewayURL is the gateway Service's ClusterIP, reached from the node through
// kube-proxy's rules.
func gatewayURL(t *testing.T) string {
	t.Helper()
	ip := mustKubectl(t, "get", "service", "-n", systemNS, "fledge-gateway", "-o", "jsonpath={.spec.clusterIP}")
	if net.ParseIP(ip) == nil {
		t.Fatalf("gateway ClusterIP %q", ip)
	}
	return "http://" + ip
}

// get sends one request and returns the answering version ("" when it fails).
func get(ctx context.Context, c *http.Client, url, host string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/error_page", nil)
	if err != nil {
		return "", err
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var answer struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || answer.Version == "" {
		return "", fmt.Errorf("not an error-page answer: %q", body)
	}
	return answer.Version, nil
}

// countOneConnection sends n requests one after the other on one keep-alive
// connection (so through one gateway replica, as port-forward does) and counts
// the versions.
func countOneConnection(t *testing.T, url, host string, n int) map[string]int {
	t.Helper()
	tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	counts := map[string]int{}
	for range n {
		v, err := get(t.Context(), c, url, host)
		if err != nil {
			counts["error"]++
			t.Logf("request failed: %v", err)
			continue
		}
		counts[v]++
	}
	return counts
}

// load sends requests at a steady rate until stopped, and counts answers and
// failures (transport errors and non-200 answers alike).
type load struct {
	ok, failed atomic.Int64
	// injected counts the failures that are error-page's own injected HTTP 500s.
	injected  atomic.Int64
	mu        sync.Mutex
	byVersion map[string]int
	errs      []string
	stop      func()
}

func startLoad(t *testing.T, url, host string, rate int) *load {
	t.Helper()
	l := &load{byVersion: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	tr := &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := get(context.Background(), c, url, host)
				l.mu.Lock()
				defer l.mu.Unlock()
				if err != nil {
					l.failed.Add(1)
					if strings.Contains(err.Error(), "HTTP 500") && strings.Contains(err.Error(), "injected failure") {
						l.injected.Add(1)
					}
					if len(l.errs) < 10 {
						l.errs = append(l.errs, time.Now().Format("15:04:05.000")+" "+err.Error())
					}
					return
				}
				l.ok.Add(1)
				l.byVersion[v]++
			}()
		}
	}()
	var once sync.Once
	l.stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			tr.CloseIdleConnections()
		})
	}
	t.Cleanup(l.stop)
	return l
}

func (l *load) report(t *testing.T, what string) {
	t.Helper()
	l.stop()
	t.Logf("%s: %d requests answered, %d failed, by version %v", what, l.ok.Load(), l.failed.Load(), l.byVersion)
	for _, e := range l.errs {
		t.Logf("  failure: %s", e)
	}
	if l.ok.Load() < 100 {
		t.Errorf("%s: only %d requests answered; the load did not run", what, l.ok.Load())
	}
	if n := l.failed.Load(); n != 0 {
		t.Errorf("%s: %d requests failed, want 0", what, n)
	}
}

func canaryAt(t *testing.T, canary string, weight int) {
	t.Helper()
	mustKubectl(t, annotate(canary, fmt.Sprintf("api7.cloud/published-service-canary-percentage=%d", weight), "--overwrite")...)
}

func scaleCanary(t *testing.T) {
	canaryAt(t, "error-page-v2", 10)
	waitServed(t, "error-page", "error-page-v1", "error-page-v2", 10, 1, 1)
	start := time.Now()
	mustKubectl(t, "scale", "deployment", "-n", demoNS, "error-page-v2", "--replicas=3")
	waitReady(t, demoNS, "app=error-page,version=v2", 3, 2*time.Minute)
	ready := time.Since(start)
	waitServed(t, "error-page", "error-page-v1", "error-page-v2", 10, 1, 3)
	t.Logf("3 canary Pods Ready %.1fs after kubectl scale, served by every gateway %.1fs after it",
		ready.Seconds(), time.Since(start).Seconds())
	got := countOneConnection(t, gatewayURL(t), "error-page", 100)
	if !equalCounts(got, map[string]int{"v1": 90, "v2": 10}) {
		t.Errorf("with 3 canary replicas: got %v, want v1 90, v2 10", got)
	}
}

// gatewayRequests reads each gateway replica's count of requests for app from
// its /metrics.
func gatewayRequests(t *testing.T, app string) map[string]float64 {
	t.Helper()
	gws, err := pods(t.Context(), systemNS, "app.kubernetes.io/name=fledge-gateway")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, g := range gws {
		out[g.Name] = 0 // no series yet before its first request for app
		resp, err := httpClient.Get("http://" + g.IP + ":9090/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(body), "\n") {
			if !strings.HasPrefix(line, "fledge_gateway_requests_total{") || !strings.Contains(line, `app="`+app+`"`) {
				continue
			}
			var v float64
			if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err != nil {
				t.Fatalf("gateway %s metrics line %q: %v", g.Name, line, err)
			}
			out[g.Name] += v
		}
	}
	return out
}

// splitAcrossReplicas checks the README's promise: behind a Service that spreads
// requests over N gateway replicas, 100 requests carry w ± N canary requests.
func splitAcrossReplicas(t *testing.T) {
	waitServed(t, "error-page", "error-page-v1", "error-page-v2", 10, 1, 3)
	url := gatewayURL(t)
	// A new connection per request: kube-proxy picks a replica for each.
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	before := gatewayRequests(t, "error-page")
	if len(before) != 2 {
		t.Fatalf("want 2 gateway replicas, have %v", before)
	}
	for round := 1; round <= 5; round++ {
		counts := map[string]int{}
		for range 100 {
			v, err := get(t.Context(), c, url, "error-page")
			if err != nil {
				t.Fatal(err)
			}
			counts[v]++
		}
		t.Logf("round %d: 100 requests on new connections through the Service: %v", round, counts)
		if counts["v2"] < 10-2 || counts["v2"] > 10+2 || counts["v1"]+counts["v2"] != 100 {
			t.Errorf("round %d: %v, want v2 within 10 ± 2 (2 replicas)", round, counts)
		}
	}
	after := gatewayRequests(t, "error-page")
	for name, n := range after {
		t.Logf("gateway %s answered %.0f of the 500", name, n-before[name])
		if n-before[name] < 50 {
			t.Errorf("gateway %s answered only %.0f of 500 requests: kube-proxy did not spread them", name, n-before[name])
		}
	}
}

func deleteCanaryPod(t *testing.T) {
	canaries := waitReady(t, demoNS, "app=error-page,version=v2", 3, time.Minute)
	victim := canaries[0]
	l := startLoad(t, gatewayURL(t), "error-page", 100)
	time.Sleep(3 * time.Second)
	start := time.Now()
	mustKubectl(t, "delete", "pod", "-n", demoNS, victim.Name, "--wait=false")
	// The gateways drop it as soon as Kubernetes marks it terminating.
	eventually(t, 30*time.Second, "gateways dropping the deleted pod "+victim.IP, func() error {
		gws, err := pods(t.Context(), systemNS, "app.kubernetes.io/name=fledge-gateway")
		if err != nil {
			return err
		}
		for _, g := range gws {
			r, err := served(g.IP, "error-page")
			if err != nil {
				return err
			}
			if r.Canary == nil {
				return fmt.Errorf("gateway %s serves no canary", g.Name)
			}
			for _, target := range r.Canary.Targets {
				if strings.HasPrefix(target, victim.IP+":") {
					return fmt.Errorf("gateway %s still sends to %s", g.Name, target)
				}
			}
		}
		return nil
	})
	t.Logf("every gateway stopped sending to %s %.2fs after kubectl delete pod", victim.Name, time.Since(start).Seconds())
	waitServed(t, "error-page", "error-page-v1", "error-page-v2", 10, 1, 3)
	time.Sleep(2 * time.Second)
	l.report(t, "100 requests/s while a canary pod was deleted and replaced")
}

func restartGateway(t *testing.T) {
	l := startLoad(t, gatewayURL(t), "error-page", 100)
	time.Sleep(3 * time.Second)
	start := time.Now()
	mustKubectl(t, "rollout", "restart", "-n", systemNS, "deployment/fledge-gateway")
	mustKubectl(t, "rollout", "status", "-n", systemNS, "deployment/fledge-gateway", "--timeout=180s")
	t.Logf("rollout restart of 2 gateway replicas done in %.1fs", time.Since(start).Seconds())
	waitReady(t, systemNS, "app.kubernetes.io/name=fledge-gateway", 2, time.Minute)
	waitServed(t, "error-page", "error-page-v1", "error-page-v2", 10, 1, 3)
	time.Sleep(3 * time.Second)
	l.report(t, "100 requests/s through the gateway Service during its rollout restart")
}

// leaseHolder returns the Pod holding the controller's Lease (its identity
// is POD_UUID).
func leaseHolder(ctx context.Context) (string, error) {
	h, err := leaseHolderIdentity(ctx)
	if err != nil {
		return "", err
	}
	pod, _, _ := strings.Cut(h, "_")
	return pod, nil
}

// newLeaseHolder waits until holder (leaseHolder or leaseHolderIdentity)
// names another than old, and returns it.
func newLeaseHolder(t *testing.T, what, old string, holder func(context.Context) (string, error)) string {
	t.Helper()
	var h string
	eventually(t, 90*time.Second, what, func() error {
		var err error
		if h, err = holder(t.Context()); err != nil {
			return err
		}
		if h == "" || h == old {
			return fmt.Errorf("holder %q", h)
		}
		return nil
	})
	return h
}

func killLeader(t *testing.T) {
	leader, err := leaseHolder(t.Context())
	if err != nil || leader == "" {
		t.Fatalf("lease holder %q: %v", leader, err)
	}
	waitReady(t, systemNS, "app.kubernetes.io/name=fledge-controller", 2, time.Minute)
	start := time.Now()
	// Deleted at once (--force): the kubelet still stops it with SIGTERM, so it
	// releases its Lease on the way out.
	mustKubectl(t, "delete", "pod", "-n", systemNS, leader, "--grace-period=0", "--force")
	canaryAt(t, "error-page-v2", 20)
	holder := newLeaseHolder(t, "another controller taking the Lease", leader, leaseHolder)
	took := time.Since(start)
	waitServed(t, "error-page", "error-page-v1", "error-page-v2", 20, 1, 3)
	t.Logf("leader %s killed: %s held the Lease after %.1fs, and the change made meanwhile (10%% -> 20%%) was served after %.1fs",
		leader, holder, took.Seconds(), time.Since(start).Seconds())
	if took > 30*time.Second {
		t.Errorf("takeover took %.1fs after a graceful stop that releases the Lease", took.Seconds())
	}
	got := countOneConnection(t, gatewayURL(t), "error-page", 100)
	if !equalCounts(got, map[string]int{"v1": 80, "v2": 20}) {
		t.Errorf("after the takeover: got %v, want v1 80, v2 20", got)
	}
	waitReady(t, systemNS, "app.kubernetes.io/name=fledge-controller", 2, 2*time.Minute)
}

// leaseHolderIdentity is the Lease's full holder identity (pod name and a
// random id per process).
func leaseHolderIdentity(ctx context.Context) (string, error) {
	return kubectl(ctx, "get", "lease", "-n", systemNS, "fledge-controller", "-o", "jsonpath={.spec.holderIdentity}")
}

// sigkillLeaderProcess SIGKILLs the leader controller's process from the
// node (it cannot release its Lease, which must expire before another
// controller takes it) and returns its identity, the Lease's duration and
// when it was killed.
func sigkillLeaderProcess(t *testing.T) (identity string, lease time.Duration, killed time.Time) {
	t.Helper()
	identity, err := leaseHolderIdentity(t.Context())
	if err != nil || identity == "" {
		t.Fatalf("lease holder %q: %v", identity, err)
	}
	leader, _, _ := strings.Cut(identity, "_")
	waitReady(t, systemNS, "app.kubernetes.io/name=fledge-controller", 2, time.Minute)
	id := mustKubectl(t, "get", "pod", "-n", systemNS, leader, "-o", "jsonpath={.status.containerStatuses[0].containerID}")
	id, ok := strings.CutPrefix(id, "containerd://")
	if !ok || id == "" {
		t.Fatalf("container of %s: %q", leader, id)
	}
	leaseSeconds := mustKubectl(t, "get", "lease", "-n", systemNS, "fledge-controller", "-o", "jsonpath={.spec.leaseDurationSeconds}")
	if lease, err = time.ParseDuration(leaseSeconds + "s"); err != nil || lease <= 0 {
		t.Fatalf("lease duration %q: %v", leaseSeconds, err)
	}
	killed = time.Now()
	if out, err := command(t.Context(), "bash", "hack/cluster.sh", "ctr", "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", id); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return identity, lease, killed
}

func sigkillLeader(t *testing.T) {
	identity, lease, start := sigkillLeaderProcess(t)
	canaryAt(t, "error-page-v2", 30)
	holder := newLeaseHolder(t, "another controller process taking the Lease", identity, leaseHolderIdentity)
	took := time.Since(start)
	waitServed(t, "error-page", "error-page-v1", "error-page-v2", 30, 1, 3)
	t.Logf("leader process %s SIGKILLed: %s held the %v Lease after %.1fs, and the change made meanwhile (20%% -> 30%%) was served after %.1fs",
		identity, holder, lease, took.Seconds(), time.Since(start).Seconds())
	// The leader renewed at most a retry period (at most 2 s) before it died.
	if took < lease-2*time.Second {
		t.Errorf("takeover after %.1fs, before the %v Lease could expire: was the leader killed?", took.Seconds(), lease)
	}
	if took > lease+10*time.Second {
		t.Errorf("takeover after %.1fs: the Lease lasts %v", took.Seconds(), lease)
	}
	got := countOneConnection(t, gatewayURL(t), "error-page", 100)
	if !equalCounts(got, map[string]int{"v1": 70, "v2": 30}) {
		t.Errorf("after the takeover: got %v, want v1 70, v2 30", got)
	}
	// The kubelet restarts the killed container in its Pod.
	waitReady(t, systemNS, "app.kubernetes.io/name=fledge-controller", 2, 2*time.Minute)
}

// waitAutoResult waits up to 3 minutes for the automated release of app to
// conclude: want is "<result> <effective weight>", e.g. "Promoted 100".
func waitAutoResult(t *testing.T, app, want string) {
	t.Helper()
	eventually(t, 3*time.Minute, app+" concluded "+want, func() error {
		out, err := kubectl(t.Context(), "get", "release", "-n", demoNS, app, "-o", "jsonpath={.status.auto.result} {.status.effectiveWeight}")
		if err != nil {
			return err
		}
		if out != want {
			return fmt.Errorf("result and effective weight %q", out)
		}
		return nil
	})
}

// autoStep reads the automated release's step, weight and step start.
func autoStep(t *testing.T, app string) (step, weight string, stepStarted string) {
	t.Helper()
	out := mustKubectl(t, "get", "release", "-n", demoNS, app, "-o", "jsonpath={.status.auto.step} {.status.auto.weight} {.status.auto.stepStartedAt}")
	f := strings.Fields(out)
	if len(f) != 3 {
		return "", "", ""
	}
	return f[0], f[1], f[2]
}

// sigkillLeaderMidRelease: the leader is SIGKILLed while an automated
// release of a healthy v2 is in its second step. The controller that takes
// over resumes that step where it was (same step, same weight, same start:
// the state is in the Release's status, not in the process), no request
// fails meanwhile, and the release then goes on to promote.
func sigkillLeaderMidRelease(t *testing.T) {
	apply(t, autoManifest("mid-v1", "v1")+"---\n"+autoManifest("mid-v2", "v2"))
	mustKubectl(t, "rollout", "status", "-n", demoNS, "deployment/mid-v1", "--timeout=120s")
	mustKubectl(t, "rollout", "status", "-n", demoNS, "deployment/mid-v2", "--timeout=120s")
	mustKubectl(t, annotate("mid-v1", "api7.cloud/published-service=mid")...)
	waitServed(t, "mid", "mid-v1", "", 0, 1, 0)
	l := startLoad(t, gatewayURL(t), "mid", 100)
	mustKubectl(t, annotate("mid-v2", "api7.cloud/published-service=mid", "api7.cloud/published-canary-service=true",
		"fledge.dev/auto-policy=steps=10,30,60; step-duration=15s; step-requests=100")...)
	var step, weight, started string
	eventually(t, 2*time.Minute, "the release in its second step", func() error {
		if step, weight, started = autoStep(t, "mid"); step != "1" {
			return fmt.Errorf("step %q weight %q", step, weight)
		}
		return nil
	})
	identity, _, killed := sigkillLeaderProcess(t)
	holder := newLeaseHolder(t, "another controller process taking the Lease", identity, leaseHolderIdentity)
	took := time.Since(killed)
	// The new leader has judged at least once: its status is the one read now.
	time.Sleep(3 * time.Second)
	s2, w2, started2 := autoStep(t, "mid")
	t.Logf("SIGKILLed the leader in step %s (weight %s, started %s); %s took over after %.1fs and reports step %s, weight %s, started %s",
		step, weight, started, holder, took.Seconds(), s2, w2, started2)
	if s2 == "0" || w2 == "10" {
		t.Errorf("after the takeover the release is back at step %s weight %s: it restarted instead of resuming", s2, w2)
	}
	if s2 == step && started2 != started {
		t.Errorf("step %s restarted at %s, was started at %s: the step's progress was lost", s2, started2, started)
	}
	waitAutoResult(t, "mid", "Promoted 100")
	l.stop()
	t.Logf("load: %d answered, %d failed; by version %v", l.ok.Load(), l.failed.Load(), l.byVersion)
	if l.failed.Load() != 0 {
		t.Errorf("%d requests failed while the leader was killed mid-release: %v", l.failed.Load(), l.errs)
	}
	waitReady(t, systemNS, "app.kubernetes.io/name=fledge-controller", 2, 2*time.Minute)
}

// apply applies a manifest given on standard input.
func apply(t *testing.T, manifest string) {
	t.Helper()
	cmd := kubectlCmd(t.Context(), "apply", "-n", demoNS, "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v: %s", err, out)
	}
}

const statefulSetManifest = `
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: error-page-v3
spec:
  serviceName: error-page-v3
  replicas: 1
  selector:
    matchLabels: {app: error-page, version: v3}
  template:
    metadata:
      labels: {app: error-page, version: v3}
    spec:
      containers:
        - name: error-page
          image: ghcr.io/fledge-dev/fledge:latest
          imagePullPolicy: IfNotPresent
          args: [error-page, v3, --addr=:9011]
          ports: [{name: http, containerPort: 9011}]
          readinessProbe:
            httpGet: {path: /healthz, port: http}
          securityContext:
            runAsNonRoot: true
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
---
apiVersion: v1
kind: Service
metadata:
  name: error-page-v3
spec:
  selector: {app: error-page, version: v3}
  ports: [{name: http, port: 9011, targetPort: http}]
`

func statefulSetCanary(t *testing.T) {
	apply(t, statefulSetManifest)
	mustKubectl(t, "rollout", "status", "-n", demoNS, "statefulset/error-page-v3", "--timeout=120s")
	// error-page-v2 leaves the application; the StatefulSet's Service is the new canary.
	mustKubectl(t, annotate("error-page-v2", "api7.cloud/published-service-", "api7.cloud/published-canary-service-",
		"api7.cloud/published-service-canary-percentage-")...)
	mustKubectl(t, annotate("error-page-v3", "api7.cloud/published-canary-service=true", "api7.cloud/published-service-canary-percentage=50")...)
	mustKubectl(t, annotate("error-page-v3", "api7.cloud/published-service=error-page")...)
	waitServed(t, "error-page", "error-page-v1", "error-page-v3", 50, 1, 1)
	got := countOneConnection(t, gatewayURL(t), "error-page", 100)
	if !equalCounts(got, map[string]int{"v1": 50, "v3": 50}) {
		t.Errorf("StatefulSet canary at 50%%: got %v, want v1 50, v3 50", got)
	}
}

func autoManifest(name, version string, extraArgs ...string) string {
	args := append([]string{"error-page", version, "--addr=:9011"}, extraArgs...)
	return fmt.Sprintf(`
apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
spec:
  replicas: 1
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      containers:
        - name: error-page
          image: ghcr.io/fledge-dev/fledge:latest
          imagePullPolicy: IfNotPresent
          args: [%[2]s]
          ports: [{name: http, containerPort: 9011}]
          readinessProbe:
            httpGet: {path: /healthz, port: http}
          securityContext:
            runAsNonRoot: true
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
---
apiVersion: v1
kind: Service
metadata:
  name: %[1]s
spec:
  selector: {app: %[1]s}
  ports: [{name: http, port: 9011, targetPort: http}]
`, name, strings.Join(args, ", "))
}

func autoRollback(t *testing.T) {
	apply(t, autoManifest("auto-v1", "v1")+"---\n"+autoManifest("auto-v2-bad", "v2", "--error-ratio=0.1"))
	mustKubectl(t, "rollout", "status", "-n", demoNS, "deployment/auto-v1", "--timeout=120s")
	mustKubectl(t, "rollout", "status", "-n", demoNS, "deployment/auto-v2-bad", "--timeout=120s")
	mustKubectl(t, annotate("auto-v1", "api7.cloud/published-service=auto")...)
	waitServed(t, "auto", "auto-v1", "", 0, 1, 0)
	l := startLoad(t, gatewayURL(t), "auto", 100)
	time.Sleep(2 * time.Second)
	start := time.Now()
	mustKubectl(t, annotate("auto-v2-bad", "api7.cloud/published-service=auto", "api7.cloud/published-canary-service=true", "fledge.dev/auto=true")...)
	waitAutoResult(t, "auto", "RolledBack 0")
	took := time.Since(start)
	l.stop()
	events := mustKubectl(t, "get", "events", "-n", demoNS, "--field-selector", "reason=RolledBack,involvedObject.name=auto", "-o", "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}")
	if !strings.Contains(events, "auto-v2-bad") {
		t.Errorf("no RolledBack Event naming auto-v2-bad; events: %q", events)
	}
	t.Logf("the bad v2 (10%% errors) was rolled back %.1fs after the annotation, under 100 requests/s; Event: %s",
		took.Seconds(), strings.TrimSpace(events))
	t.Logf("load during the release: %d answered, %d failed, of which %d the bad v2's injected HTTP 500s; by version %v",
		l.ok.Load(), l.failed.Load(), l.injected.Load(), l.byVersion)
	if other := l.failed.Load() - l.injected.Load(); other != 0 {
		t.Errorf("%d requests failed otherwise than by the bad v2's injected errors: %v", other, l.errs)
	}
	if got := countOneConnection(t, gatewayURL(t), "auto", 100); !equalCounts(got, map[string]int{"v1": 100}) {
		t.Errorf("after the rollback: got %v, want all 100 from v1", got)
	}
}
