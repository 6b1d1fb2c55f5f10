package controller

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// Names and labels of the controller's own metrics. MetricLabels lists them
// for dashboards' checks.
const (
	MetricCanaryWeight = "fledge_release_canary_weight"
	MetricPhase        = "fledge_release_phase"
	MetricDecisions    = "fledge_release_decisions_total"
)

var metricLabels = map[string][]string{
	MetricCanaryWeight: {"namespace", "release"},
	MetricPhase:        {"namespace", "release", "phase"},
	MetricDecisions:    {"namespace", "release", "reason"},
}

// MetricLabels returns the controller's metrics, each with its labels: the
// ones the collectors are built with.
func MetricLabels() map[string][]string {
	out := make(map[string][]string, len(metricLabels))
	for k, v := range metricLabels {
		out[k] = slices.Clone(v)
	}
	return out
}

// The controller's own metrics, served with controller-runtime's on --metrics-addr.
var (
	canaryWeight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricCanaryWeight,
		Help: "Canary weight (percent) the provider reports it serves, per Release.",
	}, metricLabels[MetricCanaryWeight])
	releasePhase = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricPhase,
		Help: "1 for the Release's current phase, 0 for the others.",
	}, metricLabels[MetricPhase])
	decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricDecisions,
		Help: "Decisions of automated releases, by reason (AnalysisStarted, StepUp, Promoted, RolledBack, Paused, Resumed).",
	}, metricLabels[MetricDecisions])
)

var phases = []fledgev1.Phase{fledgev1.PhaseStable, fledgev1.PhaseCanary, fledgev1.PhaseReleased, fledgev1.PhaseUnpublished,
	fledgev1.PhaseFailed, fledgev1.PhaseProgressing, fledgev1.PhasePaused, fledgev1.PhaseRolledBack}

func init() {
	metrics.Registry.MustRegister(canaryWeight, releasePhase, decisions)
}

func observeStatus(rel *fledgev1.Release, st *fledgev1.ReleaseStatus) {
	canaryWeight.WithLabelValues(rel.Namespace, rel.Name).Set(float64(st.EffectiveWeight))
	for _, p := range phases {
		v := 0.0
		if st.Phase == p {
			v = 1
		}
		releasePhase.WithLabelValues(rel.Namespace, rel.Name, string(p)).Set(v)
	}
}

// forgetMetrics drops a deleted Release's series, so memory stays bounded.
func forgetMetrics(rel *fledgev1.Release) {
	labels := prometheus.Labels{"namespace": rel.Namespace, "release": rel.Name}
	canaryWeight.DeletePartialMatch(labels)
	releasePhase.DeletePartialMatch(labels)
	decisions.DeletePartialMatch(labels)
}
