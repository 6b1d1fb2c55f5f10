// Package controller holds fledge's reconciler: it turns Services' annotations
// into Releases and Releases into routing, through a traffic.Router.
package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/annotations"
	"github.com/fledge-dev/fledge/internal/metricsource"
	"github.com/fledge-dev/fledge/internal/traffic"
)

const (
	// Finalizer lets fledge remove an application's routing before its Release goes.
	Finalizer = "fledge.dev/cleanup"
	// LabelSource marks Releases that fledge made from Service annotations.
	LabelSource = "fledge.dev/source"
	// SourceAnnotations is the LabelSource value of annotation-made Releases.
	SourceAnnotations = "annotations"

	// Event reasons.
	ReasonInvalidAnnotation = "InvalidAnnotation"
	ReasonInvalidSpec       = "InvalidSpec"
	ReasonUnpublished       = "Unpublished"
	ReasonRouted            = "Routed"
	ReasonRouteFailed       = "RouteFailed"
	ReasonNotManaged        = "ReleaseNotManaged"
	ReasonCleanedUp         = "CleanedUp"

	// verifyDelay is how soon a route whose read-back differs is checked again.
	verifyDelay = time.Second
	// propagationDelay is how soon a route that some gateway replicas do not
	// serve yet is checked again; conflictDelay, one whose host another
	// application holds (it may let go); unverifiedDelay, one that no gateway
	// replica could confirm (one may become ready).
	propagationDelay = 500 * time.Millisecond
	conflictDelay    = 10 * time.Second
	unverifiedDelay  = 30 * time.Second
	// implementationDelay is how often a route of the Gateway API provider
	// is read again: its implementation reports in the HTTPRoute's
	// status.parents, which fledge does not watch.
	implementationDelay = 30 * time.Second
)

// ReleaseReconciler reconciles one application at a time, keyed by the Release's
// namespace and name (the application's name).
type ReleaseReconciler struct {
	Client   client.Client
	Recorder recorder.EventRecorder
	// Routers says which router serves a Release; DefaultProvider is used
	// when a Release names none.
	Routers         Resolver
	DefaultProvider fledgev1.Provider
	// MetricSources by name; DefaultMetricSource is used when a policy names none.
	MetricSources       map[fledgev1.MetricSource]metricsource.Source
	DefaultMetricSource fledgev1.MetricSource
	// AnalysisInterval is how often running automated releases are judged.
	AnalysisInterval time.Duration
	// Clock returns the time; time.Now when nil.
	Clock func() time.Time
	// Workers is how many Releases are reconciled at once (default 1).
	Workers int
	// GatewayReplicas lists the /routes URLs of the ready gateway replicas:
	// the embedded provider's Routed and effectiveWeight are then what they
	// serve. Nil: the TrafficRoute's read-back alone.
	GatewayReplicas metricsource.Targets
	// Notify, when set, sends the automation's decisions to webhooks.
	Notify *Notifications

	skipNameValidation bool
	replicasOnce       sync.Once
	replicas           *gatewayReplicas
}

// SetupWithManager registers the reconciler: it watches Releases, Services (by
// their published-service annotation) and TrafficRoutes (to heal changes).
func (r *ReleaseReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	// ctx bounds the API discovery the indexes need: it may wait for an API
	// server that is down (package apiwait) only as long as the controller runs.
	if err := addIndexes(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("release").
		WithOptions(controller.Options{SkipNameValidation: &r.skipNameValidation, MaxConcurrentReconciles: r.Workers}).
		For(&fledgev1.Release{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{},
			predicate.LabelChangedPredicate{}, deletionPredicate()))).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.releasesForService)).
		Watches(&fledgev1.TrafficRoute{}, handler.EnqueueRequestsFromMapFunc(sameName)).
		// Providers that copy endpoints (Resolver.FollowsEndpoints) follow
		// EndpointSlices; the mapping needs only their labels, so only
		// metadata is cached.
		Watches(&discoveryv1.EndpointSlice{}, handler.EnqueueRequestsFromMapFunc(r.releasesForEndpointSlice), builder.OnlyMetadata).
		Complete(r)
}

func deletionPredicate() predicate.Funcs {
	return predicate.NewPredicateFuncs(func(o client.Object) bool { return !o.GetDeletionTimestamp().IsZero() })
}

func sameName(_ context.Context, o client.Object) []reconcile.Request {
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}}}
}

// releasesForService maps a Service to the application it publishes and to
// every Release of its namespace that may have used it (its annotation may
// have just changed or gone).
func (r *ReleaseReconciler) releasesForService(ctx context.Context, o client.Object) []reconcile.Request {
	svc, ok := o.(*corev1.Service)
	if !ok {
		return nil
	}
	var reqs []reconcile.Request
	if app := annotations.App(svc); app != "" {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: svc.Namespace, Name: app}})
	} else if _, ok := svc.Annotations[annotations.PublishedService]; ok {
		// No application can be reconciled under an empty name: say so on
		// the Service (identical Events are merged into one series).
		r.Recorder.Eventf(svc, nil, corev1.EventTypeWarning, ReasonInvalidAnnotation, "Validate",
			"annotation %s=%q: %v: want an application name (a DNS name); nothing was published",
			annotations.PublishedService, "", annotations.ErrInvalidAppName)
	}
	rels, err := r.releasesNaming(ctx, svc.Namespace, svc.Name)
	if err != nil {
		log.FromContext(ctx).Error(err, "listing releases for service", "service", klog.KObj(svc))
		return reqs
	}
	for i := range rels {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&rels[i])})
	}
	return reqs
}

func (r *ReleaseReconciler) releasesForEndpointSlice(ctx context.Context, o client.Object) []reconcile.Request {
	svc := o.GetLabels()[discoveryv1.LabelServiceName]
	if svc == "" {
		return nil
	}
	rels, err := r.releasesNaming(ctx, o.GetNamespace(), svc)
	if err != nil {
		log.FromContext(ctx).Error(err, "listing releases for endpointslice", "endpointslice", klog.KObj(o))
		return nil
	}
	var reqs []reconcile.Request
	for i := range rels {
		rel := &rels[i]
		if r.Routers.FollowsEndpoints(rel.Status.Provider) && (rel.Status.Stable == svc || rel.Status.Canary == svc) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(rel)})
		}
	}
	return reqs
}

// Reconcile gathers the application's Services and Release, decides its routing
// (plan), applies it through the provider, reads it back and writes the status
// once.
func (r *ReleaseReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	logger := log.FromContext(ctx)
	rel := &fledgev1.Release{}
	exists := true
	if err := r.Client.Get(ctx, req.NamespacedName, rel); err != nil {
		if !apierrors.IsNotFound(err) {
			return reconcile.Result{}, err
		}
		exists = false
		rel = &fledgev1.Release{ObjectMeta: metav1.ObjectMeta{Namespace: req.Namespace, Name: req.Name}}
	}
	if exists && !rel.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, r.finalize(ctx, rel)
	}

	// The Services that publish the application, then (below, once the spec
	// is synced) those its spec names: by name.
	published, err := r.publishedServices(ctx, req.Namespace, req.Name)
	if err != nil {
		return reconcile.Result{}, err
	}
	services := make(map[string]*corev1.Service, len(published)+2)
	for i := range published {
		services[published[i].Name] = &published[i]
	}

	// Annotations -> Release spec.
	managed := !exists || rel.Labels[LabelSource] == SourceAnnotations
	var inputProblems []annotations.Problem
	switch {
	case managed && len(published) == 0:
		if exists {
			logger.Info("no Service publishes the application any more; deleting its Release", "release", klog.KObj(rel))
			if err := r.Client.Delete(ctx, rel); err != nil && !apierrors.IsNotFound(err) {
				return reconcile.Result{}, fmt.Errorf("deleting release %s: %w", klog.KObj(rel), err)
			}
		}
		return reconcile.Result{}, nil
	case managed:
		spec, problems := annotations.Translate(req.Name, published)
		if !exists && slices.ContainsFunc(problems, func(p annotations.Problem) bool { return errors.Is(p, annotations.ErrInvalidAppName) }) {
			// No Release can carry this name: say so on the Services only.
			for _, p := range problems {
				if svc, ok := services[p.Service]; ok {
					r.Recorder.Eventf(svc, nil, corev1.EventTypeWarning, ReasonInvalidAnnotation, "Validate", "%s; nothing was published", p.Error())
				}
			}
			return reconcile.Result{}, nil
		}
		inputProblems = problems
		if err := r.syncSpec(ctx, rel, exists, spec, len(problems) == 0); err != nil {
			return reconcile.Result{}, err
		}
	case len(published) > 0:
		for i := range published {
			inputProblems = append(inputProblems, annotations.Problem{Service: published[i].Name, Annotation: annotations.PublishedService,
				Value: req.Name, Err: fmt.Errorf("release %s exists and was not made from annotations: edit the Release instead", klog.KObj(rel))})
		}
	}
	if !controllerutil.ContainsFinalizer(rel, Finalizer) {
		controllerutil.AddFinalizer(rel, Finalizer)
		if err := r.Client.Update(ctx, rel); err != nil {
			return reconcile.Result{}, fmt.Errorf("adding finalizer to release %s: %w", klog.KObj(rel), err)
		}
	}

	if err := r.addSpecServices(ctx, rel, services); err != nil {
		return reconcile.Result{}, err
	}

	// Measure (automated releases), plan, act, observe.
	now := r.now()
	want := plan(rel, services, r.measureAuto(ctx, rel, now), now)
	provider := rel.Spec.Provider
	if provider == "" {
		provider = r.DefaultProvider
	}
	if want.route != nil && want.route.TLSSecret != "" && provider != fledgev1.ProviderEmbedded {
		// spec.tls is the embedded gateway's: APISIX and Gateway API
		// gateways terminate TLS by their own configuration.
		rt := *want.route
		rt.TLSSecret = ""
		want.route = &rt
	}
	router, routerErr := r.routerFor(rel, provider)
	var observed *traffic.Route
	if routerErr == nil && !want.hold {
		if want.route != nil {
			routerErr = router.Ensure(ctx, *want.route)
		} else {
			routerErr = router.Remove(ctx, traffic.Key{Namespace: rel.Namespace, App: rel.Name})
		}
	}
	if prev := rel.Status.Provider; routerErr == nil && !want.hold && prev != "" && prev != provider {
		// The application moved to another provider: the old one serves it no more.
		if old, err := r.routerFor(rel, prev); err == nil {
			if err := old.Remove(ctx, traffic.Key{Namespace: rel.Namespace, App: rel.Name}); err != nil {
				routerErr = fmt.Errorf("removing the routing from the previous provider %s: %w", prev, err)
			}
		}
	}
	if routerErr == nil {
		got, err := router.Observe(ctx, traffic.Key{Namespace: rel.Namespace, App: rel.Name})
		switch {
		case err == nil:
			observed = &got
		case !errors.Is(err, traffic.ErrNotFound):
			routerErr = err
		}
	}

	var replicas *replicaView
	if routerErr == nil && observed != nil && provider == fledgev1.ProviderEmbedded && r.GatewayReplicas != nil &&
		(want.hold || want.route == nil || traffic.Same(*want.route, *observed)) {
		replicas = r.servedByReplicas(ctx, *observed)
	}

	old := rel.Status.DeepCopy()
	status := nextStatus(rel, provider, inputProblems, want, observed, routerErr, replicas)
	r.recordEvents(rel, services, old, &status, inputProblems, want)
	if old.Phase != fledgev1.PhaseFailed && status.Phase == fledgev1.PhaseFailed && rel.Spec.Canary != nil {
		r.notifyFailed(rel, services[rel.Spec.Canary.Name], &status)
	}
	if routerErr == nil && want.route != nil && want.route.Canary != nil {
		r.recordDecision(rel, services[want.route.Canary.Service], want.auto)
	}
	observeStatus(rel, &status)
	if !equality.Semantic.DeepEqual(*old, status) {
		// The controller owns the whole status: a merge patch without a
		// resourceVersion precondition cannot lose anyone else's change.
		patch := client.MergeFrom(rel.DeepCopy())
		rel.Status = status
		if err := r.Client.Status().Patch(ctx, rel, patch); err != nil {
			return reconcile.Result{}, fmt.Errorf("updating status of release %s: %w", klog.KObj(rel), err)
		}
	}
	if routerErr != nil {
		return reconcile.Result{}, routerErr
	}
	after := r.autoRequeue(want.auto)
	if c := meta.FindStatusCondition(status.Conditions, fledgev1.ConditionRouted); c != nil {
		check := time.Duration(0)
		switch {
		case c.Reason == fledgev1.ReasonRouteMismatch:
			check = verifyDelay
		case c.Reason == ReasonPropagating:
			check = propagationDelay
		case c.Reason == ReasonHostConflict || c.Reason == ReasonRouteRejected:
			check = conflictDelay
		case replicas != nil && replicas.answered == 0:
			check = unverifiedDelay
		case provider == fledgev1.ProviderGatewayAPI && c.Status == metav1.ConditionTrue:
			check = implementationDelay
		}
		if check > 0 && (after == 0 || check < after) {
			after = check
		}
	}
	return reconcile.Result{RequeueAfter: after}, nil
}

// servedByReplicas asks the ready gateway replicas what they serve for the
// route (a recent answer if it confirms the route, else a fresh one) and
// judges it.
func (r *ReleaseReconciler) servedByReplicas(ctx context.Context, route traffic.Route) *replicaView {
	r.replicasOnce.Do(func() { r.replicas = newGatewayReplicas(r.GatewayReplicas) })
	var v replicaView
	for _, fresh := range []bool{false, true} {
		answers, err := r.replicas.answers(ctx, fresh)
		if err != nil {
			log.FromContext(ctx).Error(err, "asking the gateway replicas what they serve")
			return &replicaView{listFailed: true}
		}
		if v = judgeReplicas(route.Key, route, answers); v.agree == v.answered {
			break
		}
	}
	if v.unreachable != nil {
		log.FromContext(ctx).V(1).Info("a gateway replica did not say what it serves", "error", v.unreachable.Error())
	}
	return &v
}

// routerFor returns the router of provider p for a Release.
func (r *ReleaseReconciler) routerFor(rel *fledgev1.Release, p fledgev1.Provider) (traffic.Router, error) {
	return r.Routers.Router(p, &rel.Spec)
}

// syncSpec creates the annotation-made Release, or updates its spec when the
// annotations are valid and say something new. Invalid annotations leave an
// existing spec (and so the traffic) as it was.
func (r *ReleaseReconciler) syncSpec(ctx context.Context, rel *fledgev1.Release, exists bool, spec fledgev1.ReleaseSpec, valid bool) error {
	if !exists {
		rel.Labels = map[string]string{LabelSource: SourceAnnotations}
		controllerutil.AddFinalizer(rel, Finalizer)
		if valid {
			rel.Spec = spec
		}
		if err := r.Client.Create(ctx, rel); err != nil {
			return fmt.Errorf("creating release %s: %w", klog.KObj(rel), err)
		}
		return nil
	}
	// The annotations are the source of truth of an annotation-made Release.
	want := spec
	if !valid || equality.Semantic.DeepEqual(rel.Spec, want) {
		return nil
	}
	rel.Spec = want
	if err := r.Client.Update(ctx, rel); err != nil {
		return fmt.Errorf("updating release %s: %w", klog.KObj(rel), err)
	}
	return nil
}

// finalize removes the application's routing, then the finalizer.
func (r *ReleaseReconciler) finalize(ctx context.Context, rel *fledgev1.Release) error {
	if !controllerutil.ContainsFinalizer(rel, Finalizer) {
		return nil
	}
	key := traffic.Key{Namespace: rel.Namespace, App: rel.Name}
	provider := rel.Status.Provider
	if provider == "" {
		provider = r.DefaultProvider
	}
	router, err := r.routerFor(rel, provider)
	if err != nil {
		return err
	}
	if err := router.Remove(ctx, key); err != nil {
		r.Recorder.Eventf(rel, nil, corev1.EventTypeWarning, ReasonRouteFailed, "Cleanup", "removing routing from %s: %v", provider, err)
		return err
	}
	r.Recorder.Eventf(rel, nil, corev1.EventTypeNormal, ReasonCleanedUp, "Cleanup", "removed the routing of %s from %s", rel.Name, provider)
	controllerutil.RemoveFinalizer(rel, Finalizer)
	if err := r.Client.Update(ctx, rel); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing finalizer from release %s: %w", klog.KObj(rel), err)
	}
	forgetMetrics(rel)
	return nil
}

// nextStatus computes the Release's status from the plan and what the
// provider did and serves; pure.
//
// replicas, when not nil, is what the gateway replicas serve of observed
// (embedded provider): Routed is True only when every replica that answered
// serves it; when none answered, Routed is the read-back of observed, and
// says it was not verified.
func nextStatus(rel *fledgev1.Release, provider fledgev1.Provider, inputProblems []annotations.Problem,
	want routingPlan, observed *traffic.Route, routerErr error, replicas *replicaView) fledgev1.ReleaseStatus {
	st := *rel.Status.DeepCopy()
	st.ObservedGeneration = rel.Generation
	st.Provider = provider
	st.Host = rel.Spec.Host
	if st.Host == "" {
		st.Host = rel.Name
	}
	gen := rel.Generation

	accepted := metav1.Condition{Type: fledgev1.ConditionAccepted, Status: metav1.ConditionTrue, Reason: fledgev1.ReasonValid,
		Message: "the input is valid", ObservedGeneration: gen}
	var msgs []string
	for _, p := range inputProblems {
		msgs = append(msgs, p.Error())
	}
	if want.hold {
		msgs = append(msgs, want.problems...)
	}
	if len(msgs) > 0 {
		accepted.Status, accepted.Reason = metav1.ConditionFalse, fledgev1.ReasonInvalidInput
		accepted.Message = strings.Join(msgs, "; ") + "; the routing was left as it was"
	}
	meta.SetStatusCondition(&st.Conditions, accepted)

	if !want.hold {
		st.Stable, st.Canary, st.DesiredWeight = "", "", 0
		switch {
		case want.canaryOnly:
			st.Canary, st.DesiredWeight = want.route.Stable.Service, 100
		case want.route != nil:
			st.Stable = want.route.Stable.Service
			if want.route.Canary != nil {
				st.Canary = want.route.Canary.Service
				st.DesiredWeight = want.route.CanaryWeight
			}
		}
	}
	routed := metav1.Condition{Type: fledgev1.ConditionRouted, ObservedGeneration: gen}
	switch {
	case routerErr != nil:
		routed.Status, routed.Reason, routed.Message = metav1.ConditionFalse, fledgev1.ReasonRouteFailed, routerErr.Error()
	case observed == nil:
		routed.Status, routed.Reason = metav1.ConditionFalse, fledgev1.ReasonNotRouted
		routed.Message = "nothing is routed"
		if len(want.problems) > 0 && !want.hold {
			routed.Message = want.problems[0]
		}
	case !want.hold && want.route != nil && !traffic.Same(*want.route, *observed):
		routed.Status, routed.Reason = metav1.ConditionFalse, fledgev1.ReasonRouteMismatch
		routed.Message = fmt.Sprintf("%s serves %s, want %s", provider, describe(*observed), describe(*want.route))
	case replicas != nil && replicas.conflicted > 0:
		routed.Status, routed.Reason = metav1.ConditionFalse, ReasonHostConflict
		routed.Message = fmt.Sprintf("host %s is served by another application, TrafficRoute %s (older), on %d of %d gateway replicas; %s is not served there",
			observed.Host, strings.Join(replicas.conflicts, ", "), replicas.conflicted, replicas.answered, rel.Name)
	case replicas != nil && replicas.rejectedOn > 0:
		routed.Status, routed.Reason = metav1.ConditionFalse, ReasonRouteRejected
		routed.Message = fmt.Sprintf("%d of %d gateway replicas do not serve TrafficRoute %s/%s: %s",
			replicas.rejectedOn, replicas.answered, rel.Namespace, rel.Name, strings.Join(replicas.rejected, "; "))
	case replicas != nil && replicas.agree < replicas.answered:
		routed.Status, routed.Reason = metav1.ConditionFalse, ReasonPropagating
		routed.Message = fmt.Sprintf("%d of %d gateway replicas serve %s; %s", replicas.agree, replicas.answered,
			weightText(*observed), replicas.lagText())
	default:
		routed.Status, routed.Reason = metav1.ConditionTrue, fledgev1.ReasonRouteApplied
		routed.Message = fmt.Sprintf("%s serves %s", provider, describe(*observed))
		switch {
		case replicas == nil:
		case replicas.listFailed:
			routed.Message += "; not verified on the gateway replicas: they could not be listed (this is the TrafficRoute read back)"
		case replicas.asked == 0:
			routed.Message += "; not verified on the gateway replicas: none is ready (this is the TrafficRoute read back)"
		case replicas.answered == 0:
			routed.Message += fmt.Sprintf("; not verified on the gateway replicas: none of the %d ready answered (this is the TrafficRoute read back)", replicas.asked)
		case replicas.answered < replicas.asked:
			routed.Message += fmt.Sprintf("; so do %d of %d ready gateway replicas (%d did not answer)", replicas.agree, replicas.asked, replicas.asked-replicas.answered)
		default:
			routed.Message += fmt.Sprintf("; so do all %d ready gateway replicas", replicas.asked)
		}
	}
	meta.SetStatusCondition(&st.Conditions, routed)

	prevEffective := st.EffectiveWeight
	st.EffectiveWeight = 0
	switch {
	case routerErr != nil:
		st.Phase = fledgev1.PhaseFailed
	case observed == nil:
		st.Phase = fledgev1.PhaseUnpublished
	case replicas != nil && (replicas.conflicted > 0 || replicas.rejectedOn > 0) && replicas.agree == 0:
		// No replica serves the application.
		st.Phase = fledgev1.PhaseUnpublished
	case observed.Canary == nil && want.canaryOnly && observed.Stable.Service == st.Canary:
		st.Phase, st.EffectiveWeight = fledgev1.PhaseReleased, 100
	case observed.Canary == nil:
		st.Phase = fledgev1.PhaseStable
	default:
		st.EffectiveWeight = observed.CanaryWeight
		switch observed.CanaryWeight {
		case 100:
			st.Phase = fledgev1.PhaseReleased
		case 0:
			st.Phase = fledgev1.PhaseStable
			if len(observed.Match) > 0 {
				st.Phase = fledgev1.PhaseCanary
			}
		default:
			st.Phase = fledgev1.PhaseCanary
		}
	}
	if routed.Reason == ReasonPropagating {
		// The replicas disagree: effectiveWeight stays what they served
		// together last, until they agree again.
		st.EffectiveWeight = prevEffective
	}
	if !want.hold {
		applyAuto(&st, gen, want.auto)
	}
	return st
}

// describe says in words what a route does, for events and conditions.
func describe(r traffic.Route) string {
	s := fmt.Sprintf("host %s -> %s:%d", r.Host, r.Stable.Service, r.Stable.Port)
	if r.Canary == nil {
		return s + " (100%)"
	}
	s = fmt.Sprintf("host %s -> %s:%d %d%%, canary %s:%d %d%%", r.Host, r.Stable.Service, r.Stable.Port, 100-r.CanaryWeight,
		r.Canary.Service, r.Canary.Port, r.CanaryWeight)
	if len(r.Match) > 0 {
		s += fmt.Sprintf(", and every request matching %s", describeMatch(r.Match))
	}
	return s
}

func describeMatch(ps []fledgev1.Predicate) string {
	parts := make([]string, 0, len(ps))
	for _, p := range ps {
		m := p.Match
		if m == "" {
			m = fledgev1.MatchExact
		}
		switch m {
		case fledgev1.MatchPresent:
			parts = append(parts, fmt.Sprintf("%s %s present", strings.ToLower(string(p.Type)), p.Name))
		case fledgev1.MatchRegularExpression:
			parts = append(parts, fmt.Sprintf("%s %s ~ /%s/", strings.ToLower(string(p.Type)), p.Name, p.Value))
		default:
			parts = append(parts, fmt.Sprintf("%s %s = %q", strings.ToLower(string(p.Type)), p.Name, p.Value))
		}
	}
	return strings.Join(parts, " and ")
}

// routedText is the part of a Routed message that says what is served,
// without what confirmed it (the gateway replicas come and go: not an event).
func routedText(msg string) string {
	text, _, _ := strings.Cut(msg, "; ")
	return text
}

// recordEvents emits events on transitions only: a new problem, a new routing,
// a new failure.
func (r *ReleaseReconciler) recordEvents(rel *fledgev1.Release, services map[string]*corev1.Service, old, cur *fledgev1.ReleaseStatus,
	inputProblems []annotations.Problem, want routingPlan) {
	oldAccepted := meta.FindStatusCondition(old.Conditions, fledgev1.ConditionAccepted)
	newAccepted := meta.FindStatusCondition(cur.Conditions, fledgev1.ConditionAccepted)
	if newAccepted.Status == metav1.ConditionFalse && (oldAccepted == nil || oldAccepted.Message != newAccepted.Message) {
		for _, p := range inputProblems {
			if svc, ok := services[p.Service]; ok {
				r.Recorder.Eventf(svc, rel, corev1.EventTypeWarning, ReasonInvalidAnnotation, "Validate", "%s; the routing of application %s was left as it was", p.Error(), rel.Name)
			}
		}
		r.Recorder.Eventf(rel, nil, corev1.EventTypeWarning, ReasonInvalidSpec, "Validate", "%s", newAccepted.Message)
	}
	oldRouted := meta.FindStatusCondition(old.Conditions, fledgev1.ConditionRouted)
	newRouted := meta.FindStatusCondition(cur.Conditions, fledgev1.ConditionRouted)
	if oldRouted != nil && oldRouted.Reason == newRouted.Reason && routedText(oldRouted.Message) == routedText(newRouted.Message) {
		return
	}
	switch newRouted.Reason {
	case ReasonHostConflict:
		r.Recorder.Eventf(rel, nil, corev1.EventTypeWarning, ReasonHostConflict, "Route", "%s", newRouted.Message)
	case ReasonRouteRejected:
		r.Recorder.Eventf(rel, nil, corev1.EventTypeWarning, ReasonRouteRejected, "Route", "%s", newRouted.Message)
	case fledgev1.ReasonRouteApplied:
		r.Recorder.Eventf(rel, nil, corev1.EventTypeNormal, ReasonRouted, "Route", "%s", newRouted.Message)
	case fledgev1.ReasonRouteFailed:
		r.Recorder.Eventf(rel, nil, corev1.EventTypeWarning, ReasonRouteFailed, "Route", "%s", newRouted.Message)
	case fledgev1.ReasonNotRouted:
		if oldRouted != nil || len(want.problems) > 0 {
			r.Recorder.Eventf(rel, nil, corev1.EventTypeWarning, ReasonUnpublished, "Route", "%s", newRouted.Message)
			if !want.hold && want.route == nil && rel.Spec.Canary != nil {
				if svc, ok := services[rel.Spec.Canary.Name]; ok {
					r.Recorder.Eventf(svc, rel, corev1.EventTypeWarning, ReasonUnpublished, "Route", "%s", newRouted.Message)
				}
			}
		}
	}
}
