// Package ctl implements fledge's command-line actions on a Release: show its
// status and evidence, and the manual overrides (promote, abort, pause, resume,
// restart) that always win over the automation.
//
// For a Release made from Service annotations, an action writes the canary
// Service's annotations (the source of truth of such a Release); for a Release
// written by hand, it patches spec.auto.
package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/annotations"
	"github.com/fledge-dev/fledge/internal/controller"
)

// Action is a manual decision.
type Action string

const (
	Promote Action = "promote"
	Abort   Action = "abort"
	Pause   Action = "pause"
	Resume  Action = "resume"
	Restart Action = "restart"
)

var overrides = map[Action]fledgev1.Override{Promote: fledgev1.OverridePromote, Abort: fledgev1.OverrideAbort, Pause: fledgev1.OverridePause}

// ErrNotAutomated is returned for actions on a Release without automation.
var ErrNotAutomated = errors.New("the release is not automated")

// Do applies an action to Release namespace/app at time now.
func Do(ctx context.Context, c client.Client, namespace, app string, a Action, now time.Time) error {
	var rel fledgev1.Release
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: app}, &rel); err != nil {
		return fmt.Errorf("release %s/%s: %w", namespace, app, err)
	}
	if rel.Spec.Auto == nil {
		return fmt.Errorf("release %s/%s: %w (set %s=true on its canary Service, or spec.auto)", namespace, app, ErrNotAutomated, annotations.Auto)
	}
	if rel.Labels[controller.LabelSource] == controller.SourceAnnotations {
		if rel.Spec.Canary == nil {
			return fmt.Errorf("release %s/%s has no canary", namespace, app)
		}
		var svc corev1.Service
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: rel.Spec.Canary.Name}, &svc); err != nil {
			return fmt.Errorf("canary service %s/%s: %w", namespace, rel.Spec.Canary.Name, err)
		}
		patch := client.MergeFrom(svc.DeepCopy())
		if svc.Annotations == nil {
			svc.Annotations = map[string]string{}
		}
		switch a {
		case Resume:
			delete(svc.Annotations, annotations.AutoOverride)
		case Restart:
			delete(svc.Annotations, annotations.AutoOverride)
			svc.Annotations[annotations.AutoRestart] = now.UTC().Format(time.RFC3339)
		default:
			svc.Annotations[annotations.AutoOverride] = string(a)
		}
		return c.Patch(ctx, &svc, patch)
	}
	patch := client.MergeFrom(rel.DeepCopy())
	switch a {
	case Resume:
		rel.Spec.Auto.Override = ""
	case Restart:
		rel.Spec.Auto.Override = ""
		rel.Spec.Auto.RestartAt = &metav1.Time{Time: now.UTC().Truncate(time.Second)}
	default:
		o, ok := overrides[a]
		if !ok {
			return fmt.Errorf("unknown action %q", a)
		}
		rel.Spec.Auto.Override = o
	}
	return c.Patch(ctx, &rel, patch)
}

// Status writes a Release's state and its last evidence for a person.
func Status(ctx context.Context, c client.Client, namespace, app string, w io.Writer) error {
	var rel fledgev1.Release
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: app}, &rel); err != nil {
		return fmt.Errorf("release %s/%s: %w", namespace, app, err)
	}
	st := rel.Status
	fmt.Fprintf(w, "Release %s/%s (host %s, provider %s)\n", namespace, app, st.Host, st.Provider)
	fmt.Fprintf(w, "  phase:   %s\n", st.Phase)
	fmt.Fprintf(w, "  stable:  %s\n", orNone(st.Stable))
	fmt.Fprintf(w, "  canary:  %s at %d%% (desired %d%%)\n", orNone(st.Canary), st.EffectiveWeight, st.DesiredWeight)
	if a := st.Auto; a != nil {
		fmt.Fprintf(w, "  auto:    step %d, weight %d%%", a.Step+1, a.Weight)
		if a.Paused {
			fmt.Fprint(w, ", paused")
		}
		if a.Result != "" {
			fmt.Fprintf(w, ", %s", a.Result)
		}
		fmt.Fprintln(w)
		if a.Evidence != "" {
			fmt.Fprintf(w, "  verdict: %s (%s): %s\n", a.Verdict, a.Reason, a.Evidence)
		}
	}
	for _, ct := range []string{fledgev1.ConditionAccepted, fledgev1.ConditionRouted, fledgev1.ConditionAnalysis} {
		if cond := meta.FindStatusCondition(st.Conditions, ct); cond != nil {
			fmt.Fprintf(w, "  %-9s %s %s: %s\n", cond.Type+":", cond.Status, cond.Reason, strings.TrimSpace(cond.Message))
		}
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
