package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/metricsource"
	"github.com/fledge-dev/fledge/internal/notify"
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
	// NotifyDefaults are Secrets (key url, optional key format) whose
	// webhooks are told of every automated release's decisions, besides the
	// ones an application names in its fledge.dev/notify annotation.
	NotifyDefaults []types.NamespacedName
	// Notify tunes the delivery of notifications (retries, backoff); its
	// OnFailure is the controller's (a Warning Event).
	Notify notify.Options
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
func Run(ctx context.Context, cfg *rest.Config, opts Options) error {
	if opts.Routers == nil {
		return errors.New("no traffic providers (Options.Routers)")
	}
	if opts.DefaultProvider == "" {
		opts.DefaultProvider = fledgev1.ProviderEmbedded
	}
	mgrOpts := ctrl.Options{
		Scheme:                        Scheme(),
		Metrics:                       metricsserver.Options{BindAddress: opts.MetricsAddr},
		HealthProbeBindAddress:        opts.HealthAddr,
		LeaderElection:                opts.LeaderElect,
		LeaderElectionID:              LeaderElectionID,
		LeaderElectionNamespace:       opts.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 ptr.To(orDefault(opts.LeaseDuration, DefaultLeaseDuration)),
		RenewDeadline:                 ptr.To(orDefault(opts.RenewDeadline, DefaultRenewDeadline)),
		RetryPeriod:                   ptr.To(orDefault(opts.RetryPeriod, DefaultRetryPeriod)),
		GracefulShutdownTimeout:       ptr.To(10 * time.Second),
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
	mgr, err := ctrl.NewManager(withLimits(cfg, opts.QPS, opts.Burst), mgrOpts)
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
	nopts := opts.Notify
	log := ctrl.Log.WithName("notify")
	nopts.OnFailure = func(n notify.Notification, t notify.Target, err error) {
		// The target's name is its Secret's, never its URL.
		log.Info("notification failed", "release", klog.KRef(n.Namespace, n.App), "decision", n.Decision, "target", t.Name, "error", err.Error())
		if rel, ok := n.Ref.(*fledgev1.Release); ok {
			rec.Recorder.Eventf(rel, nil, corev1.EventTypeWarning, ReasonNotificationFailed, "Notify",
				"could not tell %s of decision %s: %v", t.Name, n.Decision, err)
		}
	}
	notifier := notify.New(nopts)
	if err := mgr.Add(notifier); err != nil {
		return err
	}
	rec.Notify = &Notifications{Sender: notifier, Secrets: mgr.GetAPIReader(), Defaults: opts.NotifyDefaults}
	if opts.SkipNameValidation {
		rec.skipNameValidation = true
	}
	if err := rec.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up release controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	return mgr.Start(ctx)
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
