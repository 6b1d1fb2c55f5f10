// Package analysis decides whether a canary is healthy by comparing it with the
// stable version. It is pure: no I/O, no clock, no randomness. The caller gathers
// counts (from the embedded gateway or Prometheus), calls Judge after every
// scrape, and acts on the Verdict: Fail rolls back, Pass lets the step machine
// advance, Inconclusive waits. Every Verdict explains itself in words and numbers
// a person can check (Verdict.Evidence) and carries the same numbers as fields.
//
// # Input
//
// An Observation is a list of Windows, oldest first, one per period during which
// the traffic split was constant (normally one per step of the release). Each
// Window holds, for the stable and the canary, the increase of the request and
// error counters and of the latency histogram over that period; the last Window
// is the current step and grows with every call. Counts are float64 because
// Prometheus' increase() extrapolates; NaN, ±Inf and negative counts, errors
// above requests, malformed histograms and bucket bounds that differ between
// the two sides or between windows make the result Inconclusive, never Pass. So
// do a metrics source that failed (Observation.Err), no canary traffic in the
// current window and fewer than Criteria.MinRequests canary requests in it.
//
// # Error rate: failing (anytime-valid, false rollbacks ≤ α)
//
// Within window j let π_j = n_cj / (n_cj + n_sj) be the canary's share of the
// requests, k_j the canary's errors and m_j the stable's. If the canary's error
// rate is θ times the stable's, an error is the canary's with probability
//
//	π_j(θ) = θ·π_j / (θ·π_j + 1 − π_j)
//
// whatever the (possibly drifting) common error rate is: errors of the two
// sides are thinned from the same request stream, so conditioning on which side
// an error came from removes the unknown base rate. This is exact for Poisson
// request arrivals and conservative (hypergeometric instead of binomial) when
// conditioning on the request counts. The likelihood ratio of θ against θ0 is
//
//	Λ(θ; θ0) = Π_j (π_j(θ)/π_j(θ0))^k_j · ((1 − π_j(θ))/(1 − π_j(θ0)))^m_j
//
// and, for fixed θ > θ0, it is a non-negative supermartingale whenever the true
// ratio is ≤ θ0 (the per-error factor has expectation ≤ 1 by monotone
// likelihood ratio). A fixed mixture over alternatives keeps that property:
//
//	E(θ0) = Σ_i g_i · Λ(r_i·θ0; θ0),  r = 1.25, 1.5, 2, 3, 5, 10, 30, 100, 1000
//
// with weights g = .05, .1 × 7, .25 (a quarter of the mass on "the canary
// fails and the stable does not", so that a canary failing 5% of requests next
// to a stable failing none is caught after three canary errors at a 10% split).
// By Ville's inequality P(E(1) ever reaches 1/α_e) ≤ α_e when the canary is no
// worse than the stable, however often Judge is called; that is the bound on
// false rollbacks. The error test fails when E(1) ≥ 1/α_e and, to ignore
// differences too small to matter, the canary's error rate exceeds the stable's
// by at least Criteria.MinErrorIncrease (point estimates over all windows).
// When it fails, the Verdict reports the lower end of the confidence sequence
// {θ0 : E(θ0) < 1/α_e}: "the canary's error rate is at least L× the stable's".
//
// α is split: 10% goes to the absolute guard below, the rest to the error test,
// shared evenly with the latency test when that is on (α_e = α_l = 0.45·α).
//
// # Error rate: passing (a bad canary passes with probability ≤ β)
//
// A canary is bad when its error rate is at least BadErrorRatio (θ_bad) times
// the stable's and at least AcceptableErrorRate (τ). The error test passes when
// either sequential probability ratio test reaches 2/β:
//
//	relative: Λ(1; θ_bad) ≥ 2/β  ("as likely as the stable" vs "θ_bad× the stable")
//	absolute: (q/τ)^e_c · ((1−q)/(1−τ))^(n_c−e_c) ≥ 2/β, with q = τ/4,
//
// where e_c and n_c are the canary's errors and requests over all windows. Each
// is a supermartingale under its own "bad" hypothesis, so a bad canary passes
// with probability ≤ β/2 + β/2 = β over the whole release. The absolute test is
// what lets a service with no errors at all pass.
//
// # Error rate: absolute guard
//
// The canary fails at once when its error rate in the current window (the
// seconds both sides served alike) is confidently above MaxErrorRate (G): the
// mixture, over p = G + (1−G)·f with f = .1, .25, .5, .75, .95 in equal
// weights, of (p/G)^e_c·((1−p)/(1−G))^(n_c−e_c) reaches 1/α_g with α_g = 0.1·α;
// unless the stable's error rate in the same window is at least SharedShare·G
// (ErrorEvidence.Shared): errors on both versions are an incident the canary
// shares, which the relative tests judge. Under "canary no worse than the
// stable" the guard fires only when the canary is confidently above G while
// the stable, over the same seconds, is under G/2.
//
// # Latency
//
// Latency is compared on the histogram the gateway exports. For a bucket bound
// b, a request is slow when it took longer than b; if the canary is no slower
// than the stable, its share of slow requests is no higher, at every b. So the
// error machinery applies to "slow" events with θ the ratio of slow shares. For
// failing, the mixture also runs uniformly over all finite bucket bounds (fixed
// in advance, so the bound is not chosen by looking at the data):
//
//	E_lat = (1/L) Σ_b Σ_i g_i · Λ_b(r_i; 1)  ≥ 1/α_l
//
// together with a slow-share increase of at least MinSlowIncrease at the bound
// contributing most. For passing, the bound b* is the one whose pooled (both
// sides, all windows) slow share is closest to 1 − LatencyQuantile (by ratio),
// and the test passes when Λ_b*(1; BadLatencyRatio) ≥ 1/β. With a log-normal
// latency of σ = 0.5 and b* at the stable's p90, a slow-share ratio of 2
// corresponds to a latency about 25% higher. When every request of both sides
// lands in one bucket the two are indistinguishable at the histogram's
// resolution and the latency test passes on MinRequests alone. The choice of b*
// looks at the data, so the latency pass guarantee is approximate; the
// benchmark in internal/bench measures it.
//
// # Combining
//
// Fail when the guard, the error test or the latency test fails (in that order
// of reporting). Pass when the data are valid, the current window has at least
// MinRequests canary requests and some stable requests, and every enabled test
// passes. Otherwise Inconclusive, with a Reason saying why.
package analysis
