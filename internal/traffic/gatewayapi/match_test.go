package gatewayapi

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/traffic"
	"github.com/fledge-dev/fledge/internal/traffic/routertest"
)

// matchesBothWays reports whether re matches v as a search (Go's MatchString,
// fledge's own semantics) and as a whole-value match (Envoy's safe_regex), failing the
// test when the two readings disagree: fledge's expressions must not depend
// on the gateway's dialect.
func matchesBothWays(t *testing.T, re, v string) bool {
	t.Helper()
	search := regexp.MustCompile(re).MatchString(v)
	whole := regexp.MustCompile(`^(?:` + re + `)$`).MatchString(v)
	if search != whole {
		t.Errorf("%q on %q: search %v, whole-value match %v; want the same", re, v, search, whole)
	}
	return search
}

func TestCookieRegexRoundTripAndSemantics(t *testing.T) {
	tests := []struct {
		name    string
		cookie  string
		match   fledgev1.MatchType
		value   string
		want    string   // the expression
		matches []string // Cookie headers it matches
		misses  []string // Cookie headers it does not match
	}{
		{
			name: "exact", cookie: "canary", match: fledgev1.MatchExact, value: "always",
			want:    `^(.*;[ \t]*)?canary=always(;.*)?$`,
			matches: []string{"canary=always", "a=1; canary=always", "canary=always; b=2", "a=1;canary=always;b=2", "canary=always;"},
			misses:  []string{"", "canary=alwaysX", "canary=al", "xcanary=always", "canary=never", "a=canary=always", "Canary=always", "b=1; canary"},
		},
		{
			name: "present", cookie: "beta", match: fledgev1.MatchPresent,
			want:    `^(.*;[ \t]*)?beta=[^;]*(;.*)?$`,
			matches: []string{"beta=", "beta=1", "x=1; beta=yes; y=2"},
			misses:  []string{"", "beta", "xbeta=1", "betax=1", "a=beta=1"},
		},
		{
			name: "empty value", cookie: "canary", match: fledgev1.MatchExact, value: "",
			want:    `^(.*;[ \t]*)?canary=(;.*)?$`,
			matches: []string{"canary=", "a=1; canary=; b=2"},
			misses:  []string{"canary=1"},
		},
		{
			name: "regular expression characters are literal", cookie: "a.b$c|d", match: fledgev1.MatchExact, value: "x+y=(z)*[1]",
			want:    `^(.*;[ \t]*)?a\.b\$c\|d=x\+y=\(z\)\*\[1\](;.*)?$`,
			matches: []string{"a.b$c|d=x+y=(z)*[1]", "s=1; a.b$c|d=x+y=(z)*[1]"},
			misses:  []string{"aXb$c|d=x+y=(z)*[1]", "a.b$c|d=xxy=(z)*[1]", "a.b$c|d=x+y=(z)1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			re, err := cookieRegex(tc.cookie, tc.match, tc.value)
			if err != nil {
				t.Fatalf("cookieRegex: %v", err)
			}
			if re != tc.want {
				t.Errorf("cookieRegex = %s; want %s", re, tc.want)
			}
			p, ok := parseCookieRegex(re)
			want := fledgev1.Predicate{Type: fledgev1.PredicateCookie, Name: tc.cookie, Match: tc.match, Value: tc.value}
			if !ok || p != want {
				t.Errorf("parseCookieRegex(%s) = %+v, %v; want %+v", re, p, ok, want)
			}
			for _, h := range tc.matches {
				if !matchesBothWays(t, re, h) {
					t.Errorf("%s does not match Cookie: %q", re, h)
				}
			}
			for _, h := range tc.misses {
				if matchesBothWays(t, re, h) {
					t.Errorf("%s matches Cookie: %q", re, h)
				}
			}
		})
	}
}

func TestParseCookieRegexRejectsOtherExpressions(t *testing.T) {
	for _, s := range []string{
		`(^|;\s*)canary=always(;|$)`,              // the unanchored form, not fledge's
		`^(.*;[ \t]*)?canary=al.ays(;.*)?$`,       // an unescaped metacharacter
		`^(.*;[ \t]*)?canary=always\(;.*)?$`,      // prefix and suffix, but an odd middle
		`^(.*;[ \t]*)?canary(;.*)?$`,              // no "="
		`^(.*;[ \t]*)?=always(;.*)?$`,             // no name
		`^(.*;[ \t]*)?ca\nary=always(;.*)?$`,      // an escape QuoteMeta never writes
		`^(.*;[ \t]*)?canary=always\`,             // no suffix
		`^(.*;[ \t]*)?can ary=always(;.*)?$`,      // a name that is not a token
		`^(.*;[ \t]*)?canary=a;b(;.*)?$`,          // ";" in the value
		`^(.*;[ \t]*)?canary=[^;]+(;.*)?$`,        // not fledge's Present
		`.*(^(.*;[ \t]*)?canary=always(;.*)?$).*`, // a wrapped regular expression
	} {
		if p, ok := parseCookieRegex(s); ok {
			t.Errorf("parseCookieRegex(%s) = %+v; want not fledge's cookie form", s, p)
		}
	}
}

// TestRegexEncodingMeansTheSame: ".*(R).*" matches what R matches anywhere in
// the value, under both dialect readings, and ".*" (Present) any value.
func TestRegexEncodingMeansTheSame(t *testing.T) {
	values := []string{"", "beta-1", "alpha-beta-1", "Mozilla/5.0 Firefox/128.0", "firefox", "x", "2.10", "12.1", "a\tb"}
	for _, r := range []string{"^beta-", "beta-", "Firefox/[0-9]+", "(?i)firefox|chrome", "^2\\.[0-9]+$", "1$", "", ".*", "a|b", "^$"} {
		_, wrapped, err := encodeValue("header X", fledgev1.MatchRegularExpression, r, maxHeaderValue)
		if err != nil {
			t.Fatalf("encodeValue(%q): %v", r, err)
		}
		for _, v := range values {
			want := regexp.MustCompile(r).MatchString(v)
			if got := matchesBothWays(t, wrapped, v); got != want {
				t.Errorf("%s on %q = %v; want %v as %q unanchored", wrapped, v, got, want, r)
			}
		}
		mt, back, err := decodeValue("header X", "RegularExpression", wrapped)
		if err != nil || mt != fledgev1.MatchRegularExpression || back != r {
			t.Errorf("decodeValue(%s) = %s %q, %v; want RegularExpression %q", wrapped, mt, back, err, r)
		}
	}
	for _, v := range values {
		if !matchesBothWays(t, presentRegex, v) {
			t.Errorf("Present's %s does not match %q", presentRegex, v)
		}
	}
}

func TestEncodeMatchRoundTrip(t *testing.T) {
	h := func(name string, m fledgev1.MatchType, v string) fledgev1.Predicate {
		return fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: name, Match: m, Value: v}
	}
	c := func(name string, m fledgev1.MatchType, v string) fledgev1.Predicate {
		return fledgev1.Predicate{Type: fledgev1.PredicateCookie, Name: name, Match: m, Value: v}
	}
	q := func(name string, m fledgev1.MatchType, v string) fledgev1.Predicate {
		return fledgev1.Predicate{Type: fledgev1.PredicateQuery, Name: name, Match: m, Value: v}
	}
	tests := []struct {
		name    string
		in      []fledgev1.Predicate
		headers []gatewayv1.HTTPHeaderMatch
		queries []gatewayv1.HTTPQueryParamMatch
	}{
		{
			name:    "header exact, empty match type",
			in:      []fledgev1.Predicate{h("X-Debug", "", "1")},
			headers: []gatewayv1.HTTPHeaderMatch{{Type: ptr.To(gatewayv1.HeaderMatchExact), Name: "X-Debug", Value: "1"}},
		},
		{
			name:    "header present and regular expression, sorted by name",
			in:      []fledgev1.Predicate{h("x-tenant", fledgev1.MatchRegularExpression, "^beta-"), h("X-Canary", fledgev1.MatchPresent, "ignored")},
			headers: []gatewayv1.HTTPHeaderMatch{{Type: ptr.To(gatewayv1.HeaderMatchRegularExpression), Name: "X-Canary", Value: ".*"}, {Type: ptr.To(gatewayv1.HeaderMatchRegularExpression), Name: "x-tenant", Value: ".*(^beta-).*"}},
		},
		{
			name:    "cookie beside headers",
			in:      []fledgev1.Predicate{c("canary", fledgev1.MatchExact, "always"), h("X-Debug", fledgev1.MatchExact, "1")},
			headers: []gatewayv1.HTTPHeaderMatch{{Type: ptr.To(gatewayv1.HeaderMatchRegularExpression), Name: "Cookie", Value: `^(.*;[ \t]*)?canary=always(;.*)?$`}, {Type: ptr.To(gatewayv1.HeaderMatchExact), Name: "X-Debug", Value: "1"}},
		},
		{
			name: "query kinds",
			in:   []fledgev1.Predicate{q("v", fledgev1.MatchRegularExpression, "^2"), q("canary", fledgev1.MatchExact, "true"), q("debug", fledgev1.MatchPresent, "")},
			queries: []gatewayv1.HTTPQueryParamMatch{
				{Type: ptr.To(gatewayv1.QueryParamMatchExact), Name: "canary", Value: "true"},
				{Type: ptr.To(gatewayv1.QueryParamMatchRegularExpression), Name: "debug", Value: ".*"},
				{Type: ptr.To(gatewayv1.QueryParamMatchRegularExpression), Name: "v", Value: ".*(^2).*"},
			},
		},
		{
			name:    "a Cookie header regular expression is a header predicate",
			in:      []fledgev1.Predicate{h("Cookie", fledgev1.MatchRegularExpression, "session=")},
			headers: []gatewayv1.HTTPHeaderMatch{{Type: ptr.To(gatewayv1.HeaderMatchRegularExpression), Name: "Cookie", Value: ".*(session=).*"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := encodeMatch(tc.in)
			if err != nil {
				t.Fatalf("encodeMatch: %v", err)
			}
			if m.Path == nil || *m.Path.Type != gatewayv1.PathMatchPathPrefix || *m.Path.Value != "/" || m.Method != nil {
				t.Errorf("path %+v, method %v; want PathPrefix / and no method", m.Path, m.Method)
			}
			if !equalHeaders(m.Headers, tc.headers) {
				t.Errorf("headers = %s; want %s", dumpHeaders(m.Headers), dumpHeaders(tc.headers))
			}
			if !equalQueries(m.QueryParams, tc.queries) {
				t.Errorf("queryParams = %+v; want %+v", m.QueryParams, tc.queries)
			}
			back, err := decodeMatch(m)
			if err != nil {
				t.Fatalf("decodeMatch: %v", err)
			}
			route := func(ps []fledgev1.Predicate) traffic.Route {
				return traffic.Route{Canary: &traffic.Backend{}, Match: ps}
			}
			if d := routertest.Equal(route(back), route(tc.in)); d != "" {
				t.Errorf("decodeMatch(encodeMatch(x)) != x:\n%s", d)
			}
		})
	}
}

func equalHeaders(a, b []gatewayv1.HTTPHeaderMatch) bool {
	return dumpHeaders(a) == dumpHeaders(b)
}

func dumpHeaders(hs []gatewayv1.HTTPHeaderMatch) string {
	var s []string
	for _, h := range hs {
		s = append(s, string(deref(h.Type))+" "+string(h.Name)+" "+h.Value)
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func equalQueries(a, b []gatewayv1.HTTPQueryParamMatch) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if deref(a[i].Type) != deref(b[i].Type) || a[i].Name != b[i].Name || a[i].Value != b[i].Value {
			return false
		}
	}
	return true
}

func TestEncodeMatchRefuses(t *testing.T) {
	h := fledgev1.PredicateHeader
	tests := []struct {
		name        string
		in          []fledgev1.Predicate
		unsupported bool // else a plain invalid-input error
		mention     string
	}{
		{"cookie regular expression", []fledgev1.Predicate{{Type: fledgev1.PredicateCookie, Name: "b", Match: fledgev1.MatchRegularExpression, Value: "y"}}, true, `cookie "b"`},
		{"two cookies", []fledgev1.Predicate{{Type: fledgev1.PredicateCookie, Name: "a", Value: "1"}, {Type: fledgev1.PredicateCookie, Name: "b", Value: "2"}}, true, "Cookie header"},
		{"cookie and a Cookie header predicate", []fledgev1.Predicate{{Type: h, Name: "cookie", Match: fledgev1.MatchPresent}, {Type: fledgev1.PredicateCookie, Name: "a", Value: "1"}}, true, "Cookie header"},
		{"same header twice", []fledgev1.Predicate{{Type: h, Name: "X-A", Value: "1"}, {Type: h, Name: "x-a", Value: "2"}}, true, "twice"},
		{"same query parameter twice", []fledgev1.Predicate{{Type: fledgev1.PredicateQuery, Name: "a", Value: "1"}, {Type: fledgev1.PredicateQuery, Name: "a", Match: fledgev1.MatchPresent}}, true, "twice"},
		{"header name not a token", []fledgev1.Predicate{{Type: h, Name: "X A", Value: "1"}}, true, "token"},
		{"cookie name not a token", []fledgev1.Predicate{{Type: fledgev1.PredicateCookie, Name: "a=b", Value: "1"}}, true, "token"},
		{"cookie value with ;", []fledgev1.Predicate{{Type: fledgev1.PredicateCookie, Name: "a", Value: "1;b=2"}}, true, `"1;b=2"`},
		{"empty exact header value", []fledgev1.Predicate{{Type: h, Name: "X-A"}}, true, "empty"},
		{"query value too long", []fledgev1.Predicate{{Type: fledgev1.PredicateQuery, Name: "q", Value: strings.Repeat("x", 1025)}}, true, "1024"},
		{"17 headers", func() []fledgev1.Predicate {
			var ps []fledgev1.Predicate
			for i := range 17 {
				ps = append(ps, fledgev1.Predicate{Type: h, Name: "X-" + string(rune('a'+i)), Match: fledgev1.MatchPresent})
			}
			return ps
		}(), true, "17 headers"},
		{"regular expression that swallows the wrapping", []fledgev1.Predicate{{Type: h, Name: "X-A", Match: fledgev1.MatchRegularExpression, Value: `\Qabc`}}, true, "cannot be wrapped"},
		{"invalid regular expression", []fledgev1.Predicate{{Type: h, Name: "X-A", Match: fledgev1.MatchRegularExpression, Value: "("}}, false, "invalid regular expression"},
		{"unknown predicate type", []fledgev1.Predicate{{Type: "Body", Name: "x", Value: "1"}}, false, `"Body" unknown`},
		{"unknown match type", []fledgev1.Predicate{{Type: h, Name: "X-A", Match: "Prefix", Value: "1"}}, false, `"Prefix" unknown`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := encodeMatch(tc.in)
			if err == nil {
				t.Fatal("encodeMatch succeeded; want an error")
			}
			if errors.Is(err, errors.ErrUnsupported) != tc.unsupported {
				t.Errorf("encodeMatch = %v; wraps errors.ErrUnsupported: %v, want %v", err, !tc.unsupported, tc.unsupported)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("encodeMatch = %v; want it to mention %q", err, tc.mention)
			}
		})
	}
}

// TestDecodeMatchRejectsForeignForms: Observe does not guess at matches fledge
// does not write.
func TestDecodeMatchRejectsForeignForms(t *testing.T) {
	re := ptr.To(gatewayv1.HeaderMatchRegularExpression)
	tests := map[string]gatewayv1.HTTPRouteMatch{
		"bare regular expression": {Headers: []gatewayv1.HTTPHeaderMatch{{Type: re, Name: "X-A", Value: "^beta"}}},
		"two wrapped halves":      {Headers: []gatewayv1.HTTPHeaderMatch{{Type: re, Name: "X-A", Value: ".*(a).*(b).*"}}},
		"bare query expression":   {QueryParams: []gatewayv1.HTTPQueryParamMatch{{Type: ptr.To(gatewayv1.QueryParamMatchRegularExpression), Name: "q", Value: "x+"}}},
		"a narrower path":         {Path: &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To("/api")}},
		"an exact path":           {Path: &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchExact), Value: ptr.To("/")}},
		"a method":                {Method: ptr.To(gatewayv1.HTTPMethodGet)},
		"a foreign Cookie regex":  {Headers: []gatewayv1.HTTPHeaderMatch{{Type: re, Name: "Cookie", Value: `(^|;\s*)a=1(;|$)`}}},
	}
	for name, m := range tests {
		if ps, err := decodeMatch(m); err == nil {
			t.Errorf("%s: decodeMatch = %+v; want an error", name, ps)
		}
	}
}
