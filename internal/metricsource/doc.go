// Package metricsource reads the request counts and latency histograms that the
// canary analysis compares: per application backend (the stable or the canary
// Service), over a window that starts when the current analysis step started.
//
// Two sources implement [Source]. Both count the requests of a backend except
// those the client abandoned (code 499), the 5xx among them as errors, and the
// latency histogram of fledge_gateway_request_duration_seconds (which times
// every request, 499 included).
//
// # Inconclusive, never a pass
//
// Since returns an error wrapping [ErrNoData] when the source answered but has
// nothing for the backend (no series, an empty result, NaN or ±Inf, a window
// that starts in the future), and another error when it could not answer (a
// replica or Prometheus unreachable, an HTTP error, a bad query, a result of
// the wrong shape). Both make the analysis inconclusive; neither is ever read
// as zero errors. A backend whose series exist but that served nothing in the
// window gets zero counts without error (the analysis then waits for traffic).
//
// # Builtin: the gateway's own counters, without Prometheus
//
// [Builtin] scrapes /metrics of every gateway replica ([Targets]: a static
// list, or the ready endpoints of a Service's EndpointSlices, normally
// fledge-system/fledge-gateway-metrics port "metrics"), concurrently, and sums
// the replicas. A scrape of all replicas is shared by concurrent reads and
// reused for MaxAge (1s), so reading many backends costs one scrape.
//
// The counters are cumulative since each replica started, so the source keeps,
// for each window (backend, start) and each replica, a baseline:
//
//   - The window effectively begins at the first scrape at or after start
//     (its first read): that scrape is the baseline, and the first read
//     returns zero counts. A scrape that began before start is never used as a
//     baseline. Requests served between start and the first read are lost,
//     unless the replica started after start (below). Read each window as soon
//     as its step starts.
//   - A replica first seen later (scaled up, or ready again) is counted from
//     its value at first sight; if its process started at or after the window's
//     start (process_start_time_seconds, compared with this process's clock),
//     everything it counted is inside the window and counted.
//   - A reset (the replica restarted: its process start time changed, or a
//     value went down, as when the gateway deleted a backend's series and made
//     them again) keeps what the replica served before and counts its new
//     value in full. Requests served between the last scrape before the reset
//     and the reset are lost.
//   - A replica that disappears (scaled down, not ready) keeps what it served
//     while it was seen; if it comes back, it counts on from there.
//   - If any listed replica cannot be scraped, the read fails (inconclusive):
//     a sum over some replicas would silently undercount one side. The state
//     is unchanged and the next read tries again. No ready replica is an error.
//   - No request series for the backend on any replica is ErrNoData.
//
// Windows are forgotten when not read for IdleTimeout (1h), and beyond
// WindowsPerBackend (4) windows of one backend the least recently read one is
// forgotten, so memory stays bounded by the backends analysed in the last hour
// (a window is a few hundred bytes per replica). A forgotten window read again
// starts over (zero counts). A controller restart forgets every window too: the
// builtin source cannot recover counts from before its first read, which the
// Prometheus source can.
//
// # Prometheus
//
// [Prometheus] runs instant PromQL queries through the HTTP API
// (/api/v1/query). By default it reads the gateway's counters of the backend
// (requests without code 499, 5xx requests, the latency buckets) at two
// instants, the window's start and now, and sums the differences series by
// series: the counts are exact integers, as the builtin source's. A series
// whose value went down (its replica restarted) counts its value at now; a
// series without a sample at the start (born inside the window: the canary's
// first requests, a new replica) counts from zero. The value at each instant
// is Prometheus' last sample before it (within its 5 minute lookback), so the
// window is shifted by up to one scrape interval: at most one interval of the
// previous step's traffic is counted in the new one, and the latest interval
// is not yet seen.
//
// Custom [Queries] are text/template templates given the backend's labels
// (escaped for a double-quoted PromQL string) and the window: now − start,
// rounded up to whole seconds, at least 1s ("[95s]"), run at now; the fields
// left empty default to increase() of the gateway's metrics
// (IncreaseRequestsQuery, ...).
//
// Prometheus' increase() needs two samples in the window: a window shorter than
// about twice the scrape interval returns nothing (ErrNoData; with a 1s scrape
// interval, a 1s window). It also extrapolates to the window's edges: a count
// is f times the true increase, 1 ≤ f ≤ window / (time between the window's
// first and last samples), typically window / (window − scrape interval) and at
// worst about window / (window − 2 × scrape interval): 1.5× for a 3s window at
// 1s scrapes, about 1.1× for a window of ten scrape intervals. Stable and
// canary get about the same factor, but the counts (the evidence) are inflated
// by it, and so are the chances of a wrong verdict: in the decision benchmark
// (docs/decisions.md), A/A canaries at 1000 requests/s are rolled back more
// often on increase() than on exact counts. Buckets extrapolated separately
// can dip below a lower bucket; the histogram is made cumulative again with a
// running maximum.
//
// # Wiring (suggested controller flags)
//
//	--metrics-source=builtin|prometheus   (required choice; no silent fallback)
//	--gateway-metrics-service=fledge-system/fledge-gateway-metrics
//	--gateway-metrics-port=metrics
//	--prometheus-url=http://prometheus.monitoring:9090
//	--prometheus-bearer-token-file=PATH   (read into a Secret; never logged)
//	--prometheus-timeout=10s
//
// builtin (the API reader lists the slices at most once per shared scrape; the
// manager's cached client also works when its cache covers fledge-system,
// which it does not under --namespace):
//
//	src := metricsource.NewBuiltin(metricsource.EndpointSliceTargets{
//		Reader:    mgr.GetAPIReader(),
//		Namespace: "fledge-system", Service: "fledge-gateway-metrics",
//	}, metricsource.BuiltinOptions{})
//
// prometheus:
//
//	src, err := metricsource.NewPrometheus(metricsource.PrometheusOptions{
//		URL: url, BearerToken: metricsource.Secret(token),
//	})
package metricsource
