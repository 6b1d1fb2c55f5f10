// Package outage stops the real kube-apiserver under a running fledge
// (SIGKILL, then a restart on the same etcd, port and certificates, as a
// crashed static Pod comes back) and measures how soon fledge follows changes
// again. It has its own control plane: the API server it restarts is not the
// one other packages' tests use.
package outage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/fledge-dev/fledge/internal/netns"
	"github.com/fledge-dev/fledge/internal/sandbox"
)

var (
	sb   *sandbox.Sandbox
	pods = map[string]*sandbox.Pod{}
)

func TestMain(m *testing.M) {
	if err := netns.Supported(); err != nil {
		fmt.Fprintln(os.Stderr, "outage: requires root and ip netns:", err)
		os.Exit(1)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "fledge-outage-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin, err := sandbox.BuildBinary(ctx, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	logger := logr.Discard()
	if os.Getenv("FLEDGE_E2E_LOGS") != "" {
		logger = funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{})
	}
	ctrl.SetLogger(logger)
	klog.SetLogger(logger)
	sb, err = sandbox.Start(ctx, sandbox.Options{Binary: bin, NetPrefix: "flout", Progress: os.Stderr, Logger: logger, GatewayReplicas: 2})
	if err != nil {
		fmt.Fprintln(os.Stderr, "outage: starting the sandbox:", err)
		return 1
	}
	defer func() {
		if err := sb.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "outage: closing the sandbox:", err)
		}
	}()
	for _, v := range []string{"v1", "v2"} {
		if pods[v], err = sb.RunErrorPage(ctx, "out-"+v, v); err != nil {
			fmt.Fprintln(os.Stderr, "outage:", err)
			return 1
		}
	}
	return m.Run()
}

// outageLength is how long the API server stays down: long enough that
// client-go's reflectors, left to themselves, back off for up to a minute.
const outageLength = 60 * time.Second

// recoveryGoal is how soon after the API server is ready again a change must
// be served by every gateway replica.
const recoveryGoal = 5 * time.Second

// TestAPIServerOutage: the API server is SIGKILLed under 100 requests/s and
// stays down for a minute. The gateways keep serving the last routing with no
// client error; once the API server is ready again, an annotation change is
// written by the controller and served by both gateway replicas within
// recoveryGoal.
func TestAPIServerOutage(t *testing.T) {
	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "outage-"}}
	if err := sb.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	const app = "outage"
	service(t, ns.Name, "outage-v1", "v1", map[string]string{"api7.cloud/published-service": app})
	service(t, ns.Name, "outage-v2", "v2", map[string]string{
		"api7.cloud/published-service":                   app,
		"api7.cloud/published-canary-service":            "true",
		"api7.cloud/published-service-canary-percentage": "10",
	})
	if err := sb.WaitServed(ctx, app, "outage-v1", "outage-v2", 10); err != nil {
		t.Fatal(err)
	}
	load := sb.StartLoad(ctx, 100, app, "/api/error_page")
	defer load.Stop()

	api := findAPIServer(t)
	if err := syscall.Kill(api.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, api.pid)
	killed := time.Now()
	t.Logf("kube-apiserver (pid %d) killed; down for %v", api.pid, outageLength)
	time.Sleep(outageLength)

	restarted := api.restart(t)
	ready := waitReady(t, sb.CP.Config)
	t.Logf("kube-apiserver (pid %d) ready %v after the restart", restarted, ready.Sub(killed.Add(outageLength)).Round(time.Millisecond))

	out, err := sb.Kubectl(ctx, "annotate", "service", "outage-v2", "-n", ns.Name, "--overwrite",
		"api7.cloud/published-service-canary-percentage=50")
	if err != nil {
		t.Fatalf("kubectl annotate: %v: %s", err, out)
	}
	written, served := time.Time{}, time.Time{}
	for deadline := ready.Add(2 * time.Minute); time.Now().Before(deadline) && (written.IsZero() || served.IsZero()); time.Sleep(20 * time.Millisecond) {
		if written.IsZero() {
			if rel, err := sb.Release(ctx, ns.Name, app); err == nil && rel.Spec.CanaryWeight == 50 {
				written = time.Now()
			}
		}
		if served.IsZero() && servedEverywhere(app, 50) {
			served = time.Now()
		}
	}
	load.Stop()
	if written.IsZero() || served.IsZero() {
		t.Fatalf("2 minutes after the API server was back: Release written %v, served by every gateway %v (controller and gateways: %v)",
			!written.IsZero(), !served.IsZero(), sb.Err())
	}
	c := load.Counts()
	failed := 0
	for code, n := range c.Status {
		if code != http.StatusOK {
			failed += n
		}
	}
	t.Logf("after the API server was ready: Release written in %v, served by both gateways in %v; clients during it all: %v by status, %v by version",
		written.Sub(ready).Round(time.Millisecond), served.Sub(ready).Round(time.Millisecond), c.Status, c.ByVersion)
	if d := served.Sub(ready); d > recoveryGoal {
		t.Errorf("change served %v after the API server was ready again, want ≤ %v", d.Round(time.Millisecond), recoveryGoal)
	}
	if failed != 0 {
		t.Errorf("%d client requests failed during the outage (statuses %v), want 0", failed, c.Status)
	}
	if c.ByVersion["v1"] == 0 || c.ByVersion["v2"] == 0 {
		t.Errorf("answers by version %v: want both versions served", c.ByVersion)
	}
}

// service creates Service name (port 9011) with the annotations, backed by
// the pod of version.
func service(t *testing.T, ns, name, version string, ann map[string]string) {
	t.Helper()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: ann},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 9011}}}}
	if err := sb.Client.Create(t.Context(), svc); err != nil {
		t.Fatal(err)
	}
	if err := sb.SetEndpoints(t.Context(), ns, name, 9011, pods[version]); err != nil {
		t.Fatal(err)
	}
}

// servedEverywhere reports whether every gateway replica serves host with
// the canary at weight.
func servedEverywhere(host string, weight int32) bool {
	for _, g := range sb.Gateways {
		routes, err := sb.GatewayRoutes(g)
		if err != nil {
			return false
		}
		ok := false
		for _, r := range routes {
			ok = ok || (r.Host == host && r.CanaryWeight == weight)
		}
		if !ok {
			return false
		}
	}
	return true
}

// apiServer is the running kube-apiserver: its process and how it was started.
type apiServer struct {
	pid  int
	exe  string
	args []string
	env  []string
	dir  string
}

// findAPIServer finds the kube-apiserver child of this test process.
func findAPIServer(t *testing.T) apiServer {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || parentOf(pid) != self {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || filepath.Base(exe) != "kube-apiserver" {
			continue
		}
		cmdline, err1 := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		environ, err2 := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		dir, err3 := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		args := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
		return apiServer{pid: pid, exe: exe, args: args[1:], env: strings.Split(strings.TrimSuffix(string(environ), "\x00"), "\x00"), dir: dir}
	}
	t.Fatal("no kube-apiserver child process")
	return apiServer{}
}

// parentOf returns the parent pid of pid (0 if it cannot be read).
func parentOf(pid int) int {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	rest := stat[bytes.LastIndexByte(stat, ')')+1:]
	fields := strings.Fields(string(rest))
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

// waitGone waits until process pid has exited (its parent reaps it).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if parentOf(pid) != os.Getpid() {
			return
		}
	}
	t.Fatalf("process %d did not exit", pid)
}

// restart starts the API server again exactly as it was started, and stops it
// when the test ends (before the control plane's etcd stops).
func (a apiServer) restart(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(a.exe, a.args...)
	cmd.Env, cmd.Dir = a.env, a.dir
	// Never outlive the test, even when it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return cmd.Process.Pid
}

// waitReady polls the API server's /readyz until it answers 200 and returns
// when it first did.
func waitReady(t *testing.T, cfg *rest.Config) time.Time {
	t.Helper()
	tr, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: tr, Timeout: time.Second}
	u, err := url.JoinPath(cfg.Host, "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := hc.Get(u)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return time.Now()
		}
	}
	t.Fatal("the API server did not become ready again within 2 minutes")
	return time.Time{}
}
