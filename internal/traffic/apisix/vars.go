package apisix

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// Predicates become lua-resty-expr expressions in a traffic-split rule's
// match[].vars; all expressions of one vars list must hold (AND).
//
//	Header X-Debug   -> variable "http_x_debug" (lowercase, "-" becomes "_")
//	Cookie canary    -> variable "cookie_canary"
//	Query  canary    -> variable "arg_canary"
//
//	Exact             ["<var>", "==", "<value>"]
//	RegularExpression ["<var>", "~~", "<value>"]   (PCRE, unanchored, like Go's MatchString)
//	Present           ["<var>", "~*", ".*"]
//
// Present: lua-resty-expr's "~*" (case-insensitive regular expression) is false
// when the variable is absent (nil) and ".*" matches every string, including an
// empty value, so the expression holds exactly when the header, cookie or query
// argument is present. fledge writes "~*" for nothing else, so reading it back is
// unambiguous; the usual ["<var>", "~~", ".+"] is not used because it would read
// back as RegularExpression ".+" and misses present-but-empty values.
const (
	opExact   = "=="
	opRegex   = "~~"
	opPresent = "~*"
	// presentPattern is the value written with opPresent.
	presentPattern = ".*"

	varHeader = "http_"
	varCookie = "cookie_"
	varQuery  = "arg_"
)

var (
	// headerNameRE: header names fledge can map to an nginx variable and back.
	// Underscores are refused: nginx drops such headers by default
	// (underscores_in_headers off), and "_" and "-" both become "_".
	headerNameRE = regexp.MustCompile(`^[A-Za-z0-9-]+$`)
	// argNameRE: cookie and query names usable in cookie_/arg_ variables.
	argNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

// encodeVars turns predicates into a vars list (never empty for non-empty ps).
func encodeVars(ps []fledgev1.Predicate) ([][]string, error) {
	vars := make([][]string, 0, len(ps))
	for _, p := range ps {
		v, err := encodeVar(p)
		if err != nil {
			return nil, err
		}
		vars = append(vars, v)
	}
	return vars, nil
}

func encodeVar(p fledgev1.Predicate) ([]string, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%s %q: %w: %w", p.Type, p.Name, err, ErrInvalidRoute)
	}
	var name string
	switch p.Type {
	case fledgev1.PredicateHeader:
		if !headerNameRE.MatchString(p.Name) {
			return nil, fmt.Errorf("header name %q: apisix supports only letters, digits and '-': %w", p.Name, errors.ErrUnsupported)
		}
		name = varHeader + strings.ReplaceAll(strings.ToLower(p.Name), "-", "_")
	case fledgev1.PredicateCookie:
		if !argNameRE.MatchString(p.Name) {
			return nil, fmt.Errorf("cookie name %q: apisix supports only letters, digits, '-' and '_': %w", p.Name, errors.ErrUnsupported)
		}
		name = varCookie + p.Name
	default: // PredicateQuery
		if !argNameRE.MatchString(p.Name) {
			return nil, fmt.Errorf("query parameter name %q: apisix supports only letters, digits, '-' and '_': %w", p.Name, errors.ErrUnsupported)
		}
		name = varQuery + p.Name
	}
	switch p.Match {
	case fledgev1.MatchRegularExpression:
		return []string{name, opRegex, p.Value}, nil
	case fledgev1.MatchPresent:
		return []string{name, opPresent, presentPattern}, nil
	default: // Exact, or empty
		return []string{name, opExact, p.Value}, nil
	}
}

// decodeVars is the inverse of encodeVars. Expressions fledge does not write
// (other operators, "!" negation, non-string values) are an error: Observe must
// not claim a routing it cannot represent.
func decodeVars(vars [][]any) ([]fledgev1.Predicate, error) {
	ps := make([]fledgev1.Predicate, 0, len(vars))
	for _, v := range vars {
		p, err := decodeVar(v)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func decodeVar(expr []any) (fledgev1.Predicate, error) {
	if len(expr) != 3 {
		return fledgev1.Predicate{}, fmt.Errorf("vars expression %v: not written by fledge (want [variable, operator, value])", expr)
	}
	s := make([]string, 3)
	for i, e := range expr {
		str, ok := e.(string)
		if !ok {
			return fledgev1.Predicate{}, fmt.Errorf("vars expression %v: not written by fledge (element %d is not a string)", expr, i)
		}
		s[i] = str
	}
	name, op, value := s[0], s[1], s[2]
	var p fledgev1.Predicate
	switch {
	case strings.HasPrefix(name, varHeader):
		p.Type = fledgev1.PredicateHeader
		p.Name = strings.ReplaceAll(strings.TrimPrefix(name, varHeader), "_", "-")
	case strings.HasPrefix(name, varCookie):
		p.Type = fledgev1.PredicateCookie
		p.Name = strings.TrimPrefix(name, varCookie)
	case strings.HasPrefix(name, varQuery):
		p.Type = fledgev1.PredicateQuery
		p.Name = strings.TrimPrefix(name, varQuery)
	default:
		return fledgev1.Predicate{}, fmt.Errorf("vars expression %v: variable %q is not a header, cookie or query argument", expr, name)
	}
	if p.Name == "" {
		return fledgev1.Predicate{}, fmt.Errorf("vars expression %v: empty name", expr)
	}
	switch {
	case op == opExact:
		p.Match, p.Value = fledgev1.MatchExact, value
	case op == opRegex:
		p.Match, p.Value = fledgev1.MatchRegularExpression, value
	case op == opPresent && value == presentPattern:
		p.Match = fledgev1.MatchPresent
	default:
		return fledgev1.Predicate{}, fmt.Errorf("vars expression %v: operator %q with value %q is not written by fledge", expr, op, value)
	}
	return p, nil
}
