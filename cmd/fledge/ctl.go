package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fledge-dev/fledge/internal/controller"
	"github.com/fledge-dev/fledge/internal/ctl"
)

// ctlFlags are the flags of the commands that act on one Release.
type ctlFlags struct {
	kubeconfig string
	namespace  string
}

func (f *ctlFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then in-cluster)")
	cmd.Flags().StringVarP(&f.namespace, "namespace", "n", "default", "namespace of the application")
}

func (f *ctlFlags) client() (client.Client, error) {
	cfg, err := restConfig(f.kubeconfig)
	if err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: controller.Scheme()})
}

func newStatusCommand() *cobra.Command {
	var f ctlFlags
	cmd := &cobra.Command{
		Use:   "status APP",
		Short: "Show a release: phase, weights, the automation's step and its last evidence",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			return ctl.Status(cmd.Context(), c, f.namespace, args[0], cmd.OutOrStdout())
		},
	}
	f.bind(cmd)
	return cmd
}

func newActionCommand(a ctl.Action, short string) *cobra.Command {
	var f ctlFlags
	cmd := &cobra.Command{
		Use:   string(a) + " APP",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			if err := ctl.Do(cmd.Context(), c, f.namespace, args[0], a, time.Now()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s requested\n", args[0], a)
			return nil
		},
	}
	f.bind(cmd)
	return cmd
}

func newActionCommands() []*cobra.Command {
	return []*cobra.Command{
		newStatusCommand(),
		newActionCommand(ctl.Promote, "Send all traffic to the canary now, whatever the analysis says"),
		newActionCommand(ctl.Abort, "Roll the canary back to 0% now"),
		newActionCommand(ctl.Pause, "Hold the canary's weight where it is"),
		newActionCommand(ctl.Resume, "Remove a pause (or any override); the current step starts over"),
		newActionCommand(ctl.Restart, "Start the analysis again from the first step (retry a rolled-back canary)"),
	}
}
