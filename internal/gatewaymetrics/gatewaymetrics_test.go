package gatewaymetrics

import "testing"

// TestNamesAreStable: dashboards, alerts and the controllers of other
// versions read these names; a change is a breaking one.
func TestNamesAreStable(t *testing.T) {
	for got, want := range map[string]string{
		Requests:                         "fledge_gateway_requests_total",
		RequestDuration:                  "fledge_gateway_request_duration_seconds",
		RouteCanaryWeight:                "fledge_gateway_route_canary_weight",
		Routes:                           "fledge_gateway_routes",
		RoutesSkipped:                    "fledge_gateway_routes_skipped",
		UnknownHostRequests:              "fledge_gateway_unknown_host_requests_total",
		ClientErrors:                     "fledge_gateway_client_errors_total",
		RefusedRequests:                  "fledge_gateway_refused_requests_total",
		Redispatched:                     "fledge_gateway_redispatched_requests_total",
		Reason:                           "reason",
		Namespace + App + Service + Code: "namespaceappservicecode",
	} {
		if got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
}
