package bench

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/fledge-dev/fledge/internal/strategy"
)

// writeReport prints the parameters, the table and the targets. The output
// depends only on cfg (no timings), so the same Config prints the same report.
func writeReport(w io.Writer, cfg Config, cells []Cell) error {
	var b strings.Builder
	p := cfg.policy()
	c := p.Criteria
	fmt.Fprintf(&b, "Simulated %d runs per cell, seed %d. Stable error rate %s unless the scenario says otherwise; latency log-normal, median 50 ms (75 ms for +50%%), σ %g unless the scenario says otherwise; histogram buckets: the gateway's (1 ms to 10 s in 20 exponential buckets, +Inf). Requests arrive as a Poisson process; each goes to the canary with the method's current weight. Time is counted from the start of the analysis; runs end after %s.\n\n",
		cfg.Runs, cfg.Seed, pct(cfg.BaseErrorRate), Sigma, dur(cfg.MaxDuration))
	fmt.Fprintf(&b, "- **fledge**: the controller's code (`strategy.Begin` and `strategy.Next` every %s on a simulated clock, with the current step's counts since its start as the builtin source gives them) and its default policy unless set: steps %v%%, at least %s under load and %g canary requests per step, soak %s, progress deadline %s with action %s, α %g, β %g, bad = %g× the stable's error rate (%g× before the last step) or %g× its share of slow requests, guard %s.\n",
		dur(cfg.ScrapeInterval), p.Steps, dur(p.StepDuration), c.MinRequests, dur(p.Soak), dur(p.ProgressDeadline), p.DeadlineAction,
		c.Alpha, c.Beta, c.BadErrorRatio, max(c.BadErrorRatio, strategy.RampBadErrorRatio), c.BadLatencyRatio, pct(c.MaxErrorRate))
	p99 := "halfway (geometric mean) between the stable's and a +50% canary's expected p99 for the scenario's latency shape"
	if all := Scenarios(cfg.BaseErrorRate); len(all) > 0 {
		p99 = fmt.Sprintf("%s (%.0f ms for σ %g; %.0f ms for the heavy tail)", p99, cfg.maxP99(all[0])*1000, Sigma,
			cfg.maxP99(Scenario{Sigma: 1, TailShare: 0.02, TailFactor: 20})*1000)
	}
	if cfg.FlaggerMaxP99 > 0 {
		p99 = fmt.Sprintf("%.0f ms", cfg.FlaggerMaxP99.Seconds()*1000)
	}
	fmt.Fprintf(&b, "- **Flagger-style**: every %s a check fails when the canary's error rate over the interval is above %s (between the healthy and the 2× canary) or its p99 (histogram_quantile) is above %s, or it had no request; %d failed checks roll back at the next interval; a passed check adds %d%% up to %d%%, then promotes.\n",
		dur(cfg.FlaggerInterval), pct(cfg.flaggerMaxErrorRate()), p99, cfg.FlaggerThreshold, cfg.FlaggerStepWeight, cfg.FlaggerMaxWeight)
	fmt.Fprintf(&b, "- **fixed-horizon**: canary at %d%% for %s, then one-sided two-proportion z-test (errors) and Mann-Whitney (latency buckets), each at α/2 = %g; reject → roll back, else promote.\n\n",
		cfg.FixedWeight, dur(cfg.FixedHorizon), c.Alpha/2)
	b.WriteString("*wrong* = healthy canaries rolled back (A/A, healthy) or bad canaries promoted (others): count / runs, then the one-sided 95% upper confidence bound of the rate; *undec.* = no decision by the end of the run (*held*: of those, held by fledge's progress deadline). *time* = time to the right decision, median / 90th percentile, over the runs that took it.\n\n")
	b.WriteString("| scenario | req/s | right decision | fledge wrong | fledge time | Flagger-style wrong | Flagger-style time | fixed-horizon wrong | fixed-horizon time | fledge ÷ Flagger (median time) |\n")
	b.WriteString("|---|---:|---|---|---|---|---|---|---|---:|\n")
	for _, cell := range cells {
		bad := cell.Scenario.Bad
		right := "promote"
		if bad {
			right = "roll back"
		}
		fmt.Fprintf(&b, "| %s | %g | %s |", cell.Scenario.Name, cell.Rate, right)
		for _, s := range cell.Methods {
			fmt.Fprintf(&b, " %s | %s |", wrongCell(s, bad), timeCell(s.RightTimes(bad)))
		}
		ours, theirs := cell.Methods[0].RightTimes(bad), cell.Methods[1].RightTimes(bad)
		ratio := "—"
		if len(ours) > 0 && len(theirs) > 0 {
			ratio = strconv.FormatFloat(quantile(ours, 0.5)/quantile(theirs, 0.5), 'g', 2, 64)
		}
		fmt.Fprintf(&b, " %s |\n", ratio)
	}
	if ts := Targets(cells); len(ts) > 0 {
		b.WriteString("\nTargets (fledge):\n\n| target | cell | measured | met |\n|---|---|---|---|\n")
		for _, t := range ts {
			met := "yes"
			if !t.Met {
				met = "**no**"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.Target, t.Cell, t.Measured, met)
		}
	}
	for _, cell := range cells {
		if cell.Scenario.ID != "e2e-bad" {
			continue
		}
		ts := cell.Methods[0].RollbackTimes
		within := 0
		for _, t := range ts {
			if t <= 15 {
				within++
			}
		}
		if len(ts) > 0 {
			fmt.Fprintf(&b, "\nEnd-to-end case (%s at %g req/s, canary at %d%% first): fledge rolled back within 15 s of the start in %d of %d runs; 95th and 99th percentiles %s s and %s s (model time: the check is the only delay).\n",
				cell.Scenario.Name, cell.Rate, p.Steps[0], within, cell.Methods[0].Runs, secs(quantile(ts, 0.95)), secs(quantile(ts, 0.99)))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Target is one target cell: what is promised, in which cell, what was
// measured and whether it holds.
type Target struct {
	Target, Cell, Measured string
	Met                    bool
}

// Targets checks fledge's cells against the decision targets: false
// rollbacks of A/A canaries (also through shared outages and with
// Prometheus counts), bad canaries caught, time to catch a 5× canary, and no
// step passed during a traffic gap. Cells not simulated are left out.
func Targets(cells []Cell) []Target {
	var out []Target
	share := func(k, n int) string {
		return fmt.Sprintf("%d/%d (%s, ≤ %s at 95%%)", k, n, pct(float64(k)/float64(n)), pct(binomialUpper(k, n, 0.05)))
	}
	for _, c := range cells {
		s := c.Methods[0]
		cell := fmt.Sprintf("%s, %g req/s", c.Scenario.Name, c.Rate)
		rolledBack := func(limit float64) {
			out = append(out, Target{fmt.Sprintf("rolled back ≤ %s", pct(limit)), cell, share(s.RolledBack, s.Runs),
				float64(s.RolledBack) <= limit*float64(s.Runs)})
		}
		caught := func(least float64) {
			out = append(out, Target{fmt.Sprintf("caught ≥ %s", pct(least)), cell, share(s.RolledBack, s.Runs),
				float64(s.RolledBack) >= least*float64(s.Runs)})
		}
		id := c.Scenario.ID
		switch {
		case id == "aa" || strings.HasPrefix(id, "outage-"):
			rolledBack(0.01)
		case id == "aa-prometheus" && c.Rate >= 1000:
			rolledBack(0.002)
		case id == "errors5x" && c.Rate >= 10:
			caught(0.99)
			if c.Rate == 100 {
				m := math.NaN()
				if len(s.RollbackTimes) > 0 {
					m = quantile(s.RollbackTimes, 0.5)
				}
				out = append(out, Target{"median time to roll back ≤ 10 s", cell, secs(m) + " s", m <= 10})
			}
		case id == "errors2x" && c.Rate >= 100:
			caught(0.95)
		case id == "errors2x" && c.Rate >= 10:
			caught(0.80)
		case id == "bursts" && c.Rate >= 10:
			caught(0.95)
		case id == "gap":
			out = append(out, Target{"no step passes during the gap", cell, fmt.Sprintf("%d of %d runs", s.GapPasses, s.Runs), s.GapPasses == 0})
		}
	}
	return out
}

func wrongCell(s Stats, bad bool) string {
	k := s.Wrong(bad)
	out := fmt.Sprintf("%d/%d (≤ %s)", k, s.Runs, pct(binomialUpper(k, s.Runs, 0.05)))
	if s.Undecided > 0 {
		out += fmt.Sprintf(", %d undec.", s.Undecided)
		if s.Held > 0 {
			out += fmt.Sprintf(" (%d held)", s.Held)
		}
	}
	return out
}

func timeCell(ts []float64) string {
	if len(ts) == 0 {
		return "—"
	}
	return fmt.Sprintf("%s / %s s", secs(quantile(ts, 0.5)), secs(quantile(ts, 0.9)))
}

func secs(t float64) string { return strconv.FormatFloat(t, 'f', 0, 64) }

func dur(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'g', -1, 64) + " s" }

func pct(p float64) string {
	v := p * 100
	if v >= 10 || v == 0 {
		return strconv.FormatFloat(v, 'f', 0, 64) + "%"
	}
	return strconv.FormatFloat(v, 'g', 2, 64) + "%"
}

// quantile is the nearest-rank q-quantile of sorted xs.
func quantile(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// binomialUpper is the one-sided (1 − a) Clopper-Pearson upper bound of a
// proportion after k successes in n trials.
func binomialUpper(k, n int, a float64) float64 {
	if k >= n {
		return 1
	}
	lo, hi := float64(k)/float64(n), 1.0
	for range 60 {
		mid := (lo + hi) / 2
		if binomialCDF(k, n, mid) > a {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// binomialCDF is P(X ≤ k) for X ~ Binomial(n, p), 0 < p < 1.
func binomialCDF(k, n int, p float64) float64 {
	lp, lq := math.Log(p), math.Log1p(-p)
	ln, _ := math.Lgamma(float64(n + 1))
	var s float64
	for j := 0; j <= k; j++ {
		lj, _ := math.Lgamma(float64(j + 1))
		lnj, _ := math.Lgamma(float64(n - j + 1))
		s += math.Exp(ln - lj - lnj + float64(j)*lp + float64(n-j)*lq)
	}
	return s
}
