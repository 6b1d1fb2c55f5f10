package gateway

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fledge-dev/fledge/internal/gatewaymetrics"
)

// Metric names; documented in the package comment and defined, for their
// readers too (the controller reads them from every replica), in package
// gatewaymetrics.
const (
	metricRequests    = gatewaymetrics.Requests
	metricDuration    = gatewaymetrics.RequestDuration
	metricWeight      = gatewaymetrics.RouteCanaryWeight
	metricRoutes      = gatewaymetrics.Routes
	metricSkipped     = gatewaymetrics.RoutesSkipped
	metricUnknownHost = gatewaymetrics.UnknownHostRequests
	metricClientErrs  = gatewaymetrics.ClientErrors
	metricRefused     = gatewaymetrics.RefusedRequests
	metricRedispatch  = gatewaymetrics.Redispatched
)

// metrics are a Gateway's collectors, in its own registry.
type metrics struct {
	registry     *prometheus.Registry
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	weight       *prometheus.GaugeVec
	routes       prometheus.Gauge
	skipped      prometheus.Gauge
	unknownHost  prometheus.Counter
	clientErrs   *prometheus.CounterVec
	refused      *prometheus.CounterVec
	redispatched *prometheus.CounterVec
	// TLS: certificates served, Secrets rejected, handshakes failed for
	// want of a certificate.
	tlsCertificates prometheus.Gauge
	tlsRejected     prometheus.Gauge
	tlsUnknownName  prometheus.Counter
	// grpc counts gRPC responses by status.
	grpc *prometheus.CounterVec
	// overloaded counts requests refused at MaxEndpointRequests.
	overloaded prometheus.Counter
	// handoffs counts client connections the connection loop handed to
	// net/http's server, by reason.
	handoffs *prometheus.CounterVec
	// loopHandoffs counts client connections the event loops handed to
	// the connection loop, by stage (request, response).
	loopHandoffs *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricRequests,
			Help: "Requests proxied, by TrafficRoute (namespace, app), backend Service and HTTP status code.",
		}, []string{"namespace", "app", "service", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metricDuration,
			Help:    "Duration of proxied requests, by TrafficRoute (namespace, app) and backend Service.",
			Buckets: prometheus.ExponentialBucketsRange(0.001, 10, 20),
		}, []string{"namespace", "app", "service"}),
		weight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricWeight,
			Help: "Canary weight (0..100) served for a TrafficRoute.",
		}, []string{"namespace", "app"}),
		routes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: metricRoutes,
			Help: "Routes (hosts) served.",
		}),
		skipped: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: metricSkipped,
			Help: "TrafficRoutes not served: invalid, or their host served by an older TrafficRoute.",
		}),
		unknownHost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metricUnknownHost,
			Help: "Requests answered 404 because no route serves their Host.",
		}),
		clientErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricClientErrs,
			Help: "Requests the gateway refused because the client broke them (a request body cut short, malformed or stalled: 400 or 408), by TrafficRoute (namespace, app) and the backend Service chosen; not counted in " + metricRequests + ".",
		}, []string{"namespace", "app", "service"}),
	}
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricRefused,
		Help: "Requests refused with 400 before routing because their framing is ambiguous or malformed (both Content-Length and Transfer-Encoding, Transfer-Encoding on HTTP/1.0, obs-fold, bare LF, a bad chunked body, ...), by reason.",
	}, []string{gatewaymetrics.Reason})
	m.redispatched = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricRedispatch,
		Help: "Requests sent to the route's other version because the chosen one could not take them (no ready endpoint, or no endpoint accepted a connection); the chosen version is also charged with a 503 or 502 in " + metricRequests + ".",
	}, []string{gatewaymetrics.Namespace, gatewaymetrics.App, "from", "to", gatewaymetrics.Reason})
	m.tlsCertificates = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "fledge_gateway_tls_certificates",
		Help: "Hosts served over HTTPS with the certificate of their TrafficRoute's TLS Secret.",
	})
	m.tlsRejected = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "fledge_gateway_tls_rejected_secrets",
		Help: "TLS Secrets named by TrafficRoutes (or as the default certificate) that cannot be used: missing, unreadable, not kubernetes.io/tls, no tls.crt or tls.key, not a certificate, or a key that does not match; their routes are skipped.",
	})
	m.tlsUnknownName = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fledge_gateway_tls_unknown_server_name_total",
		Help: "TLS handshakes refused because no route serves their server name (SNI) and there is no default certificate.",
	})
	m.grpc = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fledge_gateway_grpc_responses_total",
		Help: "gRPC responses proxied, by TrafficRoute (namespace, app), backend Service and grpc-status (from the response headers or trailers); a non-zero status is also counted in " + metricRequests + " under the HTTP code it maps to (UNAVAILABLE 503, INTERNAL 500, ...).",
	}, []string{"namespace", "app", "service", "grpc_status"})
	m.overloaded = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fledge_gateway_endpoint_overloaded_requests_total",
		Help: "Requests answered 503 because their endpoint already had --max-endpoint-requests requests in flight; also counted in " + metricRequests + " as 503s of the backend chosen.",
	})
	m.registry.MustRegister(m.overloaded)
	m.handoffs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fledge_gateway_client_connections_handed_off_total",
		Help: "Client connections the gateway's HTTP/1.1 connection loop passed to net/http's server, by the reason of the first request it did not serve itself (h2, http/1.0, upgrade, expect, body, head-too-large, other).",
	}, []string{"reason"})
	m.registry.MustRegister(m.handoffs)
	m.loopHandoffs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fledge_gateway_event_loop_handoffs_total",
		Help: "Client connections the event loops of the plain HTTP listener passed to the connection loop: at a request they do not send themselves (stage request), or with the exchange, after sending it, for a response they do not write themselves (stage response).",
	}, []string{"stage"})
	m.registry.MustRegister(m.loopHandoffs)
	m.registry.MustRegister(m.requests, m.duration, m.weight, m.routes, m.skipped, m.unknownHost, m.clientErrs, m.refused, m.redispatched,
		m.tlsCertificates, m.tlsRejected, m.tlsUnknownName, m.grpc,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observerKey names the series of one backend of one route.
type observerKey struct{ namespace, app, service string }

// backendMetrics are the observers of one backend of one route, resolved once so
// that a request allocates no label map.
type backendMetrics struct {
	key      observerKey
	requests *prometheus.CounterVec
	duration prometheus.Observer
	// clientErrors counts requests the client broke (not the backend's).
	clientErrors prometheus.Counter
	// grpc counts gRPC responses by grpc-status.
	grpc *prometheus.CounterVec
	// codes is a copy-on-write list of the counters per status code seen so far,
	// read without lock; mu serialises adding one.
	codes atomic.Pointer[[]codeCounter]
	mu    sync.Mutex
}

type codeCounter struct {
	code    int
	counter prometheus.Counter
}

func (m *metrics) newBackendMetrics(k observerKey) *backendMetrics {
	return &backendMetrics{
		key:          k,
		requests:     m.requests,
		grpc:         m.grpc,
		duration:     m.duration.WithLabelValues(k.namespace, k.app, k.service),
		clientErrors: m.clientErrs.WithLabelValues(k.namespace, k.app, k.service),
	}
}

// counter returns the request counter of a status code.
func (b *backendMetrics) counter(code int) prometheus.Counter {
	if cs := b.codes.Load(); cs != nil {
		for _, c := range *cs {
			if c.code == code {
				return c.counter
			}
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var cs []codeCounter
	if p := b.codes.Load(); p != nil {
		for _, c := range *p {
			if c.code == code {
				return c.counter
			}
		}
		cs = append(cs, *p...)
	}
	c := b.requests.WithLabelValues(b.key.namespace, b.key.app, b.key.service, strconv.Itoa(code))
	cs = append(cs, codeCounter{code: code, counter: c})
	b.codes.Store(&cs)
	return c
}

// delete removes the series of a backend that left the table.
func (m *metrics) delete(k observerKey) {
	m.requests.DeletePartialMatch(prometheus.Labels{"namespace": k.namespace, "app": k.app, "service": k.service})
	m.duration.DeleteLabelValues(k.namespace, k.app, k.service)
	m.clientErrs.DeleteLabelValues(k.namespace, k.app, k.service)
	m.grpc.DeletePartialMatch(prometheus.Labels{"namespace": k.namespace, "app": k.app, "service": k.service})
}
