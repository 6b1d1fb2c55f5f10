// Package ctl implements fledge's command-line interface to Releases: list
// them (get), show one's status and evidence, watch it live, and the manual
// decisions (promote, abort, pause, resume, restart, set-weight) that always
// win over the automation. Errors carry the exit code the CLI ends with
// (ExitCode).
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
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// getRelease reads Release namespace/app; an error says whether the
// application or its namespace does not exist, or which permission is missing.
func getRelease(ctx context.Context, c client.Client, namespace, app string) (*fledgev1.Release, error) {
	var rel fledgev1.Release
	err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: app}, &rel)
	if err == nil {
		return &rel, nil
	}
	what := fmt.Sprintf("application %s in namespace %s", app, namespace)
	if !apierrors.IsNotFound(err) {
		return nil, apiError(err, "get", "releases.fledge.dev", namespace, what)
	}
	var ns corev1.Namespace
	if nerr := c.Get(ctx, client.ObjectKey{Name: namespace}, &ns); apierrors.IsNotFound(nerr) {
		return nil, Exit(ExitNotFound, fmt.Errorf("namespace %s not found (kubectl get namespaces lists them)", namespace))
	}
	return nil, Exit(ExitNotFound, fmt.Errorf("no application %s in namespace %s (fledge get -n %s lists them): %w", app, namespace, namespace, err))
}

// patch writes a change, explaining a refusal.
func patch(ctx context.Context, c client.Client, obj client.Object, p client.Patch, resource string) error {
	if err := c.Patch(ctx, obj, p); err != nil {
		return apiError(err, "patch", resource, obj.GetNamespace(), fmt.Sprintf("%s %s/%s", resource, obj.GetNamespace(), obj.GetName()))
	}
	return nil
}

// Do applies an action to Release namespace/app at time now.
func Do(ctx context.Context, c client.Client, namespace, app string, a Action, now time.Time) error {
	rel, err := getRelease(ctx, c, namespace, app)
	if err != nil {
		return err
	}
	if rel.Spec.Auto == nil {
		return Exit(ExitRefused, fmt.Errorf("release %s/%s: %w (set %s=true on its canary Service, or spec.auto)", namespace, app, ErrNotAutomated, annotations.Auto))
	}
	if rel.Labels[controller.LabelSource] == controller.SourceAnnotations {
		if rel.Spec.Canary == nil {
			return fmt.Errorf("release %s/%s has no canary", namespace, app)
		}
		svc, err := canaryService(ctx, c, rel)
		if err != nil {
			return err
		}
		p := client.MergeFrom(svc.DeepCopy())
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
		return patch(ctx, c, svc, p, "services")
	}
	p := client.MergeFrom(rel.DeepCopy())
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
	return patch(ctx, c, rel, p, "releases.fledge.dev")
}

// canaryService reads the canary Service of a Release made from annotations.
func canaryService(ctx context.Context, c client.Client, rel *fledgev1.Release) (*corev1.Service, error) {
	if rel.Spec.Canary == nil {
		return nil, Exit(ExitRefused, fmt.Errorf("release %s/%s has no canary", rel.Namespace, rel.Name))
	}
	var svc corev1.Service
	if err := c.Get(ctx, client.ObjectKey{Namespace: rel.Namespace, Name: rel.Spec.Canary.Name}, &svc); err != nil {
		return nil, apiError(err, "get", "services", rel.Namespace, fmt.Sprintf("canary service %s/%s", rel.Namespace, rel.Spec.Canary.Name))
	}
	if svc.Annotations == nil {
		svc.Annotations = map[string]string{}
	}
	return &svc, nil
}

// ErrAutomated is returned by SetWeight without force on an automated Release.
var ErrAutomated = errors.New("the release is automated")

// SetWeight sends weight percent of Release namespace/app's traffic to its
// canary. While automation is on, the automation decides the weight (a pause
// holds the automation's weight), so a manual weight is refused unless force,
// which turns the automation off first: for a Release made from annotations it
// removes the canary Service's fledge.dev/auto* annotations, for a Release
// written by hand spec.auto. It returns what it did, for a person.
func SetWeight(ctx context.Context, c client.Client, namespace, app string, weight int32, force bool) (string, error) {
	if weight < 0 || weight > 100 {
		return "", Exit(ExitUsage, fmt.Errorf("weight %d: want an integer from 0 to 100", weight))
	}
	rel, err := getRelease(ctx, c, namespace, app)
	if err != nil {
		return "", err
	}
	did := fmt.Sprintf("%s: canary weight set to %d%%", app, weight)
	if rel.Spec.Auto != nil {
		if !force {
			return "", Exit(ExitRefused, fmt.Errorf("release %s/%s: %w (%s): the automation sets its weight; "+
				"use promote, abort or pause, or --force to turn the automation off and set %d%%", namespace, app, ErrAutomated, autoState(rel), weight))
		}
		did += fmt.Sprintf(" and automation turned off (it was %s; turn it on again with fledge.dev/auto=true, the analysis then starts over)", autoState(rel))
	}
	if rel.Labels[controller.LabelSource] == controller.SourceAnnotations {
		svc, err := canaryService(ctx, c, rel)
		if err != nil {
			return "", err
		}
		p := client.MergeFrom(svc.DeepCopy())
		svc.Annotations[annotations.CanaryPercentage] = strconv.Itoa(int(weight))
		if force {
			for _, k := range []string{annotations.Auto, annotations.AutoPolicy, annotations.AutoOverride, annotations.AutoRestart} {
				delete(svc.Annotations, k)
			}
		}
		return did, patch(ctx, c, svc, p, "services")
	}
	p := client.MergeFrom(rel.DeepCopy())
	rel.Spec.CanaryWeight = weight
	if force {
		rel.Spec.Auto = nil
	}
	return did, patch(ctx, c, rel, p, "releases.fledge.dev")
}

// autoState says where an automated release is, for a person.
func autoState(rel *fledgev1.Release) string {
	a := rel.Status.Auto
	switch {
	case a == nil:
		return "automation starting"
	case a.Result != "":
		return fmt.Sprintf("automation concluded %s at %d%%", a.Result, a.Weight)
	case a.Paused:
		return fmt.Sprintf("automation paused at step %d, %d%%", a.Step+1, a.Weight)
	}
	return fmt.Sprintf("automation running at step %d, %d%%", a.Step+1, a.Weight)
}

// Status writes a Release's state and its last evidence for a person.
func Status(ctx context.Context, c client.Client, namespace, app string, w io.Writer) error {
	rel, err := getRelease(ctx, c, namespace, app)
	if err != nil {
		return err
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
