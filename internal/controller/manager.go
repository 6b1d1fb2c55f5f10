package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/apiwait"
	"github.com/fledge-dev/fledge/internal/metricsource"
	"github.com/fledge-dev/fledge/internal/traffic"
)

// Resolver says which traffic.Router serves a Release.
type Resolver interface {
	// Router returns the router of provider p for an application whose
	// Release has spec (a provider may read its own settings there, such as
	// spec.gatewayParents), or an error when p is not enabled.
	Router(p fledgev1.Provider, spec *fledgev1.ReleaseSpec) (traffic.Router, error)
	// FollowsEndpoints reports whether provider p copies the endpoints of
	// Services (so an application must be routed again when its Services'
	// EndpointSlices change).
	FollowsEndpoints(p fledgev1.Provider) bool
}

// Options configure the controller process.
type Options struct {
	// MetricsAddr serves Prometheus metrics ("0" disables).
	MetricsAddr string
	// HealthAddr serves /healthz and /readyz ("0" disables).
	HealthAddr string
	// LeaderElect turns on leader election through a Lease.
	LeaderElect bool
	// LeaderElectionNamespace holds the Lease; the in-cluster namespace when empty.
	LeaderElectionNamespace string
	// LeaseDuration, RenewDeadline and RetryPeriod time the leader election
	// (see ValidateLeaderElection); zero takes the defaults.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Namespace limits the controller to one namespace; all when empty.
	Namespace string
	// DefaultProvider moves traffic for Releases that name no provider.
	DefaultProvider fledgev1.Provider
	// Routers, given the manager's client, returns which router serves each
	// Release: the providers are composed outside the controller (package
	// traffic/providers), which knows none of them. Required.
	Routers func(c client.Client) (Resolver, error)
	// MetricSources, given an uncached reader (the cache may not cover the
	// gateway's namespace), returns the sources of counts for automated
	// releases; DefaultMetricSource is used when a policy names none.
	MetricSources       func(r client.Reader) (map[fledgev1.MetricSource]metricsource.Source, error)
	DefaultMetricSource fledgev1.MetricSource
	// GatewayReplicas, given an uncached reader, lists the /routes URLs of the
	// ready gateway replicas (metricsource.EndpointSliceTargets with
	// metricsource.RoutesPath): the embedded provider's Routed condition and
	// effectiveWeight are then what those replicas serve (Propagating while
	// some do not yet, HostConflict when another application holds the host),
	// and the TrafficRoute's read-back only while none answers. Nil: the
	// TrafficRoute's read-back alone.
	GatewayReplicas func(r client.Reader) metricsource.Targets
	// AnalysisInterval is how often running automated releases are judged
	// (default 1s).
	AnalysisInterval time.Duration
	// SkipNameValidation lets one process run the controller more than once
	// (tests that restart it in-process).
	SkipNameValidation bool
	// QPS and Burst limit the controller's requests to the API server
	// (client-go's token bucket, one per kind of object). When both are 0 the
	// configuration's own are kept; when it has none either, there is no
	// client-side limit (see Run).
	QPS   float32
	Burst int
	// Workers is how many Releases are reconciled at once (default 1).
	Workers int
}

// Scheme returns the scheme with the kinds the controller reads and writes.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(fledgev1.AddToScheme(s))
	return s
}

// Leader election defaults. A standby takes over at most LeaseDuration plus
// RetryPeriod after the leader's last renewal: 6 s to 7 s after a crash
// (Kubernetes' own components use 15 s, 10 s and 2 s: 15 s to 17 s). The
// leader retries to renew every second for 4 s before it gives up, so an
// API server that answers within a few seconds does not cost it the lead.
const (
	DefaultLeaseDuration = 6 * time.Second
	DefaultRenewDeadline = 4 * time.Second
	DefaultRetryPeriod   = time.Second
)

// ValidateLeaderElection checks the leader election's timing: every value
// positive, the lease longer than the renew deadline, and the renew deadline
// longer than the retry period with its jitter (1.2×), as client-go requires.
func ValidateLeaderElection(lease, renew, retry time.Duration) error {
	switch {
	case lease <= 0 || renew <= 0 || retry <= 0:
		return fmt.Errorf("--leader-elect-lease-duration %v, --leader-elect-renew-deadline %v, --leader-elect-retry-period %v: must be positive", lease, renew, retry)
	case lease <= renew:
		return fmt.Errorf("--leader-elect-lease-duration %v must be longer than --leader-elect-renew-deadline %v", lease, renew)
	case float64(renew) <= 1.2*float64(retry):
		return fmt.Errorf("--leader-elect-renew-deadline %v must be longer than 1.2 × --leader-elect-retry-period %v", renew, retry)
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// LeaderElectionID is the name of the controller's Lease.
const LeaderElectionID = "fledge-controller"

// Run runs the controller until ctx is done.
//
// Its connections to the API server wait for it while it is down
// (package apiwait), so informers follow changes again as soon as it is back.
// With leader election the controller runs in terms: each term is a manager
// that waits for the Lease, then reconciles. Losing the Lease (the API server
// did not answer a renewal within the renew deadline, as in an outage) ends
// the term and stops every worker, as a restart of the process would; the next
// term starts at once under the same identity, so the controller leads again
// as soon as the API server answers (a standby takes over instead if it got
// the Lease first). Metrics and health are served by the process across terms.
func Run(ctx context.Context, cfg *rest.Config, opts Options) error {
	if opts.Routers == nil {
		return errors.New("no traffic providers (Options.Routers)")
	}
	if opts.DefaultProvider == "" {
		opts.DefaultProvider = fledgev1.ProviderEmbedded
	}
	cfg = apiwait.Config(withLimits(cfg, opts.QPS, opts.Burst))
	stopServing, err := serveProcess(ctx, opts.MetricsAddr, opts.HealthAddr)
	if err != nil {
		return err
	}
	defer stopServing()
	var lock resourcelock.Interface
	if opts.LeaderElect {
		var stopEvents func()
		if lock, stopEvents, err = newLeaderLock(cfg, opts); err != nil {
			return err
		}
		defer stopEvents()
	}
	logger := logr.FromContextOrDiscard(ctx)
	for term := 1; ; term++ {
		err := runTerm(ctx, cfg, opts, lock, term)
		if err == nil || ctx.Err() != nil || !lostLead(err) {
			return err
		}
		logger.Info("lost the leader election; rejoining it", "term", term)
	}
}

// lostLead reports whether a manager ended because it lost the leader
// election (controller-runtime reports it only by this message).
func lostLead(err error) bool {
	return err != nil && strings.Contains(err.Error(), "leader election lost")
}

// runTerm runs one manager until ctx is done or it loses the Lease.
func runTerm(ctx context.Context, cfg *rest.Config, opts Options, lock resourcelock.Interface, term int) error {
	mgrOpts := ctrl.Options{
		Scheme: Scheme(),
		// Served by the process (serveProcess), across terms.
		Metrics:                             metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:              "0",
		LeaderElection:                      opts.LeaderElect,
		LeaderElectionID:                    LeaderElectionID,
		LeaderElectionNamespace:             opts.LeaderElectionNamespace,
		LeaderElectionResourceLockInterface: lock,
		LeaderElectionReleaseOnCancel:       true,
		LeaseDuration:                       ptr.To(orDefault(opts.LeaseDuration, DefaultLeaseDuration)),
		RenewDeadline:                       ptr.To(orDefault(opts.RenewDeadline, DefaultRenewDeadline)),
		RetryPeriod:                         ptr.To(orDefault(opts.RetryPeriod, DefaultRetryPeriod)),
		GracefulShutdownTimeout:             ptr.To(10 * time.Second),
		Client: client.Options{Cache: &client.CacheOptions{
			// Read-back of the routing goes to the API server, not a cache.
			DisableFor: []client.Object{&fledgev1.TrafficRoute{}},
		}},
	}
	if opts.Namespace != "" {
		mgrOpts.Cache = cache.Options{DefaultNamespaces: map[string]cache.Config{opts.Namespace: {}}}
	}
	// The controller never reads managedFields; they are most of a cached
	// Service's size.
	mgrOpts.Cache.DefaultTransform = cache.TransformStripManagedFields()
	mgr, err := ctrl.NewManager(cfg, mgrOpts)
	if err != nil {
		return fmt.Errorf("creating controller manager: %w", err)
	}
	routers, err := opts.Routers(mgr.GetClient())
	if err != nil {
		return err
	}
	var sources map[fledgev1.MetricSource]metricsource.Source
	if opts.MetricSources != nil {
		if sources, err = opts.MetricSources(mgr.GetAPIReader()); err != nil {
			return err
		}
	}
	if _, ok := sources[opts.DefaultMetricSource]; opts.DefaultMetricSource != "" && !ok {
		return fmt.Errorf("--metric-source %q is not enabled", opts.DefaultMetricSource)
	}
	if _, err := routers.Router(opts.DefaultProvider, &fledgev1.ReleaseSpec{}); err != nil {
		return fmt.Errorf("--default-provider %q is not enabled", opts.DefaultProvider)
	}
	rec := &ReleaseReconciler{
		Client:              mgr.GetClient(),
		Recorder:            mgr.GetEventRecorder("fledge-controller"),
		Routers:             routers,
		DefaultProvider:     opts.DefaultProvider,
		MetricSources:       sources,
		DefaultMetricSource: opts.DefaultMetricSource,
		AnalysisInterval:    opts.AnalysisInterval,
		Workers:             opts.Workers,
	}
	if opts.GatewayReplicas != nil {
		rec.GatewayReplicas = opts.GatewayReplicas(mgr.GetAPIReader())
	}
	// Controller names are unique in a process: a later term runs the same
	// controller again.
	rec.skipNameValidation = opts.SkipNameValidation || term > 1
	if err := rec.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up release controller: %w", err)
	}
	return mgr.Start(ctx)
}

// inClusterNamespace is where a Pod reads its own namespace.
const inClusterNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// newLeaderLock returns the Lease lock of every term, with one identity for
// the life of the process, and a function that stops its event recorder.
func newLeaderLock(cfg *rest.Config, opts Options) (resourcelock.Interface, func(), error) {
	ns := opts.LeaderElectionNamespace
	if ns == "" {
		b, err := os.ReadFile(inClusterNamespace)
		if err != nil {
			return nil, nil, fmt.Errorf("--leader-election-namespace is needed outside a cluster: %w", err)
		}
		ns = strings.TrimSpace(string(b))
	}
	host, err := os.Hostname()
	if err != nil {
		return nil, nil, err
	}
	id := host + "_" + string(uuid.NewUUID())
	// As controller-runtime does: a hung request must not cost the lead, so
	// one request lasts at most half the renew deadline.
	lcfg := rest.AddUserAgent(rest.CopyConfig(cfg), "leader-election")
	lcfg.Timeout = max(orDefault(opts.RenewDeadline, DefaultRenewDeadline)/2, time.Second)
	cs, err := kubernetes.NewForConfig(lcfg)
	if err != nil {
		return nil, nil, err
	}
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events(ns)})
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, ns, LeaderElectionID, cs.CoreV1(), cs.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: id, EventRecorder: broadcaster.NewRecorder(Scheme(), corev1.EventSource{Component: id})})
	if err != nil {
		broadcaster.Shutdown()
		return nil, nil, err
	}
	return lock, broadcaster.Shutdown, nil
}

// serveProcess serves Prometheus metrics (controller-runtime's registry) on
// metricsAddr and /healthz and /readyz on healthAddr ("0" or "" disables
// either) until ctx is done; stop stops both and waits.
func serveProcess(ctx context.Context, metricsAddr, healthAddr string) (stop func(), err error) {
	var servers []*http.Server
	var lns []net.Listener
	add := func(addr string, h http.Handler) error {
		if addr == "" || addr == "0" {
			return nil
		}
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		lns = append(lns, ln)
		servers = append(servers, &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second})
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	health := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }
	health.HandleFunc("/healthz", ok)
	health.HandleFunc("/readyz", ok)
	if err := errors.Join(add(metricsAddr, mux), add(healthAddr, health)); err != nil {
		for _, ln := range lns {
			_ = ln.Close()
		}
		return nil, err
	}
	var wg sync.WaitGroup
	for i, srv := range servers {
		wg.Go(func() { _ = srv.Serve(lns[i]) })
	}
	return func() {
		for _, srv := range servers {
			_ = srv.Close()
		}
		wg.Wait()
	}, nil
}

// withLimits returns a copy of cfg with the client-side limits of Options.
func withLimits(cfg *rest.Config, qps float32, burst int) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	switch {
	case qps != 0 || burst != 0:
		cfg.QPS, cfg.Burst = qps, burst
	case cfg.QPS == 0 && cfg.Burst == 0:
		// Unset (clientcmd and rest.InClusterConfig leave it so), client-go
		// would allow 5 requests a second per kind, about 2 applications
		// verified a second (docs/scale.md). As controller-runtime's
		// ctrl.GetConfig: no client-side limit; the API server's Priority and
		// Fairness protects it, and each worker has one request in flight.
		cfg.QPS = -1
	}
	return cfg
}
