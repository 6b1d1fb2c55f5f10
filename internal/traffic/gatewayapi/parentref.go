package gatewayapi

import (
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// ErrInvalidParentRef is wrapped by every ParseParentRef error.
var ErrInvalidParentRef = fledgev1.ErrInvalidGatewayParent

// ParseParentRef parses a Gateway reference (see fledgev1.ParseGatewayParent)
// into a ParentReference. Group and Kind are set to the Gateway API's
// defaults, gateway.networking.k8s.io and Gateway, so the reference reads
// back exactly as the API server stores it.
func ParseParentRef(s string) (gatewayv1.ParentReference, error) {
	p, err := fledgev1.ParseGatewayParent(s)
	if err != nil {
		return gatewayv1.ParentReference{}, err
	}
	return ParentRef(p), nil
}

// ParentRef returns p as a ParentReference, with Group and Kind set.
func ParentRef(p fledgev1.GatewayParent) gatewayv1.ParentReference {
	ref := gatewayv1.ParentReference{
		Group:     ptr.To(gatewayv1.Group(gatewayv1.GroupName)),
		Kind:      ptr.To(gatewayv1.Kind("Gateway")),
		Namespace: ptr.To(gatewayv1.Namespace(p.Namespace)),
		Name:      gatewayv1.ObjectName(p.Name),
	}
	if p.SectionName != "" {
		ref.SectionName = ptr.To(gatewayv1.SectionName(p.SectionName))
	}
	return ref
}
