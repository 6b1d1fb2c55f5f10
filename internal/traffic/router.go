// Package traffic defines the Router: the one small interface behind which every
// gateway provider (embedded, apisix, gatewayapi) moves an application's traffic.
package traffic

import (
	"context"
	"errors"
	"fmt"
	"slices"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// Key identifies one published application.
type Key struct {
	// Namespace of the application's Services.
	Namespace string
	// App is the application's name (the published-service annotation value).
	App string
}

// String returns "namespace/app".
func (k Key) String() string { return k.Namespace + "/" + k.App }

// Backend is a Service in the application's namespace and one of its ports.
type Backend struct {
	Service string
	Port    int32
}

// Route is the routing an application should have, in provider-neutral terms:
// requests whose Host is Host go to Stable, except CanaryWeight percent of them
// and every request that matches all of Match, which go to Canary.
type Route struct {
	Key
	Host         string
	Stable       Backend
	Canary       *Backend
	CanaryWeight int32
	Match        []fledgev1.Predicate
	// TLSSecret, when not empty, is the kubernetes.io/tls Secret (in the
	// application's namespace) the host is served with over HTTPS. Only the
	// embedded provider serves it; the others terminate TLS themselves.
	TLSSecret string
}

// ErrNotFound is returned by Observe when the provider serves nothing for the key.
var ErrNotFound = errors.New("route not found")

// Router moves traffic for applications. Implementations are safe for concurrent
// use, idempotent (calling Ensure twice with the same Route changes nothing the
// second time) and touch only objects they created.
type Router interface {
	// Ensure makes the provider serve r, creating or adopting what it needs.
	Ensure(ctx context.Context, r Route) error
	// Observe reads back the routing the provider really serves for key, or
	// ErrNotFound (wrapped) when it serves nothing.
	Observe(ctx context.Context, key Key) (Route, error)
	// Remove deletes everything the provider created for key. Removing a key
	// that has nothing is not an error.
	Remove(ctx context.Context, key Key) error
}

// Spec returns the route as the spec of a TrafficRoute, which has the same
// fields but the key.
func (r Route) Spec() fledgev1.TrafficRouteSpec {
	spec := fledgev1.TrafficRouteSpec{
		Host:         r.Host,
		Stable:       fledgev1.BackendRef{Service: r.Stable.Service, Port: r.Stable.Port},
		CanaryWeight: r.CanaryWeight,
		Match:        slices.Clone(r.Match),
	}
	if r.Canary != nil {
		spec.Canary = &fledgev1.BackendRef{Service: r.Canary.Service, Port: r.Canary.Port}
	}
	if r.TLSSecret != "" {
		spec.TLS = &fledgev1.RouteTLS{SecretName: r.TLSSecret}
	}
	return spec
}

// Validate checks what every provider needs of a route: a key, and a valid
// spec (see fledgev1.TrafficRouteSpec.Validate). Providers may refuse more
// (names they cannot represent, for example).
func (r Route) Validate() error {
	if r.Namespace == "" || r.App == "" {
		return fmt.Errorf("key %q: namespace and app are required", r.Key)
	}
	spec := r.Spec()
	return spec.Validate()
}
