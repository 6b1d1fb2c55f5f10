package v1alpha1

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseProvider(t *testing.T) {
	for _, p := range Providers {
		if got, err := ParseProvider(string(p)); err != nil || got != p {
			t.Errorf("ParseProvider(%q) = %q, %v", p, got, err)
		}
	}
	for _, s := range []string{"", "nginx", "Embedded", " apisix"} {
		if _, err := ParseProvider(s); err == nil || !strings.Contains(err.Error(), "embedded, apisix or gatewayapi") {
			t.Errorf("ParseProvider(%q) = %v; want an error listing the providers", s, err)
		}
	}
}

func TestPredicateValidate(t *testing.T) {
	tests := map[string]struct {
		p    Predicate
		want string // part of the error; "" when valid
	}{
		"exact header":            {p: Predicate{Type: PredicateHeader, Name: "X-Debug", Value: "1"}},
		"explicit exact":          {p: Predicate{Type: PredicateCookie, Name: "beta", Match: MatchExact, Value: "yes"}},
		"present query":           {p: Predicate{Type: PredicateQuery, Name: "debug", Match: MatchPresent}},
		"regular expression":      {p: Predicate{Type: PredicateHeader, Name: "User-Agent", Match: MatchRegularExpression, Value: "Firefox/1[0-9]{2}"}},
		"empty exact value":       {p: Predicate{Type: PredicateHeader, Name: "X-Debug"}},
		"empty name":              {p: Predicate{Type: PredicateHeader}, want: "empty name"},
		"unknown type":            {p: Predicate{Type: "Body", Name: "x"}, want: `unknown type "Body"`},
		"lowercase type":          {p: Predicate{Type: "header", Name: "x"}, want: `unknown type "header"`},
		"unknown match":           {p: Predicate{Type: PredicateQuery, Name: "x", Match: "Prefix"}, want: `unknown match "Prefix"`},
		"invalid regex":           {p: Predicate{Type: PredicateCookie, Name: "x", Match: MatchRegularExpression, Value: "a("}, want: `invalid regular expression "a("`},
		"name checked before all": {p: Predicate{Type: "Body", Match: "Prefix"}, want: "empty name"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.p.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate() = %v; want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate() = %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestTrafficRouteSpecValidate(t *testing.T) {
	valid := func() TrafficRouteSpec {
		return TrafficRouteSpec{Host: "web", Stable: BackendRef{Service: "v1", Port: 80},
			Canary: &BackendRef{Service: "v2", Port: 8080}, CanaryWeight: 10,
			Match: []Predicate{{Type: PredicateHeader, Name: "X-Debug", Value: "1"}}}
	}
	tests := map[string]struct {
		edit func(*TrafficRouteSpec)
		want string
	}{
		"valid":                     {edit: func(*TrafficRouteSpec) {}},
		"stable only":               {edit: func(s *TrafficRouteSpec) { s.Canary, s.Match, s.CanaryWeight = nil, nil, 0 }},
		"weight 0":                  {edit: func(s *TrafficRouteSpec) { s.CanaryWeight = 0 }},
		"weight 100":                {edit: func(s *TrafficRouteSpec) { s.CanaryWeight = 100 }},
		"empty host":                {edit: func(s *TrafficRouteSpec) { s.Host = "" }, want: `empty host ""`},
		"host with a space":         {edit: func(s *TrafficRouteSpec) { s.Host = "Bad Host!" }, want: `invalid host "Bad Host!"`},
		"host with a port":          {edit: func(s *TrafficRouteSpec) { s.Host = "web.example:80" }, want: `invalid host "web.example:80"`},
		"host in capitals":          {edit: func(s *TrafficRouteSpec) { s.Host = "Web.Example" }},
		"stable without service":    {edit: func(s *TrafficRouteSpec) { s.Stable.Service = "" }, want: "stable: empty service"},
		"stable port 0":             {edit: func(s *TrafficRouteSpec) { s.Stable.Port = 0 }, want: "stable: port 0 outside 1..65535"},
		"canary port 65536":         {edit: func(s *TrafficRouteSpec) { s.Canary.Port = 65536 }, want: "canary: port 65536 outside 1..65535"},
		"weight 101":                {edit: func(s *TrafficRouteSpec) { s.CanaryWeight = 101 }, want: "canaryWeight 101 outside 0..100"},
		"weight -1":                 {edit: func(s *TrafficRouteSpec) { s.CanaryWeight = -1 }, want: "canaryWeight -1 outside 0..100"},
		"invalid second predicate":  {edit: func(s *TrafficRouteSpec) { s.Match = append(s.Match, Predicate{Type: "Path", Name: "p"}) }, want: `match[1]: unknown type "Path"`},
		"weight ignored w/o canary": {edit: func(s *TrafficRouteSpec) { s.Canary = nil }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := valid()
			tc.edit(&s)
			err := s.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate() = %v; want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate() = %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestReleaseSpecValidate(t *testing.T) {
	canary := &ServiceRef{Name: "v2"}
	tests := map[string]struct {
		spec ReleaseSpec
		want []string // one part per error, in order
	}{
		"empty":       {},
		"host":        {spec: ReleaseSpec{Host: "shop.example.com"}},
		"bad host":    {spec: ReleaseSpec{Host: "Bad Host!"}, want: []string{`spec.host: invalid host "Bad Host!"`}},
		"wildcard":    {spec: ReleaseSpec{Host: "*.example.com"}, want: []string{`spec.host: invalid host "*.example.com"`}},
		"long label":  {spec: ReleaseSpec{Host: strings.Repeat("a", 64) + ".example"}, want: []string{"is longer than 63 characters"}},
		"full":        {spec: ReleaseSpec{Canary: canary, CanaryWeight: 100, Match: []Predicate{{Type: PredicateQuery, Name: "q"}}, GatewayParents: []string{"infra/public/https"}}},
		"weight":      {spec: ReleaseSpec{CanaryWeight: 101}, want: []string{"spec.canaryWeight 101: want an integer from 0 to 100"}},
		"predicate":   {spec: ReleaseSpec{Canary: canary, Match: []Predicate{{Type: PredicateHeader, Name: "a"}, {Type: PredicateHeader, Name: "b", Match: MatchRegularExpression, Value: "("}}}, want: []string{"spec.match[1]: invalid regular expression"}},
		"parent":      {spec: ReleaseSpec{GatewayParents: []string{"infra/public", "public"}}, want: []string{`spec.gatewayParents[1]: invalid parent reference "public"`}},
		"match alone": {spec: ReleaseSpec{Match: []Predicate{{Type: PredicateHeader, Name: "a"}}}, want: []string{"spec.match is set but spec.canary is not"}},
		"all at once": {spec: ReleaseSpec{CanaryWeight: -1, Match: []Predicate{{Name: "a"}}, GatewayParents: []string{""}}, want: []string{"spec.canaryWeight -1", "spec.match[0]: unknown type", "spec.gatewayParents[0]", "spec.match is set"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			errs := tc.spec.Validate()
			if len(errs) != len(tc.want) {
				t.Fatalf("Validate() = %v; want %d errors %q", errs, len(tc.want), tc.want)
			}
			for i, err := range errs {
				if !strings.Contains(err.Error(), tc.want[i]) {
					t.Errorf("error %d = %v; want it to contain %q", i, err, tc.want[i])
				}
			}
		})
	}
}

func TestParseGatewayParent(t *testing.T) {
	tests := []struct {
		in      string
		want    GatewayParent
		mention string // part of the error; "" when valid
	}{
		{in: "infra/public", want: GatewayParent{Namespace: "infra", Name: "public"}},
		{in: "infra/public/https", want: GatewayParent{Namespace: "infra", Name: "public", SectionName: "https"}},
		{in: "infra/gw.example.com/web.tls", want: GatewayParent{Namespace: "infra", Name: "gw.example.com", SectionName: "web.tls"}},
		{in: "", mention: "want namespace/name or namespace/name/sectionName"},
		{in: "public", mention: "want namespace/name or namespace/name/sectionName"},
		{in: "infra/public/https/extra", mention: "want namespace/name or namespace/name/sectionName"},
		{in: "/public", mention: `namespace ""`},
		{in: "Infra/public", mention: `namespace "Infra"`},
		{in: "in.fra/public", mention: `namespace "in.fra"`},
		{in: "infra/", mention: `gateway name ""`},
		{in: "infra/Public", mention: `gateway name "Public"`},
		{in: "infra/public/", mention: `section name ""`},
		{in: "infra/public/HTTPS", mention: `section name "HTTPS"`},
		{in: " infra/public", mention: `namespace " infra"`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseGatewayParent(tc.in)
			if tc.mention != "" {
				if !errors.Is(err, ErrInvalidGatewayParent) || !strings.Contains(err.Error(), tc.mention) || !strings.Contains(err.Error(), `"`+tc.in+`"`) {
					t.Errorf("ParseGatewayParent(%q) = %+v, %v; want an error wrapping ErrInvalidGatewayParent, quoting the input and mentioning %q", tc.in, got, err, tc.mention)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseGatewayParent(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
			if got.String() != tc.in {
				t.Errorf("String() = %q; want %q", got.String(), tc.in)
			}
		})
	}
}

func TestParseGatewayParentList(t *testing.T) {
	got, err := ParseGatewayParentList("infra/public/https, edge/gw")
	if err != nil || strings.Join(got, "|") != "infra/public/https|edge/gw" {
		t.Errorf("ParseGatewayParentList = %q, %v", got, err)
	}
	for _, bad := range []string{"", "infra/public,", "infra/public, public"} {
		if got, err := ParseGatewayParentList(bad); !errors.Is(err, ErrInvalidGatewayParent) {
			t.Errorf("ParseGatewayParentList(%q) = %q, %v; want ErrInvalidGatewayParent", bad, got, err)
		}
	}
}

func TestParsePercent(t *testing.T) {
	for in, want := range map[string]float64{"1%": 0.01, "0.5%": 0.005, "100%": 1, "0%": 0} {
		if got, err := ParsePercent(in); err != nil || got != want {
			t.Errorf("ParsePercent(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1", "%", "-1%", "1.%", ".5%", "1 %", "1e2%"} {
		if got, err := ParsePercent(in); err == nil {
			t.Errorf("ParsePercent(%q) = %v; want an error", in, got)
		}
	}
}

// TestCRDsCarryHostPattern: the API server refuses the hosts ValidateHost
// refuses, because the CRDs carry the same pattern.
func TestCRDsCarryHostPattern(t *testing.T) {
	for _, f := range []string{"fledge.dev_releases.yaml", "fledge.dev_trafficroutes.yaml"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "crds", f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(raw), "pattern: ^"+HostPattern+"$") {
			t.Errorf("%s does not carry the host pattern %q: run hack/generate.sh", f, HostPattern)
		}
	}
}
