package controller

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

func TestReleaseMetrics(t *testing.T) {
	rel := &fledgev1.Release{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app"}}
	observeStatus(rel, &fledgev1.ReleaseStatus{Phase: fledgev1.PhaseCanary, EffectiveWeight: 25})
	if got := testutil.ToFloat64(canaryWeight.WithLabelValues("ns", "app")); got != 25 {
		t.Errorf("canary weight = %v, want 25", got)
	}
	if got := testutil.ToFloat64(releasePhase.WithLabelValues("ns", "app", "Canary")); got != 1 {
		t.Errorf("phase Canary = %v, want 1", got)
	}
	if got := testutil.ToFloat64(releasePhase.WithLabelValues("ns", "app", "Stable")); got != 0 {
		t.Errorf("phase Stable = %v, want 0", got)
	}
	forgetMetrics(rel)
	if n := testutil.CollectAndCount(canaryWeight); n != 0 {
		t.Errorf("%d canary weight series left after the Release was forgotten", n)
	}
}
