// Package embedded is the Router for fledge's embedded gateway: it writes one
// TrafficRoute object per application, which every gateway replica watches.
package embedded

import (
	"context"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/traffic"
)

// Labels fledge puts on every TrafficRoute it writes.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "fledge"
	LabelApp       = "fledge.dev/app"
)

// Router implements traffic.Router with TrafficRoute objects named after the
// application, in the application's namespace.
type Router struct {
	c client.Client
}

var _ traffic.Router = (*Router)(nil)

// New returns a Router that reads and writes TrafficRoutes through c.
func New(c client.Client) *Router { return &Router{c: c} }

func routeOf(tr *fledgev1.TrafficRoute) traffic.Route {
	r := traffic.Route{
		Key:          traffic.Key{Namespace: tr.Namespace, App: tr.Name},
		Host:         tr.Spec.Host,
		Stable:       traffic.Backend{Service: tr.Spec.Stable.Service, Port: tr.Spec.Stable.Port},
		CanaryWeight: tr.Spec.CanaryWeight,
		Match:        slices.Clone(tr.Spec.Match),
	}
	if c := tr.Spec.Canary; c != nil {
		r.Canary = &traffic.Backend{Service: c.Service, Port: c.Port}
	}
	if t := tr.Spec.TLS; t != nil {
		r.TLSSecret = t.SecretName
	}
	return r
}

func owned(tr *fledgev1.TrafficRoute) bool {
	return tr.Labels[LabelManagedBy] == ManagedBy
}

// Ensure creates or updates the application's TrafficRoute. It writes nothing
// when the object already says r.
func (e *Router) Ensure(ctx context.Context, r traffic.Route) error {
	want := r.Spec()
	var tr fledgev1.TrafficRoute
	err := e.c.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: r.App}, &tr)
	switch {
	case apierrors.IsNotFound(err):
		tr = fledgev1.TrafficRoute{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: r.Namespace,
				Name:      r.App,
				Labels:    map[string]string{LabelManagedBy: ManagedBy, LabelApp: r.App},
			},
			Spec: want,
		}
		if err := e.c.Create(ctx, &tr); err != nil {
			return fmt.Errorf("creating trafficroute %s: %w", r.Key, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("reading trafficroute %s: %w", r.Key, err)
	}
	if !owned(&tr) {
		return fmt.Errorf("trafficroute %s exists and is not managed by fledge (label %s=%s missing): refusing to change it", r.Key, LabelManagedBy, ManagedBy)
	}
	if equality.Semantic.DeepEqual(tr.Spec, want) {
		return nil
	}
	tr.Spec = want
	if err := e.c.Update(ctx, &tr); err != nil {
		return fmt.Errorf("updating trafficroute %s: %w", r.Key, err)
	}
	return nil
}

// Observe reads the application's TrafficRoute back from the API server.
func (e *Router) Observe(ctx context.Context, key traffic.Key) (traffic.Route, error) {
	var tr fledgev1.TrafficRoute
	if err := e.c.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: key.App}, &tr); err != nil {
		if apierrors.IsNotFound(err) {
			return traffic.Route{}, fmt.Errorf("trafficroute %s: %w", key, traffic.ErrNotFound)
		}
		return traffic.Route{}, fmt.Errorf("reading trafficroute %s: %w", key, err)
	}
	if !owned(&tr) {
		return traffic.Route{}, fmt.Errorf("trafficroute %s is not managed by fledge: %w", key, traffic.ErrNotFound)
	}
	return routeOf(&tr), nil
}

// Remove deletes the application's TrafficRoute if fledge created it.
func (e *Router) Remove(ctx context.Context, key traffic.Key) error {
	var tr fledgev1.TrafficRoute
	if err := e.c.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: key.App}, &tr); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading trafficroute %s: %w", key, err)
	}
	if !owned(&tr) {
		return nil
	}
	if err := e.c.Delete(ctx, &tr, client.Preconditions{UID: &tr.UID}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting trafficroute %s: %w", key, err)
	}
	return nil
}
