package gateway

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/localcp"
)

// gatewayRules are the only permissions the gateway gets in TestWatcher.
var gatewayRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"fledge.dev"}, Resources: []string{"trafficroutes"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"get", "list", "watch"}},
}

// TestWatcher runs the watcher against a real kube-apiserver (internal/localcp),
// as a user holding only get/list/watch on TrafficRoutes, Services and
// EndpointSlices, cluster-wide and in one namespace, and follows the table
// through object changes.
func TestWatcher(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver")
	}
	// A bound against hanging (a watcher lacking permissions never syncs), not a
	// timing assertion.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	root, err := localcp.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cp, err := localcp.Start(ctx, localcp.Options{CRDDirs: []string{filepath.Join(root, "deploy", "crds")}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			t.Error(err)
		}
	}()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := fledgev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cp.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	create := func(t *testing.T, objs ...client.Object) {
		t.Helper()
		for _, o := range objs {
			if err := c.Create(ctx, o); err != nil {
				t.Fatalf("create %T %s: %v", o, o.GetName(), err)
			}
		}
	}
	as := func(user string) *rest.Config {
		cfg := rest.CopyConfig(cp.Config)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
		return cfg
	}

	create(t,
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "gw-cluster"}, Rules: gatewayRules},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "gw-cluster"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "gw-cluster"},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "gw-cluster"}},
		})

	t.Run("all namespaces with a ClusterRole", func(t *testing.T) {
		followTable(ctx, t, c, as("gw-cluster"), "", "team-a", create)
	})
	t.Run("one namespace with a Role", func(t *testing.T) {
		create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-b"}},
			&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "gw"}, Rules: gatewayRules},
			&rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "gw"},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "gw"},
				Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "gw-ns"}},
			})
		followTable(ctx, t, c, as("gw-ns"), "team-b", "team-b", create)
	})
	t.Run("Run serves the routes it watches and stops on cancel", func(t *testing.T) {
		backend := echoBackend(t, "legacy")
		_, port, err := net.SplitHostPort(hostOf(t, backend.URL))
		if err != nil {
			t.Fatal(err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			t.Fatal(err)
		}
		create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-c"}},
			&corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Namespace: "team-c", Name: "legacy"},
				Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost"},
			},
			&fledgev1.TrafficRoute{
				ObjectMeta: metav1.ObjectMeta{Namespace: "team-c", Name: "error-page"},
				Spec:       fledgev1.TrafficRouteSpec{Host: "error-page", Stable: fledgev1.BackendRef{Service: "legacy", Port: int32(p)}},
			})
		g := New(Options{})
		g.updated = make(chan struct{}, 1)
		proxyLn, adminLn := listen(t), listen(t)
		rctx, stop := context.WithCancel(ctx)
		defer stop()
		done := make(chan error, 1)
		go func() { done <- run(rctx, as("gw-cluster"), g, Listeners{HTTP: proxyLn, Admin: adminLn}) }()
		for tb := g.Table(); tb == nil || len(tb.routes) == 0; tb = g.Table() {
			select {
			case <-g.updated:
			case err := <-done:
				t.Fatalf("run stopped: %v", err)
			case <-ctx.Done():
				t.Fatal("no table")
			}
		}
		if a := httpGet(t, "http://"+adminLn.Addr().String()+"/readyz", ""); a.code != http.StatusOK {
			t.Errorf("/readyz: %d %q, want 200", a.code, a.body)
		}
		a := httpGet(t, "http://"+proxyLn.Addr().String()+"/x?y=1", "error-page")
		if a.code != http.StatusOK || !strings.Contains(a.body, `"Backend":"legacy","Host":"error-page","URI":"/x?y=1"`) {
			t.Errorf("proxied request: %d %q %v", a.code, a.body, a.err)
		}
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
}

// followTable runs a watcher (namespace restriction watchNS) with cfg and
// changes objects in namespace ns, waiting each time for the table to follow.
func followTable(ctx context.Context, t *testing.T, c client.Client, cfg *rest.Config, watchNS, ns string, create func(*testing.T, ...client.Object)) {
	if watchNS == "" {
		create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	// An object elsewhere, which a namespaced watcher must not see.
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns + "-other"}},
		&fledgev1.TrafficRoute{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns + "-other", Name: "other"},
			Spec:       fledgev1.TrafficRouteSpec{Host: "other." + ns, Stable: fledgev1.BackendRef{Service: "x", Port: 80}},
		})
	host := "web." + ns
	svc := func(name string) *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		}
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: "web-stable-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web-stable"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
		Endpoints:   []discoveryv1.Endpoint{ready("10.0.0.1")},
	}
	tr := &fledgev1.TrafficRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec:       fledgev1.TrafficRouteSpec{Host: host, Stable: fledgev1.BackendRef{Service: "web-stable", Port: 80}},
	}
	create(t, svc("web-stable"), slice, tr)

	g := New(Options{Namespace: watchNS})
	g.updated = make(chan struct{}, 1)
	w, err := newWatcher(cfg, watchNS)
	if err != nil {
		t.Fatal(err)
	}
	if g.Ready() {
		t.Fatal("ready before the watcher ran")
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.run(wctx, g) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("watcher: %v", err)
		}
	}()

	// waitFor waits until the route served for host is want (nil: none).
	waitFor := func(step string, want *RouteInfo) {
		t.Helper()
		for {
			var got *RouteInfo
			if tb := g.Table(); tb != nil {
				if ri, ok := tb.Lookup(host); ok {
					got = &ri
				}
				if reflect.DeepEqual(got, want) {
					return
				}
			}
			select {
			case <-g.updated:
			case err := <-done:
				t.Fatalf("%s: watcher stopped: %v", step, err)
			case <-ctx.Done():
				t.Fatalf("%s: table never served %+v; last %+v (problems %q)", step, want, got, g.Table().Problems())
			}
		}
	}
	want := &RouteInfo{Namespace: ns, Name: "web", Host: host,
		Stable: BackendInfo{Service: "web-stable", Port: 80, Targets: []string{"10.0.0.1:8080"}}}
	waitFor("first sync", want)
	if !g.Ready() {
		t.Error("not ready after the first table")
	}
	if _, ok := g.Table().Lookup("other." + ns); ok == (watchNS != "") {
		t.Errorf("route in another namespace served = %v with namespace restriction %q", ok, watchNS)
	}

	// Endpoints change: one becomes not ready, one comes.
	slice.Endpoints = []discoveryv1.Endpoint{notReady("10.0.0.1"), ready("10.0.0.2")}
	if err := c.Update(ctx, slice); err != nil {
		t.Fatal(err)
	}
	want.Stable.Targets = []string{"10.0.0.2:8080"}
	waitFor("endpoint change", want)

	// A canary Service that does not exist yet, then appears (ExternalName).
	tr.Spec.Canary = &fledgev1.BackendRef{Service: "web-canary", Port: 80}
	tr.Spec.CanaryWeight = 30
	if err := c.Update(ctx, tr); err != nil {
		t.Fatal(err)
	}
	want.CanaryWeight = 30
	want.Canary = &BackendInfo{Service: "web-canary", Port: 80, Targets: []string{}}
	waitFor("canary added", want)
	canary := svc("web-canary")
	canary.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "legacy.example.net"}
	create(t, canary)
	want.Canary.Targets = []string{"legacy.example.net:80"}
	waitFor("canary Service created", want)

	if err := c.Delete(ctx, tr); err != nil {
		t.Fatal(err)
	}
	waitFor("route deleted", nil)
}
