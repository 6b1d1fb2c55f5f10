// Package sandbox runs fledge for real on one machine, for the end-to-end tests
// and cmd/fledge-demo: a real kube-apiserver and etcd, the real controller and
// gateway (in-process, each with the rights deploy/rbac grants it), and the
// error-page application as real processes in network namespaces ("pods"),
// with EndpointSlices written the way the EndpointSlice controller would.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/deploy"
	"github.com/fledge-dev/fledge/internal/controller"
	"github.com/fledge-dev/fledge/internal/gateway"
	"github.com/fledge-dev/fledge/internal/localcp"
	"github.com/fledge-dev/fledge/internal/metricsource"
	"github.com/fledge-dev/fledge/internal/netns"
	"github.com/fledge-dev/fledge/internal/traffic/providers"
)

// SystemNamespace holds fledge's ServiceAccounts and leader-election Lease.
const SystemNamespace = "fledge-system"

// Options configure a Sandbox.
type Options struct {
	// Binary is the fledge binary that pods run (`fledge error-page ...`).
	Binary string
	// NetPrefix names the network namespaces (see netns.NewNetwork).
	NetPrefix string
	// Progress receives progress lines; nil discards.
	Progress io.Writer
	// Logger receives the controller's and gateway's logs; discarded when zero.
	Logger logr.Logger
	// ExtraCRDDirs are installed besides fledge's own CRDs.
	ExtraCRDDirs []string
	// Controller tunes the in-process controller; its addresses, leader
	// election and default provider are set by the sandbox when empty.
	Controller controller.Options
	// GatewayReplicas is the number of gateways to start (default 1).
	GatewayReplicas int
	// Prometheus starts Debian's prometheus scraping the gateways, and gives
	// the controller the prometheus metric source besides the builtin one.
	Prometheus bool
}

// Gateway is one running gateway replica.
type Gateway struct {
	// URL is its traffic address (http://127.0.0.1:port); it also speaks
	// h2c (HTTP/2 with prior knowledge).
	URL string
	// HTTPSAddr is its HTTPS listener (127.0.0.1:port).
	HTTPSAddr string
	// AdminURL serves its /metrics, /readyz and /routes.
	AdminURL string
}

// Sandbox is fledge running on a local control plane.
type Sandbox struct {
	CP     *localcp.ControlPlane
	Client client.Client
	Net    *netns.Network
	// GatewayURL is the embedded gateway's traffic address (http://127.0.0.1:port).
	GatewayURL string
	// GatewayAdminURL serves the gateway's /metrics, /readyz and /routes.
	GatewayAdminURL string
	// Gateways are all running gateway replicas; the first is GatewayURL.
	Gateways []Gateway

	gwMu           sync.Mutex
	promAddr       string
	promDir        string
	stopPrometheus func()
	runCtx         context.Context
	stopController context.CancelFunc
	controllerDone chan struct{}

	opts    Options
	crdDir  string
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	errMu   sync.Mutex
	errs    []error
	http    *http.Client
	closeMu sync.Once
}

func (s *Sandbox) progress(format string, args ...any) {
	if s.opts.Progress != nil {
		fmt.Fprintf(s.opts.Progress, format+"\n", args...)
	}
}

// Start builds (if needed) and starts the control plane, applies fledge's CRDs
// and RBAC, and starts the controller and one gateway.
func Start(ctx context.Context, opts Options) (_ *Sandbox, err error) {
	if err := netns.Supported(); err != nil {
		return nil, err
	}
	if opts.NetPrefix == "" {
		opts.NetPrefix = "fledge"
	}
	s := &Sandbox{opts: opts, http: &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64},
	}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.crdDir, err = extract("crds"); err != nil {
		return nil, err
	}
	s.progress("starting kube-apiserver and etcd (the first run builds them: minutes)...")
	s.CP, err = localcp.Start(ctx, localcp.Options{CRDDirs: append([]string{s.crdDir}, opts.ExtraCRDDirs...), Progress: opts.Progress})
	if err != nil {
		return nil, err
	}
	if s.Client, err = client.New(s.CP.Config, client.Options{Scheme: controller.Scheme()}); err != nil {
		return nil, err
	}
	for _, f := range []string{"namespace.yaml", "rbac/controller.yaml", "rbac/gateway.yaml"} {
		if out, err := s.KubectlFile(ctx, f, "apply", "-f", "-"); err != nil {
			return nil, fmt.Errorf("kubectl apply %s: %w: %s", f, err, out)
		}
	}
	if err := netns.Cleanup(ctx, opts.NetPrefix); err != nil {
		return nil, fmt.Errorf("removing leftovers of an earlier run: %w", err)
	}
	if s.Net, err = netns.NewNetwork(ctx, opts.NetPrefix, netip.Prefix{}); err != nil {
		return nil, err
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel, s.runCtx = cancel, runCtx
	if opts.Prometheus {
		if s.promAddr = freeAddr(); s.promAddr == "" {
			return nil, errors.New("no free loopback port for prometheus")
		}
	}
	s.StartController()
	replicas := max(opts.GatewayReplicas, 1)
	for range replicas {
		if _, err := s.StartGateway(ctx); err != nil {
			return nil, err
		}
	}
	s.GatewayURL, s.GatewayAdminURL = s.Gateways[0].URL, s.Gateways[0].AdminURL
	if opts.Prometheus {
		if err := s.startPrometheus(ctx, s.promAddr); err != nil {
			return nil, err
		}
	}
	s.progress("control plane at %s, gateway at %s", s.CP.Config.Host, s.GatewayURL)
	return s, nil
}

// StartController starts the controller in-process, as the fledge-controller
// ServiceAccount, with leader election on.
func (s *Sandbox) StartController() {
	s.stopController, s.controllerDone = s.startController()
}

// StartStandbyController starts one more controller replica: it waits for
// the leader-election Lease. stop ends it and waits until it has.
func (s *Sandbox) StartStandbyController() (stop func()) {
	cancel, done := s.startController()
	return func() { cancel(); <-done }
}

func (s *Sandbox) startController() (context.CancelFunc, chan struct{}) {
	copts := s.opts.Controller
	if copts.MetricsAddr == "" {
		copts.MetricsAddr = "0"
	}
	if copts.HealthAddr == "" {
		copts.HealthAddr = "0"
	}
	copts.LeaderElect = true
	copts.LeaderElectionNamespace = SystemNamespace
	copts.SkipNameValidation = true
	if copts.Workers == 0 {
		copts.Workers = 4 // as the fledge binary's default
	}
	if copts.Routers == nil {
		copts.Routers = func(c client.Client) (controller.Resolver, error) { return providers.New(c, providers.Config{}) }
	}
	if copts.MetricSources == nil {
		// The builtin source scrapes the sandbox's gateways, whichever run.
		builtin := metricsource.NewBuiltin(gatewayTargets{s, metricsource.DefaultMetricsPath}, metricsource.BuiltinOptions{})
		promURL := s.promAddr
		copts.MetricSources = func(client.Reader) (map[fledgev1.MetricSource]metricsource.Source, error) {
			sources := map[fledgev1.MetricSource]metricsource.Source{fledgev1.MetricSourceBuiltin: builtin}
			if promURL != "" {
				prom, err := metricsource.NewPrometheus(metricsource.PrometheusOptions{URL: "http://" + promURL})
				if err != nil {
					return nil, err
				}
				sources[fledgev1.MetricSourcePrometheus] = prom
			}
			return sources, nil
		}
		copts.DefaultMetricSource = fledgev1.MetricSourceBuiltin
	}
	if copts.GatewayReplicas == nil {
		// Routed is what the sandbox's gateways serve, whichever run.
		copts.GatewayReplicas = func(client.Reader) metricsource.Targets { return gatewayTargets{s, metricsource.RoutesPath} }
	}
	ctx, cancel := context.WithCancel(s.runCtx)
	done := make(chan struct{})
	s.run("controller", func() error {
		defer close(done)
		return controller.Run(logr.NewContext(ctx, s.opts.Logger.WithName("controller")), s.serviceAccount("fledge-controller"), copts)
	})
	return cancel, done
}

// StopController stops the controller started by StartController and waits
// until it has ended (it releases its Lease).
func (s *Sandbox) StopController() {
	s.stopController()
	<-s.controllerDone
}

// gatewayTargets lists the URLs of path (/metrics, /routes) on the admin
// port of the sandbox's gateways.
type gatewayTargets struct {
	s    *Sandbox
	path string
}

func (g gatewayTargets) URLs(context.Context) ([]string, error) {
	g.s.gwMu.Lock()
	defer g.s.gwMu.Unlock()
	urls := make([]string, len(g.s.Gateways))
	for i, gw := range g.s.Gateways {
		urls[i] = gw.AdminURL + g.path
	}
	return urls, nil
}

// AddGateway counts a gateway replica that a test runs itself among the
// sandbox's (the controller asks it, WaitServed waits for it) until remove.
func (s *Sandbox) AddGateway(g Gateway) (remove func()) {
	s.gwMu.Lock()
	defer s.gwMu.Unlock()
	s.Gateways = append(s.Gateways, g)
	return func() {
		s.gwMu.Lock()
		defer s.gwMu.Unlock()
		s.Gateways = slices.DeleteFunc(slices.Clone(s.Gateways), func(o Gateway) bool { return o == g })
	}
}

// RestartController stops the controller, waits until it has ended, and
// starts a new one.
func (s *Sandbox) RestartController() {
	s.StopController()
	s.StartController()
}

// StartGateway starts one more gateway replica, as the fledge-gateway
// ServiceAccount, and waits until it is ready.
func (s *Sandbox) StartGateway(ctx context.Context) (Gateway, error) {
	httpAddr, httpsAddr, adminAddr := freeAddr(), freeAddr(), freeAddr()
	if httpAddr == "" || httpsAddr == "" || adminAddr == "" {
		return Gateway{}, errors.New("no free loopback port for the gateway")
	}
	g := Gateway{URL: "http://" + httpAddr, HTTPSAddr: httpsAddr, AdminURL: "http://" + adminAddr}
	s.run("gateway", func() error {
		return gateway.Run(logr.NewContext(s.runCtx, s.opts.Logger.WithName("gateway")), s.serviceAccount("fledge-gateway"),
			gateway.Options{HTTPAddr: httpAddr, HTTPSAddr: httpsAddr, H2C: true, MetricsAddr: adminAddr, DrainTimeout: 2 * time.Second})
	})
	err := s.waitFor(ctx, "gateway ready", func() (bool, error) {
		resp, err := s.http.Get(g.AdminURL + "/readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return Gateway{}, err
	}
	s.gwMu.Lock()
	s.Gateways = append(s.Gateways, g)
	s.gwMu.Unlock()
	return g, nil
}

func (s *Sandbox) serviceAccount(name string) *rest.Config {
	cfg := rest.CopyConfig(s.CP.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + SystemNamespace + ":" + name}
	return cfg
}

func (s *Sandbox) run(name string, f func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := f(); err != nil {
			s.errMu.Lock()
			s.errs = append(s.errs, fmt.Errorf("%s: %w", name, err))
			s.errMu.Unlock()
		}
	}()
}

// Err reports a failure of the in-process controller or gateway.
func (s *Sandbox) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return errors.Join(s.errs...)
}

// Close stops everything the sandbox started and removes the pods' namespaces.
func (s *Sandbox) Close() error {
	var errs []error
	s.closeMu.Do(func() {
		if s.cancel != nil {
			s.cancel()
			s.wg.Wait()
		}
		if s.stopPrometheus != nil {
			s.stopPrometheus()
		}
		if s.promDir != "" {
			_ = os.RemoveAll(s.promDir)
		}
		if s.Net != nil {
			errs = append(errs, s.Net.Close())
		}
		if s.CP != nil {
			errs = append(errs, s.CP.Stop())
		}
		if s.crdDir != "" {
			_ = os.RemoveAll(s.crdDir)
		}
		errs = append(errs, s.Err())
	})
	return errors.Join(errs...)
}

// Kubectl runs the control plane's kubectl and returns its combined output.
func (s *Sandbox) Kubectl(ctx context.Context, args ...string) (string, error) {
	out, err := s.CP.KubectlCommand(ctx, args...).CombinedOutput()
	return string(out), err
}

// KubectlFile runs kubectl with a file of deploy/ on its standard input.
func (s *Sandbox) KubectlFile(ctx context.Context, file string, args ...string) (string, error) {
	f, err := deploy.FS.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	cmd := s.CP.KubectlCommand(ctx, args...)
	cmd.Stdin = f
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Pod is an error-page "pod".
type Pod = netns.Pod

// RunErrorPage starts `fledge error-page <version>` on port 9011 in a new pod.
func (s *Sandbox) RunErrorPage(ctx context.Context, name, version string, extraArgs ...string) (*Pod, error) {
	pod, err := s.Net.AddPod(ctx, name)
	if err != nil {
		return nil, err
	}
	args := append([]string{"error-page", version, "--addr", ":9011"}, extraArgs...)
	if _, err := pod.StartWith(ctx, netns.StartOptions{}, s.opts.Binary, args...); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := pod.WaitHTTP(wctx, 9011, "/healthz"); err != nil {
		return nil, err
	}
	return pod, nil
}

// SetEndpoints writes the EndpointSlice of a Service as the EndpointSlice
// controller would: one ready IPv4 endpoint per pod, the Service's ports with
// their target port numbers.
func (s *Sandbox) SetEndpoints(ctx context.Context, namespace, service string, targetPort int32, pods ...*Pod) error {
	var svc corev1.Service
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: service}, &svc); err != nil {
		return fmt.Errorf("reading service %s/%s: %w", namespace, service, err)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: service + "-sandbox", Labels: map[string]string{
			discoveryv1.LabelServiceName: service,
			discoveryv1.LabelManagedBy:   "endpointslice-controller.k8s.io",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for _, p := range svc.Spec.Ports {
		slice.Ports = append(slice.Ports, discoveryv1.EndpointPort{Name: ptr.To(p.Name), Port: ptr.To(targetPort), Protocol: ptr.To(corev1.ProtocolTCP)})
	}
	for _, p := range pods {
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{p.IP().String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: namespace, Name: p.Name()},
		})
	}
	var existing discoveryv1.EndpointSlice
	err := s.Client.Get(ctx, client.ObjectKeyFromObject(slice), &existing)
	switch {
	case apierrors.IsNotFound(err):
		return s.Client.Create(ctx, slice)
	case err != nil:
		return err
	}
	existing.Ports, existing.Endpoints = slice.Ports, slice.Endpoints
	return s.Client.Update(ctx, &existing)
}

// Counts are the answers to a batch of requests, by the version they name.
type Counts struct {
	// ByVersion counts 2xx answers by their "version" field.
	ByVersion map[string]int
	// Status counts every answer by HTTP status.
	Status map[int]int
}

// Get sends n GET requests for path with Host host through the gateway, one
// after the other, and counts the answers.
func (s *Sandbox) Get(ctx context.Context, n int, host, path string, header http.Header) (Counts, error) {
	return s.GetFrom(ctx, s.GatewayURL, n, host, path, header)
}

// GetFrom is Get through the gateway at url.
func (s *Sandbox) GetFrom(ctx context.Context, url string, n int, host, path string, header http.Header) (Counts, error) {
	c := Counts{ByVersion: map[string]int{}, Status: map[int]int{}}
	for range n {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+path, nil)
		if err != nil {
			return c, err
		}
		req.Host = host
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := s.http.Do(req)
		if err != nil {
			return c, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return c, err
		}
		c.Status[resp.StatusCode]++
		var answer struct {
			Version string `json:"version"`
		}
		if resp.StatusCode/100 == 2 && json.Unmarshal(body, &answer) == nil {
			c.ByVersion[answer.Version]++
		}
	}
	return c, nil
}

// WaitServed waits until every gateway serves host with the given canary
// weight (canary "" means no canary) and with ready endpoints for every backend.
func (s *Sandbox) WaitServed(ctx context.Context, host, stable, canary string, weight int32) error {
	for _, g := range s.Gateways {
		if err := s.waitServed(ctx, g, host, stable, canary, weight); err != nil {
			return err
		}
	}
	return nil
}

func (s *Sandbox) waitServed(ctx context.Context, g Gateway, host, stable, canary string, weight int32) error {
	return s.waitFor(ctx, fmt.Sprintf("gateway %s serving %s -> %s / %s at %d%%", g.URL, host, stable, canary, weight), func() (bool, error) {
		routes, err := s.GatewayRoutes(g)
		if err != nil {
			return false, nil
		}
		for _, r := range routes {
			if r.Host != host {
				continue
			}
			gotCanary := ""
			if r.Canary != nil {
				gotCanary = r.Canary.Service
				if len(r.Canary.Targets) == 0 {
					return false, nil
				}
			}
			return r.Stable.Service == stable && len(r.Stable.Targets) > 0 && gotCanary == canary && r.CanaryWeight == weight, nil
		}
		return false, nil
	})
}

// GatewayRoutes reads a gateway's /routes.
func (s *Sandbox) GatewayRoutes(g Gateway) ([]gateway.RouteInfo, error) {
	resp, err := s.http.Get(g.AdminURL + "/routes")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/routes: %s", resp.Status)
	}
	var body struct {
		Routes []gateway.RouteInfo `json:"routes"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	return body.Routes, err
}

// Release reads a Release.
func (s *Sandbox) Release(ctx context.Context, namespace, name string) (*fledgev1.Release, error) {
	var rel fledgev1.Release
	err := s.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &rel)
	return &rel, err
}

func (s *Sandbox) waitFor(ctx context.Context, what string, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ok {
			return nil
		}
		if err := s.Err(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// extract copies a folder of the embedded deploy/ files to a temporary folder.
func extract(dir string) (string, error) {
	tmp, err := os.MkdirTemp("", "fledge-"+dir+"-")
	if err != nil {
		return "", err
	}
	err = fs.WalkDir(deploy.FS, dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := deploy.FS.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(tmp, filepath.Base(path)), data, 0o644)
	})
	if err != nil {
		_ = os.RemoveAll(tmp)
		return "", err
	}
	return tmp, nil
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return ""
	}
	defer ln.Close()
	return ln.Addr().String()
}

// BuildBinary builds cmd/fledge into dir and returns its path (for tests).
func BuildBinary(ctx context.Context, dir string) (string, error) {
	root, err := localcp.RepoRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "fledge")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/fledge")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/fledge: %w: %s", err, strings.TrimSpace(string(b)))
	}
	return out, nil
}
