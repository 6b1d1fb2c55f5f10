package analysis

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The sentences below use the words "times likelier": an e-value or a
// likelihood ratio of 870 reads "the data are 870 times likelier if ... than
// if not". Thresholds are given next to every number so that a person can
// check the decision without knowing the formulas.

func (ev ErrorEvidence) explainGuard(c Criteria) string {
	return fmt.Sprintf("canary failed %s of %s requests (%s) in this step, stable %s of %s (%s): that is %s times likelier if its error rate is above the %s limit than at the limit (rollback at %s), and the stable is under %s",
		count(ev.GuardCanaryErrors), count(ev.GuardCanaryTotal), pct(ratio(ev.GuardCanaryErrors, ev.GuardCanaryTotal)),
		count(ev.GuardStableErrors), count(ev.GuardStableTotal), pct(ratio(ev.GuardStableErrors, ev.GuardStableTotal)),
		odds(ev.AboveLimit), pct(c.MaxErrorRate), odds(ev.AboveLimitAt), pct(c.MaxErrorRate*SharedShare))
}

func (ev ErrorEvidence) explainFail() string {
	return fmt.Sprintf("canary failed %s of %s requests (%s), stable %s of %s (%s): that is %s times likelier if the canary fails more often than the stable (rollback at %s, which keeps false rollbacks under %s); at that confidence the canary's error rate is at least %s× the stable's",
		count(ev.CanaryEvents), count(ev.CanaryTotal), pct(ev.CanaryRate()),
		count(ev.StableEvents), count(ev.StableTotal), pct(ev.StableRate()),
		odds(ev.Worse), odds(ev.FailAt), pct(1/ev.FailAt), ratioText(ev.RatioLower))
}

func (ev LatencyEvidence) explainFail() string {
	s := fmt.Sprintf("canary requests slower than %s: %s of %s (%s), stable %s of %s (%s); over all bucket bounds that is %s times likelier if the canary is slower than the stable (rollback at %s, which keeps false rollbacks under %s)",
		secs(ev.Bound), count(ev.CanaryEvents), count(ev.CanaryTotal), pct(ev.CanaryRate()),
		count(ev.StableEvents), count(ev.StableTotal), pct(ev.StableRate()),
		odds(ev.Worse), odds(ev.FailAt), pct(1/ev.FailAt))
	if ev.RatioLower > 1 {
		s += fmt.Sprintf("; at that confidence its share of requests slower than %s is at least %s× the stable's",
			secs(ev.Bound), ratioText(ev.RatioLower))
	}
	return s
}

// explainProgress summarises both tests with their thresholds.
func (v Verdict) explainProgress(c Criteria) string {
	s := v.Errors.explainProgress(c)
	if v.Latency.Enabled && v.Latency.CanaryTotal+v.Latency.StableTotal > 0 {
		s += "; " + v.Latency.explainProgress(c)
	}
	return s
}

func (ev ErrorEvidence) explainProgress(c Criteria) string {
	var b strings.Builder
	fmt.Fprintf(&b, "errors: canary %s of %s (%s), stable %s of %s (%s); evidence that the canary fails more often %s (rollback at %s), that it does not fail %s× as often %s (pass at %s)",
		count(ev.CanaryEvents), count(ev.CanaryTotal), pct(ev.CanaryRate()),
		count(ev.StableEvents), count(ev.StableTotal), pct(ev.StableRate()),
		odds(ev.Worse), odds(ev.FailAt), num(c.BadErrorRatio), odds(ev.NotBad), odds(ev.PassAt))
	if ev.BelowAcceptableAt > 0 {
		fmt.Fprintf(&b, ", that its error rate is under %s %s (pass at %s)",
			pct(c.AcceptableErrorRate), odds(ev.BelowAcceptable), odds(ev.BelowAcceptableAt))
	}
	return b.String()
}

func (ev LatencyEvidence) explainProgress(c Criteria) string {
	if ev.Indistinguishable {
		return fmt.Sprintf("latency: every request of both sides fell in the same histogram bucket, so they are indistinguishable (%s canary requests)",
			count(ev.CanaryTotal))
	}
	return fmt.Sprintf("requests slower than %s: canary %s of %s (%s), stable %s of %s (%s); evidence that the canary is slower %s (rollback at %s), that it does not have %s× as many slow requests %s (pass at %s)",
		secs(ev.Bound), count(ev.CanaryEvents), count(ev.CanaryTotal), pct(ev.CanaryRate()),
		count(ev.StableEvents), count(ev.StableTotal), pct(ev.StableRate()),
		odds(ev.Worse), odds(ev.FailAt), num(c.BadLatencyRatio), odds(ev.NotBad), odds(ev.PassAt))
}

// count formats a request count: an integer when it is one.
func count(x float64) string {
	if x == math.Trunc(x) && math.Abs(x) < 1e15 {
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strconv.FormatFloat(x, 'f', 1, 64)
}

// pct formats a rate as a percentage with two significant digits or so.
func pct(p float64) string {
	v := p * 100
	switch {
	case math.IsNaN(v):
		return "no requests"
	case v == 0:
		return "0%"
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 0, 64) + "%"
	default:
		return strconv.FormatFloat(v, 'g', 2, 64) + "%"
	}
}

// odds formats an e-value or a likelihood ratio.
func odds(x float64) string {
	switch {
	case math.IsInf(x, 1):
		return "∞"
	case x < 10, x >= 1e6:
		return strconv.FormatFloat(x, 'g', 2, 64)
	default:
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
}

func num(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

func secs(b float64) string { return num(b) + " s" }

func ratioText(r float64) string {
	if math.IsInf(r, 1) {
		return "∞"
	}
	return strconv.FormatFloat(r, 'g', 3, 64)
}
