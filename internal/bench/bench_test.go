package bench

import (
	"bytes"
	"errors"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fledge-dev/fledge/internal/analysis"
)

var table = flag.Bool("table", false, "TestDecisionTable: print the full decision table (DefaultConfig, about a minute on two cores)")

// TestDecisionTable prints the table of docs/decisions.md:
//
//	go test ./internal/bench -run TestDecisionTable -table -v -timeout 30m
func TestDecisionTable(t *testing.T) {
	if !*table {
		t.Skip("pass -table to print the full decision table")
	}
	if err := Run(DefaultConfig(), os.Stdout); err != nil {
		t.Fatal(err)
	}
}

// TestTargets is an honest statistical assertion with a fixed seed: on 1000
// runs per cell at 100 requests/s, fledge rolls back at most 1% of healthy
// canaries, rolls back at least 95% of canaries failing 5× as often, decides
// faster than the Flagger-style rule, and in the end-to-end case (stable
// without errors, canary at 5%) rolls back within 15 s in at least 95% of runs.
func TestTargets(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Runs = 1000
	cfg.Rates = []float64{100}
	cfg.Scenarios = []string{"aa", "errors5x", "e2e-bad"}
	cells, err := Simulate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cells {
		ours, flagger := c.Methods[0], c.Methods[1]
		bad := c.Scenario.Bad
		t.Logf("%s: fledge wrong %d/%d, undecided %d, median %v s; Flagger-style wrong %d, median %v s",
			c.Scenario.Name, ours.Wrong(bad), ours.Runs, ours.Undecided, median(ours.RightTimes(bad)),
			flagger.Wrong(bad), median(flagger.RightTimes(bad)))
		switch c.Scenario.ID {
		case "aa":
			if ours.RolledBack > ours.Runs/100 {
				t.Errorf("A/A: %d false rollbacks in %d runs, want ≤ 1%%", ours.RolledBack, ours.Runs)
			}
		case "errors5x", "e2e-bad":
			if ours.RolledBack < ours.Runs*95/100 {
				t.Errorf("%s: %d of %d rolled back, want ≥ 95%%", c.Scenario.Name, ours.RolledBack, ours.Runs)
			}
		}
		if m, f := median(ours.RightTimes(bad)), median(flagger.RightTimes(bad)); !(m < f/2) {
			t.Errorf("%s: fledge median %v s, not under half the Flagger-style %v s", c.Scenario.Name, m, f)
		}
		if c.Scenario.ID == "e2e-bad" {
			within := 0
			for _, at := range ours.RollbackTimes {
				if at <= 15 {
					within++
				}
			}
			if within < ours.Runs*95/100 {
				t.Errorf("e2e: %d of %d runs rolled back within 15 s, want ≥ 95%%", within, ours.Runs)
			}
		}
	}
}

func median(ts []float64) float64 {
	if len(ts) == 0 {
		return math.NaN()
	}
	return quantile(ts, 0.5)
}

// TestDeterministic: the same Config prints the same report, whatever the
// number of workers.
func TestDeterministic(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Runs = 20
	cfg.Rates = []float64{100}
	cfg.Scenarios = []string{"errors5x", "latency50"}
	var a, b bytes.Buffer
	cfg.Workers = 1
	if err := Run(cfg, &a); err != nil {
		t.Fatal(err)
	}
	cfg.Workers = 3
	if err := Run(cfg, &b); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Errorf("reports differ:\n%s\n---\n%s", a.String(), b.String())
	}
	if !strings.Contains(a.String(), "| errors 5× | 100 | roll back |") {
		t.Errorf("report lacks the errors 5× row:\n%s", a.String())
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"no runs":                    func(c *Config) { c.Runs = 0 },
		"negative rate":              func(c *Config) { c.Rates = []float64{-1} },
		"5× base error rate above 1": func(c *Config) { c.BaseErrorRate = 0.3 },
		"step of 100":                func(c *Config) { c.Steps = []int{10, 100} },
		"horizon off the interval":   func(c *Config) { c.ScrapeInterval = 7 * time.Second },
		"unknown scenario":           func(c *Config) { c.Scenarios = []string{"nope"} },
		"invalid criteria":           func(c *Config) { c.Criteria.Beta = 2 },
		"ramp ratio 1":               func(c *Config) { c.RampBadErrorRatio = 1 },
	} {
		c := DefaultConfig()
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate() = nil", name)
		}
		if _, err := Simulate(c); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Simulate error %v, want ErrInvalidConfig", name, err)
		}
	}
}

// TestBuckets: the stream's closed-form bucket is the bucket of Buckets that
// holds the latency.
func TestBuckets(t *testing.T) {
	if len(Buckets) != nBuckets || Buckets[0] != 0.001 || Buckets[nBuckets-2] != 8.192 || !math.IsInf(Buckets[nBuckets-1], 1) {
		t.Fatalf("Buckets = %v", Buckets)
	}
	sc := Scenarios(0.01)[3] // latency +50%: different medians per side
	st := newStream(sc, 1, rand.New(rand.NewPCG(1, 2)))
	for i := range 10000 {
		z := st.rng.NormFloat64() * 3
		for side, median := range [2]float64{sc.StableMedian, sc.CanaryMedian} {
			lat := median * math.Exp(Sigma*z)
			_, k := st.outcome(request{z: z}, side)
			lo := 0.0
			if k > 0 {
				lo = Buckets[k-1]
			}
			if !(lat > lo*(1-1e-12) && lat <= Buckets[k]*(1+1e-12)) {
				t.Fatalf("draw %d: latency %v s in bucket %d (%v, %v]", i, lat, k, lo, Buckets[k])
			}
		}
	}
}

func TestHistogramQuantile(t *testing.T) {
	var b [nBuckets]float64
	if q := histogramQuantile(0.99, b[:]); !math.IsNaN(q) {
		t.Errorf("empty: %v, want NaN", q)
	}
	b[3] = 100 // all in (0.004, 0.008]
	if q := histogramQuantile(0.5, b[:]); math.Abs(q-0.006) > 1e-12 {
		t.Errorf("median = %v, want 0.006 (interpolated)", q)
	}
	b[nBuckets-1] = 100 // half above 8.192 s
	if q := histogramQuantile(0.99, b[:]); q != Buckets[nBuckets-2] {
		t.Errorf("p99 in the +Inf bucket = %v, want the last finite bound", q)
	}
}

// TestFlaggerRule pins the Flagger-style schedule: five passed checks promote
// at the fifth interval; five failed checks roll back at the sixth.
func TestFlaggerRule(t *testing.T) {
	cfg := DefaultConfig()
	for _, tt := range []struct {
		name     string
		errRate  float64
		want     outcome
		weightAt []float64 // weight after each interval
	}{
		{"healthy", 0.01, outcome{promoted, 300}, []float64{.2, .3, .4, .5}},
		{"failing", 0.02, outcome{rolledBack, 360}, []float64{.1, .1, .1, .1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlagger(cfg, 0.2, 1)
			for i := 1; i <= 3600; i++ {
				if i%60 == 1 { // 1000 canary requests per interval, fast enough
					for r := range 1000 {
						f.counters().add(canarySide, float64(r) < tt.errRate*1000, 5)
					}
				}
				if f.tick(i, float64(i)) {
					break
				}
				if k := i / 60; i%60 == 0 && k <= len(tt.weightAt) && math.Abs(f.weight()-tt.weightAt[k-1]) > 1e-9 {
					t.Errorf("weight after interval %d = %v, want %v", k, f.weight(), tt.weightAt[k-1])
				}
			}
			if got := f.result(); got != tt.want {
				t.Errorf("result = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFixedTests(t *testing.T) {
	var same, worse, slower counters
	for side, n := range [2]float64{9000, 1000} {
		same.requests[side], same.errors[side] = n, n/100
		worse.requests[side], worse.errors[side] = n, n/100
		slower.requests[side] = n
		same.buckets[side][5], worse.buckets[side][5] = n, n
		slower.buckets[side][5+side] = n // canary one bucket slower
	}
	worse.errors[canarySide] = 50
	if z := zTwoProportion(&same); math.Abs(z) > 1e-9 {
		t.Errorf("equal rates: z = %v, want 0", z)
	}
	if z := zTwoProportion(&worse); z < 5 {
		t.Errorf("5%% vs 1%%: z = %v, want > 5", z)
	}
	if z := zMannWhitney(&same); math.Abs(z) > 1e-9 {
		t.Errorf("same latency: z = %v, want 0", z)
	}
	if z := zMannWhitney(&slower); z < 10 {
		t.Errorf("canary slower: z = %v, want > 10", z)
	}
}

func TestBinomialUpper(t *testing.T) {
	if got, want := binomialUpper(0, 1000, 0.05), 1-math.Pow(0.05, 1.0/1000); math.Abs(got-want) > 1e-9 {
		t.Errorf("0/1000: %v, want %v", got, want)
	}
	if got := binomialUpper(10, 1000, 0.05); !(got > 0.01 && got < 0.02) {
		t.Errorf("10/1000: %v, want in (1%%, 2%%)", got)
	}
	if got := binomialUpper(5, 5, 0.05); got != 1 {
		t.Errorf("5/5: %v, want 1", got)
	}
}

// BenchmarkJudge measures one analysis.Judge call on a release in its third
// step, as the simulator calls it.
func BenchmarkJudge(b *testing.B) {
	f := newFledge(DefaultConfig())
	st := newStream(Scenarios(0.01)[0], 1000, rand.New(rand.NewPCG(1, 1)))
	var reqs []request
	for step := range 3 {
		reqs = st.next(60, reqs)
		for _, r := range reqs {
			side := stableSide
			if r.arm < f.steps[step] {
				side = canarySide
			}
			failed, bucket := st.outcome(r, side)
			f.cur.add(side, failed, bucket)
		}
		f.tick(0, 0)
		if step < 2 {
			f.step++
			f.cur = counters{}
			f.windows = append(f.windows, newWindow())
		}
	}
	obs := analysis.Observation{Windows: f.windows}
	for b.Loop() {
		analysis.Judge(f.crit, obs)
	}
}

// BenchmarkDecisions runs a small decision-quality simulation and reports
// fledge's false-rollback rate and median times as metrics:
//
//	go test ./internal/bench -run '^$' -bench Decisions
func BenchmarkDecisions(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Runs = 300
	cfg.Rates = []float64{100}
	cfg.Scenarios = []string{"aa", "errors2x"}
	for b.Loop() {
		cells, err := Simulate(cfg)
		if err != nil {
			b.Fatal(err)
		}
		aa, bad := cells[0].Methods[0], cells[1].Methods[0]
		b.ReportMetric(100*float64(aa.RolledBack)/float64(aa.Runs), "false-rollback-%")
		b.ReportMetric(median(aa.PromoteTimes), "promote-s")
		b.ReportMetric(100*float64(bad.Promoted)/float64(bad.Runs), "missed-2x-%")
		b.ReportMetric(median(bad.RollbackTimes), "rollback-2x-s")
	}
}
