package providers

import (
	"strings"
	"testing"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/traffic"
	"github.com/fledge-dev/fledge/internal/traffic/apisix"
	"github.com/fledge-dev/fledge/internal/traffic/embedded"
	"github.com/fledge-dev/fledge/internal/traffic/gatewayapi"
)

// TestRouter: which router serves a Release, for the providers enabled. The
// routers are only made here, never used, so no client is needed.
func TestRouter(t *testing.T) {
	public, err := gatewayapi.ParseParentRef("infra/public")
	if err != nil {
		t.Fatal(err)
	}
	none := Config{}
	all := Config{APISIX: &apisix.Config{BaseURL: "http://apisix-admin:9180", APIKey: "key"}, GatewayParents: []gatewayv1.ParentReference{public}}
	tests := map[string]struct {
		cfg      Config
		provider fledgev1.Provider
		spec     fledgev1.ReleaseSpec
		want     string // the router's type, or part of the error
	}{
		"embedded is always on":                         {cfg: none, provider: fledgev1.ProviderEmbedded, want: "*embedded.Router"},
		"apisix when enabled":                           {cfg: all, provider: fledgev1.ProviderAPISIX, want: "*apisix.Router"},
		"apisix not enabled":                            {cfg: none, provider: fledgev1.ProviderAPISIX, want: `provider "apisix" is not enabled`},
		"gatewayapi when enabled":                       {cfg: all, provider: fledgev1.ProviderGatewayAPI, want: "*gatewayapi.Router"},
		"gatewayapi not enabled":                        {cfg: none, provider: fledgev1.ProviderGatewayAPI, want: `provider "gatewayapi" is not enabled`},
		"gatewayapi with the Release's own Gateways":    {cfg: none, provider: fledgev1.ProviderGatewayAPI, spec: fledgev1.ReleaseSpec{GatewayParents: []string{"edge/gw/https"}}, want: "*gatewayapi.Router"},
		"the Release's Gateways mean nothing elsewhere": {cfg: none, provider: fledgev1.ProviderAPISIX, spec: fledgev1.ReleaseSpec{GatewayParents: []string{"edge/gw"}}, want: "not enabled"},
		"unknown provider":                              {cfg: all, provider: "nginx", want: `provider "nginx" is not enabled`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rs, err := New(nil, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			r, err := rs.Router(tc.provider, &tc.spec)
			got := typeName(r)
			if err != nil {
				got = err.Error()
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("Router(%q) = %s; want %s", tc.provider, got, tc.want)
			}
		})
	}
}

// TestRouterWithInvalidGateways: a Release whose Gateway references are
// invalid (the controller holds its traffic) gets a router that can still
// observe and remove, but not write.
func TestRouterWithInvalidGateways(t *testing.T) {
	rs, err := New(nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := rs.Router(fledgev1.ProviderGatewayAPI, &fledgev1.ReleaseSpec{GatewayParents: []string{"edge/gw", "public"}})
	if err != nil {
		t.Fatal(err)
	}
	route := traffic.Route{Key: traffic.Key{Namespace: "shop", App: "web"}, Host: "web", Stable: traffic.Backend{Service: "v1", Port: 80}}
	if err := r.Ensure(t.Context(), route); err == nil || !strings.Contains(err.Error(), "no parent reference") {
		t.Errorf("Ensure = %v; want an error: no parent reference", err)
	}
}

func TestFollowsEndpoints(t *testing.T) {
	var rs Routers
	for _, p := range fledgev1.Providers {
		if got, want := rs.FollowsEndpoints(p), p == fledgev1.ProviderAPISIX; got != want {
			t.Errorf("FollowsEndpoints(%s) = %v, want %v", p, got, want)
		}
	}
}

func TestNewRefusesABadAPISIXConfig(t *testing.T) {
	if _, err := New(nil, Config{APISIX: &apisix.Config{BaseURL: "apisix-admin:9180", APIKey: "key"}}); err == nil {
		t.Error("New with an invalid APISIX admin URL succeeded")
	}
}

func typeName(r traffic.Router) string {
	switch r.(type) {
	case *embedded.Router:
		return "*embedded.Router"
	case *apisix.Router:
		return "*apisix.Router"
	case *gatewayapi.Router:
		return "*gatewayapi.Router"
	}
	return "unknown router"
}
