package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fledge-dev/fledge/internal/controller"
	"github.com/fledge-dev/fledge/internal/ctl"
)

// ctlFlags are the cluster flags of the commands that read or act on
// Releases, as kubectl has them.
type ctlFlags struct {
	kubeconfig string
	context    string
	namespace  string
}

func (f *ctlFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)")
	cmd.Flags().StringVar(&f.context, "context", "", "kubeconfig context (default: the current context)")
	cmd.Flags().StringVarP(&f.namespace, "namespace", "n", "", "namespace of the application (default: the context's, else default)")
}

// client connects as the kubeconfig's user and returns the namespace to use.
func (f *ctlFlags) client() (client.Client, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if f.kubeconfig != "" {
		rules.ExplicitPath = f.kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: f.context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, "", ctl.Exit(ctl.ExitUnreachable, errors.New("no cluster configuration: pass --kubeconfig, set KUBECONFIG, create ~/.kube/config, or run in a cluster"))
		}
		return nil, "", ctl.Exit(ctl.ExitUsage, fmt.Errorf("loading the kubeconfig: %w", err))
	}
	ns := f.namespace
	if ns == "" {
		if ns, _, err = cc.Namespace(); err != nil || ns == "" {
			ns = "default"
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: controller.Scheme()})
	if err != nil {
		return nil, "", ctl.Exit(ctl.ExitUnreachable, fmt.Errorf("connecting to the API server %s: %w", cfg.Host, err))
	}
	return c, ns, nil
}

// args is cobra.ExactArgs and friends with usage errors the CLI exits 2 on.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return ctl.Exit(ctl.ExitUsage, err)
		}
		return nil
	}
}

// exitCode is the process's exit code for err (see ctl's Exit constants).
func exitCode(err error) int {
	code := ctl.ExitCode(err)
	if code == ctl.ExitOther && strings.HasPrefix(err.Error(), "unknown command") {
		return ctl.ExitUsage
	}
	return code
}

// watchFlags are the live view's flags.
type watchFlags struct {
	watch   bool
	timeout time.Duration
}

func (w *watchFlags) bind(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&w.watch, "watch", "w", false, "show the release live until it ends: exit 0 when Released, 10 when RolledBack, 11 when Failed")
	cmd.Flags().DurationVar(&w.timeout, "timeout", 0, "with --watch, give up after this long (exit 12); 0 waits for the end")
}

func (w *watchFlags) run(cmd *cobra.Command, c client.Client, ns, app string) error {
	if !w.watch {
		if w.timeout != 0 {
			return ctl.Exit(ctl.ExitUsage, errors.New("--timeout needs --watch"))
		}
		return nil
	}
	opts := ctl.WatchOptions{Namespace: ns, App: app, Timeout: w.timeout}
	if f, ok := cmd.OutOrStdout().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		opts.TTY = true
		opts.Width = func() int {
			if w, _, err := term.GetSize(int(f.Fd())); err == nil {
				return w
			}
			return 80
		}
	}
	return ctl.Watch(cmd.Context(), c, opts, cmd.OutOrStdout())
}

func newGetCommand() *cobra.Command {
	var f ctlFlags
	var w watchFlags
	var all bool
	var output string
	cmd := &cobra.Command{
		Use:   "get [APP]",
		Short: "List applications (or one): host, versions, weights, phase, step, last verdict, age",
		Example: `  fledge get -A
  fledge get error-page -n canary-release-demo -o yaml
  kubectl fledge get error-page -n canary-release-demo --watch`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, ns, err := f.client()
			if err != nil {
				return err
			}
			if w.watch {
				if len(a) != 1 || all || output != "" {
					return ctl.Exit(ctl.ExitUsage, errors.New("--watch shows one application: fledge get APP --watch [-n NAMESPACE]"))
				}
				return w.run(cmd, c, ns, a[0])
			}
			opts := ctl.GetOptions{Namespace: ns, AllNamespaces: all, Output: output, Now: time.Now()}
			if len(a) == 1 {
				opts.App = a[0]
			}
			return ctl.Get(cmd.Context(), c, opts, cmd.OutOrStdout())
		},
	}
	f.bind(cmd)
	w.bind(cmd)
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list the applications of every namespace")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: wide, json or yaml")
	return cmd
}

func newStatusCommand() *cobra.Command {
	var f ctlFlags
	var w watchFlags
	cmd := &cobra.Command{
		Use:   "status APP",
		Short: "Show a release: phase, weights, the automation's step and its last evidence (--watch: live)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, ns, err := f.client()
			if err != nil {
				return err
			}
			// With --watch, the live view; without, w.run only checks the flags.
			if err := w.run(cmd, c, ns, a[0]); err != nil || w.watch {
				return err
			}
			return ctl.Status(cmd.Context(), c, ns, a[0], cmd.OutOrStdout())
		},
	}
	f.bind(cmd)
	w.bind(cmd)
	return cmd
}

func newSetWeightCommand() *cobra.Command {
	var f ctlFlags
	var force bool
	cmd := &cobra.Command{
		Use:   "set-weight APP PERCENT",
		Short: "Send PERCENT (0-100) of the traffic to the canary; refused while automation is on, unless --force",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			w, err := strconv.ParseInt(strings.TrimSpace(a[1]), 10, 32)
			if err != nil || w < 0 || w > 100 {
				return ctl.Exit(ctl.ExitUsage, fmt.Errorf("weight %q: want an integer from 0 to 100", a[1]))
			}
			c, ns, err := f.client()
			if err != nil {
				return err
			}
			did, err := ctl.SetWeight(cmd.Context(), c, ns, a[0], int32(w), force)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), did)
			return nil
		},
	}
	f.bind(cmd)
	cmd.Flags().BoolVar(&force, "force", false, "turn the automation off to set the weight by hand")
	return cmd
}

func newActionCommand(a ctl.Action, short string) *cobra.Command {
	var f ctlFlags
	cmd := &cobra.Command{
		Use:   string(a) + " APP",
		Short: short,
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := f.client()
			if err != nil {
				return err
			}
			if err := ctl.Do(cmd.Context(), c, ns, args[0], a, time.Now()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s requested\n", args[0], a)
			return nil
		},
	}
	f.bind(cmd)
	return cmd
}

func newCLICommands() []*cobra.Command {
	return []*cobra.Command{
		newGetCommand(),
		newStatusCommand(),
		newSetWeightCommand(),
		newDashboardCommand(),
		newActionCommand(ctl.Promote, "Send all traffic to the canary now, whatever the analysis says"),
		newActionCommand(ctl.Abort, "Roll the canary back to 0% now"),
		newActionCommand(ctl.Pause, "Hold the canary's weight where it is"),
		newActionCommand(ctl.Resume, "Remove a pause (or any override); the current step starts over"),
		newActionCommand(ctl.Restart, "Start the analysis again from the first step (retry a rolled-back canary)"),
	}
}
