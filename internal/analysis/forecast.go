package analysis

import "math"

// Forecast estimates how many more seconds of traffic like the current
// window's a Pass of the current window needs, if the canary is as good as
// the stable: the evidence still missing for each passing test (log PassAt −
// log of its evidence now in v), divided by the expected growth of its log
// per second. That growth is the Kullback–Leibler divergence of the test's
// alternative from "canary = stable" per event (error or slow request) at the
// observed traffic split, times the observed rate of events. The request
// minimum of the window counts too. underLoad is the current window's time
// under load in seconds. ok is false when there is nothing to estimate from
// (no traffic on a side, no time under load); seconds is +Inf when the tests
// can never pass at these rates (no errors to weigh and no absolute route).
//
// It is an expectation, not a bound: half of the healthy canaries take
// longer.
func Forecast(c Criteria, obs Observation, v Verdict, underLoad float64) (seconds float64, ok bool) {
	if len(obs.Windows) == 0 || !(underLoad > 0) {
		return 0, false
	}
	cur := obs.Windows[len(obs.Windows)-1]
	if cur.Canary.Requests <= 0 || cur.Stable.Requests <= 0 {
		return 0, false
	}
	rc, rs := cur.Canary.Requests/underLoad, cur.Stable.Requests/underLoad
	pi := rc / (rc + rs)
	need := func(have, at float64) float64 {
		if have >= at {
			return 0
		}
		if !(have > 0) {
			return math.Inf(1)
		}
		return math.Log(at) - math.Log(have)
	}
	// perEvent is the KL divergence, per event, of "the canary's events
	// are ratio× the stable's" from "equal" at canary share pi.
	perEvent := func(ratio float64) float64 {
		p1 := ratio * pi / (1 + pi*(ratio-1))
		return pi*math.Log(pi/p1) + (1-pi)*math.Log((1-pi)/(1-p1))
	}
	var errs, reqs float64
	for _, w := range obs.Windows {
		errs += w.Canary.Errors + w.Stable.Errors
		reqs += w.Canary.Requests + w.Stable.Requests
	}
	t := 0.0
	if !v.Errors.passed() {
		p := errs / reqs
		tRel := math.Inf(1)
		if p > 0 {
			tRel = need(v.Errors.NotBad, v.Errors.PassAt) / ((rc + rs) * p * perEvent(c.BadErrorRatio))
		}
		tAbs := math.Inf(1)
		if tau := c.AcceptableErrorRate; tau > 0 {
			q := tau / 4
			if g := p*math.Log(q/tau) + (1-p)*math.Log((1-q)/(1-tau)); g > 0 {
				tAbs = need(v.Errors.BelowAcceptable, v.Errors.BelowAcceptableAt) / (rc * g)
			}
		}
		t = min(tRel, tAbs)
	}
	if l := v.Latency; l.Enabled && !l.Indistinguishable && l.NotBad < l.PassAt {
		share := (l.CanaryEvents + l.StableEvents) / (l.CanaryTotal + l.StableTotal)
		tLat := math.Inf(1)
		if share > 0 && share < 1 {
			tLat = need(l.NotBad, l.PassAt) / ((rc + rs) * share * perEvent(c.BadLatencyRatio))
		}
		t = max(t, tLat)
	}
	if c.MinRequests > cur.Canary.Requests {
		t = max(t, (c.MinRequests-cur.Canary.Requests)/rc)
	}
	return t, true
}
