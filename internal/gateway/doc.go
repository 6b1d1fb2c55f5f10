// Package gateway is fledge's embedded data plane: an HTTP reverse proxy that serves
// the TrafficRoutes of the cluster, splitting each host's traffic between a stable
// and a canary Service.
//
// # Routing
//
// The routing table is built from TrafficRoutes, Services and EndpointSlices (see
// [Gateway.Update] and [Run]). It is immutable and swapped atomically, so the request
// path takes no lock. A request is routed by its Host (port and one trailing dot
// removed, case-insensitive). When two TrafficRoutes claim one host, the oldest
// (creationTimestamp, then namespace/name) serves it; the others are skipped, as are
// invalid routes (bad weight, unknown predicate, invalid regular expression). Every
// skipped route is logged once and counted in fledge_gateway_routes_skipped.
//
// A backend (Service and Service port) resolves to:
//   - externalName:port for a Service of type ExternalName;
//   - otherwise the first address of every ready endpoint (conditions.ready unset or
//     true, conditions.terminating not true) of the EndpointSlices labelled
//     kubernetes.io/service-name=<service>, with the port of the slice whose name is
//     the Service port's name (the slice carries the target port number).
//
// Backends are plain HTTP/1.1. Within a backend, requests go round robin across its
// endpoints.
//
// # Forwarding
//
// Plain HTTP/1.x request/response exchanges take a fast path: the gateway's own
// pool of HTTP/1.1 connections per endpoint address (a mutex per pool, no global
// lock), the request head written by hand, the response read with
// http.ReadResponse. Everything else goes through httputil.ReverseProxy and
// http.Transport: protocol upgrades (WebSocket), CONNECT, Expect, TE, request
// trailers, chunked request bodies and bodies over 64 KiB (the fast path writes
// a body completely before reading the response), non-ASCII Hosts and queries
// that ReverseProxy would rewrite. Both paths forward alike: Host, path and
// query unchanged; hop-by-hop headers (Connection and the headers it names,
// Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade) stripped both
// ways; X-Forwarded-For/Host/Proto set, client-sent ones and Forwarded dropped;
// no User-Agent added; response bodies streamed, flushed at once when their
// length is unknown or they are text/event-stream; response trailers passed on.
// A fast-path connection is reused only after a response read to its end
// without Connection: close; idle ones close after IdleConnTimeout, at most
// MaxIdleConnsPerHost per endpoint and MaxIdleConns in total are kept, and a
// connection idle for over a second is checked before reuse. A replayable
// request (GET, HEAD, OPTIONS, TRACE without body) that fails on a reused
// connection before any response byte is sent again on another one.
// Options.DisableFastPath (--disable-fast-path) sends every request through
// ReverseProxy: a kill switch.
//
// # Split
//
// A request matching every predicate of the route's Match list (when the list is not
// empty and the route has a canary) goes to the canary. The other requests of a route
// are numbered n = 0, 1, 2, … by an atomic counter, and request n goes to the canary
// iff floor((k+1)·w/100) > floor(k·w/100), with k = n mod 100 and w the canary
// weight. Any 100 consecutive such requests on one replica therefore carry exactly w
// canary requests. A change of the weight (or of the canary Service) starts a fresh
// sequence, so the first 100 requests after it carry exactly the new weight; a table
// rebuild that leaves them unchanged keeps the sequence going.
//
// # Responses of the gateway itself
//
//   - 404 with a short text body: no route for the Host;
//   - 503: the route's chosen backend has no ready endpoint, or no table yet
//     (before the first sync);
//   - 502: the backend could not be reached (dial error, broken response);
//   - 499, recorded in metrics only (the client is gone): the client went away
//     before the backend answered, so a client abort is not counted as a backend
//     failure.
//
// # Metrics
//
// Served at /metrics on the metrics listener, from the gateway's own registry (plus
// the Go and process collectors). These names and labels are read by the controller
// from every replica: keep them stable.
//
//	fledge_gateway_requests_total{namespace,app,service,code}  counter
//	    Requests proxied for a route. namespace and app are the TrafficRoute's
//	    namespace and name, service is the backend Service chosen (stable or canary),
//	    code is the HTTP status code sent to the client ("200", "503", "499", …).
//	fledge_gateway_request_duration_seconds{namespace,app,service}  histogram
//	    Time from routing the request to the end of the response, 20 exponential
//	    buckets from 1 ms to 10 s.
//	fledge_gateway_route_canary_weight{namespace,app}  gauge
//	    The canary weight this replica serves for a route (0 without canary).
//	fledge_gateway_routes  gauge
//	    Routes (hosts) served.
//	fledge_gateway_routes_skipped  gauge
//	    TrafficRoutes not served: invalid, or their host claimed by an older route.
//	fledge_gateway_unknown_host_requests_total  counter
//	    Requests answered 404 because no route serves their Host.
//
// Series of a route or backend that leaves the table are deleted.
//
// # Health
//
// The metrics listener also serves /healthz (200 while the process runs), /readyz
// (200 once the caches have synced and the first table is built, 503 before that and
// while draining) and /routes (the table in effect, as JSON, to verify what a replica
// really serves).
//
// # Command
//
// The `fledge gateway` command should expose these flags and pass them to [Run]
// in [Options]:
//
//	--http-addr string                 proxy listen address (default ":8080")
//	--metrics-addr string              /metrics, /healthz, /readyz, /routes (default ":9090")
//	--namespace string                 watch only this namespace (default: all)
//	--drain-timeout duration           graceful shutdown bound (default 30s)
//	--shutdown-delay duration          keep serving after /readyz turns 503, so that
//	                                   endpoints drop the pod first (default 0; 5s in
//	                                   a cluster)
//	--dial-timeout duration            backend connect timeout (default 5s)
//	--max-idle-conns-per-host int      idle backend connections kept per endpoint (default 512)
//	--disable-fast-path                proxy every request with httputil.ReverseProxy
//	                                   (kill switch for the HTTP/1.1 fast path)
//
// It needs get, list and watch on trafficroutes.fledge.dev, services and
// endpointslices.discovery.k8s.io (cluster-wide, or in --namespace with a Role).
// Running it with GOGC=200..400 gave the proxy 13-19% more throughput in
// measurements (shared/DATA-PLANE-FACTS.md); set it in the Deployment, not here.
//
// # Limits
//
// Plain HTTP only, on both sides (no TLS, no h2c); HTTP/1.1 Upgrade (WebSocket)
// is proxied, but upgraded connections are not waited for by the drain. Hosts
// match exactly (no wildcards).
package gateway
