// Package providers composes the traffic providers a controller enables and
// says which one serves an application. It is the one place that knows every
// provider: the controller sees only traffic.Router and this package's answer
// to "which router serves this Release?".
package providers

import (
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/traffic"
	"github.com/fledge-dev/fledge/internal/traffic/apisix"
	"github.com/fledge-dev/fledge/internal/traffic/embedded"
	"github.com/fledge-dev/fledge/internal/traffic/gatewayapi"
)

// Config enables the providers besides the embedded one, which is always on.
type Config struct {
	// APISIX, when not nil, enables the apisix provider. A nil Resolver
	// becomes an apisix.EndpointSliceResolver on the controller's client.
	APISIX *apisix.Config
	// GatewayParents, when not empty, enable the gatewayapi provider: the
	// Gateways every HTTPRoute attaches to unless its Release names its own.
	// A Release with spec.gatewayParents is served by gatewayapi whether or
	// not these are set.
	GatewayParents []gatewayv1.ParentReference
}

// Routers are the routers of one controller, by provider.
type Routers struct {
	c          client.Client
	byProvider map[fledgev1.Provider]traffic.Router
}

// New builds the enabled providers on the controller's client c.
func New(c client.Client, cfg Config) (*Routers, error) {
	rs := &Routers{c: c, byProvider: map[fledgev1.Provider]traffic.Router{fledgev1.ProviderEmbedded: embedded.New(c)}}
	if cfg.APISIX != nil {
		ac := *cfg.APISIX
		if ac.Resolver == nil {
			ac.Resolver = apisix.EndpointSliceResolver{Reader: c}
		}
		r, err := apisix.New(ac)
		if err != nil {
			return nil, err
		}
		rs.byProvider[fledgev1.ProviderAPISIX] = r
	}
	if len(cfg.GatewayParents) > 0 {
		r, err := gatewayapi.New(c, gatewayapi.Config{ParentRefs: cfg.GatewayParents})
		if err != nil {
			return nil, err
		}
		rs.byProvider[fledgev1.ProviderGatewayAPI] = r
	}
	return rs, nil
}

// Router returns the router of provider p for an application whose Release
// has spec: the enabled one, or for gatewayapi with spec.gatewayParents, one
// attaching to those Gateways. When those references are invalid (the
// controller then holds the application's traffic), it returns a gatewayapi
// router that can only observe and remove.
func (rs *Routers) Router(p fledgev1.Provider, spec *fledgev1.ReleaseSpec) (traffic.Router, error) {
	if p == fledgev1.ProviderGatewayAPI && len(spec.GatewayParents) > 0 {
		refs := make([]gatewayv1.ParentReference, len(spec.GatewayParents))
		for i, s := range spec.GatewayParents {
			ref, err := gatewayapi.ParseParentRef(s)
			if err != nil {
				return gatewayapi.NewRemover(rs.c), nil
			}
			refs[i] = ref
		}
		return gatewayapi.New(rs.c, gatewayapi.Config{ParentRefs: refs})
	}
	r, ok := rs.byProvider[p]
	if !ok {
		return nil, fmt.Errorf("provider %q is not enabled in this controller", p)
	}
	return r, nil
}

// FollowsEndpoints reports whether provider p copies the endpoints of
// Services: apisix does (into upstream nodes); the embedded gateway and
// Gateway API implementations find them themselves.
func (rs *Routers) FollowsEndpoints(p fledgev1.Provider) bool {
	return p == fledgev1.ProviderAPISIX
}
