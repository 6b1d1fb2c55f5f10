package metricsource

import (
	"testing"
	"text/template"
)

func TestRenderEscapesLabelValues(t *testing.T) {
	tmpl := template.Must(template.New("requests").Parse(IncreaseRequestsQuery))
	tests := map[string]struct {
		b    Backend
		want string
	}{
		"plain": {
			Backend{Namespace: "shop", App: "web", Service: "web-canary"},
			`sum(increase(fledge_gateway_requests_total{namespace="shop",app="web",service="web-canary",code!="499"}[90s]))`,
		},
		"quote and backslash": {
			Backend{Namespace: `a"b`, App: `c\`, Service: `d\"}`},
			`sum(increase(fledge_gateway_requests_total{namespace="a\"b",app="c\\",service="d\\\"}",code!="499"}[90s]))`,
		},
		"control characters": {
			Backend{Namespace: "a\nb", App: "c\x00", Service: "wéb"},
			`sum(increase(fledge_gateway_requests_total{namespace="a\nb",app="c\x00",service="wéb",code!="499"}[90s]))`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := render(tmpl, tc.b, 90)
			if err != nil || got != tc.want {
				t.Fatalf("got\n%s, %v\nwant\n%s", got, err, tc.want)
			}
		})
	}
}
