package annotations

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

func svc(name string, ann map[string]string, ports ...int32) corev1.Service {
	s := corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo", Annotations: ann}}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: p})
	}
	return s
}

func TestParsePercentage(t *testing.T) {
	good := map[string]int32{"0": 0, "1": 1, "10": 10, "100": 100, "010": 10}
	for in, want := range good {
		got, err := ParsePercentage(in)
		if err != nil || got != want {
			t.Errorf("ParsePercentage(%q) = %d, %v; want %d, nil", in, got, err, want)
		}
	}
	for _, in := range []string{"", "10%", "abc", "-5", "150", "10.5", " 10", "10 ", "+5", "1e2", "101", "99999999999999999999"} {
		if got, err := ParsePercentage(in); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("ParsePercentage(%q) = %d, %v; want ErrInvalidValue", in, got, err)
		}
	}
}

func TestTranslate(t *testing.T) {
	stable := map[string]string{PublishedService: "error-page"}
	canary := func(pct string) map[string]string {
		m := map[string]string{PublishedService: "error-page", CanaryService: "true"}
		if pct != "" {
			m[CanaryPercentage] = pct
		}
		return m
	}
	tests := map[string]struct {
		services     []corev1.Service
		want         fledgev1.ReleaseSpec
		wantProblems []string // "service annotation" of each problem
		wantErr      error
	}{
		"stable only": {
			services: []corev1.Service{svc("v1", stable, 9011), svc("other", nil, 80)},
			want:     fledgev1.ReleaseSpec{Stable: &fledgev1.ServiceRef{Name: "v1", Port: 9011}},
		},
		"stable and canary at 10": {
			services: []corev1.Service{svc("v1", stable, 9011), svc("v2", canary("10"), 9012)},
			want: fledgev1.ReleaseSpec{Stable: &fledgev1.ServiceRef{Name: "v1", Port: 9011},
				Canary: &fledgev1.ServiceRef{Name: "v2", Port: 9012}, CanaryWeight: 10},
		},
		"canary without percentage gets weight 0": {
			services: []corev1.Service{svc("v1", stable, 9011), svc("v2", canary(""), 9011)},
			want: fledgev1.ReleaseSpec{Stable: &fledgev1.ServiceRef{Name: "v1", Port: 9011},
				Canary: &fledgev1.ServiceRef{Name: "v2", Port: 9011}},
		},
		"canary-service false is a stable": {
			services: []corev1.Service{svc("v1", map[string]string{PublishedService: "error-page", CanaryService: "false"}, 9011)},
			want:     fledgev1.ReleaseSpec{Stable: &fledgev1.ServiceRef{Name: "v1", Port: 9011}},
		},
		"canary without stable is translated; the controller decides": {
			services: []corev1.Service{svc("v2", canary("100"), 9011)},
			want:     fledgev1.ReleaseSpec{Canary: &fledgev1.ServiceRef{Name: "v2", Port: 9011}, CanaryWeight: 100},
		},
		"services of another app are ignored": {
			services: []corev1.Service{svc("v1", stable, 9011), svc("x", map[string]string{PublishedService: "other"}, 80)},
			want:     fledgev1.ReleaseSpec{Stable: &fledgev1.ServiceRef{Name: "v1", Port: 9011}},
		},
		"percentage 10%": {
			services:     []corev1.Service{svc("v1", stable, 9011), svc("v2", canary("10%"), 9011)},
			wantProblems: []string{"v2 " + CanaryPercentage}, wantErr: ErrInvalidValue,
		},
		"percentage abc":  {services: []corev1.Service{svc("v2", canary("abc"), 1)}, wantProblems: []string{"v2 " + CanaryPercentage}, wantErr: ErrInvalidValue},
		"percentage -5":   {services: []corev1.Service{svc("v2", canary("-5"), 1)}, wantProblems: []string{"v2 " + CanaryPercentage}, wantErr: ErrInvalidValue},
		"percentage 150":  {services: []corev1.Service{svc("v2", canary("150"), 1)}, wantProblems: []string{"v2 " + CanaryPercentage}, wantErr: ErrInvalidValue},
		"percentage 10.5": {services: []corev1.Service{svc("v2", canary("10.5"), 1)}, wantProblems: []string{"v2 " + CanaryPercentage}, wantErr: ErrInvalidValue},
		"canary flag yes": {
			services:     []corev1.Service{svc("v2", map[string]string{PublishedService: "error-page", CanaryService: "yes"}, 1)},
			wantProblems: []string{"v2 " + CanaryService}, wantErr: ErrInvalidValue,
		},
		"two stables": {
			services:     []corev1.Service{svc("a", stable, 1), svc("b", stable, 1)},
			wantProblems: []string{"a " + PublishedService, "b " + PublishedService}, wantErr: ErrConflict,
		},
		"two canaries": {
			services:     []corev1.Service{svc("v1", stable, 1), svc("c1", canary("5"), 1), svc("c2", canary("5"), 1)},
			wantProblems: []string{"c1 " + CanaryService, "c2 " + CanaryService}, wantErr: ErrConflict,
		},
		"service without ports": {
			services:     []corev1.Service{svc("v1", stable)},
			wantProblems: []string{"v1 "}, wantErr: ErrNoPorts,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, problems := Translate("error-page", tc.services)
			var keys []string
			for _, p := range problems {
				keys = append(keys, p.Service+" "+p.Annotation)
				if !errors.Is(p, tc.wantErr) {
					t.Errorf("problem %v does not wrap %v", p, tc.wantErr)
				}
			}
			if len(keys) != len(tc.wantProblems) {
				t.Fatalf("problems = %q, want %q", keys, tc.wantProblems)
			}
			for i := range keys {
				if keys[i] != tc.wantProblems[i] {
					t.Errorf("problem %d = %q, want %q", i, keys[i], tc.wantProblems[i])
				}
			}
			if len(problems) > 0 {
				return
			}
			if !equalRef(got.Stable, tc.want.Stable) || !equalRef(got.Canary, tc.want.Canary) || got.CanaryWeight != tc.want.CanaryWeight {
				t.Errorf("spec = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestTranslateInvalidAppName(t *testing.T) {
	_, problems := Translate("Error_Page", []corev1.Service{svc("v1", map[string]string{PublishedService: "Error_Page"}, 1)})
	if len(problems) != 1 || !errors.Is(problems[0], ErrInvalidAppName) {
		t.Fatalf("problems = %v, want one ErrInvalidAppName", problems)
	}
}

func TestProblemNamesServiceAnnotationAndValue(t *testing.T) {
	_, problems := Translate("error-page", []corev1.Service{svc("error-page-v2", map[string]string{
		PublishedService: "error-page", CanaryService: "true", CanaryPercentage: "10%"}, 9011)})
	if len(problems) != 1 {
		t.Fatalf("problems = %v", problems)
	}
	want := `service error-page-v2: annotation api7.cloud/published-service-canary-percentage="10%": invalid value: want an integer from 0 to 100`
	if got := problems[0].Error(); got != want {
		t.Errorf("Error() = %q\nwant      %q", got, want)
	}
}

func equalRef(a, b *fledgev1.ServiceRef) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func TestTranslateLongAppName(t *testing.T) {
	long := strings.Repeat("a", 64)
	_, problems := Translate(long, []corev1.Service{svc("v1", map[string]string{PublishedService: long}, 1)})
	if len(problems) != 1 || !errors.Is(problems[0], ErrInvalidAppName) {
		t.Fatalf("problems = %v, want one ErrInvalidAppName", problems)
	}
}
