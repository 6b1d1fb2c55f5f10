package gateway

import (
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"strings"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// matcher is a compiled Predicate.
type matcher struct {
	// typ is the part of the request looked at.
	typ fledgev1.PredicateType
	// name is the header (canonical form), cookie or query parameter name.
	name string
	// match is how the value is compared; never empty.
	match fledgev1.MatchType
	// value is the exact value for MatchExact.
	value string
	// re is the compiled expression for MatchRegularExpression.
	re *regexp.Regexp
}

// compileMatch compiles a route's predicates. An invalid predicate
// (fledgev1.Predicate.Validate) is an error naming it.
func compileMatch(ps []fledgev1.Predicate) ([]matcher, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	ms := make([]matcher, 0, len(ps))
	for i, p := range ps {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("match[%d]: %w", i, err)
		}
		m := matcher{typ: p.Type, name: p.Name, match: p.Match, value: p.Value}
		if p.Type == fledgev1.PredicateHeader {
			m.name = textproto.CanonicalMIMEHeaderKey(p.Name)
		}
		switch p.Match {
		case "":
			m.match = fledgev1.MatchExact
		case fledgev1.MatchRegularExpression:
			m.re = regexp.MustCompile(p.Value) // compiles: validated above
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// matchAll reports whether r matches every matcher of ms; false for none.
func matchAll(ms []matcher, r *http.Request) bool {
	if len(ms) == 0 {
		return false
	}
	for i := range ms {
		if !ms[i].matches(r) {
			return false
		}
	}
	return true
}

// matches reports whether one value of the header, cookie or query parameter
// passes the comparison. It does not allocate unless a query value is escaped.
func (m *matcher) matches(r *http.Request) bool {
	switch m.typ {
	case fledgev1.PredicateHeader:
		if m.name == "Host" { // net/http moves Host out of the header map
			return m.test(r.Host)
		}
		for _, v := range r.Header[m.name] {
			if m.test(v) {
				return true
			}
		}
	case fledgev1.PredicateCookie:
		for _, line := range r.Header["Cookie"] {
			if m.matchCookies(line) {
				return true
			}
		}
	case fledgev1.PredicateQuery:
		return m.matchQuery(r.URL.RawQuery)
	}
	return false
}

func (m *matcher) test(v string) bool {
	switch m.match {
	case fledgev1.MatchPresent:
		return true
	case fledgev1.MatchRegularExpression:
		return m.re.MatchString(v)
	default:
		return v == m.value
	}
}

// matchCookies scans one Cookie header line ("a=1; b=2") for the cookie m.name,
// as net/http reads cookies (optional double quotes around the value).
func (m *matcher) matchCookies(line string) bool {
	for line != "" {
		var part string
		part, line, _ = strings.Cut(line, ";")
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || strings.TrimSpace(name) != m.name {
			continue
		}
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
		}
		if m.test(val) {
			return true
		}
	}
	return false
}

// matchQuery scans a raw query ("a=1&b=x%20y") for the parameter m.name, decoding
// as url.ParseQuery does (pairs with a semicolon or a bad escape are ignored).
func (m *matcher) matchQuery(raw string) bool {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if kv == "" || strings.Contains(kv, ";") {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		k, ok := queryUnescape(k)
		if !ok || k != m.name {
			continue
		}
		if v, ok = queryUnescape(v); ok && m.test(v) {
			return true
		}
	}
	return false
}

func queryUnescape(s string) (string, bool) {
	if !strings.ContainsAny(s, "%+") {
		return s, true
	}
	u, err := url.QueryUnescape(s)
	return u, err == nil
}
