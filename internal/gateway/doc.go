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
// Backends are HTTP/1.1, or HTTP/2 cleartext with prior knowledge (h2c) when the
// Service port's appProtocol is kubernetes.io/h2c (the standard value; needed for
// gRPC backends); h2c backends are reached through httputil.ReverseProxy and an
// http.Transport of their own, one connection per endpoint carrying many streams.
// Within a backend, requests go round robin across its endpoints.
//
// # TLS and HTTP/2 towards clients
//
// With Options.HTTPSAddr (--https-addr) the gateway terminates TLS: a TrafficRoute
// with spec.tls.secretName is served there with the certificate of that
// kubernetes.io/tls Secret (tls.crt, tls.key) of its namespace, chosen by the
// client's server name (SNI, compared as Hosts are). TLS 1.2 or newer with Go's
// default cipher suites and curves; ALPN offers h2 and http/1.1. A server name no
// route serves (or none) gets the certificate of Options.DefaultTLSSecret
// (--default-tls-secret namespace/name) or, without one, a failed handshake
// (counted in fledge_gateway_tls_unknown_server_name_total). The request Host is
// routed as on plain HTTP, so a client may send another served Host over a
// connection (HTTP/2 connection coalescing does). Handshakes run concurrently, each
// within ReadHeaderTimeout. The certificates are part of the routing table: a
// changed Secret serves the next handshakes, connections already open keep theirs,
// nothing is dropped. A Secret that is missing, unreadable, of another type,
// without tls.crt or tls.key, not a certificate or with a key that does not match
// skips its route (a problem naming the Secret, in fledge_gateway_routes_skipped
// and fledge_gateway_tls_rejected_secrets); other hosts are unaffected. The Secrets
// are read one by one (list and watch with fieldSelector metadata.name), so that
// an RBAC grant on their names is enough (docs/security.md). The first build that
// names a Secret waits up to 5 s for its first list; one not read by then (for
// instance not granted) is a problem until it is, and its watch rebuilds the
// table when it is read.
//
// HTTP/2 over TLS is served by net/http's server on the decrypted connection; the
// plain listener also serves HTTP/2 with prior knowledge (h2c) with Options.H2C
// (--h2c). HTTP/2 requests to HTTP/1.1 backends take the fast path when an HTTP/1.1
// request would (see Forwarding), the others ReverseProxy; the HTTP/1.1 framing checks
// (package framing) run on the plaintext of every HTTP/1.x connection, over TLS
// too. HTTP/2 carries no HTTP/1.1 framing: a request with Transfer-Encoding or
// Connection gets 400, an oversized header list 431, a body longer than its
// Content-Length or a header value with CR or LF resets the stream.
//
// # gRPC
//
// gRPC is HTTP/2 with trailers: a client through h2 or h2c, a backend with an h2c
// port. Calls are split like any request (unary and streaming alike, one call one
// request). A call's outcome is its grpc-status (response headers for a
// trailers-only answer, else trailers) while the HTTP status is 200: a response
// with a non-zero grpc-status is counted in fledge_gateway_requests_total under
// the HTTP code the status maps to (CANCELLED 499, UNKNOWN, INTERNAL and DATA_LOSS
// 500, INVALID_ARGUMENT, FAILED_PRECONDITION and OUT_OF_RANGE 400,
// DEADLINE_EXCEEDED 504, NOT_FOUND 404, ALREADY_EXISTS and ABORTED 409,
// PERMISSION_DENIED 403, RESOURCE_EXHAUSTED 429, UNIMPLEMENTED 501, UNAVAILABLE
// 503, UNAUTHENTICATED 401), so that the analysis, which counts 5xx, judges a
// gRPC canary; fledge_gateway_grpc_responses_total counts every gRPC response by
// grpc-status.
//
// # Client connections
//
// HTTP/1.1 client connections, plain and over TLS (ALPN http/1.1 or none), are
// served by the gateway's own connection loop (h1server.go): one goroutine per
// connection reads a request head, routes the request, forwards it and writes
// the response, with no other goroutine involved and no read running in the
// background. It serves the requests the fast path takes, as far as their head
// tells: HTTP/1.1, origin-form target, exactly one ASCII Host, no
// Transfer-Encoding, Trailer, Upgrade, Expect or TE, a Content-Length up to 64
// KiB, a query ReverseProxy sends unchanged, and a head that fits its 8 KiB
// buffer. At the first other request (and for h2 connections, h2c prefaces,
// HTTP/1.0) it hands the connection, with every byte not yet consumed, to
// net/http's server, which serves it from then on (counted by reason in
// fledge_gateway_client_connections_handed_off_total). It parses a request head
// itself (h1parse.go) into objects the connection reuses: one string per head,
// the header values in one array, the http.Request reset rather than allocated;
// the request equals what http.ReadRequest gives and net/http's server accepts,
// and a head it does not parse that way (an escaped path, say) is handed off
// too. Its responses are framed as net/http frames them (status text, Date,
// Content-Type sniffing, Content-Length for a body that ends within 2048 bytes,
// chunked otherwise, trailers), which TestLoopSameAsNetHTTP compares as a
// client reads them; a plain backend response (one Content-Length, a
// Content-Type or no body, no Transfer-Encoding, Trailer or Grpc-Status, not an
// event stream) has its header lines written through in the backend's order
// (h1through.go), where net/http would sort them.
// A client that goes away while its request waits for the backend is noticed by
// a read started only after the request has waited 50 ms (and its body, if any,
// was sent on): the request is cancelled and recorded as 499, as under net/http.
// Read and write deadlines are kept at most 1/16 of their timeout (and 1 s)
// early rather than set twice per request. Before reading the next request or
// a backend's response, the loop yields once to the scheduler, so that the read
// more often finds its bytes (fewer EAGAIN reads and poller wake-ups).
// Options.DisableFastPath hands every connection to net/http.
//
// # Event loops
//
// On Linux the plain HTTP listener is served by event loops (evloop_linux.go)
// in front of the connection loop: one per P (GOMAXPROCS), each a goroutine
// waiting in an epoll set of its own over raw non-blocking descriptors, as
// HAProxy's threads do. While they run, GOMAXPROCS is one more than the loops:
// a loop keeps its P while it waits in epoll_wait, and the extra P runs the
// rest of the process (HTTPS and HTTP/2 connections, connections handed on, the
// admin server, the API server's watch, the garbage collector), which would
// otherwise wait for the scheduler to take a P back from a waiting loop (20 µs
// to 10 ms per wake-up). A loop yields to the scheduler every 5 ms, so that it
// is never preempted by a signal, and serves a request without a heap
// allocation (the request's strings are those of its buffer). A loop reads a
// client's bytes only when epoll says they came (no read that finds nothing, no
// goroutine parked and woken per request) and serves the plainest exchange
// itself: a bodiless GET the connection loop would serve (framing checked by
// package framing, same parse, route, split, in-flight bound, request head
// written by writeRequestHead), sent on a backend connection of the loop's own,
// and a response whose head the connection loop would write through
// (h1through.go) and that arrives whole in the loop's 16 KiB buffer. Idle
// backend connections stay in the epoll set, so one the backend closes (or
// writes to unasked) is dropped when that event comes, with no probe before
// reuse; a GET sent on a connection the backend closed meanwhile is sent again
// on a new one. Anything else goes to the connection loop with every byte not
// consumed, where it is served as if the event loop had never seen it: before
// the request is sent (another method, a body, an upgrade, a refused or too
// large head, no route or endpoint, an overloaded endpoint, a failed connect),
// the client connection; after it is sent (a chunked, streamed, large or 1xx
// response, a response header timeout), the client connection with the
// exchange (the backend connection and the response bytes read so far),
// counted by stage in fledge_gateway_event_loop_handoffs_total. A connection
// handed on stays with the connection loop. The loops count client
// connections against MaxClientConns themselves (leaving the listener while at
// the limit) and check timeouts every 250 ms, so a timeout ends up to 250 ms
// late. Options.DisableEventLoops (flag --disable-event-loops) serves the plain
// listener with the connection loop alone; the HTTPS listener is always served
// by it. Calling runtime.GOMAXPROCS ends the runtime's own updates of it when
// the container's CPU limit changes: the number of loops is fixed when the
// gateway starts serving.
//
// # Forwarding
//
// Plain request/response exchanges from HTTP/1.x and HTTP/2 clients to HTTP/1.1
// backends take a fast path: the gateway's own
// pool of HTTP/1.1 connections per endpoint address (a mutex per pool, no global
// lock), the request head written by hand (without a body, by the read that
// waits for the response, once the poller is armed), a plain response head scanned in
// the connection's buffer and parsed as http.ReadResponse would (any other read
// by http.ReadResponse). Everything else goes through httputil.ReverseProxy and
// http.Transport: protocol upgrades (WebSocket), CONNECT, Expect, TE, request
// trailers, chunked request bodies and bodies over 64 KiB (the fast path writes
// a body completely before reading the response), non-ASCII Hosts and queries
// that ReverseProxy would rewrite. Both paths forward alike: Host, path and
// query unchanged; hop-by-hop headers (Connection and the headers it names,
// Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade) stripped both
// ways; X-Forwarded-For/Host/Proto set, client-sent ones and Forwarded dropped;
// no User-Agent added; response bodies streamed, flushed at once when their
// length is unknown or they are text/event-stream; response trailers passed on.
// A fast-path connection goes back to its pool only after a response read to
// its end, exactly: framed by Content-Length or chunked encoding (a response
// whose body ends with the connection closes it), without Connection: close,
// and with no byte left unread. Every pooled connection is checked before
// reuse (a non-blocking peek): one the backend closed, or on which it sent
// bytes nobody asked for (more than its framing said, a body on a HEAD or
// 204), is closed instead, so that such bytes never become another client's
// response and a request that cannot be replayed is not sent on a dead
// connection. A replayable request (GET, HEAD, OPTIONS, TRACE without body)
// that still fails on a reused connection before any response byte is sent
// again on another one. Idle connections close after IdleConnTimeout; at most
// MaxIdleConnsPerHost per endpoint and MaxIdleConns in total are kept. The
// ReverseProxy path's http.Transport does the same. On both paths the headers
// a response's Connection header names are stripped also when it says close
// (http.ReadResponse deletes that header; headscan.go reads it off the wire),
// 1xx informational responses are not sent to HTTP/1.0 clients, and at most
// five of them precede a response.
// Options.DisableFastPath (--disable-fast-path) sends every request through
// ReverseProxy: a kill switch.
//
// # Limits
//
// Clients: at most MaxClientConns connections (further ones wait in the
// listen backlog), request heads up to MaxRequestHeaderBytes (431 beyond),
// ReadHeaderTimeout to send a head, ClientBodyTimeout between two reads of a
// body (408), ClientSendTimeout for a write to the client (the connection is
// cut; an idle stream is not), IdleTimeout between keep-alive requests.
// Backends: DialTimeout to connect (502), ResponseHeaderTimeout for the
// response head once the request is sent (504), MaxResponseHeaderBytes for
// all its heads (502). Response bodies have no timeout: streams may idle.
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
//   - 503: no backend of the route has a ready endpoint, or no table yet
//     (before the first sync). A request whose chosen backend has no ready
//     endpoint, or whose endpoints (up to three tried) all refuse the
//     connection, was not sent at all: it goes to the route's other backend
//     when that has endpoints (any method), and the chosen backend is charged
//     a 503 or 502 for it (fledge_gateway_redispatched_requests_total counts
//     these), so that an unreachable canary is judged as failing;
//   - 502: the backend could not be reached, or its response was broken or
//     too large;
//   - 504: the backend sent no response head within ResponseHeaderTimeout;
//   - 400, 408: the client's request body broke off, was malformed or stalled;
//     the connection is closed after it. These are the client's errors: they
//     are counted in fledge_gateway_client_errors_total, not against the
//     backend chosen;
//   - 431: the request head is too large (net/http's server, to which the
//     connection loop hands a head larger than its buffer);
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
//	fledge_gateway_redispatched_requests_total{namespace,app,from,to,reason}  counter
//	    Requests served by the other backend because the chosen one had no
//	    ready endpoint (reason no-endpoint) or refused connections
//	    (unreachable).
//	fledge_gateway_refused_requests_total{reason}  counter
//	    Requests refused with 400 before routing: ambiguous or malformed
//	    framing (package framing).
//	fledge_gateway_client_errors_total{namespace,app,service}  counter
//	    Requests refused (400, 408) because the client broke them, by the
//	    backend that had been chosen; not in fledge_gateway_requests_total.
//	fledge_gateway_grpc_responses_total{namespace,app,service,grpc_status}  counter
//	    gRPC responses by grpc-status (see gRPC above).
//	fledge_gateway_tls_certificates  gauge
//	    Hosts served over HTTPS with their own certificate.
//	fledge_gateway_tls_rejected_secrets  gauge
//	    TLS Secrets named (by routes, or as the default) that cannot be used.
//	fledge_gateway_tls_unknown_server_name_total  counter
//	    Handshakes failed: no route for the server name, no default certificate.
//	fledge_gateway_client_connections_handed_off_total{reason}  counter
//	    Client connections the connection loop passed to net/http's server, by
//	    the first request it did not serve itself: h2, http/1.0, upgrade,
//	    expect, body (chunked, a trailer or over 64 KiB), head-too-large, other.
//	fledge_gateway_event_loop_handoffs_total{stage}
//	    Client connections the event loops passed to the connection loop, at
//	    a request they do not send themselves (request) or with the exchange,
//	    for a response they do not write themselves (response).
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
// `fledge gateway` sets [Options] from its flags (`fledge gateway --help`
// lists them with their defaults; zero or negative limits are refused) and
// calls [Run]. It needs get, list and watch on trafficroutes.fledge.dev,
// services and endpointslices.discovery.k8s.io (cluster-wide, or in
// --namespace with a Role), and on each TLS Secret the routes name (a Role
// with resourceNames). deploy/gateway.yaml runs it with GOGC=400: the TLS,
// HTTP/2 and handed-on paths allocate per request (the event loops do not),
// and Go reverse proxies measured on this project's 2-core benchmark machine
// served 13% (GOGC=200) and 19% (GOGC=400) more requests per second than with
// the default of 100. It sets GOMEMLIMIT from the container's memory limit
// (Downward API), so that the larger heap GOGC=400 allows stays under the
// limit; GOMAXPROCS follows the CPU limit by itself (Go 1.25+), and the
// gateway runs that many event loops plus one P (see Event loops).
//
// # What it does not do
//
// No TLS towards backends (HTTP/1.1 or h2c only); no HTTP/3. HTTP/1.1 Upgrade
// (WebSocket) is proxied, also over TLS, but not over HTTP/2 (RFC 8441's extended
// CONNECT): WebSocket clients use HTTP/1.1 (ALPN http/1.1). Upgraded connections
// are not waited for by the drain. Hosts and server names match exactly (no
// wildcards; a wildcard certificate serves the hosts whose routes name it). The
// connection and in-flight limits apply per listener.
package gateway
