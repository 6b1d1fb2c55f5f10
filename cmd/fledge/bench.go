package main

import (
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fledge-dev/fledge/internal/bench"
)

func newBenchCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Benchmarks"}
	cfg := bench.DefaultConfig()
	var rates, steps string
	decisions := &cobra.Command{
		Use:   "decisions",
		Short: "Simulate request streams and compare fledge's decisions with a Flagger-style rule and a fixed-horizon test",
		Long: `decisions simulates seeded request streams (A/A, canary errors 2x and 5x,
canary latency +50%, and the e2e cases) at several request rates, runs fledge's
analysis, a Flagger-style threshold rule and a fixed-horizon test on the same
streams, and prints a Markdown table: time to roll back a bad canary, time to
promote a healthy one, false rollbacks and missed bad canaries.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.Rates, err = parseFloats(rates); err != nil {
				return err
			}
			if cfg.Steps, err = parseInts(steps); err != nil {
				return err
			}
			return bench.Run(cfg, cmd.OutOrStdout())
		},
	}
	f := decisions.Flags()
	f.IntVar(&cfg.Runs, "runs", cfg.Runs, "runs per cell")
	f.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the random streams")
	f.StringVar(&rates, "rates", "10,100,1000", "total request rates, requests/s")
	f.StringVar(&steps, "steps", "10,25,50", "fledge's canary weights")
	f.Float64Var(&cfg.BaseErrorRate, "base-error-rate", cfg.BaseErrorRate, "the stable's error rate")
	f.StringSliceVar(&cfg.Scenarios, "scenarios", nil, "scenario IDs (aa, errors2x, errors5x, latency50, e2e-bad, e2e-healthy); default all")
	f.IntVar(&cfg.Workers, "workers", 0, "parallel workers (default GOMAXPROCS)")
	f.DurationVar(&cfg.MinStepDuration, "min-step", cfg.MinStepDuration, "least time at a step")
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
