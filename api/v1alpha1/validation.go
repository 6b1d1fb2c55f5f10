package v1alpha1

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// This file holds the one parser or validator of each syntax of the API, for
// what the CRD schema cannot check (or did not, for an object written before
// a rule). Everything else calls these.

// Providers are the traffic providers, in the order they are documented.
var Providers = []Provider{ProviderEmbedded, ProviderAPISIX, ProviderGatewayAPI}

// ParseProvider returns the provider named s, one of Providers.
func ParseProvider(s string) (Provider, error) {
	if p := Provider(s); slices.Contains(Providers, p) {
		return p, nil
	}
	return "", fmt.Errorf("want %s", ProviderNames())
}

// ProviderNames lists the providers in words: "embedded, apisix or gatewayapi".
func ProviderNames() string {
	names := make([]string, len(Providers))
	for i, p := range Providers {
		names[i] = string(p)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Validate checks a predicate: a name, a known Type and Match (an empty Match
// is Exact), and for RegularExpression an RE2 expression that compiles.
func (p Predicate) Validate() error {
	if p.Name == "" {
		return errors.New("empty name")
	}
	switch p.Type {
	case PredicateHeader, PredicateCookie, PredicateQuery:
	default:
		return fmt.Errorf("unknown type %q (want Header, Cookie or Query)", p.Type)
	}
	switch p.Match {
	case "", MatchExact, MatchPresent:
	case MatchRegularExpression:
		if _, err := regexp.Compile(p.Value); err != nil {
			return fmt.Errorf("invalid regular expression %q: %w", p.Value, err)
		}
	default:
		return fmt.Errorf("unknown match %q (want Exact, RegularExpression or Present)", p.Match)
	}
	return nil
}

// Validate checks a backend: a Service name and a port in 1..65535. field
// names it in the error ("stable", "canary").
func (b BackendRef) Validate(field string) error {
	if b.Service == "" {
		return fmt.Errorf("%s: empty service", field)
	}
	if b.Port < 1 || b.Port > 65535 {
		return fmt.Errorf("%s: port %d outside 1..65535", field, b.Port)
	}
	return nil
}

// Validate checks a route: a host, valid backends, a canary weight in 0..100
// and valid predicates (match[i]). Without a canary, the weight and the
// predicates mean nothing (they are not served).
func (s *TrafficRouteSpec) Validate() error {
	if s.Host == "" {
		return fmt.Errorf("empty host %q", s.Host)
	}
	if err := ValidateHost(s.Host); err != nil {
		return err
	}
	if err := s.Stable.Validate("stable"); err != nil {
		return err
	}
	if s.Canary != nil {
		if err := s.Canary.Validate("canary"); err != nil {
			return err
		}
	}
	if s.CanaryWeight < 0 || s.CanaryWeight > 100 {
		return fmt.Errorf("canaryWeight %d outside 0..100", s.CanaryWeight)
	}
	for i, p := range s.Match {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("match[%d]: %w", i, err)
		}
	}
	return nil
}

// Validate checks a Release's spec, one error per problem, each naming its
// field (spec.<field>); nil when the spec is valid. Whether the Services it
// names exist is for the controller to see.
func (s *ReleaseSpec) Validate() []error {
	var errs []error
	if s.Host != "" {
		if err := ValidateHost(s.Host); err != nil {
			errs = append(errs, fmt.Errorf("spec.host: %w", err))
		}
	}
	if s.CanaryWeight < 0 || s.CanaryWeight > 100 {
		errs = append(errs, fmt.Errorf("spec.canaryWeight %d: want an integer from 0 to 100", s.CanaryWeight))
	}
	for i, p := range s.Match {
		if err := p.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("spec.match[%d]: %w", i, err))
		}
	}
	for i, ref := range s.GatewayParents {
		if _, err := ParseGatewayParent(ref); err != nil {
			errs = append(errs, fmt.Errorf("spec.gatewayParents[%d]: %w", i, err))
		}
	}
	if len(s.Match) > 0 && s.Canary == nil {
		errs = append(errs, errors.New("spec.match is set but spec.canary is not: predicates need a canary"))
	}
	return errs
}

// hostPattern is a DNS name: labels of letters, digits and inner hyphens,
// separated by dots (RFC 1123; case does not matter, as in the Host header).
// The CRDs carry the same pattern, so that the API server refuses others.
var hostPattern = regexp.MustCompile(`^` + HostPattern + `$`)

// HostPattern is the pattern of a host served by fledge, without anchors.
const HostPattern = `[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*`

// ValidateHost checks a host an application is published under: a DNS name
// of at most 253 characters, each label at most 63 (no port, no wildcard).
func ValidateHost(h string) error {
	if len(h) > 253 || !hostPattern.MatchString(h) {
		return fmt.Errorf("invalid host %q: want a DNS name such as shop.example.com (letters, digits, hyphens and dots, at most 253 characters)", h)
	}
	for _, label := range strings.Split(h, ".") {
		if len(label) > 63 {
			return fmt.Errorf("invalid host %q: label %q is longer than 63 characters", h, label)
		}
	}
	return nil
}

// ErrInvalidGatewayParent is wrapped by every ParseGatewayParent error.
var ErrInvalidGatewayParent = errors.New("invalid parent reference")

// GatewayParent references a Gateway API Gateway, or one of its listeners
// (SectionName), that an HTTPRoute attaches to.
//
// +kubebuilder:object:generate=false
type GatewayParent struct {
	Namespace   string
	Name        string
	SectionName string
}

// String returns the reference as ParseGatewayParent reads it.
func (p GatewayParent) String() string {
	s := p.Namespace + "/" + p.Name
	if p.SectionName != "" {
		s += "/" + p.SectionName
	}
	return s
}

// ParseGatewayParent parses a Gateway reference as written in
// spec.gatewayParents, the fledge.dev/gateway-api-parent annotation and the
// controller's --gateway-api-parent flag:
//
//	infra/public         the Gateway "public" in namespace "infra"
//	infra/public/https   only its listener "https" (the sectionName)
//
// The namespace is required (an HTTPRoute lives in its application's
// namespace, the Gateway usually does not); it must be a DNS-1123 label, the
// name and the section name DNS-1123 subdomains.
func ParseGatewayParent(s string) (GatewayParent, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return GatewayParent{}, fmt.Errorf("%w %q: want namespace/name or namespace/name/sectionName", ErrInvalidGatewayParent, s)
	}
	p := GatewayParent{Namespace: parts[0], Name: parts[1]}
	if errs := validation.IsDNS1123Label(p.Namespace); len(errs) > 0 {
		return GatewayParent{}, fmt.Errorf("%w %q: namespace %q: %s", ErrInvalidGatewayParent, s, p.Namespace, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Subdomain(p.Name); len(errs) > 0 {
		return GatewayParent{}, fmt.Errorf("%w %q: gateway name %q: %s", ErrInvalidGatewayParent, s, p.Name, strings.Join(errs, "; "))
	}
	if len(parts) == 3 {
		p.SectionName = parts[2]
		if errs := validation.IsDNS1123Subdomain(p.SectionName); len(errs) > 0 {
			return GatewayParent{}, fmt.Errorf("%w %q: section name %q: %s", ErrInvalidGatewayParent, s, p.SectionName, strings.Join(errs, "; "))
		}
	}
	return p, nil
}

// ParseGatewayParentList parses comma-separated Gateway references (spaces
// around each are ignored), as in the fledge.dev/gateway-api-parent
// annotation, and returns them as written.
func ParseGatewayParentList(s string) ([]string, error) {
	var out []string
	for _, ref := range strings.Split(s, ",") {
		ref = strings.TrimSpace(ref)
		if _, err := ParseGatewayParent(ref); err != nil {
			return nil, err
		}
		out = append(out, ref)
	}
	return out, nil
}

var percentPattern = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?%$`)

// ParsePercent parses a percentage of an AutoPolicy ("1.5%") into a ratio
// (0.015). It accepts only a plain decimal number followed by "%".
func ParsePercent(s string) (float64, error) {
	if !percentPattern.MatchString(s) {
		return 0, fmt.Errorf("%q: want a percentage such as \"1%%\" or \"0.5%%\"", s)
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %v", s, err)
	}
	return v / 100, nil
}
