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
	// ReasonHeld: the progress deadline passed and the canary is held.
	ReasonHeld = "DeadlineHeld"
	// ReasonSharedIncident: the stable fails too; the judgment waits.
	ReasonSharedIncident = "SharedIncident"
	// ReasonIncidentEnded: the shared incident ended; the judgment resumes.
	ReasonIncidentEnded = "IncidentEnded"
	// ReasonSlowEvidence: at the current traffic a verdict needs longer than
	// the progress deadline leaves.
	ReasonSlowEvidence = "SlowEvidence"
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
		t, m := metav1.NewTime(now), metav1.NewMicroTime(now)
		st = fledgev1.AutoStatus{Canary: canary, Weight: p.Steps[0], StartedAt: t, StepStartedAt: t, MeasuredAt: &m}
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
//     rolls back at once; Pass after StepDuration under load (intervals in
//     which both versions served requests, outside shared incidents) moves to
//     the next step, or promotes after the last one once the analysis has had
//     Soak under load; a Pass right after an interval without traffic on both
//     versions waits (a gap never passes a step). While the stable fails too
//     (a shared incident) nothing passes and only the relative tests can fail
//     the canary. A step without a verdict within ProgressDeadline gets the
//     DeadlineAction; before that, when the traffic is too low for a verdict
//     in time, Forecast says so.
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
		m := metav1.NewMicroTime(now)
		s.Paused, s.StepStartedAt, s.Current, s.MeasuredAt, s.StepUnderLoad, s.IncidentSince = false, t, nil, &m, nil, nil
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
	// fresh: both versions served requests since the last measurement.
	var fresh bool
	var incident *incidentCounts
	if current != nil && metricsErr == nil {
		fresh, incident = account(s, p, *current, now)
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
	switch {
	case s.IncidentSince != nil && (v.Result == analysis.Pass || v.Reason == analysis.ReasonErrorRateAboveLimit ||
		v.Reason == analysis.ReasonCollectingEvidence || v.Reason == analysis.ReasonTooFewRequests):
		// Only a canary worse than the stable over the same seconds fails
		// during a shared incident; nothing passes. (Other reasons, such as
		// a metrics source that is down, are kept.)
		v.Result, v.Reason = analysis.Inconclusive, analysis.ReasonSharedIncident
		v.Evidence = fmt.Sprintf("the stable fails too (since %s): an incident on both versions, so the judgment waits for it to end; %s",
			s.IncidentSince.UTC().Format(time.RFC3339), v.Evidence)
	case v.Result == analysis.Pass && !fresh:
		v.Result, v.Reason = analysis.Inconclusive, analysis.ReasonNoRecentTraffic
		v.Evidence = "no traffic on both versions since the last measurement, so the step does not pass now; " + v.Evidence
	}
	s.Verdict, s.Reason, s.Evidence = string(v.Result), string(v.Reason), v.Evidence
	elapsed := now.Sub(s.StepStartedAt.Time)
	stepLoad, load := durationOf(s.StepUnderLoad), durationOf(s.UnderLoad)
	last := int(s.Step) == len(p.Steps)-1
	switch {
	case v.Result == analysis.Fail:
		conclude(fledgev1.AutoRolledBack, ReasonRolledBack, fmt.Sprintf("rolled back %s from %d%% to 0%% after %v at this step: %s",
			s.Canary, s.Weight, elapsed.Round(time.Millisecond), v.Evidence))
	case v.Result == analysis.Pass && stepLoad >= p.StepDuration && last && load < p.Soak:
		s.Evidence = fmt.Sprintf("soaking: %v of %v under load before promotion; %s", load.Round(time.Second), p.Soak, v.Evidence)
	case v.Result == analysis.Pass && stepLoad >= p.StepDuration:
		s.Steps = append(s.Steps, *s.Current)
		m := metav1.NewMicroTime(now)
		s.Current, s.MeasuredAt, s.StepUnderLoad, s.Forecast, s.Held = nil, &m, nil, "", false
		s.Step++
		if int(s.Step) >= len(p.Steps) {
			conclude(fledgev1.AutoPromoted, ReasonPromoted, fmt.Sprintf("promoted %s to 100%% after %d steps in %v (%v under load): %s",
				s.Canary, len(p.Steps), now.Sub(s.StartedAt.Time).Round(time.Millisecond), load.Round(time.Second), v.Evidence))
			return out
		}
		from := s.Weight
		s.Weight, s.StepStartedAt = p.Steps[s.Step], t
		out.Decision = &Decision{Reason: ReasonStepUp, Message: fmt.Sprintf("stepped %s up from %d%% to %d%%: %s", s.Canary, from, s.Weight, v.Evidence)}
	case v.Result != analysis.Pass && elapsed > p.ProgressDeadline && !s.Held:
		deadline(p, s, v, &out, conclude)
	case v.Result == analysis.Inconclusive && v.Reason != analysis.ReasonSharedIncident:
		forecast(p, s, criteria, obs, v, elapsed, &out)
	}
	if out.Decision == nil && incident != nil {
		out.Decision = incident.decision(s)
	}
	return out
}

// incidentThreshold is the least number of stable errors in one interval
// that may start a shared incident: one error in a second at a low rate is
// not an incident.
const incidentThreshold = 3

// incidentCounts are the stable's counts in the interval in which a shared
// incident started or ended.
type incidentCounts struct {
	errors, requests float64
	interval         time.Duration
	started          bool
}

func (c *incidentCounts) String() string {
	return fmt.Sprintf("stable failed %.0f of %.0f requests in the last %v", c.errors, c.requests, c.interval.Round(time.Millisecond))
}

func (c *incidentCounts) decision(s *fledgev1.AutoStatus) *Decision {
	if c.started {
		return &Decision{Reason: ReasonSharedIncident, Warning: true, Message: fmt.Sprintf(
			"the stable fails too (%s): an incident on both versions; the judgment of %s at %d%% waits for it to end", c, s.Canary, s.Weight)}
	}
	return &Decision{Reason: ReasonIncidentEnded, Message: fmt.Sprintf(
		"the incident on both versions ended (%s); the judgment of %s at %d%% resumes", c, s.Canary, s.Weight)}
}

// account adds the interval since the last measurement to the time under
// load when both versions served requests in it and no incident is going on,
// and starts or ends a shared incident from the stable's errors in it. It
// returns whether the interval had traffic on both versions, and the
// interval's stable counts when an incident started or ended in it.
func account(s *fledgev1.AutoStatus, p Policy, cur analysis.Window, now time.Time) (bool, *incidentCounts) {
	// MeasuredAt is also set, to the microsecond, when a step starts:
	// StepStartedAt keeps whole seconds only.
	from := s.StepStartedAt.Time
	if s.MeasuredAt != nil && s.MeasuredAt.After(from) {
		from = s.MeasuredAt.Time
	}
	var prev fledgev1.StepCounts
	if s.Current != nil {
		prev = *s.Current
	}
	m := metav1.NewMicroTime(now)
	s.MeasuredAt = &m
	dt := now.Sub(from)
	stableReq := cur.Stable.Requests - float64(prev.Stable.Requests)
	stableErr := cur.Stable.Errors - float64(prev.Stable.Errors)
	fresh := dt > 0 && stableReq > 0 && cur.Canary.Requests-float64(prev.Canary.Requests) > 0
	var change *incidentCounts
	if limit := p.Criteria.MaxErrorRate * analysis.SharedShare; limit > 0 && stableReq > 0 {
		failing := stableErr >= incidentThreshold && stableErr >= stableReq*limit
		switch {
		case failing && s.IncidentSince == nil:
			since := metav1.NewTime(now)
			s.IncidentSince = &since
			change = &incidentCounts{errors: stableErr, requests: stableReq, interval: dt, started: true}
		case !failing && s.IncidentSince != nil && stableErr < stableReq*limit:
			s.IncidentSince = nil
			change = &incidentCounts{errors: stableErr, requests: stableReq, interval: dt}
		}
	}
	if fresh && s.IncidentSince == nil {
		s.StepUnderLoad = &metav1.Duration{Duration: durationOf(s.StepUnderLoad) + dt}
		s.UnderLoad = &metav1.Duration{Duration: durationOf(s.UnderLoad) + dt}
	}
	return fresh, change
}

func durationOf(d *metav1.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.Duration
}

// deadline applies the policy's DeadlineAction to a step that reached no
// verdict within the progress deadline.
func deadline(p Policy, s *fledgev1.AutoStatus, v analysis.Verdict, out *Outcome,
	conclude func(fledgev1.AutoResult, string, string)) {
	what := fmt.Sprintf("no verdict within the progress deadline %v at %d%% (%v under load; last: %s)",
		p.ProgressDeadline, s.Weight, durationOf(s.StepUnderLoad).Round(time.Second), v.Evidence)
	harm := leansWorse(p.Criteria, v)
	switch {
	case p.DeadlineAction == fledgev1.DeadlineRollback:
		conclude(fledgev1.AutoRolledBack, ReasonRolledBack, fmt.Sprintf("rolled back %s (deadline action rollback): %s", s.Canary, what))
		return
	case p.DeadlineAction == fledgev1.DeadlinePromote && harm == "":
		conclude(fledgev1.AutoPromoted, ReasonPromoted, fmt.Sprintf("promoted %s (deadline action promote; no evidence leans towards a worse canary): %s", s.Canary, what))
		return
	}
	s.Held = true
	msg := fmt.Sprintf("held %s at %d%% (deadline action %s): %s; the analysis goes on: a Fail rolls it back, a Pass steps it up; set spec.auto.override to decide now",
		s.Canary, s.Weight, p.DeadlineAction, what)
	if p.DeadlineAction == fledgev1.DeadlinePromote {
		msg = fmt.Sprintf("held %s at %d%% instead of promoting it (deadline action promote): %s; %s", s.Canary, s.Weight, harm, what)
	}
	out.Decision = &Decision{Reason: ReasonHeld, Warning: true, Message: msg}
}

// leansWorse says, when it does, how the evidence leans towards a canary worse
// than the stable: more evidence for "worse" than against it and a higher
// point estimate, on errors or on latency. "" when it does not.
func leansWorse(c analysis.Criteria, v analysis.Verdict) string {
	e := v.Errors
	if e.Worse > 1 && e.CanaryRate()-zeroNaN(e.StableRate()) > 0 {
		return fmt.Sprintf("its errors lean towards worse (%.0f of %.0f against the stable's %.0f of %.0f, evidence %.2g)",
			e.CanaryEvents, e.CanaryTotal, e.StableEvents, e.StableTotal, e.Worse)
	}
	if l := v.Latency; l.Enabled && l.Worse > 1 && l.CanaryRate()-zeroNaN(l.StableRate()) > 0 {
		return fmt.Sprintf("its latency leans towards worse (%.0f of %.0f slower than %g s against the stable's %.0f of %.0f, evidence %.2g)",
			l.CanaryEvents, l.CanaryTotal, l.Bound, l.StableEvents, l.StableTotal, l.Worse)
	}
	return ""
}

func zeroNaN(x float64) float64 {
	if math.IsNaN(x) {
		return 0
	}
	return x
}

// forecastAfter is the least time in a step before a forecast is made: the
// rates of the first seconds say little.
const forecastAfter = 30 * time.Second

// forecast sets s.Forecast, and announces it once per step, when at the
// current rates a verdict of this step needs more than the time left before
// the progress deadline.
func forecast(p Policy, s *fledgev1.AutoStatus, c analysis.Criteria, obs analysis.Observation, v analysis.Verdict,
	elapsed time.Duration, out *Outcome) {
	load := durationOf(s.StepUnderLoad)
	if s.Held || load < max(p.StepDuration, forecastAfter) {
		return
	}
	secs, ok := analysis.Forecast(c, obs, v, load.Seconds())
	if !ok {
		return
	}
	left := p.ProgressDeadline - elapsed
	need := time.Duration(math.Min(secs, 1e6) * float64(time.Second))
	if need <= left {
		s.Forecast = ""
		return
	}
	cur := obs.Windows[len(obs.Windows)-1]
	rate := (cur.Canary.Requests + cur.Stable.Requests) / load.Seconds()
	verdict := "a verdict at this step needs about " + minutes(secs) + " more"
	if math.IsInf(secs, 1) {
		verdict = "this step cannot reach a verdict"
	}
	first := s.Forecast == ""
	s.Forecast = fmt.Sprintf("at this rate (%.3g requests/s, %d%% to the canary) %s; the progress deadline (%s, action %s) comes in %s",
		rate, s.Weight, verdict, p.ProgressDeadline, p.DeadlineAction, minutes(left.Seconds()))
	if first && out.Decision == nil {
		out.Decision = &Decision{Reason: ReasonSlowEvidence, Message: s.Canary + ": " + s.Forecast}
	}
}

func minutes(secs float64) string {
	switch {
	case math.IsInf(secs, 1):
		return "ever"
	case secs < 90:
		return fmt.Sprintf("%.0f s", secs)
	default:
		return fmt.Sprintf("%.0f minutes", secs/60)
	}
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
