package annotations

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// Annotations of automated releases, on the canary Service.
const (
	// Auto: "true" lets fledge release the canary by itself with the default
	// policy (or the one in AutoPolicy); "false" or absent leaves the
	// percentage annotation in charge.
	Auto = "fledge.dev/auto"
	// AutoPolicy tunes the automation (and turns it on), for example
	//
	//	fledge.dev/auto-policy: "steps=10,25,50; step-duration=30s; max-error-rate=5%"
	AutoPolicy = "fledge.dev/auto-policy"
	// AutoOverride is a manual decision: pause, abort or promote. Remove it to resume.
	AutoOverride = "fledge.dev/auto-override"
	// AutoRestart, an RFC 3339 time, starts the analysis again when later than
	// the current one's start (to retry a rolled-back canary).
	AutoRestart = "fledge.dev/auto-restart"
)

// ErrInvalidPolicy is wrapped by ParseAutoPolicy's errors.
var ErrInvalidPolicy = errors.New("invalid auto policy")

// ParseAutoPolicy parses the fledge.dev/auto-policy syntax: KEY=VALUE settings
// separated by ";". Keys: steps (comma-separated weights), step-duration,
// step-requests, deadline, max-error-rate, acceptable-error-rate,
// false-rollback-rate (percentages such as "5%"), latency (on|off), source
// (builtin|prometheus). Unknown keys and repeated keys are errors.
func ParseAutoPolicy(s string) (*fledgev1.AutoPolicy, error) {
	p := &fledgev1.AutoPolicy{}
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || v == "" {
			return nil, fmt.Errorf("%w: %q: want KEY=VALUE", ErrInvalidPolicy, part)
		}
		if seen[k] {
			return nil, fmt.Errorf("%w: %s given twice", ErrInvalidPolicy, k)
		}
		seen[k] = true
		if err := setPolicy(p, k, v); err != nil {
			return nil, fmt.Errorf("%w: %s=%s: %v", ErrInvalidPolicy, k, v, err)
		}
	}
	return p, nil
}

func setPolicy(p *fledgev1.AutoPolicy, k, v string) error {
	duration := func() (*metav1.Duration, error) {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("want a positive duration such as 30s")
		}
		return &metav1.Duration{Duration: d}, nil
	}
	// A rate is below 100%; only the false-rollback rate may not be 0 (a
	// test that may never be wrong never rolls back).
	percent := func() (string, error) {
		r, err := fledgev1.ParsePercent(v)
		switch {
		case err != nil:
			return "", fmt.Errorf(`want a percentage such as "5%%"`)
		case r >= 1:
			return "", fmt.Errorf("want a rate below 100%%")
		case r == 0 && k == "false-rollback-rate":
			return "", fmt.Errorf("want a rate above 0%%")
		}
		return v, nil
	}
	var err error
	switch k {
	case "steps":
		for _, f := range strings.Split(v, ",") {
			n, perr := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
			if perr != nil || n < 1 || n > 99 {
				return fmt.Errorf("%q: want weights from 1 to 99", f)
			}
			if l := len(p.Steps); l > 0 && int32(n) <= p.Steps[l-1] {
				return fmt.Errorf("steps must increase")
			}
			p.Steps = append(p.Steps, int32(n))
		}
	case "step-duration":
		p.StepDuration, err = duration()
	case "deadline":
		p.ProgressDeadline, err = duration()
	case "step-requests":
		n, perr := strconv.ParseInt(v, 10, 32)
		if perr != nil || n < 0 {
			return fmt.Errorf("want a count ≥ 0")
		}
		p.StepRequests = ptr.To(int32(n))
	case "max-error-rate":
		p.MaxErrorRate, err = percent()
	case "acceptable-error-rate":
		p.AcceptableErrorRate, err = percent()
	case "false-rollback-rate":
		p.FalseRollbackRate, err = percent()
	case "latency":
		switch v {
		case "on":
			p.Latency = ptr.To(true)
		case "off":
			p.Latency = ptr.To(false)
		default:
			return fmt.Errorf("want on or off")
		}
	case "source":
		switch m := fledgev1.MetricSource(v); m {
		case fledgev1.MetricSourceBuiltin, fledgev1.MetricSourcePrometheus:
			p.MetricSource = m
		default:
			return fmt.Errorf("want builtin or prometheus")
		}
	default:
		return fmt.Errorf("unknown key (want steps, step-duration, step-requests, deadline, max-error-rate, acceptable-error-rate, false-rollback-rate, latency or source)")
	}
	return err
}

// autoFrom reads the automation annotations of a canary Service.
func autoFrom(svc map[string]string) (*fledgev1.AutoPolicy, *Problem) {
	var p *fledgev1.AutoPolicy
	if v, ok := svc[Auto]; ok {
		on, err := parseBool(v)
		if err != nil {
			return nil, &Problem{Annotation: Auto, Value: v, Err: err}
		}
		if on {
			p = &fledgev1.AutoPolicy{}
		}
	}
	if v, ok := svc[AutoPolicy]; ok {
		if a, present := svc[Auto]; present && a == "false" {
			return nil, &Problem{Annotation: AutoPolicy, Value: v, Err: fmt.Errorf("%w: %s is \"false\"", ErrInvalidPolicy, Auto)}
		}
		parsed, err := ParseAutoPolicy(v)
		if err != nil {
			return nil, &Problem{Annotation: AutoPolicy, Value: v, Err: err}
		}
		p = parsed
	}
	if v, ok := svc[AutoOverride]; ok {
		if p == nil {
			return nil, &Problem{Annotation: AutoOverride, Value: v, Err: fmt.Errorf("%w: the canary is not automated (set %s=true)", ErrInvalidValue, Auto)}
		}
		switch v {
		case "pause":
			p.Override = fledgev1.OverridePause
		case "abort":
			p.Override = fledgev1.OverrideAbort
		case "promote":
			p.Override = fledgev1.OverridePromote
		default:
			return nil, &Problem{Annotation: AutoOverride, Value: v, Err: fmt.Errorf("%w: want pause, abort or promote", ErrInvalidValue)}
		}
	}
	// A restart time is checked even without automation (an invalid value is
	// never ignored); a valid one left over after automation was turned off
	// does nothing.
	if v, ok := svc[AutoRestart]; ok {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return nil, &Problem{Annotation: AutoRestart, Value: v, Err: fmt.Errorf("%w: want an RFC 3339 time", ErrInvalidValue)}
		}
		if p != nil {
			p.RestartAt = &metav1.Time{Time: t}
		}
	}
	return p, nil
}
