package main

import (
	"github.com/spf13/cobra"

	"github.com/fledge-dev/fledge/internal/errorpage"
)

func newErrorPageCommand() *cobra.Command {
	var opts errorpage.Options
	cmd := &cobra.Command{
		Use:   "error-page VERSION",
		Short: `Run the demo application: GET /api/error_page answers {"error": "injected by error_page service", "version": VERSION}`,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Version = args[0]
			if err := opts.Validate(); err != nil {
				return err
			}
			return errorpage.Run(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Addr, "addr", errorpage.DefaultAddr, "listen address")
	f.StringVar(&opts.GRPCAddr, "grpc-addr", "", "also serve the gRPC health service (grpc.health.v1) here, failing --error-ratio of Check calls with UNAVAILABLE")
	f.Float64Var(&opts.ErrorRatio, "error-ratio", 0, "fraction of requests answered with HTTP 500, 0..1")
	f.DurationVar(&opts.Latency, "latency", 0, "latency added to every answer")
	f.DurationVar(&opts.LatencyJitter, "latency-jitter", 0, "random extra latency, uniform in [0, jitter)")
	return cmd
}
