package apisix

import (
	"errors"
	"reflect"
	"testing"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

func TestVarsRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   fledgev1.Predicate
		vars []string
		back fledgev1.Predicate // what Observe reads back
	}{
		{
			name: "header exact",
			in:   fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: "X-Debug", Match: fledgev1.MatchExact, Value: "1"},
			vars: []string{"http_x_debug", "==", "1"},
			back: fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: "x-debug", Match: fledgev1.MatchExact, Value: "1"},
		},
		{
			name: "empty match type is exact",
			in:   fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: "x-debug", Value: "on"},
			vars: []string{"http_x_debug", "==", "on"},
			back: fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: "x-debug", Match: fledgev1.MatchExact, Value: "on"},
		},
		{
			name: "header regular expression",
			in:   fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: "User-Agent", Match: fledgev1.MatchRegularExpression, Value: "Firefox/[0-9]+"},
			vars: []string{"http_user_agent", "~~", "Firefox/[0-9]+"},
			back: fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: "user-agent", Match: fledgev1.MatchRegularExpression, Value: "Firefox/[0-9]+"},
		},
		{
			name: "header present",
			in:   fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: "X-Canary", Match: fledgev1.MatchPresent, Value: "ignored"},
			vars: []string{"http_x_canary", "~*", ".*"},
			back: fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: "x-canary", Match: fledgev1.MatchPresent},
		},
		{
			name: "regular expression .* stays a regular expression",
			in:   fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: "X-Canary", Match: fledgev1.MatchRegularExpression, Value: ".*"},
			vars: []string{"http_x_canary", "~~", ".*"},
			back: fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: "x-canary", Match: fledgev1.MatchRegularExpression, Value: ".*"},
		},
		{
			name: "cookie keeps case",
			in:   fledgev1.Predicate{Type: fledgev1.PredicateCookie, Name: "Canary_Group", Match: fledgev1.MatchExact, Value: "B"},
			vars: []string{"cookie_Canary_Group", "==", "B"},
			back: fledgev1.Predicate{Type: fledgev1.PredicateCookie, Name: "Canary_Group", Match: fledgev1.MatchExact, Value: "B"},
		},
		{
			name: "query present",
			in:   fledgev1.Predicate{Type: fledgev1.PredicateQuery, Name: "canary", Match: fledgev1.MatchPresent},
			vars: []string{"arg_canary", "~*", ".*"},
			back: fledgev1.Predicate{Type: fledgev1.PredicateQuery, Name: "canary", Match: fledgev1.MatchPresent},
		},
		{
			name: "exact empty value",
			in:   fledgev1.Predicate{Type: fledgev1.PredicateQuery, Name: "debug", Match: fledgev1.MatchExact},
			vars: []string{"arg_debug", "==", ""},
			back: fledgev1.Predicate{Type: fledgev1.PredicateQuery, Name: "debug", Match: fledgev1.MatchExact},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := encodeVar(tc.in)
			if err != nil {
				t.Fatalf("encodeVar: %v", err)
			}
			if !reflect.DeepEqual(got, tc.vars) {
				t.Errorf("encodeVar = %q; want %q", got, tc.vars)
			}
			back, err := decodeVar([]any{got[0], got[1], got[2]})
			if err != nil {
				t.Fatalf("decodeVar: %v", err)
			}
			if back != tc.back {
				t.Errorf("decodeVar = %+v; want %+v", back, tc.back)
			}
		})
	}
}

func TestEncodeVarRejects(t *testing.T) {
	tests := []struct {
		name        string
		in          fledgev1.Predicate
		unsupported bool // wraps errors.ErrUnsupported, else ErrInvalidRoute
	}{
		{"header with underscore", fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: "X_Debug", Value: "1"}, true},
		{"header with space", fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: "X Debug", Value: "1"}, true},
		{"cookie with dot", fledgev1.Predicate{Type: fledgev1.PredicateCookie, Name: "a.b", Value: "1"}, true},
		{"unknown type", fledgev1.Predicate{Type: "Body", Name: "a", Value: "1"}, false},
		{"unknown match", fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: "a", Match: "Prefix", Value: "1"}, false},
		{"invalid regular expression", fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: "a", Match: fledgev1.MatchRegularExpression, Value: "("}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := encodeVar(tc.in)
			want := ErrInvalidRoute
			if tc.unsupported {
				want = errors.ErrUnsupported
			}
			if !errors.Is(err, want) {
				t.Errorf("encodeVar(%+v) = %v; want an error wrapping %v", tc.in, err, want)
			}
		})
	}
}

func TestDecodeVarRejectsForeignExpressions(t *testing.T) {
	for name, expr := range map[string][]any{
		"negation":            {"http_x_debug", "!", "==", "1"},
		"other operator":      {"http_x_debug", "~=", "1"},
		"case-insensitive re": {"http_x_debug", "~*", "^a"},
		"number value":        {"arg_n", "==", 1.0},
		"other variable":      {"remote_addr", "==", "10.0.0.1"},
		"empty name":          {"http_", "==", "1"},
		"two elements":        {"http_x_debug", "1"},
	} {
		t.Run(name, func(t *testing.T) {
			if p, err := decodeVar(expr); err == nil {
				t.Errorf("decodeVar(%v) = %+v; want an error", expr, p)
			}
		})
	}
}
