package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/analysis"
	"github.com/fledge-dev/fledge/internal/metricsource"
	"github.com/fledge-dev/fledge/internal/strategy"
)

// DefaultAnalysisInterval is how often a running automated release is judged.
const DefaultAnalysisInterval = time.Second

// measureAuto gathers, for plan, the counts of an automated Release's
// current step since it started, when strategy.Begin says there is a step to
// judge; nil otherwise (not automated, no stable or canary, an invalid
// policy: plan says why).
func (r *ReleaseReconciler) measureAuto(ctx context.Context, rel *fledgev1.Release, now time.Time) *measurement {
	spec := &rel.Spec
	if spec.Auto == nil || spec.Stable == nil || spec.Canary == nil {
		return nil
	}
	policy, err := strategy.PolicyFrom(spec.Auto)
	if err != nil {
		return nil
	}
	if err := r.sourceEnabled(policy.MetricSource); err != nil {
		return &measurement{unavailable: err}
	}
	st, measure, _ := strategy.Begin(policy, spec.Canary.Name, rel.Status.Auto, now)
	if !measure {
		return nil
	}
	w, err := r.measure(ctx, rel, policy, spec.Stable.Name, spec.Canary.Name, st.StepStartedAt.Time)
	return &measurement{window: w, err: err}
}

// autoRequeue is when to judge an automated release again: while it runs, at
// the analysis interval; 0 (only on changes) when it is concluded, paused or
// not automated.
func (r *ReleaseReconciler) autoRequeue(out *strategy.Outcome) time.Duration {
	if out == nil || out.State.Result != "" || out.State.Paused {
		return 0
	}
	return r.analysisInterval()
}

// sourceEnabled reports an error when the metric source a policy names (or
// the default) is not enabled in this controller: such a Release is not
// accepted, rather than started and judged inconclusive for ever.
func (r *ReleaseReconciler) sourceEnabled(name fledgev1.MetricSource) error {
	if name == "" {
		name = r.DefaultMetricSource
	}
	if _, ok := r.MetricSources[name]; !ok {
		return fmt.Errorf("spec.auto.metricSource %q is not enabled in this controller (start it with --metric-source=%s and its flags)", name, name)
	}
	return nil
}

func (r *ReleaseReconciler) measure(ctx context.Context, rel *fledgev1.Release, p strategy.Policy, stableSvc, canarySvc string, start time.Time) (*analysis.Window, error) {
	name := p.MetricSource
	if name == "" {
		name = r.DefaultMetricSource
	}
	src, ok := r.MetricSources[name]
	if !ok {
		return nil, fmt.Errorf("metric source %q is not enabled in this controller", name)
	}
	side := func(svc string) (analysis.Sample, error) {
		c, err := src.Since(ctx, metricsource.Backend{Namespace: rel.Namespace, App: rel.Name, Service: svc}, start)
		if err != nil {
			return analysis.Sample{}, fmt.Errorf("%s metrics of %s: %w", name, svc, err)
		}
		s := analysis.Sample{Requests: c.Requests, Errors: c.Errors}
		for _, b := range c.Latency {
			s.Latency.Bounds = append(s.Latency.Bounds, b.UpperBound)
			s.Latency.Counts = append(s.Latency.Counts, b.Count)
		}
		return s, nil
	}
	stable, err := side(stableSvc)
	if err != nil {
		return nil, err
	}
	canary, err := side(canarySvc)
	if errors.Is(err, metricsource.ErrNoData) {
		// No series yet: the canary has served nothing in this window.
		canary, err = analysis.Sample{}, nil
	}
	if err != nil {
		return nil, err
	}
	return &analysis.Window{Stable: stable, Canary: canary}, nil
}

func (r *ReleaseReconciler) now() time.Time {
	if r.Clock != nil {
		return r.Clock()
	}
	return time.Now()
}

func (r *ReleaseReconciler) analysisInterval() time.Duration {
	if r.AnalysisInterval > 0 {
		return r.AnalysisInterval
	}
	return DefaultAnalysisInterval
}

// applyAuto records the automation's state in the status: status.auto, the
// Analysis condition and the phase.
func applyAuto(st *fledgev1.ReleaseStatus, gen int64, out *strategy.Outcome) {
	if out == nil {
		st.Auto = nil
		meta.RemoveStatusCondition(&st.Conditions, fledgev1.ConditionAnalysis)
		return
	}
	a := out.State
	st.Auto = &a
	c := metav1.Condition{Type: fledgev1.ConditionAnalysis, ObservedGeneration: gen, Status: metav1.ConditionUnknown,
		Reason: "Started", Message: "the analysis has started"}
	if a.Verdict != "" {
		c.Reason, c.Message = a.Reason, a.Evidence
		switch analysis.Result(a.Verdict) {
		case analysis.Pass:
			c.Status = metav1.ConditionTrue
		case analysis.Fail:
			c.Status = metav1.ConditionFalse
		}
	}
	meta.SetStatusCondition(&st.Conditions, c)
	switch {
	case st.Phase == fledgev1.PhaseFailed || st.Phase == fledgev1.PhaseUnpublished:
	case a.Result == fledgev1.AutoRolledBack:
		st.Phase = fledgev1.PhaseRolledBack
	case a.Result == fledgev1.AutoPromoted:
		st.Phase = fledgev1.PhaseReleased
	case a.Paused || a.Held:
		st.Phase = fledgev1.PhasePaused
	default:
		st.Phase = fledgev1.PhaseProgressing
	}
}

// recordDecision announces an automation decision on the Release and on the
// canary Service.
func (r *ReleaseReconciler) recordDecision(rel *fledgev1.Release, canary *corev1.Service, out *strategy.Outcome) {
	if out == nil || out.Decision == nil {
		return
	}
	dec := out.Decision
	decisions.WithLabelValues(rel.Namespace, rel.Name, dec.Reason).Inc()
	typ := corev1.EventTypeNormal
	if dec.Warning {
		typ = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(rel, nil, typ, dec.Reason, "Analyze", "%s", dec.Message)
	if canary != nil {
		r.Recorder.Eventf(canary, rel, typ, dec.Reason, "Analyze", "%s", dec.Message)
	}
	r.notify(rel, canary, out)
}
