package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/controller"
	"github.com/fledge-dev/fledge/internal/traffic"
	"github.com/fledge-dev/fledge/internal/traffic/apisix"
)

// controllerFlags are the flags of `fledge controller`.
type controllerFlags struct {
	kubeconfig string
	provider   string
	opts       controller.Options

	apisixURL       string
	apisixSecret    string
	apisixSecretKey string
	apisixDiscovery bool

	gatewayParents []string
	auto           autoFlags
	prom           promFlags
}

func newControllerCommand() *cobra.Command {
	var f controllerFlags
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the controller: Services' annotations and Releases become routing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			cfg, err := restConfig(f.kubeconfig)
			if err != nil {
				return err
			}
			if err := f.complete(cmd.Context(), cfg); err != nil {
				return err
			}
			return controller.Run(cmd.Context(), cfg, f.opts)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then in-cluster)")
	fs.StringVar(&f.opts.MetricsAddr, "metrics-addr", ":8080", `address serving Prometheus metrics ("0" disables)`)
	fs.StringVar(&f.opts.HealthAddr, "health-addr", ":8081", `address serving /healthz and /readyz ("0" disables)`)
	fs.BoolVar(&f.opts.LeaderElect, "leader-elect", true, "elect one active controller through a Lease")
	fs.StringVar(&f.opts.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the Lease (default: the controller's own)")
	fs.StringVar(&f.opts.Namespace, "namespace", "", "watch only this namespace (default: all)")
	fs.StringVar(&f.provider, "default-provider", string(fledgev1.ProviderEmbedded),
		"traffic provider for applications that name none: embedded, apisix or gatewayapi")
	fs.IntVar(&f.opts.Workers, "workers", 4, "applications reconciled at once")
	fs.Float32Var(&f.opts.QPS, "kube-api-qps", 0, "client-side limit of requests per second to the API server (0: none; the API server's priority and fairness applies)")
	fs.IntVar(&f.opts.Burst, "kube-api-burst", 0, "client-side burst of requests to the API server (with --kube-api-qps)")
	fs.DurationVar(&f.opts.AnalysisInterval, "analysis-interval", controller.DefaultAnalysisInterval, "how often running automated releases are judged")
	fs.StringVar(&f.apisixURL, "apisix-admin-url", "", "APISIX Admin API address (enables the apisix provider), e.g. http://apisix-admin.apisix:9180")
	fs.StringVar(&f.apisixSecret, "apisix-key-secret", "fledge-system/fledge-apisix", "namespace/name of the Secret holding the APISIX Admin API key")
	fs.StringVar(&f.apisixSecretKey, "apisix-key-secret-key", "key", "entry of that Secret holding the key")
	fs.BoolVar(&f.apisixDiscovery, "apisix-discovery", false, "let APISIX find endpoints with its Kubernetes discovery instead of copying them into upstream nodes")
	bindAutoFlags(fs, &f)
	return cmd
}

// validate checks the flags that need no cluster.
func (f *controllerFlags) validate() error {
	switch p := fledgev1.Provider(f.provider); p {
	case fledgev1.ProviderEmbedded, fledgev1.ProviderAPISIX, fledgev1.ProviderGatewayAPI:
		f.opts.DefaultProvider = p
	default:
		return fmt.Errorf("--default-provider %q: want embedded, apisix or gatewayapi", f.provider)
	}
	if f.opts.DefaultProvider == fledgev1.ProviderAPISIX && f.apisixURL == "" {
		return fmt.Errorf("--default-provider apisix needs --apisix-admin-url")
	}
	if f.opts.DefaultProvider == fledgev1.ProviderGatewayAPI && len(f.gatewayParents) == 0 {
		return fmt.Errorf("--default-provider gatewayapi needs --gateway-api-parent")
	}
	if f.opts.Workers < 1 {
		return fmt.Errorf("--workers %d: want at least 1", f.opts.Workers)
	}
	if f.opts.QPS < 0 || f.opts.Burst < 0 {
		return fmt.Errorf("--kube-api-qps %v, --kube-api-burst %d: must not be negative", f.opts.QPS, f.opts.Burst)
	}
	if f.opts.AnalysisInterval <= 0 {
		return fmt.Errorf("--analysis-interval %v: must be positive", f.opts.AnalysisInterval)
	}
	if ns, name, ok := strings.Cut(f.apisixSecret, "/"); !ok || ns == "" || name == "" {
		return fmt.Errorf("--apisix-key-secret %q: want namespace/name", f.apisixSecret)
	}
	if _, err := f.gatewayAPIParents(); err != nil {
		return err
	}
	return f.completeAuto()
}

// complete builds the optional providers, reading the APISIX key Secret.
func (f *controllerFlags) complete(ctx context.Context, cfg *rest.Config) error {
	var apisixKey string
	if f.apisixURL != "" {
		ns, name, _ := strings.Cut(f.apisixSecret, "/")
		reader, err := client.New(cfg, client.Options{Scheme: controller.Scheme()})
		if err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if apisixKey, err = apisix.APIKeyFromSecret(rctx, reader, ns, name, f.apisixSecretKey); err != nil {
			return err
		}
	}
	gatewayParents, err := f.gatewayAPIParents()
	if err != nil {
		return err
	}
	f.opts.Routers = func(c client.Client) (map[fledgev1.Provider]traffic.Router, error) {
		routers := map[fledgev1.Provider]traffic.Router{}
		if f.apisixURL != "" {
			r, err := apisix.New(apisix.Config{BaseURL: f.apisixURL, APIKey: apisixKey, Discovery: f.apisixDiscovery,
				Resolver: apisix.EndpointSliceResolver{Reader: c}})
			if err != nil {
				return nil, fmt.Errorf("--apisix-admin-url: %w", err)
			}
			routers[fledgev1.ProviderAPISIX] = r
		}
		if gatewayParents != nil {
			r, err := gatewayParents(c)
			if err != nil {
				return nil, err
			}
			routers[fledgev1.ProviderGatewayAPI] = r
		}
		return routers, nil
	}
	return nil
}
