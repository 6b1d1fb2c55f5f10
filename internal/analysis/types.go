package analysis

import (
	"errors"
	"fmt"
	"math"
)

// Histogram is a latency histogram in the Prometheus layout.
type Histogram struct {
	// Bounds are the buckets' upper bounds in seconds, strictly increasing, the
	// last one +Inf (Prometheus' le label).
	Bounds []float64
	// Counts are cumulative: Counts[i] is the number of requests that took at
	// most Bounds[i] seconds, so the last one is the total. Same length as Bounds.
	Counts []float64
}

// Total is the number of requests in the histogram (its +Inf bucket), 0 when empty.
func (h Histogram) Total() float64 {
	if len(h.Counts) == 0 {
		return 0
	}
	return h.Counts[len(h.Counts)-1]
}

// Sample is what one side (stable or canary) served during a Window.
type Sample struct {
	// Requests is the number of requests answered.
	Requests float64
	// Errors is how many of them failed (5xx, or whatever the provider counts).
	Errors float64
	// Latency is the histogram of the requests' durations. Leave it empty when
	// the latency test is off (Criteria.LatencyQuantile == 0).
	Latency Histogram
}

// Window is the increase of the counters over one period during which the
// traffic split between stable and canary did not change (normally one step).
type Window struct {
	Stable, Canary Sample
}

// Observation is everything known about a release in progress.
type Observation struct {
	// Windows, oldest first, one per constant-split period since the analysis
	// started; the last one is the current step.
	Windows []Window
	// Err, when not nil, says the metrics source failed; the verdict is then
	// Inconclusive whatever Windows hold.
	Err error
}

// Criteria say what a healthy canary is. Start from DefaultCriteria.
type Criteria struct {
	// Alpha bounds the probability that an analysis ever fails a canary that is
	// no worse than the stable, however often Judge is called (0 < Alpha < 1).
	Alpha float64
	// Beta bounds the probability that an analysis ever passes a bad canary
	// (one at least BadErrorRatio × worse and above AcceptableErrorRate, or with
	// BadLatencyRatio × the stable's share of slow requests) (0 < Beta < 1).
	Beta float64
	// BadErrorRatio is the ratio of canary to stable error rate that counts as
	// bad (> 1).
	BadErrorRatio float64
	// AcceptableErrorRate is an error rate low enough to pass whatever the
	// stable does: a canary confidently below it passes the error test, even
	// when the stable has no errors at all. 0 turns that route off.
	AcceptableErrorRate float64
	// MinErrorIncrease is the smallest excess of the canary's error rate over
	// the stable's (point estimates) that may fail the canary, e.g. 0.001 for
	// 0.1 percentage point (≥ 0).
	MinErrorIncrease float64
	// MaxErrorRate is the absolute guard: a canary confidently above it fails at
	// once, whatever the stable does. 0 turns the guard off.
	MaxErrorRate float64
	// MinRequests is the number of canary requests the current window needs
	// before the canary may pass.
	MinRequests float64
	// LatencyQuantile places the bucket bound used to pass on latency: the one
	// whose share of slower requests is closest to 1 − LatencyQuantile. 0 turns
	// the latency test off.
	LatencyQuantile float64
	// BadLatencyRatio is the ratio of canary to stable share of requests slower
	// than that bound that counts as bad (> 1).
	BadLatencyRatio float64
	// MinSlowIncrease is the smallest excess of the canary's share of slow
	// requests over the stable's that may fail the canary (≥ 0).
	MinSlowIncrease float64
	// MinLatency, in seconds, is the least bucket bound compared: requests
	// faster than it all count as fast, so sub-millisecond noise (a colder
	// connection pool on the side with less traffic) neither fails nor holds
	// back a canary (≥ 0).
	MinLatency float64
}

// DefaultCriteria returns the recommended criteria: false rollbacks ≤ 1%, bad
// canaries passed ≤ 5%, bad meaning twice the stable's error rate (and ≥ 1%) or
// twice its share of requests slower than its p90 bucket; guard at 20% errors.
func DefaultCriteria() Criteria {
	return Criteria{
		Alpha:               0.01,
		Beta:                0.05,
		BadErrorRatio:       2,
		AcceptableErrorRate: 0.01,
		MinErrorIncrease:    0.001,
		MaxErrorRate:        0.2,
		MinRequests:         100,
		LatencyQuantile:     0.9,
		BadLatencyRatio:     2,
		MinSlowIncrease:     0.05,
		MinLatency:          0.01,
	}
}

// ErrInvalidCriteria is wrapped by Criteria.Validate's errors.
var ErrInvalidCriteria = errors.New("invalid analysis criteria")

// Validate reports the first field out of range.
func (c Criteria) Validate() error {
	bad := func(name string, v float64, want string) error {
		return fmt.Errorf("%w: %s is %v, want %s", ErrInvalidCriteria, name, v, want)
	}
	open01 := func(v float64) bool { return v > 0 && v < 1 }
	switch {
	case !open01(c.Alpha):
		return bad("alpha", c.Alpha, "0 < alpha < 1")
	case !open01(c.Beta):
		return bad("beta", c.Beta, "0 < beta < 1")
	case !(c.BadErrorRatio > 1) || math.IsInf(c.BadErrorRatio, 0):
		return bad("badErrorRatio", c.BadErrorRatio, "a finite ratio > 1")
	case !(c.AcceptableErrorRate == 0 || open01(c.AcceptableErrorRate)):
		return bad("acceptableErrorRate", c.AcceptableErrorRate, "0 (off) or a rate in (0, 1)")
	case !(c.MinErrorIncrease >= 0 && c.MinErrorIncrease < 1):
		return bad("minErrorIncrease", c.MinErrorIncrease, "a rate in [0, 1)")
	case !(c.MaxErrorRate == 0 || open01(c.MaxErrorRate)):
		return bad("maxErrorRate", c.MaxErrorRate, "0 (off) or a rate in (0, 1)")
	case !(c.MinRequests >= 0) || math.IsInf(c.MinRequests, 0):
		return bad("minRequests", c.MinRequests, "a finite count ≥ 0")
	case !(c.LatencyQuantile == 0 || open01(c.LatencyQuantile)):
		return bad("latencyQuantile", c.LatencyQuantile, "0 (off) or a quantile in (0, 1)")
	case c.LatencyQuantile != 0 && (!(c.BadLatencyRatio > 1) || math.IsInf(c.BadLatencyRatio, 0)):
		return bad("badLatencyRatio", c.BadLatencyRatio, "a finite ratio > 1")
	case !(c.MinSlowIncrease >= 0 && c.MinSlowIncrease < 1):
		return bad("minSlowIncrease", c.MinSlowIncrease, "a share in [0, 1)")
	case !(c.MinLatency >= 0) || math.IsInf(c.MinLatency, 0):
		return bad("minLatency", c.MinLatency, "a finite duration in seconds ≥ 0")
	}
	return nil
}

// Result is the outcome of a judgment.
type Result string

const (
	// Pass: the canary is healthy enough to take the next step.
	Pass Result = "Pass"
	// Fail: roll the canary back.
	Fail Result = "Fail"
	// Inconclusive: keep the current step and look again later.
	Inconclusive Result = "Inconclusive"
)

// Reason is a short CamelCase code for a Verdict, fit for a Condition reason
// and an Event reason.
type Reason string

const (
	// ReasonHealthy: every test passed.
	ReasonHealthy Reason = "Healthy"
	// ReasonErrorRateAboveLimit: the canary's error rate is confidently above
	// MaxErrorRate while the stable's is not near it.
	ReasonErrorRateAboveLimit Reason = "ErrorRateAboveLimit"
	// ReasonErrorRateHigher: the canary fails confidently more often than the stable.
	ReasonErrorRateHigher Reason = "ErrorRateHigher"
	// ReasonLatencyHigher: the canary is confidently slower than the stable.
	ReasonLatencyHigher Reason = "LatencyHigher"
	// ReasonCollectingEvidence: the data are valid but not yet decisive.
	ReasonCollectingEvidence Reason = "CollectingEvidence"
	// ReasonTooFewRequests: the current window has fewer than MinRequests canary requests.
	ReasonTooFewRequests Reason = "TooFewRequests"
	// ReasonNoCanaryTraffic: the canary served nothing in the current window.
	ReasonNoCanaryTraffic Reason = "NoCanaryTraffic"
	// ReasonNoStableTraffic: the stable served nothing in the current window.
	ReasonNoStableTraffic Reason = "NoStableTraffic"
	// ReasonNoLatencyData: the latency test is on but a histogram is empty.
	ReasonNoLatencyData Reason = "NoLatencyData"
	// ReasonInvalidMetrics: NaN, negative or inconsistent counts, or histograms
	// that are malformed or have different bucket bounds.
	ReasonInvalidMetrics Reason = "InvalidMetrics"
	// ReasonMetricsUnavailable: the metrics source failed.
	ReasonMetricsUnavailable Reason = "MetricsUnavailable"
	// ReasonSharedIncident: the stable fails too (set by the step machine,
	// which sees the errors of each interval); the judgment waits.
	ReasonSharedIncident Reason = "SharedIncident"
	// ReasonNoRecentTraffic: the verdict would pass, but a version served
	// nothing since the last look (set by the step machine): a traffic gap
	// never passes a step.
	ReasonNoRecentTraffic Reason = "NoRecentTraffic"
	// ReasonInvalidCriteria: the Criteria do not validate.
	ReasonInvalidCriteria Reason = "InvalidCriteria"
)

// Comparison is the evidence of one canary-versus-stable comparison of event
// rates: errors per request, or requests slower than Bound per request.
type Comparison struct {
	// Bound is the latency in seconds above which a request counts as slow
	// (latency comparisons only).
	Bound float64
	// StableEvents of StableTotal requests, and the same for the canary, summed
	// over all windows.
	StableEvents, StableTotal float64
	CanaryEvents, CanaryTotal float64
	// Worse is the evidence (an e-value, "times likelier") that the canary's
	// rate is higher than the stable's; the comparison fails at FailAt = 1/α
	// (its share of α).
	Worse, FailAt float64
	// NotBad is the likelihood ratio of "same rate as the stable" against "bad
	// ratio × the stable's rate"; the comparison passes at PassAt.
	NotBad, PassAt float64
	// RatioLower, set when the comparison failed, is the lower confidence bound
	// (level 1 − 1/FailAt, simultaneous over bucket bounds for latency) of
	// canary rate ÷ stable rate; 0 when not computed or not above 1.
	RatioLower float64
}

// StableRate is StableEvents/StableTotal, NaN without requests.
func (c Comparison) StableRate() float64 { return ratio(c.StableEvents, c.StableTotal) }

// CanaryRate is CanaryEvents/CanaryTotal, NaN without requests.
func (c Comparison) CanaryRate() float64 { return ratio(c.CanaryEvents, c.CanaryTotal) }

func ratio(a, b float64) float64 {
	if b <= 0 {
		return math.NaN()
	}
	return a / b
}

// ErrorEvidence is the evidence about error rates.
type ErrorEvidence struct {
	Comparison
	// AboveLimit is the evidence that the canary's error rate in the current
	// window is above MaxErrorRate; the guard fails the canary at
	// AboveLimitAt, unless Shared.
	AboveLimit, AboveLimitAt float64
	// GuardCanaryErrors of GuardCanaryTotal requests, and the same for the
	// stable, are the current window's counts the guard looks at.
	GuardCanaryErrors, GuardCanaryTotal float64
	GuardStableErrors, GuardStableTotal float64
	// Shared is set when the stable's error rate in the current window is at
	// least SharedShare × MaxErrorRate: an incident on both versions, which
	// the guard does not blame on the canary.
	Shared bool
	// BelowAcceptable is the likelihood ratio of "a quarter of
	// AcceptableErrorRate" against "AcceptableErrorRate"; the error test passes
	// at BelowAcceptableAt whatever the stable does.
	BelowAcceptable, BelowAcceptableAt float64
}

// LatencyEvidence is the evidence about latency. Its Comparison counts requests
// slower than Bound: the bound that drove a failure, otherwise the bound used to
// pass. Enabled is false when the latency test is off.
type LatencyEvidence struct {
	Comparison
	Enabled bool
	// Indistinguishable is true when every request of both sides fell in the
	// same bucket; the latency test then passes on MinRequests alone.
	Indistinguishable bool
}

// Verdict is the outcome of Judge with its evidence.
type Verdict struct {
	Result Result
	Reason Reason
	// Evidence explains the verdict in one or two sentences with the counts,
	// rates and thresholds behind it.
	Evidence string
	Errors   ErrorEvidence
	Latency  LatencyEvidence
}
