package embedded_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/controller"
	"github.com/fledge-dev/fledge/internal/testenv"
	"github.com/fledge-dev/fledge/internal/traffic"
	"github.com/fledge-dev/fledge/internal/traffic/embedded"
	"github.com/fledge-dev/fledge/internal/traffic/routertest"
)

var env *testenv.Env

// TestMain starts one real kube-apiserver with fledge's CRDs for the package.
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
	return m.Run()
}

// breakable returns a client of the test API server that fails every call
// while broken is true.
func breakable(t *testing.T, broken *atomic.Bool) client.Client {
	t.Helper()
	c, err := client.NewWithWatch(env.Config, client.Options{Scheme: controller.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return testenv.Breakable(c, broken.Load, nil)
}

func TestConformance(t *testing.T) {
	routertest.Run(t, routertest.Harness{New: func(t *testing.T) *routertest.Instance {
		ns := env.Namespace(t, "embedded")
		var broken atomic.Bool
		return &routertest.Instance{
			Router:    embedded.New(breakable(t, &broken)),
			Namespace: ns,
			Objects: func(ctx context.Context) ([]string, error) {
				var list fledgev1.TrafficRouteList
				if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
					return nil, err
				}
				names := make([]string, 0, len(list.Items))
				for _, tr := range list.Items {
					names = append(names, tr.Namespace+"/"+tr.Name)
				}
				return names, nil
			},
			Snapshot: func(ctx context.Context, key traffic.Key) (string, error) {
				return snapshot(ctx, key)
			},
			Break:  func() { broken.Store(true) },
			Repair: func() { broken.Store(false) },
		}
	}})
}

// snapshot dumps the app's TrafficRoute: name, resourceVersion, labels,
// annotations and spec; "" when there is none.
func snapshot(ctx context.Context, key traffic.Key) (string, error) {
	var tr fledgev1.TrafficRoute
	err := env.Client.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: key.App}, &tr)
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	dump := struct {
		Name            string            `json:"name"`
		ResourceVersion string            `json:"resourceVersion"`
		Labels          map[string]string `json:"labels"`
		Annotations     map[string]string `json:"annotations"`
		Spec            any               `json:"spec"`
	}{tr.Namespace + "/" + tr.Name, tr.ResourceVersion, tr.Labels, tr.Annotations, tr.Spec}
	b, err := json.MarshalIndent(dump, "", "  ")
	return string(b), err
}

// TestForeignTrafficRouteIsLeftAlone: a TrafficRoute fledge did not create
// (no managed-by label) is neither changed, served nor deleted.
func TestForeignTrafficRouteIsLeftAlone(t *testing.T) {
	ns := env.Namespace(t, "embedded-foreign")
	foreign := &fledgev1.TrafficRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web", Labels: map[string]string{"team": "payments"}},
		Spec:       fledgev1.TrafficRouteSpec{Host: "web.example.test", Stable: fledgev1.BackendRef{Service: "theirs", Port: 80}},
	}
	if err := env.Client.Create(t.Context(), foreign); err != nil {
		t.Fatal(err)
	}
	key := traffic.Key{Namespace: ns, App: "web"}
	before, err := snapshot(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	r := embedded.New(env.Client)
	err = r.Ensure(t.Context(), traffic.Route{Key: key, Host: "web.example.test", Stable: routertest.StableBackend})
	if err == nil || !strings.Contains(err.Error(), "not managed by fledge") {
		t.Errorf("Ensure over a foreign TrafficRoute = %v; want a refusal naming the missing label", err)
	}
	if _, err := r.Observe(t.Context(), key); !errors.Is(err, traffic.ErrNotFound) {
		t.Errorf("Observe of a foreign TrafficRoute = %v; want traffic.ErrNotFound", err)
	}
	if err := r.Remove(t.Context(), key); err != nil {
		t.Errorf("Remove of a foreign TrafficRoute = %v; want nil (nothing of fledge's to remove)", err)
	}
	after, err := snapshot(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("the foreign TrafficRoute changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
