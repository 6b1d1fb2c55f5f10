package annotations

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The parsers of the annotations take what users write; these fuzz tests
// (go test -fuzz=FuzzX ./internal/annotations) check that none panics, and
// that what they accept is valid:
//
//   - FuzzTranslate: a Release spec made without problems passes
//     ReleaseSpec.Validate (invalid input is always a problem, never a spec);
//   - FuzzParseMatch: every accepted predicate validates, and writing the
//     predicates back (FormatMatch) parses to the same;
//   - FuzzParsePercentage: accepted values are 0..100.

func FuzzTranslate(f *testing.F) {
	for _, s := range [][7]string{
		{"web", "true", "10", "", "", "", ""},
		{"web", "true", "10%", "header:X-Debug=1", "", "", ""},
		{"web", "true", "0", "header:X-Debug=1; cookie:beta=yes", "true", "steps=10,25,50; step-duration=30s", ""},
		{"web", "true", "100", "query:debug", "", "", "infra/public/https"},
		{"", "true", "10", "", "", "", ""},
		{"Bad_App", "true", "10", "", "", "", ""},
		{"web", "yes", "-5", ";;", "maybe", "steps=50,10", "public"},
		{"web", "true", "150", "header:X~(", "true", "source=prometheus", ""},
		{"web", "false", "10.5", "header:", "false", "steps=10", "a/b/c/d"},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5], s[6])
	}
	f.Fuzz(func(t *testing.T, app, canary, percent, match, auto, policy, parents string) {
		ann := map[string]string{PublishedService: app, CanaryService: canary, CanaryPercentage: percent}
		for k, v := range map[string]string{CanaryMatch: match, Auto: auto, AutoPolicy: policy} {
			if v != "" {
				ann[k] = v
			}
		}
		stable := corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "v1", Annotations: map[string]string{PublishedService: app}},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		}
		if parents != "" {
			stable.Annotations[GatewayParents] = parents
		}
		canarySvc := corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "v2", Annotations: ann},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 9011}}},
		}
		spec, problems := Translate(app, []corev1.Service{stable, canarySvc})
		if len(problems) == 0 {
			if errs := spec.Validate(); len(errs) > 0 {
				t.Fatalf("Translate made a spec without problems that does not validate: %v (spec %+v)", errs, spec)
			}
		}
	})
}

func FuzzParseMatch(f *testing.F) {
	for _, s := range []string{"header:X-Debug=1", "header:X-Debug", "header:User-Agent~Firefox/1[0-9]{2}",
		"cookie:beta=yes", "query:debug=1", "header:X-Debug=1; cookie:beta=yes", ";;", "header:X~(", "nope:x", "header:=v", " query:a= b "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParseMatch(s)
		if err != nil {
			return
		}
		for i, p := range ps {
			if err := p.Validate(); err != nil {
				t.Fatalf("ParseMatch(%q) accepted predicate %d that does not validate: %v", s, i, err)
			}
		}
		again, err := ParseMatch(FormatMatch(ps))
		if err != nil || !slices.Equal(again, ps) {
			t.Fatalf("ParseMatch(FormatMatch(ParseMatch(%q))) = %+v, %v; want %+v", s, again, err, ps)
		}
	})
}

func FuzzParsePercentage(f *testing.F) {
	for _, s := range []string{"0", "10", "100", "10%", "abc", "-5", "150", "10.5", " 10", "", "010"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParsePercentage(s)
		if err == nil && (n < 0 || n > 100) {
			t.Fatalf("ParsePercentage(%q) = %d, outside 0..100", s, n)
		}
	})
}
