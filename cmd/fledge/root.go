package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/fledge-dev/fledge/internal/ctl"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// pluginName is the name kubectl finds fledge by on the PATH: installed or
// linked under it, fledge is `kubectl fledge`.
const pluginName = "kubectl-fledge"

// newRootCommand is fledge's command tree; invokedAs is the program's name
// (os.Args[0]), which names the commands in help as kubectl does for a plugin.
func newRootCommand(invokedAs string) *cobra.Command {
	root := &cobra.Command{
		Use:   "fledge",
		Short: "Automated canary releases for Kubernetes",
		Long: `fledge publishes Kubernetes Services through a gateway and moves traffic
between a stable and a canary version: by annotation, by predicate, or on its own.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// The CLI's commands log nothing of their own; controller-runtime's
		// client wants a logger all the same.
		// The long-running commands set their own from their --zap-* flags:
		// controller-runtime takes only the first logger it is given.
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			if cmd.Annotations[logFlagsAnnotation] == "" {
				ctrl.SetLogger(zap.New(zap.Level(zapcore.ErrorLevel)))
			}
		},
	}
	if strings.TrimSuffix(filepath.Base(invokedAs), ".exe") == pluginName {
		root.Annotations = map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl fledge"}
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return ctl.Exit(ctl.ExitUsage, err) })
	root.AddCommand(newCLICommands()...)
	root.AddCommand(newBenchCommand())
	root.AddCommand(withLogFlags(newControllerCommand()), withLogFlags(newGatewayCommand()), withLogFlags(newErrorPageCommand()),
		&cobra.Command{
			Use:   "version",
			Short: "Print fledge's version",
			Args:  cobra.NoArgs,
			Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), version) },
		})
	return root
}

// logFlagsAnnotation marks the commands that have --zap-* flags.
const logFlagsAnnotation = "fledge.dev/log-flags"

// withLogFlags gives a long-running command the logging (--zap-*) flags;
// the CLI's commands have none, so their help shows only what a user needs.
func withLogFlags(cmd *cobra.Command) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[logFlagsAnnotation] = "true"
	zapOpts := zap.Options{}
	gofs := flag.NewFlagSet("log", flag.ContinueOnError)
	zapOpts.BindFlags(gofs)
	cmd.Flags().AddGoFlagSet(gofs)
	cmd.PreRun = func(*cobra.Command, []string) { ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts))) }
	return cmd
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
