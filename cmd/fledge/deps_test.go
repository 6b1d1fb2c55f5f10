package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBinaryLinksNoTestHarness keeps the production binary free of test and
// demo packages. controller-runtime's envtest, for one, creates a cache folder
// when it is loaded, so a binary linking it dies at start under a read-only root
// file system (as deploy/ runs fledge).
func TestBinaryLinksNoTestHarness(t *testing.T) {
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v: %s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 || !contains(deps, "github.com/fledge-dev/fledge/internal/controller") {
		t.Fatalf("go list -deps listed %d packages without the controller; the check would be vacuous", len(deps))
	}
	for _, dep := range deps {
		if reason := forbiddenDep(dep); reason != "" {
			t.Errorf("cmd/fledge links %s (%s)", dep, reason)
		}
	}
}

// forbiddenDep says why a package must not be linked into cmd/fledge, or "".
func forbiddenDep(dep string) string {
	exact := map[string]string{
		"testing":           "the standard test harness",
		"net/http/httptest": "test servers",
		"github.com/fledge-dev/fledge/internal/testenv": "test environment",
		"github.com/fledge-dev/fledge/internal/sandbox": "the local demo",
		"github.com/fledge-dev/fledge/internal/localcp": "local control plane",
		"github.com/fledge-dev/fledge/internal/netns":   "network-namespace pods",
	}
	if r, ok := exact[dep]; ok {
		return r
	}
	prefixes := map[string]string{
		"sigs.k8s.io/controller-runtime/pkg/envtest":     "envtest writes to disk when loaded",
		"sigs.k8s.io/controller-runtime/pkg/client/fake": "fake client",
		"k8s.io/client-go/kubernetes/fake":               "fake clientset",
		"testing/":                                       "test helpers",
		"github.com/onsi/":                               "ginkgo/gomega",
		"github.com/fledge-dev/fledge/test/":             "e2e tests",
	}
	for p, r := range prefixes {
		if dep == strings.TrimSuffix(p, "/") || strings.HasPrefix(dep, strings.TrimSuffix(p, "/")+"/") {
			return r
		}
	}
	if strings.HasSuffix(dep, "test") && strings.HasPrefix(dep, "github.com/fledge-dev/fledge/") {
		return "a test helper package (…test)"
	}
	return ""
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestForbiddenDep(t *testing.T) {
	for dep, want := range map[string]bool{
		"testing":        true,
		"testing/fstest": true,
		"sigs.k8s.io/controller-runtime/pkg/envtest":                      true,
		"sigs.k8s.io/controller-runtime/pkg/envtest/komega":               true,
		"github.com/fledge-dev/fledge/internal/sandbox":                   true,
		"github.com/fledge-dev/fledge/internal/traffic/routertest":        true,
		"github.com/fledge-dev/fledge/internal/traffic/apisix/apisixtest": true,
		"github.com/fledge-dev/fledge/internal/controller":                false,
		"sigs.k8s.io/controller-runtime/pkg/client":                       false,
		"net/http": false,
	} {
		if got := forbiddenDep(dep) != ""; got != want {
			t.Errorf("forbiddenDep(%q) forbidden = %v, want %v", dep, got, want)
		}
	}
}

// TestStartsWritingNothing runs the built binary with an empty home, temporary
// folder and working folder, and checks that starting it writes nothing there.
func TestStartsWritingNothing(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "fledge")
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	home, tmp, work := mkdir(t, dir, "home"), mkdir(t, dir, "tmp"), mkdir(t, dir, "work")
	env := []string{"HOME=" + home, "TMPDIR=" + tmp, "PATH=/nonexistent"}
	run := func(args ...string) {
		cmd := exec.CommandContext(t.Context(), bin, args...)
		cmd.Dir, cmd.Env = work, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("fledge %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("version")
	run("controller", "--help")
	run("gateway", "--help")
	// A long-running command: error-page serves until it is stopped.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "error-page", "v1", "--addr", "127.0.0.1:0")
	cmd.Dir, cmd.Env = work, env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("error-page exited at start: %v", err)
	case <-time.After(time.Second):
	}
	_ = cmd.Process.Signal(os.Interrupt)
	<-done
	for _, d := range []string{home, tmp, work} {
		entries, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			t.Errorf("fledge wrote %s at start", filepath.Join(d, e.Name()))
		}
	}
}

func mkdir(t *testing.T, parent, name string) string {
	t.Helper()
	d := filepath.Join(parent, name)
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}
