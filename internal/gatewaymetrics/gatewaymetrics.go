// Package gatewaymetrics names the metrics the embedded gateway exposes: one
// definition for the gateway, which writes them, and for the builtin metric
// source and the default Prometheus queries, which read them. Keep them
// stable: the controller reads them from every gateway replica, and
// dashboards and alerts from Prometheus.
package gatewaymetrics

// Metric names.
const (
	// Requests counts proxied requests, by Namespace, App, Service and Code.
	Requests = "fledge_gateway_requests_total"
	// RequestDuration is the histogram of proxied requests' durations, by
	// Namespace, App and Service.
	RequestDuration = "fledge_gateway_request_duration_seconds"
	// RouteCanaryWeight is the canary weight (0..100) served, by Namespace
	// and App.
	RouteCanaryWeight = "fledge_gateway_route_canary_weight"
	// Routes is the number of routes (hosts) served.
	Routes = "fledge_gateway_routes"
	// RoutesSkipped is the number of TrafficRoutes not served.
	RoutesSkipped = "fledge_gateway_routes_skipped"
	// UnknownHostRequests counts requests answered 404 for want of a route.
	UnknownHostRequests = "fledge_gateway_unknown_host_requests_total"
	// ClientErrors counts requests refused because the client broke them
	// (a body cut short, malformed or stalled), by Namespace, App and Service.
	ClientErrors = "fledge_gateway_client_errors_total"
	// RefusedRequests counts requests refused with 400 before routing because
	// their framing is ambiguous or malformed (request smuggling), by Reason.
	RefusedRequests = "fledge_gateway_refused_requests_total"
	// Redispatched counts requests served by the other version because the
	// chosen one could not take them, by Namespace, App, from, to and Reason.
	Redispatched = "fledge_gateway_redispatched_requests_total"
)

// Label names.
const (
	// Namespace and App name the TrafficRoute (the application).
	Namespace = "namespace"
	App       = "app"
	// Service is the backend Service that answered.
	Service = "service"
	// Code is the HTTP status code answered.
	Code = "code"
	// Reason says why a request was refused.
	Reason = "reason"
)
