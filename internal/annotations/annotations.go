// Package annotations translates the Service annotations of the original design
// into a Release spec. It is a pure translation: no I/O, no defaults for bad input.
//
// A Service is published as application <app> with
//
//	api7.cloud/published-service: <app>
//
// and a second Service of the same application becomes its canary with
//
//	api7.cloud/published-service: <app>
//	api7.cloud/published-canary-service: "true"
//	api7.cloud/published-service-canary-percentage: "10"
package annotations

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// The annotation keys of the original design, kept verbatim.
const (
	PublishedService = "api7.cloud/published-service"
	CanaryService    = "api7.cloud/published-canary-service"
	CanaryPercentage = "api7.cloud/published-service-canary-percentage"
)

// Sentinel errors wrapped by Problem.Err.
var (
	ErrInvalidValue   = errors.New("invalid value")
	ErrConflict       = errors.New("conflicting services")
	ErrNoPorts        = errors.New("service has no ports")
	ErrInvalidAppName = errors.New("invalid application name")
)

// Problem is one reason a Service's annotations cannot be applied. It names the
// Service, the annotation and the value so a person can fix it.
type Problem struct {
	// Service is the name of the offending Service.
	Service string
	// Annotation is the offending annotation key, if one is to blame.
	Annotation string
	// Value is the offending annotation value.
	Value string
	// Err is one of the sentinel errors above, wrapped with detail.
	Err error
}

func (p Problem) Error() string {
	if p.Annotation == "" {
		return fmt.Sprintf("service %s: %v", p.Service, p.Err)
	}
	return fmt.Sprintf("service %s: annotation %s=%q: %v", p.Service, p.Annotation, p.Value, p.Err)
}

func (p Problem) Unwrap() error { return p.Err }

// App returns the application a Service publishes, or "" when it publishes none.
func App(svc *corev1.Service) string {
	return svc.Annotations[PublishedService]
}

// ParsePercentage parses a canary percentage: a plain decimal integer from 0 to
// 100 ("10"). Anything else ("10%", "abc", "-5", "150", "10.5", " 10", "") is an
// error, never a default.
func ParsePercentage(s string) (int32, error) {
	if s == "" {
		return 0, fmt.Errorf("%w: empty, want an integer from 0 to 100", ErrInvalidValue)
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("%w: want an integer from 0 to 100", ErrInvalidValue)
		}
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n > 100 {
		return 0, fmt.Errorf("%w: want an integer from 0 to 100", ErrInvalidValue)
	}
	return int32(n), nil
}

// parseBool accepts exactly "true" and "false".
func parseBool(s string) (bool, error) {
	switch s {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf(`%w: want "true" or "false"`, ErrInvalidValue)
}

// Translate builds the Release spec of application app from the Services that
// publish it (those whose published-service annotation is app; others are
// ignored). It returns every problem found; when there is any, the spec must not
// be applied.
//
// A canary without a percentage annotation gets weight 0: it receives no
// traffic until a percentage is set. A percentage annotation on a Service that
// is not a canary is ignored.
func Translate(app string, services []corev1.Service) (fledgev1.ReleaseSpec, []Problem) {
	var (
		spec     fledgev1.ReleaseSpec
		problems []Problem
		stables  []string
		canaries []string
	)
	errs := validation.IsDNS1123Subdomain(app)
	if len(app) > validation.LabelValueMaxLength {
		// fledge labels the objects it writes with the application's name.
		errs = append(errs, fmt.Sprintf("must be no more than %d characters", validation.LabelValueMaxLength))
	}
	if len(errs) > 0 {
		for i := range services {
			if App(&services[i]) == app {
				problems = append(problems, Problem{Service: services[i].Name, Annotation: PublishedService, Value: app,
					Err: fmt.Errorf("%w: %s", ErrInvalidAppName, errs[0])})
			}
		}
		return fledgev1.ReleaseSpec{}, problems
	}
	services = slices.Clone(services)
	slices.SortFunc(services, func(a, b corev1.Service) int { return strings.Compare(a.Name, b.Name) })
	for i := range services {
		svc := &services[i]
		if App(svc) != app {
			continue
		}
		canary := false
		if v, ok := svc.Annotations[CanaryService]; ok {
			b, err := parseBool(v)
			if err != nil {
				problems = append(problems, Problem{Service: svc.Name, Annotation: CanaryService, Value: v, Err: err})
				continue
			}
			canary = b
		}
		if len(svc.Spec.Ports) == 0 {
			problems = append(problems, Problem{Service: svc.Name, Err: fmt.Errorf("%w: a published Service needs a port", ErrNoPorts)})
			continue
		}
		ref := &fledgev1.ServiceRef{Name: svc.Name, Port: svc.Spec.Ports[0].Port}
		if !canary {
			stables = append(stables, svc.Name)
			spec.Stable = ref
			if v, ok := svc.Annotations[GatewayParents]; ok {
				parents, err := fledgev1.ParseGatewayParentList(v)
				if err != nil {
					problems = append(problems, Problem{Service: svc.Name, Annotation: GatewayParents, Value: v,
						Err: fmt.Errorf("%w: %w", ErrInvalidValue, err)})
				}
				spec.GatewayParents = parents
			}
			if v, ok := svc.Annotations[TLSSecret]; ok {
				if errs := validation.IsDNS1123Subdomain(v); len(errs) > 0 {
					problems = append(problems, Problem{Service: svc.Name, Annotation: TLSSecret, Value: v,
						Err: fmt.Errorf("%w: not a Secret name: %s", ErrInvalidValue, errs[0])})
				} else {
					spec.TLS = &fledgev1.RouteTLS{SecretName: v}
				}
			}
			if v, ok := svc.Annotations[Provider]; ok {
				p, err := fledgev1.ParseProvider(v)
				if err != nil {
					problems = append(problems, Problem{Service: svc.Name, Annotation: Provider, Value: v,
						Err: fmt.Errorf("%w: %w", ErrInvalidValue, err)})
				}
				spec.Provider = p
			}
			continue
		}
		canaries = append(canaries, svc.Name)
		spec.Canary = ref
		auto, problem := autoFrom(svc.Annotations)
		if problem != nil {
			problem.Service = svc.Name
			problems = append(problems, *problem)
			continue
		}
		spec.Auto = auto
		if v, ok := svc.Annotations[CanaryMatch]; ok {
			m, err := ParseMatch(v)
			if err != nil {
				problems = append(problems, Problem{Service: svc.Name, Annotation: CanaryMatch, Value: v, Err: err})
				continue
			}
			spec.Match = m
		}
		if v, ok := svc.Annotations[CanaryPercentage]; ok {
			w, err := ParsePercentage(v)
			if err != nil {
				problems = append(problems, Problem{Service: svc.Name, Annotation: CanaryPercentage, Value: v, Err: err})
				continue
			}
			spec.CanaryWeight = w
		}
	}
	if len(stables) > 1 {
		for _, s := range stables {
			problems = append(problems, Problem{Service: s, Annotation: PublishedService, Value: app,
				Err: fmt.Errorf("%w: application %q has %d stable Services (%v); exactly one may omit %s=true", ErrConflict, app, len(stables), stables, CanaryService)})
		}
	}
	if len(canaries) > 1 {
		for _, s := range canaries {
			problems = append(problems, Problem{Service: s, Annotation: CanaryService, Value: "true",
				Err: fmt.Errorf("%w: application %q has %d canary Services (%v); at most one is allowed", ErrConflict, app, len(canaries), canaries)})
		}
	}
	if len(problems) > 0 {
		return fledgev1.ReleaseSpec{}, problems
	}
	return spec, nil
}
