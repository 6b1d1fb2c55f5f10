package strategy

import (
	"testing"

	"github.com/fledge-dev/fledge/internal/annotations"
)

// FuzzParseAutoPolicy: whatever the fledge.dev/auto-policy annotation parser
// accepts, the strategy accepts too. A policy refused only later would be
// accepted on the Service without a Warning naming the annotation.
func FuzzParseAutoPolicy(f *testing.F) {
	for _, s := range []string{
		"steps=10,25,50; step-duration=30s; step-requests=200; deadline=1h; max-error-rate=5%; acceptable-error-rate=0.5%; false-rollback-rate=1%; latency=on; source=prometheus",
		"steps=5", "latency=off", "max-error-rate=200%", "false-rollback-rate=0%", "acceptable-error-rate=99.9%",
		"step-duration=1ns", "deadline=1ns", "step-requests=0", "steps=1,99", "steps=50,10", "=", ";", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := annotations.ParseAutoPolicy(s)
		if err != nil {
			return
		}
		if _, err := PolicyFrom(p); err != nil {
			t.Fatalf("ParseAutoPolicy(%q) accepted a policy the strategy refuses: %v", s, err)
		}
	})
}
