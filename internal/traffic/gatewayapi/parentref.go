package gatewayapi

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// ErrInvalidParentRef is wrapped by every ParseParentRef error.
var ErrInvalidParentRef = errors.New("invalid parent reference")

// ParseParentRef parses a Gateway reference as given to the controller's
// --gateway-api-parent flag or an application's override annotation:
//
//	infra/public         the Gateway "public" in namespace "infra"
//	infra/public/https   only its listener "https" (the sectionName)
//
// The namespace is required (an HTTPRoute lives in its application's
// namespace, the Gateway usually does not). Group and Kind are set to the
// Gateway API's defaults, gateway.networking.k8s.io and Gateway, so the
// reference reads back exactly as the API server stores it.
func ParseParentRef(s string) (gatewayv1.ParentReference, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return gatewayv1.ParentReference{}, fmt.Errorf("%w %q: want namespace/name or namespace/name/sectionName", ErrInvalidParentRef, s)
	}
	ns, name := parts[0], parts[1]
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return gatewayv1.ParentReference{}, fmt.Errorf("%w %q: namespace %q: %s", ErrInvalidParentRef, s, ns, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return gatewayv1.ParentReference{}, fmt.Errorf("%w %q: gateway name %q: %s", ErrInvalidParentRef, s, name, strings.Join(errs, "; "))
	}
	ref := gatewayv1.ParentReference{
		Group:     ptr(gatewayv1.Group(gatewayv1.GroupName)),
		Kind:      ptr(gatewayv1.Kind("Gateway")),
		Namespace: ptr(gatewayv1.Namespace(ns)),
		Name:      gatewayv1.ObjectName(name),
	}
	if len(parts) == 3 {
		section := parts[2]
		if errs := validation.IsDNS1123Subdomain(section); len(errs) > 0 {
			return gatewayv1.ParentReference{}, fmt.Errorf("%w %q: section name %q: %s", ErrInvalidParentRef, s, section, strings.Join(errs, "; "))
		}
		ref.SectionName = ptr(gatewayv1.SectionName(section))
	}
	return ref, nil
}

func ptr[T any](v T) *T { return &v }
