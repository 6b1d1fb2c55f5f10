package gateway

import (
	"fmt"
	"time"
)

// Options configure a Gateway. Zero fields take the defaults documented on them.
type Options struct {
	// HTTPAddr is the address the proxy listens on. Default ":8080".
	HTTPAddr string
	// HTTPSAddr, when set, is the address of the HTTPS listener: TLS 1.2 or
	// newer (Go's defaults otherwise), h2 and http/1.1 by ALPN, the
	// certificate chosen by SNI among the TLS Secrets of the TrafficRoutes.
	// Empty (the default) serves no HTTPS.
	HTTPSAddr string
	// DefaultTLSSecret, "namespace/name" of a kubernetes.io/tls Secret, is the
	// certificate of HTTPS handshakes whose server name no route serves (or
	// that send none). Empty (the default): such handshakes fail.
	DefaultTLSSecret string
	// H2C serves HTTP/2 with prior knowledge (h2c) on the plain HTTP listener,
	// next to HTTP/1.1. Off by default.
	H2C bool
	// MetricsAddr is the address serving /metrics, /healthz, /readyz and /routes.
	// Default ":9090".
	MetricsAddr string
	// Namespace restricts the watch to one namespace. Empty watches all namespaces.
	Namespace string
	// DrainTimeout bounds the graceful shutdown: requests still running after it
	// are cut. Default 30s.
	DrainTimeout time.Duration
	// ShutdownDelay is how long the proxy keeps accepting requests after /readyz
	// turned 503, so that Services stop sending traffic to this replica before its
	// listener closes. Default 0.
	ShutdownDelay time.Duration
	// DialTimeout bounds connecting to a backend. Default 5s.
	DialTimeout time.Duration
	// MaxIdleConnsPerHost is the number of idle connections kept per backend
	// endpoint; it should be at least the expected concurrency. Default 512.
	MaxIdleConnsPerHost int
	// MaxIdleConns is the number of idle backend connections kept in total.
	// Default 8192.
	MaxIdleConns int
	// IdleConnTimeout closes idle backend connections after this time. Default 90s.
	IdleConnTimeout time.Duration
	// ReadHeaderTimeout bounds reading a client's request headers. Default 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes idle client keep-alive connections. Default 120s.
	IdleTimeout time.Duration
	// MaxRequestHeaderBytes caps a client's request head (request line and
	// headers); beyond it the client gets 431. net/http allows 4096 bytes of
	// slack on top. Default 64 KiB.
	MaxRequestHeaderBytes int
	// MaxResponseHeaderBytes caps a backend's response heads (1xx
	// informational heads and the final one together); beyond it the client
	// gets 502. Default 1 MiB.
	MaxResponseHeaderBytes int64
	// ResponseHeaderTimeout bounds the wait for a backend's response head once
	// the request was sent; the client then gets 504. Default 60s.
	ResponseHeaderTimeout time.Duration
	// ClientBodyTimeout bounds each read of a client's request body (time
	// between two reads, as nginx's client_body_timeout): a client that stops
	// sending is cut. Default 60s.
	ClientBodyTimeout time.Duration
	// ClientSendTimeout bounds each write to a client (as nginx's
	// send_timeout): a client that stops reading is cut. Idle streams are not
	// affected. Default 60s.
	ClientSendTimeout time.Duration
	// MaxClientConns caps the client connections open at once (as HAProxy's
	// maxconn); further connections wait in the listen backlog until one
	// closes. Default 10000.
	MaxClientConns int
	// MaxEndpointRequests caps the requests in flight to one backend endpoint
	// (as HAProxy's per-server maxconn, without its queue): a request beyond
	// it gets 503 at once, counted against the backend chosen. Default 4096.
	MaxEndpointRequests int
	// AccessLog writes a line per request (method, host, path, status,
	// backend, duration, client) to the logger, every AccessLogSample-th
	// request only when AccessLogSample > 1. Off by default.
	AccessLog       bool
	AccessLogSample int
	// DisableFastPath serves every client connection with net/http's server
	// and sends every request through httputil.ReverseProxy and
	// http.Transport, instead of the gateway's own connection loop and
	// HTTP/1.1 backend connection pools (see forward). A kill switch: the fast
	// path is meant to behave identically for the requests it takes, at about
	// half the CPU cost.
	DisableFastPath bool
	// DisableEventLoops serves the plain HTTP listener with the connection
	// loop (a goroutine per client connection) instead of event loops (one
	// epoll loop per P, Linux only; see evloop_linux.go). A kill switch:
	// both serve the same requests the same way.
	DisableEventLoops bool
}

func (o Options) withDefaults() Options {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defDur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.HTTPAddr, ":8080")
	def(&o.MetricsAddr, ":9090")
	defDur(&o.DrainTimeout, 30*time.Second)
	defDur(&o.DialTimeout, 5*time.Second)
	defDur(&o.IdleConnTimeout, 90*time.Second)
	defDur(&o.ReadHeaderTimeout, 10*time.Second)
	defDur(&o.IdleTimeout, 120*time.Second)
	defDur(&o.ResponseHeaderTimeout, 60*time.Second)
	defDur(&o.ClientBodyTimeout, 60*time.Second)
	defDur(&o.ClientSendTimeout, 60*time.Second)
	if o.MaxRequestHeaderBytes <= 0 {
		o.MaxRequestHeaderBytes = 64 << 10
	}
	if o.MaxResponseHeaderBytes <= 0 {
		o.MaxResponseHeaderBytes = 1 << 20
	}
	if o.AccessLogSample <= 0 {
		o.AccessLogSample = 1
	}
	if o.MaxClientConns <= 0 {
		o.MaxClientConns = 10000
	}
	if o.ShutdownDelay < 0 {
		o.ShutdownDelay = 0
	}
	if o.MaxIdleConnsPerHost <= 0 {
		o.MaxIdleConnsPerHost = 512
	}
	if o.MaxIdleConns <= 0 {
		o.MaxIdleConns = 8192
	}
	if o.MaxEndpointRequests <= 0 {
		o.MaxEndpointRequests = 4096
	}
	return o
}

// Validate reports the first option that is set to a value no gateway can
// run with: a negative duration or count. Zero means the default.
func (o Options) Validate() error {
	durations := []struct {
		name string
		d    time.Duration
	}{
		{"drain timeout", o.DrainTimeout}, {"shutdown delay", o.ShutdownDelay},
		{"dial timeout", o.DialTimeout}, {"idle connection timeout", o.IdleConnTimeout},
		{"read header timeout", o.ReadHeaderTimeout}, {"idle timeout", o.IdleTimeout},
		{"response header timeout", o.ResponseHeaderTimeout},
		{"client body timeout", o.ClientBodyTimeout}, {"client send timeout", o.ClientSendTimeout},
	}
	for _, d := range durations {
		if d.d < 0 {
			return fmt.Errorf("%s %v: must not be negative", d.name, d.d)
		}
	}
	counts := []struct {
		name string
		n    int64
	}{
		{"max idle connections per host", int64(o.MaxIdleConnsPerHost)},
		{"max idle connections", int64(o.MaxIdleConns)},
		{"max request header bytes", int64(o.MaxRequestHeaderBytes)},
		{"max response header bytes", o.MaxResponseHeaderBytes},
		{"max client connections", int64(o.MaxClientConns)},
		{"max endpoint requests", int64(o.MaxEndpointRequests)},
	}
	for _, c := range counts {
		if c.n < 0 {
			return fmt.Errorf("%s %d: must not be negative", c.name, c.n)
		}
	}
	if o.DefaultTLSSecret != "" {
		if _, err := parseSecretRef(o.DefaultTLSSecret); err != nil {
			return fmt.Errorf("default %w", err)
		}
	}
	return nil
}
