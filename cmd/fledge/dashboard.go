package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/fledge-dev/fledge/internal/ctl"
	"github.com/fledge-dev/fledge/internal/dashboard"
)

func newDashboardCommand() *cobra.Command {
	var f ctlFlags
	var addr string
	var readOnly bool
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve a web dashboard of the applications (live charts, decisions, buttons) with your kubeconfig's credentials",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := f.client()
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return ctl.Exit(ctl.ExitUsage, fmt.Errorf("--addr %s: %w", addr, err))
			}
			d := dashboard.New(dashboard.Options{Client: c, ReadOnly: readOnly})
			srv := &http.Server{Handler: d, ReadHeaderTimeout: 10 * time.Second}
			ctx := cmd.Context()
			go func() { _ = d.Run(ctx) }()
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(sctx)
			}()
			mode := ""
			if readOnly {
				mode = " (read-only)"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "fledge dashboard%s on http://%s/\n", mode, ln.Addr())
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	f.bind(cmd)
	_ = cmd.Flags().MarkHidden("namespace") // the dashboard shows every namespace the user may list
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:3100", "address to serve the dashboard on (loopback: only this machine)")
	cmd.Flags().BoolVar(&readOnly, "read-only", false, "hide the promote/abort/pause/resume buttons and refuse their actions")
	return cmd
}
