package strategy

import (
	"fmt"
	"math"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/analysis"
)

// Event reasons of the automation's decisions.
const (
	ReasonStarted    = "AnalysisStarted"
	ReasonStepUp     = "StepUp"
	ReasonPromoted   = "Promoted"
	ReasonRolledBack = "RolledBack"
	ReasonPaused     = "Paused"
	ReasonResumed    = "Resumed"
)

// Decision is a change the automation made that is worth an Event: it
// started, stepped up, promoted, rolled back, paused or resumed.
type Decision struct {
	// Reason is one of the Reason constants.
	Reason string
	// Warning is set for rollbacks.
	Warning bool
	// Message explains the decision with its evidence.
	Message string
}

// Outcome is the result of one Next: the next state, the judgment and the
// decision, if any.
type Outcome struct {
	// State is the next status.auto; State.Weight is the canary weight to serve.
	State fledgev1.AutoStatus
	// Verdict is the judgment made this time, if any.
	Verdict *analysis.Verdict
	// Decision, when not nil, is a change to announce.
	Decision *Decision
}

// Begin returns the state to continue from: prev, or a fresh analysis at the
// first step when there is none, when the canary is another Service, or when
// the policy asks for a restart after prev started. It also says whether the
// caller should measure the current step's counts before calling Next.
func Begin(p Policy, canary string, prev *fledgev1.AutoStatus, now time.Time) (st fledgev1.AutoStatus, measure bool, started bool) {
	if prev == nil || prev.Canary != canary || (!p.RestartAt.IsZero() && p.RestartAt.After(prev.StartedAt.Time)) {
		t := metav1.NewTime(now)
		st = fledgev1.AutoStatus{Canary: canary, Weight: p.Steps[0], StartedAt: t, StepStartedAt: t}
		return st, false, true
	}
	st = *prev.DeepCopy()
	return st, st.Result == "" && !st.Paused && p.Override == "", false
}

// Next advances the state st (from Begin) given the current step's counts
// (when measured; nil otherwise), the metrics source's error, and the clock.
//
//   - An override wins: Abort rolls back to 0 and Promote goes to 100, both
//     final for this canary; Pause holds the weight until the override is
//     removed, and the step then starts over.
//   - A concluded release keeps its weight (0 or 100).
//   - Otherwise the counts are judged against the finished steps' counts: Fail
//     rolls back at once; Pass after StepDuration moves to the next step, or
//     promotes after the last one; a step without a verdict within
//     ProgressDeadline rolls back.
func Next(p Policy, st fledgev1.AutoStatus, started bool, current *analysis.Window, metricsErr error, now time.Time) Outcome {
	out := Outcome{State: st}
	s := &out.State
	t := metav1.NewTime(now)
	conclude := func(result fledgev1.AutoResult, reason, msg string) {
		s.Result, s.ConcludedAt, s.Paused = result, &t, false
		s.Weight = 0
		if result == fledgev1.AutoPromoted {
			s.Weight = 100
		}
		out.Decision = &Decision{Reason: reason, Warning: result == fledgev1.AutoRolledBack, Message: msg}
	}
	if started {
		out.Decision = &Decision{Reason: ReasonStarted, Message: fmt.Sprintf(
			"automated release of %s started at %d%% (steps %v, at least %v and %v canary requests each)",
			s.Canary, s.Weight, p.Steps, p.StepDuration, p.Criteria.MinRequests)}
	}
	if s.Result != "" {
		return out
	}
	switch p.Override {
	case fledgev1.OverrideAbort:
		conclude(fledgev1.AutoRolledBack, ReasonRolledBack, fmt.Sprintf("aborted by override: %s rolled back to 0%%", s.Canary))
		return out
	case fledgev1.OverridePromote:
		conclude(fledgev1.AutoPromoted, ReasonPromoted, fmt.Sprintf("promoted by override: %s at 100%%", s.Canary))
		return out
	case fledgev1.OverridePause:
		if !s.Paused {
			s.Paused = true
			out.Decision = &Decision{Reason: ReasonPaused, Message: fmt.Sprintf("paused by override: %s held at %d%%", s.Canary, s.Weight)}
		}
		return out
	}
	if s.Paused {
		s.Paused, s.StepStartedAt, s.Current = false, t, nil
		out.Decision = &Decision{Reason: ReasonResumed, Message: fmt.Sprintf("resumed: step %d at %d%% starts over", s.Step+1, s.Weight)}
		return out
	}
	if started {
		return out
	}

	obs := analysis.Observation{Err: metricsErr}
	if metricsErr == nil && current == nil {
		obs.Err = fmt.Errorf("no measurement")
	}
	bounds := parseBounds(s.LatencyBounds)
	for _, w := range s.Steps {
		obs.Windows = append(obs.Windows, windowOf(w, bounds))
	}
	if current != nil && metricsErr == nil {
		s.Current = countsOf(s.Weight, *current)
		if len(s.LatencyBounds) == 0 && len(current.Stable.Latency.Bounds) > 0 {
			s.LatencyBounds = formatBounds(current.Stable.Latency.Bounds)
		}
		obs.Windows = append(obs.Windows, *current)
	}
	criteria := p.Criteria
	if int(s.Step) < len(p.Steps)-1 {
		criteria.BadErrorRatio = max(criteria.BadErrorRatio, RampBadErrorRatio)
	}
	v := analysis.Judge(criteria, obs)
	out.Verdict = &v
	s.Verdict, s.Reason, s.Evidence = string(v.Result), string(v.Reason), v.Evidence
	elapsed := now.Sub(s.StepStartedAt.Time)
	switch {
	case v.Result == analysis.Fail:
		conclude(fledgev1.AutoRolledBack, ReasonRolledBack, fmt.Sprintf("rolled back %s from %d%% to 0%% after %v at this step: %s",
			s.Canary, s.Weight, elapsed.Round(time.Millisecond), v.Evidence))
	case v.Result == analysis.Pass && elapsed >= p.StepDuration:
		s.Steps = append(s.Steps, *s.Current)
		s.Current = nil
		s.Step++
		if int(s.Step) >= len(p.Steps) {
			conclude(fledgev1.AutoPromoted, ReasonPromoted, fmt.Sprintf("promoted %s to 100%% after %d steps in %v: %s",
				s.Canary, len(p.Steps), now.Sub(s.StartedAt.Time).Round(time.Millisecond), v.Evidence))
			return out
		}
		from := s.Weight
		s.Weight, s.StepStartedAt = p.Steps[s.Step], t
		out.Decision = &Decision{Reason: ReasonStepUp, Message: fmt.Sprintf("stepped %s up from %d%% to %d%%: %s", s.Canary, from, s.Weight, v.Evidence)}
	case v.Result != analysis.Pass && elapsed > p.ProgressDeadline:
		conclude(fledgev1.AutoRolledBack, ReasonRolledBack, fmt.Sprintf(
			"rolled back %s: no verdict within the progress deadline %v at %d%% (last: %s)", s.Canary, p.ProgressDeadline, s.Weight, v.Evidence))
	}
	return out
}

func countsOf(weight int32, w analysis.Window) *fledgev1.StepCounts {
	return &fledgev1.StepCounts{Weight: weight, Stable: sampleCounts(w.Stable), Canary: sampleCounts(w.Canary)}
}

func sampleCounts(s analysis.Sample) fledgev1.SampleCounts {
	out := fledgev1.SampleCounts{Requests: round(s.Requests), Errors: round(s.Errors)}
	for _, c := range s.Latency.Counts {
		out.Latency = append(out.Latency, round(c))
	}
	return out
}

func round(x float64) int64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return -1 // Judge treats negative counts as invalid: inconclusive
	}
	return int64(math.Round(x))
}

func windowOf(c fledgev1.StepCounts, bounds []float64) analysis.Window {
	return analysis.Window{Stable: sampleOf(c.Stable, bounds), Canary: sampleOf(c.Canary, bounds)}
}

func sampleOf(c fledgev1.SampleCounts, bounds []float64) analysis.Sample {
	s := analysis.Sample{Requests: float64(c.Requests), Errors: float64(c.Errors)}
	if len(c.Latency) > 0 {
		s.Latency.Bounds = bounds
		for _, n := range c.Latency {
			s.Latency.Counts = append(s.Latency.Counts, float64(n))
		}
	}
	return s
}

func formatBounds(b []float64) []string {
	out := make([]string, len(b))
	for i, x := range b {
		out[i] = strconv.FormatFloat(x, 'g', -1, 64)
	}
	return out
}

func parseBounds(s []string) []float64 {
	out := make([]float64, 0, len(s))
	for _, x := range s {
		v, err := strconv.ParseFloat(x, 64)
		if err != nil {
			v = math.NaN()
		}
		out = append(out, v)
	}
	return out
}
