package annotations

import (
	"errors"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

func TestParseMatch(t *testing.T) {
	h, c, q := fledgev1.PredicateHeader, fledgev1.PredicateCookie, fledgev1.PredicateQuery
	ex, re, pr := fledgev1.MatchExact, fledgev1.MatchRegularExpression, fledgev1.MatchPresent
	good := map[string][]fledgev1.Predicate{
		"header:X-Debug=1":                  {{Type: h, Name: "X-Debug", Match: ex, Value: "1"}},
		"header:X-Debug":                    {{Type: h, Name: "X-Debug", Match: pr}},
		"header:User-Agent~Firefox/1[0-9]+": {{Type: h, Name: "User-Agent", Match: re, Value: "Firefox/1[0-9]+"}},
		"cookie:beta=yes":                   {{Type: c, Name: "beta", Match: ex, Value: "yes"}},
		"query:debug=1":                     {{Type: q, Name: "debug", Match: ex, Value: "1"}},
		"header:X-Empty=":                   {{Type: h, Name: "X-Empty", Match: ex, Value: ""}},
		"header:X-A=a=b":                    {{Type: h, Name: "X-A", Match: ex, Value: "a=b"}},
		" header:X-Debug=1 ;  cookie:beta=yes ": {
			{Type: h, Name: "X-Debug", Match: ex, Value: "1"}, {Type: c, Name: "beta", Match: ex, Value: "yes"}},
	}
	for in, want := range good {
		got, err := ParseMatch(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseMatch(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if err == nil {
			again, err := ParseMatch(FormatMatch(got))
			if err != nil || !slices.Equal(again, got) {
				t.Errorf("round trip of %q through %q = %+v, %v", in, FormatMatch(got), again, err)
			}
		}
	}
	bad := []string{"", ";", "header:X-Debug=1;", "X-Debug=1", "ip:10.0.0.1", "header:=1", "header:", "header:X Debug=1",
		"header:X-Debug~(", "cookie:=x", "query:~a"}
	for _, in := range bad {
		if got, err := ParseMatch(in); !errors.Is(err, ErrInvalidMatch) {
			t.Errorf("ParseMatch(%q) = %+v, %v; want ErrInvalidMatch", in, got, err)
		}
	}
}

func TestTranslateMatchAndProvider(t *testing.T) {
	services := []corev1.Service{
		svc("v1", map[string]string{PublishedService: "app", Provider: "apisix"}, 80),
		svc("v2", map[string]string{PublishedService: "app", CanaryService: "true", CanaryMatch: "header:X-Debug=1"}, 80),
	}
	spec, problems := Translate("app", services)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if spec.Provider != fledgev1.ProviderAPISIX || len(spec.Match) != 1 || spec.Match[0].Name != "X-Debug" {
		t.Errorf("spec = %+v", spec)
	}
	services[1].Annotations[CanaryMatch] = "header:X-Debug~("
	services[0].Annotations[Provider] = "nginx"
	_, problems = Translate("app", services)
	var keys []string
	for _, p := range problems {
		keys = append(keys, p.Service+" "+p.Annotation)
	}
	if want := []string{"v1 " + Provider, "v2 " + CanaryMatch}; !slices.Equal(keys, want) {
		t.Errorf("problems = %q, want %q", keys, want)
	}
}

func TestTranslateTLSSecret(t *testing.T) {
	spec, problems := Translate("app", []corev1.Service{svc("v1", map[string]string{PublishedService: "app", TLSSecret: "shop-tls"}, 80)})
	if len(problems) > 0 || spec.TLS == nil || spec.TLS.SecretName != "shop-tls" {
		t.Errorf("spec.tls %+v, problems %v; want secretName shop-tls", spec.TLS, problems)
	}
	spec, problems = Translate("app", []corev1.Service{svc("v1", map[string]string{PublishedService: "app"}, 80)})
	if len(problems) > 0 || spec.TLS != nil {
		t.Errorf("without the annotation: spec.tls %+v, problems %v; want none", spec.TLS, problems)
	}
	for _, bad := range []string{"", "Shop_TLS", "a/b"} {
		_, problems := Translate("app", []corev1.Service{svc("v1", map[string]string{PublishedService: "app", TLSSecret: bad}, 80)})
		if len(problems) != 1 || problems[0].Annotation != TLSSecret || !errors.Is(problems[0], ErrInvalidValue) {
			t.Errorf("%s=%q: problems %v, want one ErrInvalidValue naming the annotation", TLSSecret, bad, problems)
		}
	}
}

func TestTranslateGatewayParents(t *testing.T) {
	for in, want := range map[string][]string{
		"infra/public":                {"infra/public"},
		"infra/public/https, edge/gw": {"infra/public/https", "edge/gw"},
	} {
		spec, problems := Translate("app", []corev1.Service{svc("v1", map[string]string{PublishedService: "app", GatewayParents: in}, 80)})
		if len(problems) > 0 || !slices.Equal(spec.GatewayParents, want) {
			t.Errorf("%q: parents %q, problems %v; want %q", in, spec.GatewayParents, problems, want)
		}
	}
	for _, bad := range []string{"public", "infra/", "Infra/public", "a/b/c/d", "infra/public,"} {
		_, problems := Translate("app", []corev1.Service{svc("v1", map[string]string{PublishedService: "app", GatewayParents: bad}, 80)})
		if len(problems) != 1 || problems[0].Annotation != GatewayParents {
			t.Errorf("%q: problems %v, want one on %s", bad, problems, GatewayParents)
		}
	}
}
