package controller

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/annotations"
	"github.com/fledge-dev/fledge/internal/notify"
	"github.com/fledge-dev/fledge/internal/strategy"
)

// ReasonNotificationFailed is the Warning Event of a decision that could not
// be delivered to a webhook (every attempt failed, or its Secret is unusable).
const ReasonNotificationFailed = "NotificationFailed"

// Keys of a notification Secret.
const (
	NotifySecretURL    = "url"
	NotifySecretFormat = "format"
)

// Notifications send the automation's decisions to webhooks.
type Notifications struct {
	// Sender delivers in the background (notify.Notifier).
	Sender interface {
		SendTo(notify.Notification, notify.Resolver)
	}
	// Secrets reads the webhooks' Secrets, uncached: the controller may get
	// a Secret by name only where a Role grants it, never list or watch them.
	Secrets client.Reader
	// Defaults are Secrets told of every application's decisions.
	Defaults []types.NamespacedName
}

// notify sends dec about rel to the webhooks of its fledge.dev/notify
// annotation (on the Release, else its canary Service) and the defaults. It
// returns at once: the Secrets are read and the webhooks posted to by the
// Sender's workers.
func (r *ReleaseReconciler) notify(rel *fledgev1.Release, canary *corev1.Service, out *strategy.Outcome) {
	n := r.Notify
	if n == nil || n.Sender == nil || out == nil || out.Decision == nil {
		return
	}
	from := rel.Status.EffectiveWeight
	if a := rel.Status.Auto; a != nil {
		from = a.Weight
	}
	note := notify.Notification{
		App: rel.Name, Namespace: rel.Namespace, Decision: out.Decision.Reason, Warning: out.Decision.Warning,
		FromWeight: from, ToWeight: out.State.Weight, Verdict: out.State.Verdict, Reason: out.State.Reason,
		Message: out.Decision.Message, Time: r.now(),
		Ref: &fledgev1.Release{TypeMeta: rel.TypeMeta, ObjectMeta: *rel.ObjectMeta.DeepCopy()},
	}
	counts := out.State.Current
	if counts == nil && len(out.State.Steps) > 0 && out.Decision.Reason != strategy.ReasonStarted {
		counts = &out.State.Steps[len(out.State.Steps)-1]
	}
	if counts != nil {
		note.Stable = &notify.Counts{Requests: counts.Stable.Requests, Errors: counts.Stable.Errors}
		note.Canary = &notify.Counts{Requests: counts.Canary.Requests, Errors: counts.Canary.Errors}
	}
	r.send(rel, canary, note)
}

// ReasonFailed is the decision of a notification sent when a Release's phase
// becomes Failed (its provider could not apply the routing).
const ReasonFailed = "Failed"

// notifyFailed tells the webhooks that rel's routing failed (phase Failed).
func (r *ReleaseReconciler) notifyFailed(rel *fledgev1.Release, canary *corev1.Service, st *fledgev1.ReleaseStatus) {
	if r.Notify == nil || r.Notify.Sender == nil {
		return
	}
	msg := "the routing could not be applied"
	if c := meta.FindStatusCondition(st.Conditions, fledgev1.ConditionRouted); c != nil && c.Message != "" {
		msg = c.Message
	}
	r.send(rel, canary, notify.Notification{App: rel.Name, Namespace: rel.Namespace, Decision: ReasonFailed, Warning: true,
		FromWeight: rel.Status.EffectiveWeight, ToWeight: st.EffectiveWeight, Message: msg, Time: r.now(),
		Ref: &fledgev1.Release{TypeMeta: rel.TypeMeta, ObjectMeta: *rel.ObjectMeta.DeepCopy()}})
}

// send queues note for the webhooks of rel's fledge.dev/notify annotation
// (on the Release, else its canary Service) and the defaults.
func (r *ReleaseReconciler) send(rel *fledgev1.Release, canary *corev1.Service, note notify.Notification) {
	n := r.Notify
	annotation, where := rel.Annotations[annotations.Notify], "Release "+rel.Namespace+"/"+rel.Name
	if _, ok := rel.Annotations[annotations.Notify]; !ok && canary != nil {
		annotation, where = canary.Annotations[annotations.Notify], "Service "+canary.Namespace+"/"+canary.Name
	}
	var refs []types.NamespacedName
	var problems []notify.TargetError
	if strings.TrimSpace(annotation) != "" {
		names, err := annotations.ParseNotify(annotation)
		if err != nil {
			problems = append(problems, notify.TargetError{Target: notify.Target{Name: "annotation " + annotations.Notify + " of " + where},
				Err: fmt.Errorf("%w (nothing was sent to its webhooks)", err)})
		}
		for _, name := range names {
			refs = append(refs, types.NamespacedName{Namespace: rel.Namespace, Name: name})
		}
	}
	refs = append(refs, n.Defaults...)
	if len(refs) == 0 && len(problems) == 0 {
		return
	}
	n.Sender.SendTo(note, func(ctx context.Context) ([]notify.Target, []notify.TargetError) {
		targets, errs := n.Targets(ctx, refs)
		return targets, append(problems, errs...)
	})
}

// Targets reads the webhooks of the Secrets refs.
func (n *Notifications) Targets(ctx context.Context, refs []types.NamespacedName) ([]notify.Target, []notify.TargetError) {
	var targets []notify.Target
	var errs []notify.TargetError
	for _, ref := range refs {
		t := notify.Target{Name: "Secret " + ref.String(), Secret: &ref}
		var s corev1.Secret
		if err := n.Secrets.Get(ctx, ref, &s); err != nil {
			if apierrors.IsForbidden(err) {
				err = fmt.Errorf("%w; grant the ServiceAccount fledge-controller get on it in %s with a Role (deploy/examples/notify-rbac.yaml)", err, ref.Namespace)
			}
			errs = append(errs, notify.TargetError{Target: t, Err: fmt.Errorf("reading it: %w", err)})
			continue
		}
		t.URL = strings.TrimSpace(string(s.Data[NotifySecretURL]))
		if t.URL == "" {
			errs = append(errs, notify.TargetError{Target: t, Err: fmt.Errorf("it has no key %q (the webhook's URL)", NotifySecretURL)})
			continue
		}
		f, err := notify.ParseFormat(string(s.Data[NotifySecretFormat]))
		if err != nil {
			errs = append(errs, notify.TargetError{Target: t, Err: fmt.Errorf("key %q: %w", NotifySecretFormat, err)})
			continue
		}
		t.Format = f
		targets = append(targets, t)
	}
	return targets, errs
}
