package analysis

import (
	"fmt"
	"math"
)

// SharedShare is the share of MaxErrorRate at which the stable's own error
// rate, in the current window, is an incident shared by both versions: the
// absolute guard then holds (the relative tests still run).
const SharedShare = 0.5

// Shares of α (see the package documentation).
const (
	guardShare = 0.1
	testsShare = 1 - guardShare
)

// Judge compares the canary with the stable and says whether to roll back
// (Fail), step up (Pass) or wait (Inconclusive). It is safe to call after
// every scrape: the bounds on wrong decisions hold for the whole analysis.
func Judge(c Criteria, obs Observation) Verdict {
	if err := c.Validate(); err != nil {
		return inconclusive(ReasonInvalidCriteria, err.Error())
	}
	if obs.Err != nil {
		return inconclusive(ReasonMetricsUnavailable, "the metrics source failed: "+obs.Err.Error())
	}
	if len(obs.Windows) == 0 {
		return inconclusive(ReasonNoCanaryTraffic, "no observation yet")
	}
	if err := checkCounts(obs.Windows); err != nil {
		return inconclusive(ReasonInvalidMetrics, err.Error())
	}
	latencyOn := c.LatencyQuantile > 0
	alphaTest := c.Alpha * testsShare
	if latencyOn {
		alphaTest /= 2
	}

	cur := obs.Windows[len(obs.Windows)-1]
	v := Verdict{Errors: judgeErrors(c, obs.Windows, alphaTest)}
	errFail, errPass := v.Errors.failed(c), v.Errors.passed()

	var lat latencyJudgment
	if latencyOn {
		lat = judgeLatency(c, obs.Windows, alphaTest)
		v.Latency = lat.ev
	}

	switch {
	case c.MaxErrorRate > 0 && v.Errors.AboveLimit >= v.Errors.AboveLimitAt && !v.Errors.Shared:
		v.Result, v.Reason = Fail, ReasonErrorRateAboveLimit
		v.Evidence = v.Errors.explainGuard(c)
	case errFail:
		v.Result, v.Reason = Fail, ReasonErrorRateHigher
		v.Evidence = v.Errors.explainFail()
	case lat.failed:
		v.Result, v.Reason = Fail, ReasonLatencyHigher
		v.Evidence = lat.ev.explainFail()
	case cur.Canary.Requests == 0:
		v.Result, v.Reason = Inconclusive, ReasonNoCanaryTraffic
		v.Evidence = "the canary served no request in the current step; " + v.explainProgress(c)
	case cur.Stable.Requests == 0:
		v.Result, v.Reason = Inconclusive, ReasonNoStableTraffic
		v.Evidence = "the stable served no request in the current step, so there is nothing to compare with; " + v.explainProgress(c)
	case lat.reason != "":
		v.Result, v.Reason = Inconclusive, lat.reason
		v.Evidence = lat.problem + "; " + v.Errors.explainProgress(c)
	case cur.Canary.Requests < c.MinRequests:
		v.Result, v.Reason = Inconclusive, ReasonTooFewRequests
		v.Evidence = fmt.Sprintf("the canary served %s requests in the current step, %s needed before it may pass; %s",
			count(cur.Canary.Requests), count(c.MinRequests), v.explainProgress(c))
	case errPass && (!latencyOn || lat.passed):
		v.Result, v.Reason = Pass, ReasonHealthy
		v.Evidence = "healthy: " + v.explainProgress(c)
	default:
		v.Result, v.Reason = Inconclusive, ReasonCollectingEvidence
		v.Evidence = "collecting evidence: " + v.explainProgress(c)
	}
	return v
}

func inconclusive(r Reason, evidence string) Verdict {
	return Verdict{Result: Inconclusive, Reason: r, Evidence: evidence}
}

// checkCounts rejects counts that are not finite non-negative numbers, and
// more errors than requests.
func checkCounts(ws []Window) error {
	for i, w := range ws {
		for _, s := range []struct {
			side string
			s    Sample
		}{{"stable", w.Stable}, {"canary", w.Canary}} {
			if !finiteNonNeg(s.s.Requests) || !finiteNonNeg(s.s.Errors) {
				return fmt.Errorf("window %d: %s requests %v, errors %v: counts must be finite and ≥ 0",
					i+1, s.side, s.s.Requests, s.s.Errors)
			}
			if s.s.Errors > s.s.Requests*(1+1e-9)+1e-9 {
				return fmt.Errorf("window %d: %s has %v errors for %v requests", i+1, s.side, s.s.Errors, s.s.Requests)
			}
		}
	}
	return nil
}

func finiteNonNeg(x float64) bool { return x >= 0 && !math.IsInf(x, 1) } // false for NaN

func judgeErrors(c Criteria, ws []Window, alpha float64) ErrorEvidence {
	splits := make([]split, len(ws))
	var ev ErrorEvidence
	for i, w := range ws {
		errC, errS := min(w.Canary.Errors, w.Canary.Requests), min(w.Stable.Errors, w.Stable.Requests)
		splits[i] = split{ce: errC, ct: w.Canary.Requests, se: errS, st: w.Stable.Requests}
		ev.CanaryEvents += errC
		ev.CanaryTotal += w.Canary.Requests
		ev.StableEvents += errS
		ev.StableTotal += w.Stable.Requests
	}
	cmp := newCompare(splits)
	ev.FailAt = 1 / alpha
	ev.Worse = math.Exp(cmp.logWorse(1))
	ev.PassAt = 2 / c.Beta
	ev.NotBad = math.Exp(-logLR(splits, c.BadErrorRatio, 1))
	if c.MaxErrorRate > 0 {
		// The guard looks at the current window only, where both sides served
		// the same seconds, and holds while the stable fails too.
		cur := ws[len(ws)-1]
		ev.GuardCanaryErrors, ev.GuardCanaryTotal = min(cur.Canary.Errors, cur.Canary.Requests), cur.Canary.Requests
		ev.GuardStableErrors, ev.GuardStableTotal = min(cur.Stable.Errors, cur.Stable.Requests), cur.Stable.Requests
		ev.AboveLimitAt = 1 / (c.Alpha * guardShare)
		ev.AboveLimit = math.Exp(logGuard(ev.GuardCanaryErrors, ev.GuardCanaryTotal, c.MaxErrorRate))
		ev.Shared = ev.GuardStableTotal > 0 && ev.GuardStableErrors/ev.GuardStableTotal >= c.MaxErrorRate*SharedShare
	}
	if c.AcceptableErrorRate > 0 {
		ev.BelowAcceptableAt = 2 / c.Beta
		ev.BelowAcceptable = math.Exp(logBelow(ev.CanaryEvents, ev.CanaryTotal, c.AcceptableErrorRate))
	}
	if ev.failed(c) {
		ev.RatioLower = cmp.ratioLower(math.Log(ev.FailAt))
	}
	return ev
}

func (ev ErrorEvidence) failed(c Criteria) bool {
	return ev.Worse >= ev.FailAt && ev.CanaryRate()-nanToZero(ev.StableRate()) >= c.MinErrorIncrease
}

func (ev ErrorEvidence) passed() bool {
	return ev.NotBad >= ev.PassAt || (ev.BelowAcceptableAt > 0 && ev.BelowAcceptable >= ev.BelowAcceptableAt)
}

func nanToZero(x float64) float64 {
	if math.IsNaN(x) {
		return 0
	}
	return x
}

type latencyJudgment struct {
	ev             LatencyEvidence
	failed, passed bool
	// reason and problem are set when the latency data cannot support a pass.
	reason  Reason
	problem string
}

func judgeLatency(c Criteria, ws []Window, alpha float64) latencyJudgment {
	j := latencyJudgment{ev: LatencyEvidence{Enabled: true}}
	j.ev.FailAt, j.ev.PassAt = 1/alpha, 1/c.Beta
	bounds, err := checkHistograms(ws)
	if err != nil {
		j.reason, j.problem = ReasonInvalidMetrics, err.Error()
		return j
	}
	if bounds == nil {
		j.reason, j.problem = ReasonNoLatencyData, "no latency histogram"
		return j
	}
	nb, nw := len(bounds)-1, len(ws) // finite bounds, windows
	// slow[(w*nb+b)*2+side]: requests slower than bounds[b] in window w, side 0
	// canary, 1 stable; total[w*2+side] likewise.
	slow, total := make([]float64, nw*nb*2), make([]float64, nw*2)
	for w, win := range ws {
		for side, h := range [2]Histogram{win.Canary.Latency, win.Stable.Latency} {
			if len(h.Counts) == 0 {
				continue
			}
			t := h.Total()
			total[w*2+side] = t
			for b := range nb {
				slow[(w*nb+b)*2+side] = max(0, t-h.Counts[b])
			}
		}
	}
	var canTotal, stTotal float64
	var shares []float64
	var inf []int // informative windows
	for w := range nw {
		ct, st := total[w*2], total[w*2+1]
		canTotal += ct
		stTotal += st
		if ct > 0 && st > 0 {
			shares = append(shares, ct/(ct+st))
			inf = append(inf, w)
		}
	}
	pooled := func(b int) Comparison {
		cmp := Comparison{Bound: bounds[b], CanaryTotal: canTotal, StableTotal: stTotal}
		for w := range nw {
			cmp.CanaryEvents += slow[(w*nb+b)*2]
			cmp.StableEvents += slow[(w*nb+b)*2+1]
		}
		return cmp
	}
	splitsAt := func(b int) []split {
		out := make([]split, nw)
		for w := range nw {
			out[w] = split{ce: slow[(w*nb+b)*2], ct: total[w*2], se: slow[(w*nb+b)*2+1], st: total[w*2+1]}
		}
		return out
	}

	// Bounds under MinLatency are not compared: differences among requests
	// faster than it do not matter.
	b0 := 0
	for b0 < nb && bounds[b0] < c.MinLatency {
		b0++
	}
	if b0 == nb {
		j.ev.Comparison = pooled(nb - 1)
		j.ev.Comparison.FailAt, j.ev.Comparison.PassAt, j.ev.NotBad = 1/alpha, 1/c.Beta, 1
		j.ev.Indistinguishable, j.passed = true, true
		return j
	}

	// Failing: mixture over the compared finite bounds.
	logE, best, bestLogE := 0.0, b0, math.Inf(-1)
	if len(inf) > 0 {
		m := newMixer(shares, 1)
		terms := make([]float64, 0, nb-b0)
		ce, se := make([]float64, len(inf)), make([]float64, len(inf))
		for b := b0; b < nb; b++ {
			for k, w := range inf {
				ce[k], se[k] = slow[(w*nb+b)*2], slow[(w*nb+b)*2+1]
			}
			term := m.logE(ce, se)
			terms = append(terms, term)
			if term > bestLogE {
				best, bestLogE = b, term
			}
		}
		logE = logSumExp(terms) - math.Log(float64(len(terms)))
	}
	worse := math.Exp(logE)
	// at completes the evidence for the comparison at bound b.
	at := func(b int) Comparison {
		cmp := pooled(b)
		cmp.Worse, cmp.FailAt, cmp.PassAt = worse, 1/alpha, 1/c.Beta
		cmp.NotBad = math.Exp(-logLR(splitsAt(b), c.BadLatencyRatio, 1))
		return cmp
	}
	if fb := at(best); worse >= fb.FailAt && fb.CanaryRate()-nanToZero(fb.StableRate()) >= c.MinSlowIncrease {
		// The bound was picked among nb after the fact: its own confidence
		// sequence runs at level α_l/nb so the statement stays at level α_l.
		fb.RatioLower = newCompare(splitsAt(best)).ratioLower(math.Log(fb.FailAt * float64(nb-b0)))
		j.ev.Comparison, j.failed = fb, true
		return j
	}

	// Passing when the quantile lies under MinLatency: it is enough that the
	// canary's own share of requests slower than MinLatency is confidently
	// under 1 − quantile: the sequential test of q = (1 − quantile)/4 against
	// 1 − quantile, as for AcceptableErrorRate.
	target := 1 - c.LatencyQuantile
	if p0 := pooled(b0); (p0.CanaryEvents+p0.StableEvents)/(canTotal+stTotal) < target {
		cmp := at(b0)
		q := target / 4
		e, n := cmp.CanaryEvents, cmp.CanaryTotal
		cmp.NotBad = math.Exp(e*math.Log(q/target) + (n-e)*math.Log((1-q)/(1-target)))
		j.ev.Comparison = cmp
		j.passed = cmp.NotBad >= cmp.PassAt
		return j
	}

	// Passing: the bound whose pooled slow share is closest to 1 − quantile.
	pass, bestDist := -1, math.Inf(1)
	for b := b0; b < nb; b++ {
		p := pooled(b)
		s := (p.CanaryEvents + p.StableEvents) / (canTotal + stTotal)
		if !(s > 0 && s < 1) {
			continue
		}
		if d := math.Abs(math.Log(s / target)); d < bestDist {
			pass, bestDist = b, d
		}
	}
	if pass < 0 {
		// Every request of both sides is in one bucket: indistinguishable.
		j.ev.Comparison = at(nb - 1)
		j.ev.NotBad = 1
		j.ev.Indistinguishable, j.passed = true, true
		return j
	}
	j.ev.Comparison = at(pass)
	j.passed = j.ev.NotBad >= j.ev.PassAt
	return j
}

// checkHistograms returns the common bucket bounds of all non-empty
// histograms, nil when a side that served requests has no histogram, or an
// error when histograms are malformed or disagree.
func checkHistograms(ws []Window) ([]float64, error) {
	var ref []float64
	for i, w := range ws {
		for _, s := range []struct {
			side string
			s    Sample
		}{{"stable", w.Stable}, {"canary", w.Canary}} {
			h := s.s.Latency
			if len(h.Bounds) == 0 && len(h.Counts) == 0 {
				if s.s.Requests > 0 {
					return nil, nil
				}
				continue
			}
			if err := checkHistogram(h); err != nil {
				return nil, fmt.Errorf("window %d: %s latency histogram: %w", i+1, s.side, err)
			}
			if ref == nil {
				ref = h.Bounds
				continue
			}
			if !equalBounds(ref, h.Bounds) {
				return nil, fmt.Errorf("window %d: %s latency histogram has bucket bounds %v, others have %v",
					i+1, s.side, h.Bounds, ref)
			}
		}
	}
	return ref, nil
}

func checkHistogram(h Histogram) error {
	n := len(h.Bounds)
	switch {
	case n != len(h.Counts):
		return fmt.Errorf("%d bounds but %d counts", n, len(h.Counts))
	case n < 2:
		return fmt.Errorf("%d buckets, want at least one finite bound and +Inf", n)
	case !math.IsInf(h.Bounds[n-1], 1):
		return fmt.Errorf("last bound is %v, want +Inf", h.Bounds[n-1])
	}
	for i, b := range h.Bounds {
		if math.IsNaN(b) || (i > 0 && !(b > h.Bounds[i-1])) || (i < n-1 && math.IsInf(b, 0)) {
			return fmt.Errorf("bounds %v are not strictly increasing finite numbers ending in +Inf", h.Bounds)
		}
	}
	total := h.Counts[n-1]
	for i, c := range h.Counts {
		if !finiteNonNeg(c) {
			return fmt.Errorf("count %v for le=%v is not a finite number ≥ 0", c, h.Bounds[i])
		}
		// Cumulative counts never decrease; allow float slop from extrapolation.
		if i > 0 && c < h.Counts[i-1]-1e-9*max(1, total) {
			return fmt.Errorf("counts %v are not cumulative", h.Counts)
		}
	}
	return nil
}

func equalBounds(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
