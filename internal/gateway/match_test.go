package gateway

import (
	"net/http"
	"strings"
	"testing"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

func TestPredicates(t *testing.T) {
	header := func(name, match, value string) fledgev1.Predicate {
		return fledgev1.Predicate{Type: fledgev1.PredicateHeader, Name: name, Match: fledgev1.MatchType(match), Value: value}
	}
	cookie := func(name, match, value string) fledgev1.Predicate {
		return fledgev1.Predicate{Type: fledgev1.PredicateCookie, Name: name, Match: fledgev1.MatchType(match), Value: value}
	}
	query := func(name, match, value string) fledgev1.Predicate {
		return fledgev1.Predicate{Type: fledgev1.PredicateQuery, Name: name, Match: fledgev1.MatchType(match), Value: value}
	}
	// req builds a request for target with header lines "Name: value".
	req := func(target string, headers ...string) *http.Request {
		r := request("web.example", target)
		for _, h := range headers {
			k, v, _ := strings.Cut(h, ": ")
			r.Header.Add(k, v)
		}
		return r
	}
	tests := map[string]struct {
		match []fledgev1.Predicate
		req   *http.Request
		want  bool
	}{
		"no predicates never match":             {nil, req("/"), false},
		"header exact (default match)":          {[]fledgev1.Predicate{header("X-Canary", "", "yes")}, req("/", "X-Canary: yes"), true},
		"header exact, other value":             {[]fledgev1.Predicate{header("X-Canary", "Exact", "yes")}, req("/", "X-Canary: yes please"), false},
		"header name case-insensitive":          {[]fledgev1.Predicate{header("x-CANARY", "Exact", "yes")}, req("/", "X-Canary: yes"), true},
		"header value case-sensitive":           {[]fledgev1.Predicate{header("X-Canary", "Exact", "yes")}, req("/", "X-Canary: YES"), false},
		"header one of several lines":           {[]fledgev1.Predicate{header("X-Canary", "Exact", "b")}, req("/", "X-Canary: a", "X-Canary: b"), true},
		"header absent":                         {[]fledgev1.Predicate{header("X-Canary", "Exact", "")}, req("/"), false},
		"header regex unanchored":               {[]fledgev1.Predicate{header("User-Agent", "RegularExpression", "Fire(fox|bird)")}, req("/", "User-Agent: Mozilla Firefox/140"), true},
		"header regex no match":                 {[]fledgev1.Predicate{header("User-Agent", "RegularExpression", "^Fire")}, req("/", "User-Agent: Mozilla Firefox/140"), false},
		"header present, empty value":           {[]fledgev1.Predicate{header("X-Canary", "Present", "")}, req("/", "X-Canary: "), true},
		"header present, absent":                {[]fledgev1.Predicate{header("X-Canary", "Present", "")}, req("/", "X-Other: 1"), false},
		"Host header":                           {[]fledgev1.Predicate{header("host", "Exact", "web.example")}, req("/"), true},
		"cookie exact":                          {[]fledgev1.Predicate{cookie("canary", "Exact", "always")}, req("/", "Cookie: a=1; canary=always; b=2"), true},
		"cookie quoted value":                   {[]fledgev1.Predicate{cookie("canary", "Exact", "always")}, req("/", `Cookie: canary="always"`), true},
		"cookie in a second Cookie line":        {[]fledgev1.Predicate{cookie("canary", "Exact", "always")}, req("/", "Cookie: a=1", "Cookie: canary=always"), true},
		"cookie name is case-sensitive":         {[]fledgev1.Predicate{cookie("canary", "Exact", "always")}, req("/", "Cookie: Canary=always"), false},
		"cookie name prefix is not the cookie":  {[]fledgev1.Predicate{cookie("canary", "Present", "")}, req("/", "Cookie: canary2=x; xcanary=y"), false},
		"cookie other value":                    {[]fledgev1.Predicate{cookie("canary", "Exact", "always")}, req("/", "Cookie: canary=never"), false},
		"cookie regex":                          {[]fledgev1.Predicate{cookie("user", "RegularExpression", `^(alice|bob)$`)}, req("/", "Cookie: user=bob"), true},
		"cookie present with empty value":       {[]fledgev1.Predicate{cookie("canary", "Present", "")}, req("/", "Cookie: canary="), true},
		"cookie absent":                         {[]fledgev1.Predicate{cookie("canary", "Present", "")}, req("/"), false},
		"query exact":                           {[]fledgev1.Predicate{query("canary", "Exact", "on")}, req("/p?x=1&canary=on"), true},
		"query escaped name and value":          {[]fledgev1.Predicate{query("can ary", "Exact", "a b/c")}, req("/p?can+ary=a%20b%2Fc"), true},
		"query other value":                     {[]fledgev1.Predicate{query("canary", "Exact", "on")}, req("/p?canary=off"), false},
		"query name is case-sensitive":          {[]fledgev1.Predicate{query("canary", "Exact", "on")}, req("/p?Canary=on"), false},
		"query one of repeated values":          {[]fledgev1.Predicate{query("v", "Exact", "2")}, req("/p?v=1&v=2"), true},
		"query present without value":           {[]fledgev1.Predicate{query("debug", "Present", "")}, req("/p?debug"), true},
		"query absent":                          {[]fledgev1.Predicate{query("debug", "Present", "")}, req("/p?x=debug"), false},
		"query with a bad escape is ignored":    {[]fledgev1.Predicate{query("v", "Present", "")}, req("/p?v=%zz"), false},
		"query regex":                           {[]fledgev1.Predicate{query("v", "RegularExpression", `^\d+$`)}, req("/p?v=123"), true},
		"all predicates match":                  {[]fledgev1.Predicate{header("X-Canary", "Present", ""), query("v", "Exact", "2")}, req("/p?v=2", "X-Canary: 1"), true},
		"one predicate of two fails: no match":  {[]fledgev1.Predicate{header("X-Canary", "Present", ""), query("v", "Exact", "2")}, req("/p?v=3", "X-Canary: 1"), false},
		"cookie and header both required, both": {[]fledgev1.Predicate{cookie("c", "Exact", "1"), header("X-A", "Exact", "1")}, req("/", "Cookie: c=1", "X-A: 1"), true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ms, err := compileMatch(tc.match)
			if err != nil {
				t.Fatal(err)
			}
			if got := matchAll(ms, tc.req); got != tc.want {
				t.Errorf("matchAll = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCompileMatchErrors(t *testing.T) {
	tests := map[string]struct {
		p    fledgev1.Predicate
		want string
	}{
		"invalid regex":  {fledgev1.Predicate{Type: fledgev1.PredicateCookie, Name: "c", Match: fledgev1.MatchRegularExpression, Value: "a("}, `match[0]: invalid regular expression "a("`},
		"unknown type":   {fledgev1.Predicate{Type: "Body", Name: "c"}, `match[0]: unknown type "Body"`},
		"unknown match":  {fledgev1.Predicate{Type: fledgev1.PredicateQuery, Name: "c", Match: "Prefix"}, `match[0]: unknown match "Prefix"`},
		"empty name":     {fledgev1.Predicate{Type: fledgev1.PredicateHeader}, "match[0]: empty name"},
		"case of a type": {fledgev1.Predicate{Type: "header", Name: "c"}, `unknown type "header"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := compileMatch([]fledgev1.Predicate{tc.p})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("compileMatch error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
