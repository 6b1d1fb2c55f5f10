package analysis

import "math"

// The mixture over alternatives θ = r·θ0 of the "canary is worse" e-value, and
// its weights (see the package documentation).
var (
	mixRatios  = [...]float64{1.25, 1.5, 2, 3, 5, 10, 30, 100, 1000}
	mixWeights = [...]float64{.05, .1, .1, .1, .1, .1, .1, .1, .25}
)

const nMix = len(mixRatios)

// Guard alternatives p = G + (1−G)·f, equal weights.
var guardFractions = [...]float64{.1, .25, .5, .75, .95}

// split is one window of a comparison: canary and stable events and totals.
type split struct{ ce, ct, se, st float64 }

// informative reports whether the window can say anything about the ratio:
// both sides must have served requests.
func (s split) informative() bool { return s.ct > 0 && s.st > 0 }

func (s split) share() float64 { return s.ct / (s.ct + s.st) }

// mixer evaluates log E(θ0) = log Σ_i g_i Λ(r_i·θ0; θ0) for event counts over a
// fixed set of windows (fixed canary shares), so that several event kinds
// (errors, or slow requests at each bucket bound) reuse the logarithms.
type mixer struct {
	logG  [nMix]float64   // log g_i
	logR  [nMix]float64   // log r_i
	shift [][nMix]float64 // per window: log(1+π(r_i θ0 − 1)) − log(1+π(θ0 − 1))
}

func newMixer(shares []float64, theta0 float64) *mixer {
	m := &mixer{shift: make([][nMix]float64, len(shares))}
	for i := range nMix {
		m.logG[i] = math.Log(mixWeights[i])
		m.logR[i] = math.Log(mixRatios[i])
	}
	for w, pi := range shares {
		base := math.Log1p(pi * (theta0 - 1))
		for i := range nMix {
			m.shift[w][i] = math.Log1p(pi*(mixRatios[i]*theta0-1)) - base
		}
	}
	return m
}

// logE returns log E(θ0) for canary events ce[w] and stable events se[w] in the
// mixer's windows.
func (m *mixer) logE(ce, se []float64) float64 {
	var terms [nMix]float64
	for i := range nMix {
		t := m.logG[i]
		for w := range m.shift {
			t += ce[w]*m.logR[i] - (ce[w]+se[w])*m.shift[w][i]
		}
		terms[i] = t
	}
	return logSumExp(terms[:])
}

// logLR returns log Λ(θ; θ0) over the windows.
func logLR(ws []split, theta, theta0 float64) float64 {
	lr := math.Log(theta / theta0)
	var s float64
	for _, w := range ws {
		if !w.informative() {
			continue
		}
		pi := w.share()
		s += w.ce*lr - (w.ce+w.se)*(math.Log1p(pi*(theta-1))-math.Log1p(pi*(theta0-1)))
	}
	return s
}

// compare holds the informative windows of a comparison, ready for the mixer.
type compare struct {
	shares, ce, se []float64
}

func newCompare(ws []split) compare {
	var c compare
	for _, w := range ws {
		if w.informative() {
			c.shares = append(c.shares, w.share())
			c.ce = append(c.ce, w.ce)
			c.se = append(c.se, w.se)
		}
	}
	return c
}

// logWorse returns log E(θ0).
func (c compare) logWorse(theta0 float64) float64 {
	if len(c.shares) == 0 {
		return 0
	}
	return newMixer(c.shares, theta0).logE(c.ce, c.se)
}

// ratioLower returns the lower end of the confidence sequence
// {θ0 : E(θ0) < threshold}, or 0 when E(1) < threshold (no bound above 1).
// E(θ0) decreases in θ0.
func (c compare) ratioLower(logThreshold float64) float64 {
	if c.logWorse(1) < logThreshold {
		return 0
	}
	lo, hi := 0.0, math.Log(2) // log θ0
	for c.logWorse(math.Exp(hi)) >= logThreshold {
		lo = hi
		hi *= 2
		if hi > math.Log(1e12) {
			return math.Inf(1)
		}
	}
	for range 40 {
		mid := (lo + hi) / 2
		if c.logWorse(math.Exp(mid)) >= logThreshold {
			lo = mid
		} else {
			hi = mid
		}
	}
	return math.Exp(lo)
}

// logGuard returns the log of the guard's e-value that a canary with e errors
// in n requests has an error rate above g.
func logGuard(e, n, g float64) float64 {
	var terms [len(guardFractions)]float64
	for i, f := range guardFractions {
		p := g + (1-g)*f
		terms[i] = -math.Log(float64(len(guardFractions))) +
			e*math.Log(p/g) + (n-e)*math.Log((1-p)/(1-g))
	}
	return logSumExp(terms[:])
}

// logBelow returns the log likelihood ratio of error rate tau/4 against tau for
// e errors in n requests.
func logBelow(e, n, tau float64) float64 {
	q := tau / 4
	return e*math.Log(q/tau) + (n-e)*math.Log((1-q)/(1-tau))
}

func logSumExp(xs []float64) float64 {
	m := math.Inf(-1)
	for _, x := range xs {
		m = max(m, x)
	}
	if math.IsInf(m, 0) {
		return m
	}
	var s float64
	for _, x := range xs {
		s += math.Exp(x - m)
	}
	return m + math.Log(s)
}
