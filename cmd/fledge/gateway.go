package main

import (
	"github.com/spf13/cobra"

	"github.com/fledge-dev/fledge/internal/gateway"
)

func newGatewayCommand() *cobra.Command {
	var (
		kubeconfig string
		opts       gateway.Options
	)
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run the embedded gateway: an HTTP reverse proxy that reads its routing from the API server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := restConfig(kubeconfig)
			if err != nil {
				return err
			}
			return gateway.Run(cmd.Context(), cfg, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then in-cluster)")
	f.StringVar(&opts.HTTPAddr, "http-addr", ":8080", "address of the proxy (traffic)")
	f.StringVar(&opts.MetricsAddr, "metrics-addr", ":9090", "address of /metrics, /healthz, /readyz and /routes; keep it off the public Service")
	f.StringVar(&opts.Namespace, "namespace", "", "serve only TrafficRoutes of this namespace (default: all)")
	f.DurationVar(&opts.DrainTimeout, "drain-timeout", 0, "how long requests in flight may finish on shutdown (default 30s)")
	f.DurationVar(&opts.ShutdownDelay, "shutdown-delay", 0, "keep serving this long after /readyz turns 503 on shutdown")
	f.DurationVar(&opts.DialTimeout, "dial-timeout", 0, "timeout of connecting to a backend (default 5s)")
	f.BoolVar(&opts.DisableFastPath, "disable-fast-path", false, "proxy every request with net/http/httputil.ReverseProxy (kill switch of the HTTP/1.1 fast path)")
	f.IntVar(&opts.MaxIdleConnsPerHost, "max-idle-conns-per-host", 0, "idle connections kept per backend endpoint (default 512)")
	return cmd
}
