package e2e

import (
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/localcp"
)

// TestEveryGatewayReplicaServes: each replica reads the routing from the API
// server on its own and splits exactly.
func TestEveryGatewayReplicaServes(t *testing.T) {
	a := canaryAt10(t, "replicas")
	if len(sb.Gateways) < 2 {
		t.Fatalf("the sandbox runs %d gateway, want 2", len(sb.Gateways))
	}
	for _, g := range sb.Gateways {
		c, err := sb.GetFrom(t.Context(), g.URL, 100, a.name, "/api/error_page", nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int{"v1": 90, "v2": 10}; !maps.Equal(c.ByVersion, want) {
			t.Errorf("gateway %s: answers = %v, want %v", g.URL, c.ByVersion, want)
		}
	}
}

// TestControllerRestartChangesNothing: the controller works from current
// state; a new controller process rewrites nothing.
func TestControllerRestartChangesNothing(t *testing.T) {
	a := canaryAt10(t, "restart")
	key := client.ObjectKey{Namespace: a.ns, Name: a.name}
	var rel fledgev1.Release
	var tr fledgev1.TrafficRoute
	if err := sb.Client.Get(t.Context(), key, &rel); err != nil {
		t.Fatal(err)
	}
	if err := sb.Client.Get(t.Context(), key, &tr); err != nil {
		t.Fatal(err)
	}

	sb.RestartController()
	// A change to another application proves the new controller has taken the
	// lease, synced its caches and worked through every existing Release.
	b := newApp(t, "restart-probe")
	b.service(t, "v1", "v1", map[string]string{published: b.name})
	b.served(t, "v1", "", 0)
	time.Sleep(200 * time.Millisecond)

	var rel2 fledgev1.Release
	var tr2 fledgev1.TrafficRoute
	if err := sb.Client.Get(t.Context(), key, &rel2); err != nil {
		t.Fatal(err)
	}
	if err := sb.Client.Get(t.Context(), key, &tr2); err != nil {
		t.Fatal(err)
	}
	if rel2.ResourceVersion != rel.ResourceVersion || tr2.ResourceVersion != tr.ResourceVersion {
		t.Errorf("restart rewrote objects: release %s -> %s, trafficroute %s -> %s",
			rel.ResourceVersion, rel2.ResourceVersion, tr.ResourceVersion, tr2.ResourceVersion)
	}
	a.wantCounts(t, nil, map[string]int{"v1": 90, "v2": 10})
}

// TestChangePropagation measures how long an annotation change takes to reach
// every gateway replica (reported, not asserted: speed claims are benchmarks).
func TestChangePropagation(t *testing.T) {
	a := canaryAt10(t, "propagation")
	var worst time.Duration
	for _, w := range []string{"20", "30", "40", "50", "60"} {
		start := time.Now()
		a.kubectl(t, "annotate", "service", "v2", percentage+"="+w, "--overwrite")
		weight := int32(w[0]-'0') * 10
		a.served(t, "v1", "v2", weight)
		worst = max(worst, time.Since(start))
	}
	t.Logf("annotation change to served by %d gateways (including kubectl's own run): worst %v", len(sb.Gateways), worst)
}

// TestLeaderElectionHandover: two controller replicas; only the leader acts,
// and when it stops (a rolling update) the standby takes over.
func TestLeaderElectionHandover(t *testing.T) {
	stopStandby := sb.StartStandbyController()
	a := canaryAt10(t, "leader")
	sb.StopController()
	t.Cleanup(func() {
		stopStandby()
		sb.StartController()
	})
	start := time.Now()
	a.kubectl(t, "annotate", "service", "v2", percentage+"=30", "--overwrite")
	a.served(t, "v1", "v2", 30)
	t.Logf("the standby applied a change %v after the leader stopped", time.Since(start).Round(time.Millisecond))
	a.wantCounts(t, nil, map[string]int{"v1": 70, "v2": 30})
}

// TestDeployManifestsAreValid: what users apply (kubectl apply -k deploy/, and
// the examples) is accepted by the API server (server-side dry run: schema,
// defaulting, RBAC references).
func TestDeployManifestsAreValid(t *testing.T) {
	root, err := localcp.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"apply", "--dry-run=server", "-k", filepath.Join(root, "deploy")},
		{"apply", "--dry-run=server", "-n", "default", "-f", filepath.Join(root, "deploy", "examples", "error-page")},
	} {
		out, err := sb.Kubectl(t.Context(), args...)
		if err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
		for _, want := range []string{"deployment.apps/", "service/"} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl %v printed no %s:\n%s", args, want, out)
			}
		}
	}
}
