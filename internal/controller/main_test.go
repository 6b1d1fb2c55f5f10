package controller_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/controller"
	"github.com/fledge-dev/fledge/internal/testenv"
	"github.com/fledge-dev/fledge/internal/traffic/apisix"
	"github.com/fledge-dev/fledge/internal/traffic/providers"
)

var env *testenv.Env

// apisixAdmin is the APISIX Admin API the controller's apisix provider talks
// to: a test installs an in-test server (apisixtest) for its duration.
var apisixAdmin atomic.Pointer[http.Handler]

const apisixKey = "test-admin-key"

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
	env, err = testenv.Start(ctx, testenv.Options{GatewayAPI: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting control plane:", err)
		return 1
	}
	defer env.Stop()
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := apisixAdmin.Load()
		if h == nil {
			http.Error(w, "no APISIX in this test", http.StatusServiceUnavailable)
			return
		}
		(*h).ServeHTTP(w, r)
	}))
	defer admin.Close()
	done := make(chan error, 1)
	go func() {
		done <- controller.Run(ctx, env.ServiceAccountConfig("fledge-controller"), controller.Options{
			MetricsAddr: "0", HealthAddr: "0", LeaderElect: true, LeaderElectionNamespace: testenv.SystemNamespace,
			DefaultProvider: fledgev1.ProviderEmbedded,
			Routers: func(c client.Client) (controller.Resolver, error) {
				return providers.New(c, providers.Config{
					APISIX: &apisix.Config{BaseURL: admin.URL, APIKey: apisixKey, Resolver: apisix.ClusterDNSResolver{}}})
			},
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
