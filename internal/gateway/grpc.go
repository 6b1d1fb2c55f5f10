package gateway

import (
	"net/http"
	"strconv"
)

// gRPC: a gRPC call's outcome is its grpc-status, in the response headers (a
// trailers-only response) or trailers, while the HTTP status is 200. So that
// the analysis, which counts 5xx, judges a gRPC canary, a response with a
// non-zero grpc-status is counted in fledge_gateway_requests_total under the
// HTTP code the status maps to (the mapping of gRPC's HTTP-to-gRPC status
// table, read backwards, as grpc-gateway does), and every gRPC response in
// fledge_gateway_grpc_responses_total by its grpc-status.

// grpcStatus returns the grpc-status a response sent, as written to the
// client: ReverseProxy copies trailers into the header map after the body
// (announced ones under their name, others with http.TrailerPrefix).
func grpcStatus(h http.Header) (string, bool) {
	if v, ok := h["Grpc-Status"]; ok && len(v) > 0 {
		return v[0], true
	}
	if v, ok := h[http.TrailerPrefix+"Grpc-Status"]; ok && len(v) > 0 {
		return v[0], true
	}
	return "", false
}

// grpcHTTPCode maps a grpc-status to the HTTP status code it is counted as.
func grpcHTTPCode(status string) int {
	n, err := strconv.Atoi(status)
	if err != nil || n < 0 || n >= len(grpcCodes) {
		return http.StatusInternalServerError // not a status: UNKNOWN
	}
	return grpcCodes[n]
}

// grpcCodes maps gRPC status codes 0..16 to HTTP status codes.
var grpcCodes = [...]int{
	0:  http.StatusOK,                  // OK
	1:  statusClientClosedRequest,      // CANCELLED
	2:  http.StatusInternalServerError, // UNKNOWN
	3:  http.StatusBadRequest,          // INVALID_ARGUMENT
	4:  http.StatusGatewayTimeout,      // DEADLINE_EXCEEDED
	5:  http.StatusNotFound,            // NOT_FOUND
	6:  http.StatusConflict,            // ALREADY_EXISTS
	7:  http.StatusForbidden,           // PERMISSION_DENIED
	8:  http.StatusTooManyRequests,     // RESOURCE_EXHAUSTED
	9:  http.StatusBadRequest,          // FAILED_PRECONDITION
	10: http.StatusConflict,            // ABORTED
	11: http.StatusBadRequest,          // OUT_OF_RANGE
	12: http.StatusNotImplemented,      // UNIMPLEMENTED
	13: http.StatusInternalServerError, // INTERNAL
	14: http.StatusServiceUnavailable,  // UNAVAILABLE
	15: http.StatusInternalServerError, // DATA_LOSS
	16: http.StatusUnauthorized,        // UNAUTHENTICATED
}
