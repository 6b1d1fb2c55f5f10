package main

import (
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/bench"
	"github.com/fledge-dev/fledge/internal/strategy"
)

func newBenchCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Benchmarks"}
	cfg := bench.DefaultConfig()
	var rates, steps, action string
	var minStep, soak, deadline time.Duration
	decisions := &cobra.Command{
		Use:   "decisions",
		Short: "Simulate request streams and compare fledge's decisions with a Flagger-style rule and a fixed-horizon test",
		Long: `decisions simulates seeded request streams (A/A, canary errors 2x and 5x,
latency-only regressions, heavy-tailed latency, shared outages in each step,
periodic canary bursts, traffic gaps, Prometheus counts, and the e2e cases) at
several request rates. It runs the controller's own step machine and analysis
(strategy.Next on a simulated clock, with the default policy unless the flags
say otherwise), a Flagger-style threshold rule and a fixed-horizon test on the
same streams, and prints a Markdown table (time to roll back a bad canary, time
to promote a healthy one, false rollbacks and missed bad canaries) and each
target cell.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.Rates, err = parseFloats(rates); err != nil {
				return err
			}
			if steps != "" {
				ws, err := parseInts(steps)
				if err != nil {
					return err
				}
				cfg.Policy.Steps = nil
				for _, w := range ws {
					cfg.Policy.Steps = append(cfg.Policy.Steps, int32(w))
				}
			}
			f := cmd.Flags()
			for name, d := range map[string]time.Duration{"min-step": minStep, "soak": soak, "deadline": deadline} {
				if !f.Changed(name) {
					continue
				}
				v := &metav1.Duration{Duration: d}
				switch name {
				case "min-step":
					cfg.Policy.StepDuration = v
				case "soak":
					cfg.Policy.Soak = v
				default:
					cfg.Policy.ProgressDeadline = v
				}
			}
			cfg.Policy.DeadlineAction = fledgev1.DeadlineAction(action)
			return bench.Run(cmd.Context(), cfg, cmd.OutOrStdout())
		},
	}
	f := decisions.Flags()
	f.IntVar(&cfg.Runs, "runs", cfg.Runs, "runs per cell")
	f.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the random streams")
	f.StringVar(&rates, "rates", "1,10,100,1000", "total request rates, requests/s")
	f.StringVar(&steps, "steps", "", "fledge's canary weights (spec.auto.steps; default the policy's, 10,25,50)")
	f.Float64Var(&cfg.BaseErrorRate, "base-error-rate", cfg.BaseErrorRate, "the stable's error rate")
	f.StringSliceVar(&cfg.Scenarios, "scenarios", nil, "scenario IDs ("+strings.Join(bench.ScenarioIDs(), ", ")+"); default all")
	f.IntVar(&cfg.Workers, "workers", 0, "parallel workers (default GOMAXPROCS)")
	f.DurationVar(&minStep, "min-step", strategy.DefaultStepDuration, "least time under load at a step (spec.auto.stepDuration)")
	f.DurationVar(&soak, "soak", strategy.DefaultSoak, "least time under load of the analysis (spec.auto.soak)")
	f.DurationVar(&deadline, "deadline", strategy.DefaultProgressDeadline, "progress deadline (spec.auto.progressDeadline)")
	f.StringVar(&action, "deadline-action", "", "rollback, pause or promote (spec.auto.deadlineAction; default pause)")
	f.DurationVar(&cfg.MaxDuration, "max-duration", cfg.MaxDuration, "simulated time after which a run counts as undecided")
	f.DurationVar(&cfg.FlaggerInterval, "flagger-interval", cfg.FlaggerInterval, "Flagger-style analysis interval")
	f.IntVar(&cfg.FlaggerThreshold, "flagger-threshold", cfg.FlaggerThreshold, "Flagger-style failed checks before rollback")
	f.DurationVar(&cfg.FixedHorizon, "fixed-horizon", cfg.FixedHorizon, "fixed-horizon test's decision time")
	cmd.AddCommand(decisions)
	return cmd
}

func parseFloats(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
