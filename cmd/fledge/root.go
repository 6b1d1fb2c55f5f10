package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newRootCommand() *cobra.Command {
	zapOpts := zap.Options{}
	root := &cobra.Command{
		Use:   "fledge",
		Short: "Automated canary releases for Kubernetes",
		Long: `fledge publishes Kubernetes Services through a gateway and moves traffic
between a stable and a canary version: by annotation, by predicate, or on its own.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(*cobra.Command, []string) {
			ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
		},
	}
	gofs := flag.NewFlagSet("log", flag.ContinueOnError)
	zapOpts.BindFlags(gofs)
	root.PersistentFlags().AddGoFlagSet(gofs)
	root.AddCommand(newActionCommands()...)
	root.AddCommand(newBenchCommand())
	root.AddCommand(newControllerCommand(), newGatewayCommand(), newErrorPageCommand(),
		&cobra.Command{
			Use:   "version",
			Short: "Print fledge's version",
			Args:  cobra.NoArgs,
			Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), version) },
		})
	return root
}

// restConfig loads the cluster configuration: the --kubeconfig file, else the
// KUBECONFIG environment variable, else the in-cluster ServiceAccount.
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		kubeconfig = os.Getenv("KUBECONFIG")
	}
	if kubeconfig != "" {
		rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig}
		if os.Getenv("KUBECONFIG") == kubeconfig {
			rules = &clientcmd.ClientConfigLoadingRules{Precedence: clientcmd.NewDefaultClientConfigLoadingRules().Precedence}
		}
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("loading kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if errors.Is(err, rest.ErrNotInCluster) {
		return nil, errors.New("no cluster configuration: pass --kubeconfig, set KUBECONFIG, or run in a cluster")
	}
	return cfg, err
}
