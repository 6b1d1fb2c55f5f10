package annotations

import (
	"errors"
	"slices"
	"testing"
)

func TestParseNotify(t *testing.T) {
	for in, want := range map[string][]string{
		"team-slack":                  {"team-slack"},
		" team-slack , audit.webhook": {"team-slack", "audit.webhook"},
		"":                            nil,
		"a,,b":                        nil,
		"Team":                        nil,
		"a,a":                         nil,
	} {
		got, err := ParseNotify(in)
		if want == nil {
			if !errors.Is(err, ErrInvalidValue) {
				t.Errorf("ParseNotify(%q) = %v, %v; want ErrInvalidValue", in, got, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseNotify(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}
