// Package bench measures the quality of fledge's release decisions by
// simulation: how fast a bad canary is rolled back, how fast a healthy one is
// promoted, how often a healthy one is rolled back (false rollback) and how
// often a bad one is promoted (missed). It runs fledge's analysis.Judge inside
// a step machine and, on the same simulated request streams, a Flagger-style
// threshold rule and a fixed-horizon test, and prints a Markdown table.
//
// Everything is deterministic for a given Config (seeded random streams, one
// per run, independent of scheduling). Run is what `fledge bench decisions`
// calls; the Config fields document the flags to expose.
package bench

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/strategy"
)

// Config of a benchmark run. The flag names in brackets are the ones `fledge
// bench decisions` should expose.
type Config struct {
	// Runs per cell (scenario × rate) [--runs]. 1000 runs bound a false-rollback
	// rate of 0 observed at ≤ 0.37% (95%).
	Runs int
	// Seed of the random streams [--seed]. Same Config, same table.
	Seed uint64
	// Rates are the total request rates, requests/s [--rates 10,100,1000].
	Rates []float64
	// BaseErrorRate is the stable's error rate in the A/A, errors and latency
	// scenarios [--base-error-rate 0.01].
	BaseErrorRate float64
	// Scenarios selects scenarios by ID (aa, errors2x, errors5x, latency50,
	// e2e-bad, e2e-healthy); empty means all [--scenarios].
	Scenarios []string
	// Workers simulating in parallel; 0 means GOMAXPROCS [--workers].
	Workers int
	// MaxDuration ends a run; a method that has not decided by then counts as
	// undecided [--max-duration 1h].
	MaxDuration time.Duration

	// Policy is fledge's spec.auto, as a user writes it: strategy.PolicyFrom
	// applies the defaults, exactly as the controller does [--steps,
	// --min-step, --soak, --deadline, --deadline-action].
	Policy fledgev1.AutoPolicy
	// ScrapeInterval is how often fledge reads the counters and calls
	// strategy.Next (the controller's analysis interval); also the
	// simulator's time slice [--interval 1s].
	ScrapeInterval time.Duration

	// Flagger-style rule [--flagger-interval 60s, --flagger-threshold 5,
	// --flagger-step-weight 10, --flagger-max-weight 50,
	// --flagger-max-error-rate 0 (auto), --flagger-max-p99 0 (auto)].
	FlaggerInterval   time.Duration
	FlaggerThreshold  int
	FlaggerStepWeight int
	FlaggerMaxWeight  int
	// FlaggerMaxErrorRate is the error rate limit; 0 puts it at 1.5 ×
	// BaseErrorRate, between the healthy canary's and the 2× canary's.
	FlaggerMaxErrorRate float64
	// FlaggerMaxP99 is the p99 latency limit; 0 puts it, for each scenario,
	// halfway (geometric mean) between the stable's and a +50% canary's
	// expected p99 with the scenario's latency shape, as histogram_quantile
	// computes them on the gateway's buckets.
	FlaggerMaxP99 time.Duration

	// Fixed-horizon test: canary weight in percent during the test and the
	// time at which it decides [--fixed-weight 10, --fixed-horizon 300s]. It
	// tests at Criteria.Alpha, split evenly between errors and latency.
	FixedWeight  int
	FixedHorizon time.Duration
}

// DefaultConfig returns the configuration of the table in docs/decisions.md.
func DefaultConfig() Config {
	return Config{
		Runs:              500,
		Seed:              1,
		Rates:             []float64{1, 10, 100, 1000},
		BaseErrorRate:     0.005,
		MaxDuration:       time.Hour,
		ScrapeInterval:    time.Second,
		FlaggerInterval:   time.Minute,
		FlaggerThreshold:  5,
		FlaggerStepWeight: 10,
		FlaggerMaxWeight:  50,
		FixedWeight:       10,
		FixedHorizon:      5 * time.Minute,
	}
}

// Validate reports the first unusable field.
func (c Config) Validate() error {
	slice := c.ScrapeInterval.Seconds()
	multiple := func(d time.Duration) bool {
		r := d.Seconds() / slice
		return r >= 1 && math.Abs(r-math.Round(r)) < 1e-9
	}
	switch {
	case c.Runs < 1:
		return fmt.Errorf("runs is %d, want ≥ 1", c.Runs)
	case len(c.Rates) == 0 || slices.ContainsFunc(c.Rates, func(r float64) bool { return !(r > 0) || math.IsInf(r, 0) }):
		return fmt.Errorf("rates %v: want at least one finite rate > 0", c.Rates)
	case !(c.BaseErrorRate >= 0 && c.BaseErrorRate*5 < 1):
		return fmt.Errorf("base error rate %v: want 0 ≤ rate < 0.2 (the 5× scenario must stay below 1)", c.BaseErrorRate)
	case c.ScrapeInterval <= 0:
		return fmt.Errorf("interval %v: want > 0", c.ScrapeInterval)
	case !multiple(c.MaxDuration):
		return fmt.Errorf("max duration %v: want a multiple of the interval %v", c.MaxDuration, c.ScrapeInterval)
	case !multiple(c.FlaggerInterval):
		return fmt.Errorf("flagger interval %v: want a multiple of the interval %v", c.FlaggerInterval, c.ScrapeInterval)
	case c.FlaggerThreshold < 1:
		return fmt.Errorf("flagger threshold %d: want ≥ 1", c.FlaggerThreshold)
	case c.FlaggerStepWeight < 1 || c.FlaggerMaxWeight < c.FlaggerStepWeight || c.FlaggerMaxWeight > 99:
		return fmt.Errorf("flagger step weight %d, max weight %d: want 1 ≤ step ≤ max ≤ 99", c.FlaggerStepWeight, c.FlaggerMaxWeight)
	case !(c.FlaggerMaxErrorRate >= 0 && c.FlaggerMaxErrorRate < 1):
		return fmt.Errorf("flagger max error rate %v: want a rate in [0, 1)", c.FlaggerMaxErrorRate)
	case c.FlaggerMaxP99 < 0:
		return fmt.Errorf("flagger max p99 %v: want ≥ 0", c.FlaggerMaxP99)
	case c.FixedWeight < 1 || c.FixedWeight > 99:
		return fmt.Errorf("fixed weight %d: want 1..99", c.FixedWeight)
	case !multiple(c.FixedHorizon):
		return fmt.Errorf("fixed horizon %v: want a multiple of the interval %v", c.FixedHorizon, c.ScrapeInterval)
	}
	if _, err := strategy.PolicyFrom(&c.Policy); err != nil {
		return err
	}
	_, err := c.scenarios()
	return err
}

// policy is Policy with its defaults applied (Validate has checked it).
func (c Config) policy() strategy.Policy {
	p, _ := strategy.PolicyFrom(&c.Policy)
	return p
}

// ScenarioIDs returns the IDs of Scenarios, in order.
func ScenarioIDs() []string {
	var ids []string
	for _, s := range Scenarios(0.005) {
		ids = append(ids, s.ID)
	}
	return ids
}

func (c Config) scenarios() ([]Scenario, error) {
	all := Scenarios(c.BaseErrorRate)
	if len(c.Scenarios) == 0 {
		return all, nil
	}
	var out []Scenario
	for _, id := range c.Scenarios {
		i := slices.IndexFunc(all, func(s Scenario) bool { return s.ID == id })
		if i < 0 {
			return nil, fmt.Errorf("unknown scenario %q, want one of %v", id, ScenarioIDs())
		}
		out = append(out, all[i])
	}
	return out, nil
}

// maxP99 is the Flagger latency limit in seconds for scenario sc.
func (c Config) maxP99(sc Scenario) float64 {
	if c.FlaggerMaxP99 > 0 {
		return c.FlaggerMaxP99.Seconds()
	}
	const median = 0.05
	s, cn := bucketFractions(sc, median), bucketFractions(sc, 1.5*median)
	return math.Sqrt(histogramQuantile(0.99, s[:]) * histogramQuantile(0.99, cn[:]))
}

// flaggerMaxErrorRate is the Flagger error rate limit.
func (c Config) flaggerMaxErrorRate() float64 {
	if c.FlaggerMaxErrorRate > 0 {
		return c.FlaggerMaxErrorRate
	}
	return 1.5 * c.BaseErrorRate
}

// Method names, in the order of Cell.Methods.
var Methods = [3]string{"fledge", "Flagger-style", "fixed-horizon"}

// Stats summarise one method's runs in one cell.
type Stats struct {
	Runs, RolledBack, Promoted, Undecided int
	// Held are the undecided runs that the progress deadline held (fledge).
	Held int
	// GapPasses are the runs in which a step passed during a traffic gap.
	GapPasses int
	// RollbackTimes and PromoteTimes, in seconds, sorted.
	RollbackTimes, PromoteTimes []float64
}

// Wrong is the number of runs that took the wrong decision: a rollback of a
// healthy canary or the promotion of a bad one.
func (s Stats) Wrong(bad bool) int {
	if bad {
		return s.Promoted
	}
	return s.RolledBack
}

// RightTimes are the times of the right decisions, sorted.
func (s Stats) RightTimes(bad bool) []float64 {
	if bad {
		return s.RollbackTimes
	}
	return s.PromoteTimes
}

// Cell is the result of one scenario at one rate.
type Cell struct {
	Scenario Scenario
	Rate     float64
	Methods  [3]Stats
}

// ErrInvalidConfig wraps Config.Validate's errors in Simulate and Run.
var ErrInvalidConfig = errors.New("invalid benchmark configuration")

// Simulate runs every cell and returns the results in scenario, rate order.
// It stops, with ctx's error, soon after ctx ends.
func Simulate(ctx context.Context, cfg Config) ([]Cell, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	scs, _ := cfg.scenarios()
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var cells []Cell
	for _, sc := range scs {
		rates := cfg.Rates
		if len(sc.Rates) > 0 {
			rates = sc.Rates
		}
		for _, rate := range rates {
			if rate < sc.MinRate {
				continue
			}
			cell := simulateCell(ctx, cfg, sc, rate, cfg.maxP99(sc), workers)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			cells = append(cells, cell)
		}
	}
	return cells, nil
}

// mix is splitmix64's finaliser, to derive independent stream seeds.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// runSeed depends on the scenario's ID, the rate and the run, not on which
// other cells run, so a cell's numbers do not change with the selection.
func runSeed(sc Scenario, rate float64, run int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(sc.ID))
	return mix(mix(h.Sum64()^math.Float64bits(rate)) ^ uint64(run))
}

func simulateCell(ctx context.Context, cfg Config, sc Scenario, rate, maxP99 float64, workers int) Cell {
	outs := make([][3]outcome, cfg.Runs)
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for run := range next {
				rng := rand.New(rand.NewPCG(cfg.Seed, runSeed(sc, rate, run)))
				outs[run] = simulateRun(cfg, sc, rate, maxP99, rng)
			}
		})
	}
	for run := range cfg.Runs {
		if ctx.Err() != nil {
			break
		}
		next <- run
	}
	close(next)
	wg.Wait()

	cell := Cell{Scenario: sc, Rate: rate}
	for _, o := range outs {
		for m := range o {
			s := &cell.Methods[m]
			s.Runs++
			switch o[m].d {
			case rolledBack:
				s.RolledBack++
				s.RollbackTimes = append(s.RollbackTimes, o[m].at)
			case promoted:
				s.Promoted++
				s.PromoteTimes = append(s.PromoteTimes, o[m].at)
			default:
				s.Undecided++
			}
			if o[m].held {
				s.Held++
			}
			if o[m].gapPass {
				s.GapPasses++
			}
		}
	}
	for m := range cell.Methods {
		slices.Sort(cell.Methods[m].RollbackTimes)
		slices.Sort(cell.Methods[m].PromoteTimes)
	}
	return cell
}

// simulateRun feeds one stream to the three methods until all have decided or
// MaxDuration has passed. An outage or a gap starts when fledge reaches its
// step; the other methods see it at the same time.
func simulateRun(cfg Config, sc Scenario, rate, maxP99 float64, rng *rand.Rand) [3]outcome {
	slice := cfg.ScrapeInterval.Seconds()
	st := newStream(sc, rate, rng)
	fl := newFledge(cfg.policy(), sc.Source)
	ms := [3]method{fl, newFlagger(cfg, maxP99, slice), newFixed(cfg, slice)}
	var done [3]bool
	var reqs []request
	schedule := func(e *Episode, p *[2]float64) {
		if e == nil || p[0] >= 0 || done[0] {
			return
		}
		if step, at := fl.step(); step == e.Step {
			p[0] = at + e.After
			p[1] = p[0] + e.Length
		}
	}
	last := int(math.Round(cfg.MaxDuration.Seconds() / slice))
	for i := 1; i <= last; i++ {
		schedule(sc.Outage, &st.outage)
		schedule(sc.Gap, &st.gap)
		t0 := float64(i-1) * slice
		t := float64(i) * slice
		reqs = st.next(t0, slice, reqs)
		var w [3]float64
		var c [3]*counters
		for m := range ms {
			w[m], c[m] = ms[m].weight(), ms[m].counters()
		}
		for _, r := range reqs {
			var have [2]bool
			var failed [2]bool
			var bucket [2]int
			for m := range ms {
				if done[m] {
					continue
				}
				side := stableSide
				if r.arm < w[m] {
					side = canarySide
				}
				if !have[side] {
					failed[side], bucket[side] = st.outcome(r, side, t0)
					have[side] = true
				}
				c[m].add(side, failed[side], bucket[side])
			}
		}
		all := true
		for m := range ms {
			if !done[m] {
				done[m] = ms[m].tick(i, t)
			}
			all = all && done[m]
		}
		if all {
			break
		}
	}
	var out [3]outcome
	for m := range ms {
		if done[m] {
			out[m] = ms[m].result()
		}
	}
	out[0].held = !done[0] && fl.st.Held
	for _, at := range fl.stepUps {
		if at > st.gap[0] && at <= st.gap[1] {
			out[0].gapPass = true
		}
	}
	return out
}

// Run simulates cfg and writes the Markdown report to w.
func Run(ctx context.Context, cfg Config, w io.Writer) error {
	cells, err := Simulate(ctx, cfg)
	if err != nil {
		return err
	}
	return writeReport(w, cfg, cells)
}
