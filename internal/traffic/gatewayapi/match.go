package gatewayapi

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// How fledge's predicates are written as one HTTPRouteMatch. Gateway API
// regular expressions are implementation specific: Envoy-based gateways
// match the whole value (Envoy's safe_regex), others may search it. Every
// expression below means the same under both readings.
const (
	// presentRegex is a Present predicate: any value, so only presence counts
	// (a header or query match never matches a request without the name).
	presentRegex = ".*"
	// A RegularExpression predicate R (unanchored, as Go's MatchString) is
	// written as ".*(R).*", which matches exactly the values R matches
	// anywhere. The wrapping also keeps Present unambiguous: a user's R of
	// ".*" is written ".*(.*).*", never ".*".
	regexPrefix = ".*("
	regexSuffix = ").*"
	// A Cookie predicate is a RegularExpression match on the Cookie header:
	// cookiePrefix + quoted name + "=" + quoted value (Exact) or
	// cookieAnyValue (Present) + cookieSuffix, e.g. for canary=always
	//
	//	^(.*;[ \t]*)?canary=always(;.*)?$
	//
	// that is, the pair at the start of the header or after a "; ", followed
	// by the end of the header or the next ";". Name and value are quoted by
	// regexp.QuoteMeta.
	cookieHeader   = "Cookie"
	cookiePrefix   = `^(.*;[ \t]*)?`
	cookieSuffix   = `(;.*)?$`
	cookieAnyValue = `=[^;]*`

	// Limits of the HTTPRoute CRD (standard channel).
	maxNameLen       = 256
	maxHeaderValue   = 4096
	maxQueryValue    = 1024
	maxMatchEntries  = 16
	ruleRootPath     = "/"
	unsupportedMatch = "cannot be written as a Gateway API match"
)

// token is an HTTP token (RFC 9110 tchar), the pattern of the CRD's header
// and query parameter names, and what a cookie name must be.
var token = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

func validName(s string) bool { return len(s) <= maxNameLen && token.MatchString(s) }

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%s %s: %w", fmt.Sprintf(format, args...), unsupportedMatch, errors.ErrUnsupported)
}

func rootPath() *gatewayv1.HTTPPathMatch {
	return &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To(ruleRootPath)}
}

// encodeMatch writes predicates, which are AND'ed, as one HTTPRouteMatch
// (whose headers and query parameters are AND'ed; separate matches would be
// OR'ed) on every path. Predicates it cannot represent yield an error wrapping
// errors.ErrUnsupported: regular expressions on cookies, two predicates on the
// same header (a Cookie predicate is one on the Cookie header) or query
// parameter, names that are not HTTP tokens, empty Exact values of headers and
// query parameters, values longer than the CRD allows, more than 16 headers or
// query parameters.
func encodeMatch(ps []fledgev1.Predicate) (gatewayv1.HTTPRouteMatch, error) {
	m := gatewayv1.HTTPRouteMatch{Path: rootPath()}
	headers := map[string]string{} // lowercased header name -> what uses it
	queries := map[string]bool{}
	for _, p := range ps {
		mt := cmp.Or(p.Match, fledgev1.MatchExact)
		switch p.Type {
		case fledgev1.PredicateHeader:
			if !validName(p.Name) {
				return m, unsupported("header name %q (not an HTTP token)", p.Name)
			}
			if prev, dup := headers[strings.ToLower(p.Name)]; dup {
				return m, unsupported("header %q twice (%s and header %s)", p.Name, prev, p.Name)
			}
			typ, v, err := encodeValue("header "+p.Name, mt, p.Value, maxHeaderValue)
			if err != nil {
				return m, err
			}
			headers[strings.ToLower(p.Name)] = "header " + p.Name
			m.Headers = append(m.Headers, gatewayv1.HTTPHeaderMatch{
				Type: ptr.To(gatewayv1.HeaderMatchType(typ)), Name: gatewayv1.HTTPHeaderName(p.Name), Value: v,
			})
		case fledgev1.PredicateQuery:
			if !validName(p.Name) {
				return m, unsupported("query parameter name %q (not an HTTP token)", p.Name)
			}
			if queries[p.Name] {
				return m, unsupported("query parameter %q twice", p.Name)
			}
			typ, v, err := encodeValue("query parameter "+p.Name, mt, p.Value, maxQueryValue)
			if err != nil {
				return m, err
			}
			queries[p.Name] = true
			m.QueryParams = append(m.QueryParams, gatewayv1.HTTPQueryParamMatch{
				Type: ptr.To(gatewayv1.QueryParamMatchType(typ)), Name: gatewayv1.HTTPHeaderName(p.Name), Value: v,
			})
		case fledgev1.PredicateCookie:
			v, err := cookieRegex(p.Name, mt, p.Value)
			if err != nil {
				return m, err
			}
			if prev, dup := headers[strings.ToLower(cookieHeader)]; dup {
				return m, unsupported("cookie %q (the Cookie header is already used by %s)", p.Name, prev)
			}
			if len(v) > maxHeaderValue {
				return m, unsupported("cookie %q (longer than %d bytes)", p.Name, maxHeaderValue)
			}
			headers[strings.ToLower(cookieHeader)] = "cookie " + p.Name
			m.Headers = append(m.Headers, gatewayv1.HTTPHeaderMatch{
				Type: ptr.To(gatewayv1.HeaderMatchRegularExpression), Name: cookieHeader, Value: v,
			})
		default:
			return m, fmt.Errorf("predicate type %q unknown (want %s, %s or %s)", p.Type,
				fledgev1.PredicateHeader, fledgev1.PredicateCookie, fledgev1.PredicateQuery)
		}
	}
	if len(m.Headers) > maxMatchEntries || len(m.QueryParams) > maxMatchEntries {
		return m, unsupported("%d headers and %d query parameters (at most %d each)", len(m.Headers), len(m.QueryParams), maxMatchEntries)
	}
	slices.SortFunc(m.Headers, func(a, b gatewayv1.HTTPHeaderMatch) int {
		return cmp.Or(cmp.Compare(strings.ToLower(string(a.Name)), strings.ToLower(string(b.Name))), cmp.Compare(a.Name, b.Name))
	})
	slices.SortFunc(m.QueryParams, func(a, b gatewayv1.HTTPQueryParamMatch) int { return cmp.Compare(a.Name, b.Name) })
	return m, nil
}

// encodeValue returns the Gateway API match type (Exact or
// RegularExpression) and value of a header or query parameter predicate.
func encodeValue(what string, mt fledgev1.MatchType, value string, maxLen int) (string, string, error) {
	var typ, v string
	switch mt {
	case fledgev1.MatchExact:
		if value == "" {
			return "", "", unsupported("%s: exact empty value", what)
		}
		typ, v = "Exact", value
	case fledgev1.MatchRegularExpression:
		if _, err := regexp.Compile(value); err != nil {
			return "", "", fmt.Errorf("%s: invalid regular expression: %w", what, err)
		}
		typ, v = "RegularExpression", regexPrefix+value+regexSuffix
		// An expression that compiles alone can still swallow the wrapping's
		// ")" (an unterminated \Q...): then it cannot be wrapped.
		if _, err := regexp.Compile(v); err != nil {
			return "", "", unsupported("%s: regular expression %q (cannot be wrapped as %s...%s)", what, value, regexPrefix, regexSuffix)
		}
	case fledgev1.MatchPresent:
		typ, v = "RegularExpression", presentRegex
	default:
		return "", "", fmt.Errorf("%s: match type %q unknown (want %s, %s or %s)", what, mt,
			fledgev1.MatchExact, fledgev1.MatchRegularExpression, fledgev1.MatchPresent)
	}
	if len(v) > maxLen {
		return "", "", unsupported("%s (value longer than %d bytes)", what, maxLen)
	}
	return typ, v, nil
}

// decodeValue is the inverse of encodeValue; typ "" means Exact (the CRD's
// default).
func decodeValue(what, typ, v string) (fledgev1.MatchType, string, error) {
	switch typ {
	case "", "Exact":
		return fledgev1.MatchExact, v, nil
	case "RegularExpression":
		if v == presentRegex {
			return fledgev1.MatchPresent, "", nil
		}
		if len(v) >= len(regexPrefix)+len(regexSuffix) && strings.HasPrefix(v, regexPrefix) && strings.HasSuffix(v, regexSuffix) {
			inner := v[len(regexPrefix) : len(v)-len(regexSuffix)]
			if _, err := regexp.Compile(inner); err == nil {
				return fledgev1.MatchRegularExpression, inner, nil
			}
		}
		return "", "", fmt.Errorf("%s: regular expression %q is not one fledge writes", what, v)
	default:
		return "", "", fmt.Errorf("%s: match type %q unknown", what, typ)
	}
}

// decodeMatch reads back the predicates of an HTTPRouteMatch encodeMatch wrote.
func decodeMatch(m gatewayv1.HTTPRouteMatch) ([]fledgev1.Predicate, error) {
	if p := m.Path; p != nil && (p.Type != nil && *p.Type != gatewayv1.PathMatchPathPrefix || p.Value != nil && *p.Value != ruleRootPath) {
		return nil, fmt.Errorf("path match %s %q: fledge matches every path", deref(p.Type), deref(p.Value))
	}
	if m.Method != nil {
		return nil, fmt.Errorf("method match %s: fledge matches every method", *m.Method)
	}
	var ps []fledgev1.Predicate
	for _, h := range m.Headers {
		typ := string(deref(h.Type))
		if strings.EqualFold(string(h.Name), cookieHeader) && typ == "RegularExpression" {
			if p, ok := parseCookieRegex(h.Value); ok {
				ps = append(ps, p)
				continue
			}
		}
		mt, v, err := decodeValue("header "+string(h.Name), typ, h.Value)
		if err != nil {
			return nil, err
		}
		ps = append(ps, fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: string(h.Name), Match: mt, Value: v})
	}
	for _, q := range m.QueryParams {
		mt, v, err := decodeValue("query parameter "+string(q.Name), string(deref(q.Type)), q.Value)
		if err != nil {
			return nil, err
		}
		ps = append(ps, fledgev1.Predicate{Type: fledgev1.PredicateQuery, Name: string(q.Name), Match: mt, Value: v})
	}
	return ps, nil
}

// cookieRegex returns the regular expression on the Cookie header that
// matches requests carrying cookie name with value (Exact) or with any value
// (Present). Regular expressions on a cookie's value are unsupported: a
// Gateway API expression sees the whole header, so neither anchors nor the
// extent of the value would keep their meaning.
func cookieRegex(name string, mt fledgev1.MatchType, value string) (string, error) {
	if !validName(name) {
		return "", unsupported("cookie name %q (not an HTTP token)", name)
	}
	switch mt {
	case fledgev1.MatchExact:
		if !validCookieValue(value) {
			return "", unsupported("cookie %q value %q (contains \";\" or a control character)", name, value)
		}
		return cookiePrefix + regexp.QuoteMeta(name) + "=" + regexp.QuoteMeta(value) + cookieSuffix, nil
	case fledgev1.MatchPresent:
		return cookiePrefix + regexp.QuoteMeta(name) + cookieAnyValue + cookieSuffix, nil
	case fledgev1.MatchRegularExpression:
		return "", unsupported("cookie %q regular expression", name)
	default:
		return "", fmt.Errorf("cookie %q: match type %q unknown (want %s or %s)", name, mt, fledgev1.MatchExact, fledgev1.MatchPresent)
	}
}

// parseCookieRegex is the inverse of cookieRegex; ok is false for any other
// expression.
func parseCookieRegex(s string) (p fledgev1.Predicate, ok bool) {
	mid, ok1 := strings.CutPrefix(s, cookiePrefix)
	mid, ok2 := strings.CutSuffix(mid, cookieSuffix)
	if !ok1 || !ok2 {
		return p, false
	}
	if qname, ok := strings.CutSuffix(mid, cookieAnyValue); ok {
		if name, ok := unquoteMeta(qname); ok && validName(name) {
			return fledgev1.Predicate{Type: fledgev1.PredicateCookie, Name: name, Match: fledgev1.MatchPresent}, true
		}
	}
	// A name is a token, so the first "=" ends it.
	qname, qvalue, found := strings.Cut(mid, "=")
	name, okName := unquoteMeta(qname)
	value, okValue := unquoteMeta(qvalue)
	if !found || !okName || !okValue || !validName(name) || !validCookieValue(value) {
		return p, false
	}
	return fledgev1.Predicate{Type: fledgev1.PredicateCookie, Name: name, Match: fledgev1.MatchExact, Value: value}, true
}

func validCookieValue(v string) bool {
	return !strings.ContainsFunc(v, func(r rune) bool { return r == ';' || r < 0x20 || r == 0x7f })
}

// metaChars are the bytes regexp.QuoteMeta escapes.
const metaChars = `\.+*?()|[]{}^$`

// unquoteMeta is the inverse of regexp.QuoteMeta: ok is false unless s is
// exactly QuoteMeta of the result.
func unquoteMeta(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' {
			if i+1 == len(s) || !strings.ContainsRune(metaChars, rune(s[i+1])) {
				return "", false
			}
			i++
			c = s[i]
		} else if strings.ContainsRune(metaChars, rune(c)) {
			return "", false
		}
		b.WriteByte(c)
	}
	return b.String(), true
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
