package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/controller"
	"github.com/fledge-dev/fledge/internal/metricsource"
)

// `fledge controller` is wired in three steps, in this order: the flags are
// parsed (controllerFlags), validated without I/O (validate, table-tested),
// then what needs the cluster or the file system is built (build): the
// providers (providerflags.go) and the metric sources (autoflags.go).

// controllerFlags are the flags of `fledge controller`, as given.
type controllerFlags struct {
	kubeconfig     string
	provider       string
	verifyReplicas bool
	opts           controller.Options

	providers providerFlags
	metrics   metricFlags
}

// controllerConfig is what the flags ask for, validated.
type controllerConfig struct {
	opts      controller.Options
	providers providerConfig
	metrics   metricConfig
	// verifyReplicas: the embedded provider's Routed is what the gateway
	// replicas serve (their /routes), not only the TrafficRoute.
	verifyReplicas bool
}

func newControllerCommand() *cobra.Command {
	var f controllerFlags
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the controller: Services' annotations and Releases become routing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.validate()
			if err != nil {
				return err
			}
			cfg, err := restConfig(f.kubeconfig)
			if err != nil {
				return err
			}
			opts, err := c.build(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			return controller.Run(cmd.Context(), cfg, opts)
		},
	}
	f.bind(cmd.Flags())
	return cmd
}

// bind binds the flags of `fledge controller`.
func (f *controllerFlags) bind(fs *pflag.FlagSet) {
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then in-cluster)")
	fs.StringVar(&f.opts.MetricsAddr, "metrics-addr", ":8080", `address serving Prometheus metrics ("0" disables)`)
	fs.StringVar(&f.opts.HealthAddr, "health-addr", ":8081", `address serving /healthz and /readyz ("0" disables)`)
	fs.BoolVar(&f.opts.LeaderElect, "leader-elect", true, "elect one active controller through a Lease")
	fs.StringVar(&f.opts.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the Lease (default: the controller's own)")
	fs.DurationVar(&f.opts.LeaseDuration, "leader-elect-lease-duration", controller.DefaultLeaseDuration,
		"how long a standby waits after the leader's last renewal before it takes over (the failover time after a crash)")
	fs.DurationVar(&f.opts.RenewDeadline, "leader-elect-renew-deadline", controller.DefaultRenewDeadline,
		"how long the leader keeps retrying to renew before it gives up leading (must be under the lease duration)")
	fs.DurationVar(&f.opts.RetryPeriod, "leader-elect-retry-period", controller.DefaultRetryPeriod,
		"how often the leader renews and a standby tries to take over")
	fs.StringVar(&f.opts.Namespace, "namespace", "", "watch only this namespace (default: all)")
	fs.StringVar(&f.provider, "default-provider", string(fledgev1.ProviderEmbedded),
		"traffic provider for applications that name none: "+fledgev1.ProviderNames())
	fs.IntVar(&f.opts.Workers, "workers", 4, "applications reconciled at once")
	fs.Float32Var(&f.opts.QPS, "kube-api-qps", 0, "client-side limit of requests per second to the API server (0: none; the API server's priority and fairness applies)")
	fs.IntVar(&f.opts.Burst, "kube-api-burst", 0, "client-side burst of requests to the API server (with --kube-api-qps)")
	fs.DurationVar(&f.opts.AnalysisInterval, "analysis-interval", controller.DefaultAnalysisInterval, "how often running automated releases are judged")
	fs.BoolVar(&f.verifyReplicas, "verify-gateway-replicas", true,
		"embedded provider: Routed and effectiveWeight are what the ready gateway replicas serve (their /routes, on the endpoints of --gateway-metrics-service); false: the TrafficRoute read back")
	f.providers.bind(fs)
	f.metrics.bind(fs)
}

// validate checks the flags, without I/O.
func (f *controllerFlags) validate() (controllerConfig, error) {
	c := controllerConfig{opts: f.opts, verifyReplicas: f.verifyReplicas}
	p, err := fledgev1.ParseProvider(f.provider)
	if err != nil {
		return controllerConfig{}, fmt.Errorf("--default-provider %q: %w", f.provider, err)
	}
	c.opts.DefaultProvider = p
	if c.opts.Workers < 1 {
		return controllerConfig{}, fmt.Errorf("--workers %d: want at least 1", c.opts.Workers)
	}
	if c.opts.QPS < 0 || c.opts.Burst < 0 {
		return controllerConfig{}, fmt.Errorf("--kube-api-qps %v, --kube-api-burst %d: must not be negative", c.opts.QPS, c.opts.Burst)
	}
	if err := controller.ValidateLeaderElection(c.opts.LeaseDuration, c.opts.RenewDeadline, c.opts.RetryPeriod); err != nil {
		return controllerConfig{}, err
	}
	if err := errors.Join(listenAddr("metrics-addr", c.opts.MetricsAddr, true), listenAddr("health-addr", c.opts.HealthAddr, true)); err != nil {
		return controllerConfig{}, err
	}
	if c.opts.AnalysisInterval <= 0 {
		return controllerConfig{}, fmt.Errorf("--analysis-interval %v: must be positive", c.opts.AnalysisInterval)
	}
	if c.providers, err = f.providers.validate(p); err != nil {
		return controllerConfig{}, err
	}
	if c.metrics, err = f.metrics.validate(); err != nil {
		return controllerConfig{}, err
	}
	c.opts.DefaultMetricSource = c.metrics.source
	return c, nil
}

// build makes the controller's options: it reads the secrets the flags name
// and prepares the providers and metric sources.
func (c controllerConfig) build(ctx context.Context, cfg *rest.Config) (controller.Options, error) {
	opts := c.opts
	var err error
	if opts.Routers, err = c.providers.build(ctx, cfg); err != nil {
		return controller.Options{}, err
	}
	if opts.MetricSources, err = c.metrics.build(); err != nil {
		return controller.Options{}, err
	}
	if c.verifyReplicas {
		opts.GatewayReplicas = func(r client.Reader) metricsource.Targets {
			return c.metrics.gatewayReplicas(r, metricsource.RoutesPath)
		}
	}
	return opts, nil
}

// namespacedName parses the namespace/name value of flag.
func namespacedName(flag, s string) (types.NamespacedName, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" {
		return types.NamespacedName{}, fmt.Errorf("%s %q: want namespace/name", flag, s)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}
