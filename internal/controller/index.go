package controller

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/annotations"
)

// Field indexes of the manager's cache. With them, gathering an application's
// Services and mapping a Service or EndpointSlice event to its Releases cost
// the size of the application, not of its namespace: listing the namespace
// instead made a mass change of N applications in one namespace O(N²)
// (docs/scale.md).
const (
	// indexPublishedApp indexes Services by the application they publish.
	indexPublishedApp = "fledge.dev/published-app"
	// indexService indexes Releases by every Service they name in their spec
	// or route in their status.
	indexService = "fledge.dev/service"
)

func addIndexes(ctx context.Context, idx client.FieldIndexer) error {
	if err := idx.IndexField(ctx, &corev1.Service{}, indexPublishedApp, func(o client.Object) []string {
		if app := annotations.App(o.(*corev1.Service)); app != "" {
			return []string{app}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("indexing services by application: %w", err)
	}
	if err := idx.IndexField(ctx, &fledgev1.Release{}, indexService, func(o client.Object) []string {
		return serviceNames(o.(*fledgev1.Release))
	}); err != nil {
		return fmt.Errorf("indexing releases by service: %w", err)
	}
	return nil
}

// serviceNames returns the Services a Release names in its spec or routes in
// its status, each once.
func serviceNames(rel *fledgev1.Release) []string {
	names := make([]string, 0, 4)
	add := func(n string) {
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	add(rel.Status.Stable)
	add(rel.Status.Canary)
	if rel.Spec.Stable != nil {
		add(rel.Spec.Stable.Name)
	}
	if rel.Spec.Canary != nil {
		add(rel.Spec.Canary.Name)
	}
	return names
}

// releasesNaming lists the Releases of namespace ns that name or route Service svc.
func (r *ReleaseReconciler) releasesNaming(ctx context.Context, ns, svc string) ([]fledgev1.Release, error) {
	var list fledgev1.ReleaseList
	if err := r.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{indexService: svc}); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// publishedServices lists the Services of namespace ns that publish app.
func (r *ReleaseReconciler) publishedServices(ctx context.Context, ns, app string) ([]corev1.Service, error) {
	var list corev1.ServiceList
	if err := r.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{indexPublishedApp: app}); err != nil {
		return nil, fmt.Errorf("listing services of application %s/%s: %w", ns, app, err)
	}
	return list.Items, nil
}

// addSpecServices adds to services, by name, the Services the Release's spec
// names that are not there yet; a missing Service stays absent.
func (r *ReleaseReconciler) addSpecServices(ctx context.Context, rel *fledgev1.Release, services map[string]*corev1.Service) error {
	for _, ref := range []*fledgev1.ServiceRef{rel.Spec.Stable, rel.Spec.Canary} {
		if ref == nil || services[ref.Name] != nil {
			continue
		}
		svc := &corev1.Service{}
		err := r.Client.Get(ctx, client.ObjectKey{Namespace: rel.Namespace, Name: ref.Name}, svc)
		switch {
		case err == nil:
			services[ref.Name] = svc
		case !apierrors.IsNotFound(err):
			return fmt.Errorf("reading service %s/%s: %w", rel.Namespace, ref.Name, err)
		}
	}
	return nil
}
