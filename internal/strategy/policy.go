// Package strategy is the step machine of an automated release: from the
// policy, the last state, the manual override, the latest counts and the clock,
// Next decides the canary weight and the next state. It is pure: no I/O, no
// clock of its own.
package strategy

import (
	"errors"
	"fmt"
	"slices"
	"time"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/analysis"
)

// Defaults of an AutoPolicy's empty fields.
var (
	DefaultSteps            = []int32{10, 25, 50}
	DefaultStepDuration     = 10 * time.Second
	DefaultStepRequests     = int32(100)
	DefaultProgressDeadline = 30 * time.Minute
	// DefaultSoak is the least time under load of a whole analysis: failures
	// that recur every minute are seen at least twice before a promotion.
	DefaultSoak = 2 * time.Minute
	// DefaultDeadlineAction holds a canary that reached no verdict: at low
	// traffic a healthy canary is not rolled back for want of evidence.
	DefaultDeadlineAction = fledgev1.DeadlinePause
	// RampBadErrorRatio is the "bad" error ratio judged before the last step:
	// a canary passes early steps when it is not 4× worse than the stable, and
	// must show it is not 2× worse (Criteria.BadErrorRatio) at the last step
	// before promotion. Failing is judged the same at every step.
	RampBadErrorRatio = 4.0
)

// ErrInvalidPolicy is wrapped by PolicyFrom's errors.
var ErrInvalidPolicy = errors.New("invalid auto policy")

// Policy is an AutoPolicy with its defaults applied and its values parsed.
type Policy struct {
	Steps            []int32
	StepDuration     time.Duration
	ProgressDeadline time.Duration
	Soak             time.Duration
	DeadlineAction   fledgev1.DeadlineAction
	Criteria         analysis.Criteria
	MetricSource     fledgev1.MetricSource
	Override         fledgev1.Override
	RestartAt        time.Time
}

// ParsePercent is fledgev1.ParsePercent.
func ParsePercent(s string) (float64, error) { return fledgev1.ParsePercent(s) }

// PolicyFrom applies the defaults to p and validates it. Errors name the field
// (spec.auto.<field>) and the value.
func PolicyFrom(p *fledgev1.AutoPolicy) (Policy, error) {
	out := Policy{
		Steps:            slices.Clone(DefaultSteps),
		StepDuration:     DefaultStepDuration,
		ProgressDeadline: DefaultProgressDeadline,
		Soak:             DefaultSoak,
		DeadlineAction:   DefaultDeadlineAction,
		Criteria:         analysis.DefaultCriteria(),
		MetricSource:     p.MetricSource,
		Override:         p.Override,
	}
	out.Criteria.MinRequests = float64(DefaultStepRequests)
	bad := func(field string, err error) (Policy, error) {
		return Policy{}, fmt.Errorf("%w: spec.auto.%s %v", ErrInvalidPolicy, field, err)
	}
	if len(p.Steps) > 0 {
		out.Steps = slices.Clone(p.Steps)
	}
	for i, w := range out.Steps {
		if w < 1 || w > 99 {
			return bad(fmt.Sprintf("steps[%d]", i), fmt.Errorf("%d: want a weight from 1 to 99 (100 is the promotion)", w))
		}
		if i > 0 && w <= out.Steps[i-1] {
			return bad(fmt.Sprintf("steps[%d]", i), fmt.Errorf("%d: steps must increase", w))
		}
	}
	if d := p.StepDuration; d != nil {
		if d.Duration < 0 {
			return bad("stepDuration", fmt.Errorf("%v: must not be negative", d.Duration))
		}
		out.StepDuration = d.Duration
	}
	if d := p.ProgressDeadline; d != nil {
		if d.Duration <= 0 {
			return bad("progressDeadline", fmt.Errorf("%v: must be positive", d.Duration))
		}
		out.ProgressDeadline = d.Duration
	}
	if d := p.Soak; d != nil {
		if d.Duration < 0 {
			return bad("soak", fmt.Errorf("%v: must not be negative", d.Duration))
		}
		out.Soak = d.Duration
	}
	switch p.DeadlineAction {
	case "":
	case fledgev1.DeadlineRollback, fledgev1.DeadlinePause, fledgev1.DeadlinePromote:
		out.DeadlineAction = p.DeadlineAction
	default:
		return bad("deadlineAction", fmt.Errorf("%q: want rollback, pause or promote", p.DeadlineAction))
	}
	if n := p.StepRequests; n != nil {
		if *n < 0 {
			return bad("stepRequests", fmt.Errorf("%d: must not be negative", *n))
		}
		out.Criteria.MinRequests = float64(*n)
	}
	for field, dst := range map[string]*float64{
		"maxErrorRate": &out.Criteria.MaxErrorRate, "acceptableErrorRate": &out.Criteria.AcceptableErrorRate,
		"falseRollbackRate": &out.Criteria.Alpha,
	} {
		var s string
		switch field {
		case "maxErrorRate":
			s = p.MaxErrorRate
		case "acceptableErrorRate":
			s = p.AcceptableErrorRate
		default:
			s = p.FalseRollbackRate
		}
		if s == "" {
			continue
		}
		v, err := ParsePercent(s)
		if err != nil {
			return bad(field, err)
		}
		*dst = v
	}
	if p.Latency != nil && !*p.Latency {
		out.Criteria.LatencyQuantile = 0
	}
	if err := out.Criteria.Validate(); err != nil {
		return bad("(analysis)", err)
	}
	if p.RestartAt != nil {
		out.RestartAt = p.RestartAt.Time
	}
	return out, nil
}
