package localcp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStart starts the real control plane with fledge's CRDs and checks that the
// CRDs are served and that the bundled kubectl talks to it.
func TestStart(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cp, err := Start(t.Context(), Options{CRDDirs: []string{filepath.Join(root, "deploy", "crds")}, Progress: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			t.Error(err)
		}
	}()
	out, err := cp.KubectlCommand(t.Context(), "get", "releases.fledge.dev,trafficroutes.fledge.dev", "-A").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "No resources found") {
		t.Errorf("kubectl get printed %q, want no resources", out)
	}
	out, err = cp.KubectlCommand(t.Context(), "version", "-o", "json").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"gitVersion": "v1.37.2"`) {
		t.Errorf("kubectl version: %v\n%s", err, out)
	}
}
