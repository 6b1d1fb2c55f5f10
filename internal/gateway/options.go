package gateway

import "time"

// Options configure a Gateway. Zero fields take the defaults documented on them.
type Options struct {
	// HTTPAddr is the address the proxy listens on. Default ":8080".
	HTTPAddr string
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
	// DisableFastPath sends every request through httputil.ReverseProxy and
	// http.Transport instead of the gateway's own HTTP/1.1 backend connection
	// pools (see forward). A kill switch: the fast path is meant to behave
	// identically for the requests it takes, at about half the CPU cost.
	DisableFastPath bool
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
	if o.ShutdownDelay < 0 {
		o.ShutdownDelay = 0
	}
	if o.MaxIdleConnsPerHost <= 0 {
		o.MaxIdleConnsPerHost = 512
	}
	if o.MaxIdleConns <= 0 {
		o.MaxIdleConns = 8192
	}
	return o
}
