package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Override is a manual decision that wins over the automation.
// +kubebuilder:validation:Enum=Pause;Abort;Promote
type Override string

const (
	// OverridePause holds the canary weight where it is.
	OverridePause Override = "Pause"
	// OverrideAbort rolls the canary back to 0% at once.
	OverrideAbort Override = "Abort"
	// OverridePromote sends all traffic to the canary at once.
	OverridePromote Override = "Promote"
)

// DeadlineAction is what happens to a canary whose step reaches no verdict
// within the progress deadline.
// +kubebuilder:validation:Enum=rollback;pause;promote
type DeadlineAction string

const (
	// DeadlineRollback rolls the canary back to 0%.
	DeadlineRollback DeadlineAction = "rollback"
	// DeadlinePause holds the canary at its weight and goes on judging it: a
	// Fail still rolls it back, a Pass still steps it up.
	DeadlinePause DeadlineAction = "pause"
	// DeadlinePromote promotes the canary when the evidence does not lean
	// towards a worse canary; otherwise it holds it as DeadlinePause does.
	DeadlinePromote DeadlineAction = "promote"
)

// MetricSource names where the analysis reads request counts.
// +kubebuilder:validation:Enum=builtin;prometheus
type MetricSource string

const (
	// MetricSourceBuiltin reads the embedded gateway replicas' own counters.
	MetricSourceBuiltin MetricSource = "builtin"
	// MetricSourcePrometheus queries a Prometheus server.
	MetricSourcePrometheus MetricSource = "prometheus"
)

// AutoPolicy lets fledge release the canary by itself: it steps the canary's
// weight up, compares canary against stable at every step, and promotes the
// canary to 100% or rolls it back to 0% on its own. Every field has a default.
type AutoPolicy struct {
	// Steps are the canary weights tried in order: increasing, each from 1 to
	// 99. When the last step passes, the canary is promoted to 100%.
	// Default: 10, 25, 50.
	// +kubebuilder:validation:MaxItems=20
	// +optional
	Steps []int32 `json:"steps,omitempty"`
	// StepDuration is the least time under load at each step: only the
	// seconds in which both the stable and the canary served requests count.
	// Default 10s.
	// +optional
	StepDuration *metav1.Duration `json:"stepDuration,omitempty"`
	// Soak is the least time under load of the whole analysis before the
	// canary is promoted: the last step goes on until it is reached, so that
	// failures that recur every minute or so are seen. 0 turns it off.
	// Default 2m.
	// +optional
	Soak *metav1.Duration `json:"soak,omitempty"`
	// StepRequests is the least number of canary requests at each step before
	// it may pass. Default 100.
	// +kubebuilder:validation:Minimum=0
	// +optional
	StepRequests *int32 `json:"stepRequests,omitempty"`
	// ProgressDeadline is the time a step may take without a verdict (too
	// little traffic, no metrics); then DeadlineAction applies. Default 30m.
	// +optional
	ProgressDeadline *metav1.Duration `json:"progressDeadline,omitempty"`
	// DeadlineAction is what the progress deadline does: rollback, pause
	// (hold the weight and keep judging) or promote (only a canary whose
	// evidence does not lean towards worse; others are held). Default pause.
	// +optional
	DeadlineAction DeadlineAction `json:"deadlineAction,omitempty"`
	// MaxErrorRate fails the canary at once when its error rate is confidently
	// above it, whatever the stable does. Default "20%".
	// +kubebuilder:validation:Pattern=`^[0-9]+(\.[0-9]+)?%$`
	// +optional
	MaxErrorRate string `json:"maxErrorRate,omitempty"`
	// AcceptableErrorRate is low enough to pass whatever the stable does.
	// Default "1%".
	// +kubebuilder:validation:Pattern=`^[0-9]+(\.[0-9]+)?%$`
	// +optional
	AcceptableErrorRate string `json:"acceptableErrorRate,omitempty"`
	// FalseRollbackRate bounds the chance of rolling back a canary that is no
	// worse than the stable, over the whole release. Default "1%".
	// +kubebuilder:validation:Pattern=`^[0-9]+(\.[0-9]+)?%$`
	// +optional
	FalseRollbackRate string `json:"falseRollbackRate,omitempty"`
	// Latency compares the canary's latency with the stable's too. Default true.
	// +optional
	Latency *bool `json:"latency,omitempty"`
	// MetricSource overrides the controller's default metric source.
	// +optional
	MetricSource MetricSource `json:"metricSource,omitempty"`
	// Override is a manual decision that wins over the analysis: Pause holds the
	// weight, Abort rolls back to 0%, Promote goes to 100%. Remove it to resume.
	// +optional
	Override Override `json:"override,omitempty"`
	// RestartAt starts the analysis again from the first step when it is later
	// than the last conclusion (to retry a canary that was rolled back).
	// +optional
	RestartAt *metav1.Time `json:"restartAt,omitempty"`
}

// AutoResult is how an automated release ended.
type AutoResult string

const (
	// AutoPromoted: the canary serves all traffic.
	AutoPromoted AutoResult = "Promoted"
	// AutoRolledBack: the canary serves no traffic.
	AutoRolledBack AutoResult = "RolledBack"
)

// SampleCounts are what one side served during one step.
type SampleCounts struct {
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// Latency is the cumulative histogram, one count per AutoStatus.LatencyBounds.
	// +optional
	Latency []int64 `json:"latency,omitempty"`
}

// StepCounts are what stable and canary served during a finished step.
type StepCounts struct {
	Weight int32        `json:"weight"`
	Stable SampleCounts `json:"stable"`
	Canary SampleCounts `json:"canary"`
}

// AutoStatus is the state of an automated release.
type AutoStatus struct {
	// Canary is the canary Service this analysis is about.
	Canary string `json:"canary"`
	// Step is the index of the current step in the policy's steps.
	Step int32 `json:"step"`
	// Weight is the canary weight the automation serves.
	Weight int32 `json:"weight"`
	// StartedAt is when the analysis of this canary started.
	StartedAt metav1.Time `json:"startedAt"`
	// StepStartedAt is when the current step started (or resumed).
	StepStartedAt metav1.Time `json:"stepStartedAt"`
	// MeasuredAt is when Current was measured, to the microsecond (the time
	// under load adds up the intervals between measurements).
	// +optional
	MeasuredAt *metav1.MicroTime `json:"measuredAt,omitempty"`
	// StepUnderLoad is the time under load of the current step: the
	// intervals between measurements in which both versions served requests,
	// outside shared incidents.
	// +optional
	StepUnderLoad *metav1.Duration `json:"stepUnderLoad,omitempty"`
	// UnderLoad is the time under load of the whole analysis.
	// +optional
	UnderLoad *metav1.Duration `json:"underLoad,omitempty"`
	// IncidentSince is set while the stable fails as well (an incident on
	// both versions): the judgment waits, and only a canary worse than the
	// stable is rolled back.
	// +optional
	IncidentSince *metav1.Time `json:"incidentSince,omitempty"`
	// Held is set when the progress deadline passed and DeadlineAction held
	// the canary at its weight; the analysis goes on.
	// +optional
	Held bool `json:"held,omitempty"`
	// Forecast says, when the traffic is too low for a verdict before the
	// progress deadline, how long a verdict needs at this rate.
	// +optional
	Forecast string `json:"forecast,omitempty"`
	// Paused is set while an override holds the weight.
	// +optional
	Paused bool `json:"paused,omitempty"`
	// Result is set when the release ended.
	// +optional
	Result AutoResult `json:"result,omitempty"`
	// ConcludedAt is when Result was reached.
	// +optional
	ConcludedAt *metav1.Time `json:"concludedAt,omitempty"`
	// Verdict is the last judgment: Pass, Fail or Inconclusive.
	// +optional
	Verdict string `json:"verdict,omitempty"`
	// Reason is the last judgment's reason code.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Evidence explains the last judgment with counts, rates and bounds.
	// +optional
	Evidence string `json:"evidence,omitempty"`
	// LatencyBounds are the histogram bucket bounds (seconds) of the counts.
	// +optional
	LatencyBounds []string `json:"latencyBounds,omitempty"`
	// Steps holds the counts of the finished steps.
	// +optional
	Steps []StepCounts `json:"steps,omitempty"`
	// Current holds the counts of the current step, as last measured.
	// +optional
	Current *StepCounts `json:"current,omitempty"`
}
