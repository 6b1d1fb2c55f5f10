package main

import (
	"fmt"

	"github.com/spf13/cobra"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/controller"
)

func newControllerCommand() *cobra.Command {
	var (
		kubeconfig string
		provider   string
		opts       controller.Options
	)
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the controller: Services' annotations and Releases become routing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch p := fledgev1.Provider(provider); p {
			case fledgev1.ProviderEmbedded:
				opts.DefaultProvider = p
			default:
				return fmt.Errorf("--default-provider %q: want one of: embedded", provider)
			}
			cfg, err := restConfig(kubeconfig)
			if err != nil {
				return err
			}
			return controller.Run(cmd.Context(), cfg, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then in-cluster)")
	f.StringVar(&opts.MetricsAddr, "metrics-addr", ":8080", `address serving Prometheus metrics ("0" disables)`)
	f.StringVar(&opts.HealthAddr, "health-addr", ":8081", `address serving /healthz and /readyz ("0" disables)`)
	f.BoolVar(&opts.LeaderElect, "leader-elect", true, "elect one active controller through a Lease")
	f.StringVar(&opts.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the Lease (default: the controller's own)")
	f.StringVar(&opts.Namespace, "namespace", "", "watch only this namespace (default: all)")
	f.StringVar(&provider, "default-provider", string(fledgev1.ProviderEmbedded), "traffic provider for Releases that name none: embedded")
	return cmd
}
