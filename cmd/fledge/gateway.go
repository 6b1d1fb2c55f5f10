package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	ctrl "sigs.k8s.io/controller-runtime"

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
			if err := positiveFlags(cmd.Flags(), "shutdown-delay"); err != nil {
				return err
			}
			if err := errors.Join(listenAddr("http-addr", opts.HTTPAddr, false), listenAddr("metrics-addr", opts.MetricsAddr, false),
				httpsAddr(opts.HTTPSAddr)); err != nil {
				return err
			}
			if s := opts.DefaultTLSSecret; s != "" {
				if ns, name, ok := strings.Cut(s, "/"); !ok || ns == "" || name == "" || strings.Contains(name, "/") {
					return fmt.Errorf("--default-tls-secret %q: want namespace/name of a kubernetes.io/tls Secret", s)
				}
			}
			if err := opts.Validate(); err != nil {
				return err
			}
			cfg, err := restConfig(kubeconfig)
			if err != nil {
				return err
			}
			// The gateway logs through the logger of its context.
			ctx := logr.NewContext(cmd.Context(), ctrl.Log.WithName("gateway"))
			return gateway.Run(ctx, cfg, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then in-cluster)")
	f.StringVar(&opts.HTTPAddr, "http-addr", ":8080", "address of the proxy (traffic)")
	f.StringVar(&opts.HTTPSAddr, "https-addr", "", "address of the HTTPS proxy: TLS 1.2+, h2 and http/1.1 by ALPN, certificates by SNI from the TrafficRoutes' TLS Secrets (default: no HTTPS)")
	f.StringVar(&opts.DefaultTLSSecret, "default-tls-secret", "", "namespace/name of a kubernetes.io/tls Secret served to HTTPS clients whose server name no route serves (default: their handshake fails)")
	f.BoolVar(&opts.H2C, "h2c", false, "also serve HTTP/2 with prior knowledge (h2c) on --http-addr")
	f.StringVar(&opts.MetricsAddr, "metrics-addr", ":9090", "address of /metrics, /healthz, /readyz and /routes; keep it off the public Service")
	f.StringVar(&opts.Namespace, "namespace", "", "serve only TrafficRoutes of this namespace (default: all)")
	f.DurationVar(&opts.DrainTimeout, "drain-timeout", 30*time.Second, "how long requests in flight may finish on shutdown")
	f.DurationVar(&opts.ShutdownDelay, "shutdown-delay", 0, "keep serving this long after /readyz turns 503 on shutdown")
	f.BoolVar(&opts.AccessLog, "access-log", false, "log every request (method, host, path, status, backend, duration, client) as JSON; for debugging")
	f.IntVar(&opts.AccessLogSample, "access-log-sample", 1, "with --access-log, log only every Nth request")
	f.BoolVar(&opts.DisableEventLoops, "disable-event-loops", false, "serve the plain HTTP listener with a goroutine per client connection instead of one epoll event loop per CPU (Linux); a kill switch, both serve the same way")
	f.BoolVar(&opts.DisableFastPath, "disable-fast-path", false, "serve every client connection with net/http's server and proxy every request with net/http/httputil.ReverseProxy (kill switch of the HTTP/1.1 connection loop and fast path)")
	// Backends.
	f.DurationVar(&opts.DialTimeout, "dial-timeout", 5*time.Second, "timeout of connecting to a backend (then 502)")
	f.DurationVar(&opts.ResponseHeaderTimeout, "response-header-timeout", 60*time.Second, "how long a backend may take to send its response head once the request was sent (then 504; as HAProxy's timeout server)")
	f.Int64Var(&opts.MaxResponseHeaderBytes, "max-response-header-bytes", 1<<20, "largest response head a backend may send, 1xx heads included (then 502)")
	f.IntVar(&opts.MaxIdleConnsPerHost, "max-idle-conns-per-host", 512, "idle connections kept per backend endpoint")
	f.IntVar(&opts.MaxIdleConns, "max-idle-conns", 8192, "idle backend connections kept in all")
	f.IntVar(&opts.MaxEndpointRequests, "max-endpoint-requests", 4096, "requests in flight to one backend endpoint; more get 503 at once (as HAProxy's per-server maxconn, without a queue)")
	f.DurationVar(&opts.IdleConnTimeout, "idle-conn-timeout", 90*time.Second, "idle backend connections are closed after this")
	// Clients.
	f.IntVar(&opts.MaxClientConns, "max-client-conns", 10000, "client connections open at once; more wait in the listen backlog (as HAProxy's maxconn)")
	f.IntVar(&opts.MaxRequestHeaderBytes, "max-request-header-bytes", 64<<10, "largest request head a client may send (then 431)")
	f.DurationVar(&opts.ReadHeaderTimeout, "client-header-timeout", 10*time.Second, "how long a client may take to send a request head")
	f.DurationVar(&opts.ClientBodyTimeout, "client-body-timeout", 60*time.Second, "longest pause between two reads of a request body (then 408, as nginx's client_body_timeout)")
	f.DurationVar(&opts.ClientSendTimeout, "client-send-timeout", 60*time.Second, "longest a write to a client may block (then the connection is cut, as nginx's send_timeout); idle streams are not cut")
	f.DurationVar(&opts.IdleTimeout, "client-idle-timeout", 120*time.Second, "idle client keep-alive connections are closed after this")
	return cmd
}

// httpsAddr checks --https-addr as listenAddr does, when it is set (empty
// serves no HTTPS).
func httpsAddr(addr string) error {
	if addr == "" {
		return nil
	}
	return listenAddr("https-addr", addr, false)
}

// positiveFlags refuses a duration or count flag that is zero or negative
// (except those named in zeroOK, which may be zero): a zero would silently
// become the gateway's default, a negative is meaningless.
func positiveFlags(fs *pflag.FlagSet, zeroOK ...string) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil {
			return
		}
		switch f.Value.Type() {
		case "duration", "int", "int64":
		default:
			return
		}
		v := f.Value.String()
		switch {
		case strings.HasPrefix(v, "-"):
			err = fmt.Errorf("--%s=%s: must not be negative", f.Name, v)
		case (v == "0" || v == "0s") && !slices.Contains(zeroOK, f.Name):
			err = fmt.Errorf("--%s=%s: must be positive", f.Name, v)
		}
	})
	return err
}
