package controller_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestControllerKnowsNoProvider: the reconciler sees only traffic.Router and
// its Resolver; the providers are composed outside it (traffic/providers,
// cmd/fledge).
func TestControllerKnowsNoProvider(t *testing.T) {
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v: %s", err, out)
	}
	deps := strings.Fields(string(out))
	const traffic = "github.com/fledge-dev/fledge/internal/traffic"
	found := false
	for _, dep := range deps {
		if dep == traffic {
			found = true
		}
		if strings.HasPrefix(dep, traffic+"/") {
			t.Errorf("internal/controller depends on %s; it must know providers only as traffic.Router", dep)
		}
	}
	if !found {
		t.Fatalf("go list -deps lists %d packages without %s; the check would be vacuous", len(deps), traffic)
	}
}
