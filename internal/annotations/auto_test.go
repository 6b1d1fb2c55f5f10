package annotations

import (
	"errors"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

func TestParseAutoPolicy(t *testing.T) {
	p, err := ParseAutoPolicy("steps=10, 25,50; step-duration=30s; step-requests=200; deadline=5m; max-error-rate=5%; " +
		"acceptable-error-rate=0.5%; false-rollback-rate=1%; latency=off; source=prometheus")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Steps, []int32{10, 25, 50}) || p.StepDuration.Duration != 30*time.Second || *p.StepRequests != 200 ||
		p.ProgressDeadline.Duration != 5*time.Minute || p.MaxErrorRate != "5%" || p.AcceptableErrorRate != "0.5%" ||
		p.FalseRollbackRate != "1%" || *p.Latency || p.MetricSource != fledgev1.MetricSourcePrometheus {
		t.Errorf("policy = %+v", p)
	}
	for _, bad := range []string{"steps=0,10", "steps=10,5", "steps=10,100", "step-duration=10", "step-duration=-1s",
		"max-error-rate=5", "latency=yes", "source=datadog", "speed=fast", "steps", "steps=10; steps=20", "step-requests=-1",
		"max-error-rate=200%", "acceptable-error-rate=100%", "false-rollback-rate=0%", "false-rollback-rate=100%"} {
		if _, err := ParseAutoPolicy(bad); !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("ParseAutoPolicy(%q) = %v, want ErrInvalidPolicy", bad, err)
		}
	}
}

func TestTranslateAuto(t *testing.T) {
	stable := svc("v1", map[string]string{PublishedService: "app"}, 80)
	tests := map[string]struct {
		ann      map[string]string
		want     *fledgev1.AutoPolicy
		override fledgev1.Override
		problem  string
	}{
		"off by default":                {ann: map[string]string{}},
		"auto=false":                    {ann: map[string]string{Auto: "false"}},
		"auto=true":                     {ann: map[string]string{Auto: "true"}, want: &fledgev1.AutoPolicy{}},
		"policy turns it on":            {ann: map[string]string{AutoPolicy: "steps=10,50"}, want: &fledgev1.AutoPolicy{Steps: []int32{10, 50}}},
		"override pause":                {ann: map[string]string{Auto: "true", AutoOverride: "pause"}, want: &fledgev1.AutoPolicy{}, override: fledgev1.OverridePause},
		"auto=yes":                      {ann: map[string]string{Auto: "yes"}, problem: Auto},
		"bad policy":                    {ann: map[string]string{AutoPolicy: "steps=abc"}, problem: AutoPolicy},
		"override without it":           {ann: map[string]string{AutoOverride: "abort"}, problem: AutoOverride},
		"unknown override":              {ann: map[string]string{Auto: "true", AutoOverride: "stop"}, problem: AutoOverride},
		"bad restart":                   {ann: map[string]string{Auto: "true", AutoRestart: "yesterday"}, problem: AutoRestart},
		"bad restart, not automated":    {ann: map[string]string{AutoRestart: "garbage"}, problem: AutoRestart},
		"restart left after automation": {ann: map[string]string{Auto: "false", AutoRestart: "2026-01-02T03:04:05Z"}},
		"policy with auto off":          {ann: map[string]string{Auto: "false", AutoPolicy: "steps=10"}, problem: AutoPolicy},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ann := map[string]string{PublishedService: "app", CanaryService: "true"}
			for k, v := range tc.ann {
				ann[k] = v
			}
			spec, problems := Translate("app", []corev1.Service{stable, svc("v2", ann, 80)})
			if tc.problem != "" {
				if len(problems) != 1 || problems[0].Annotation != tc.problem || problems[0].Service != "v2" {
					t.Fatalf("problems = %v, want one on v2 %s", problems, tc.problem)
				}
				return
			}
			if len(problems) > 0 {
				t.Fatal(problems)
			}
			if (spec.Auto == nil) != (tc.want == nil) {
				t.Fatalf("auto = %+v, want %+v", spec.Auto, tc.want)
			}
			if spec.Auto != nil && (!slices.Equal(spec.Auto.Steps, tc.want.Steps) || spec.Auto.Override != tc.override) {
				t.Errorf("auto = %+v, want %+v override %q", spec.Auto, tc.want, tc.override)
			}
		})
	}
}
