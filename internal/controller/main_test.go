package controller_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/controller"
	"github.com/fledge-dev/fledge/internal/testenv"
)

var env *testenv.Env

// TestMain starts one real kube-apiserver and one controller, running as the
// fledge-controller ServiceAccount with deploy/rbac's rights and leader election
// on, for every test of the package.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var err error
	env, err = testenv.Start(ctx, testenv.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting control plane:", err)
		return 1
	}
	defer env.Stop()
	done := make(chan error, 1)
	go func() {
		done <- controller.Run(ctx, env.ServiceAccountConfig("fledge-controller"), controller.Options{
			MetricsAddr: "0", HealthAddr: "0", LeaderElect: true, LeaderElectionNamespace: testenv.SystemNamespace,
			DefaultProvider: fledgev1.ProviderEmbedded,
		})
	}()
	code := m.Run()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			fmt.Fprintln(os.Stderr, "controller:", err)
			return 1
		}
	case <-time.After(20 * time.Second):
		fmt.Fprintln(os.Stderr, "controller did not stop")
		return 1
	}
	return code
}
