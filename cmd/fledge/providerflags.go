package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/controller"
	"github.com/fledge-dev/fledge/internal/traffic/apisix"
	"github.com/fledge-dev/fledge/internal/traffic/gatewayapi"
	"github.com/fledge-dev/fledge/internal/traffic/providers"
)

// providerFlags enable the traffic providers besides the embedded one.
type providerFlags struct {
	apisixURL       string
	apisixSecret    string
	apisixSecretKey string
	apisixDiscovery bool
	gatewayParents  []string
}

// providerConfig is what providerFlags ask for, validated.
type providerConfig struct {
	// apisixURL enables the apisix provider when not empty; its key is in
	// data[apisixSecretKey] of the Secret apisixSecret.
	apisixURL       string
	apisixSecret    types.NamespacedName
	apisixSecretKey string
	apisixDiscovery bool
	gatewayParents  []gatewayv1.ParentReference
}

func (f *providerFlags) bind(fs *pflag.FlagSet) {
	fs.StringVar(&f.apisixURL, "apisix-admin-url", "", "APISIX Admin API address (enables the apisix provider), e.g. http://apisix-admin.apisix:9180")
	fs.StringVar(&f.apisixSecret, "apisix-key-secret", "fledge-system/fledge-apisix", "namespace/name of the Secret holding the APISIX Admin API key")
	fs.StringVar(&f.apisixSecretKey, "apisix-key-secret-key", "key", "entry of that Secret holding the key")
	fs.BoolVar(&f.apisixDiscovery, "apisix-discovery", false, "let APISIX find endpoints with its Kubernetes discovery instead of copying them into upstream nodes")
	fs.StringArrayVar(&f.gatewayParents, "gateway-api-parent", nil,
		"parent Gateway of the HTTPRoutes, namespace/name[/sectionName] (repeatable; enables the gatewayapi provider)")
}

// validate checks the provider flags, without I/O, given the default provider
// (which must be enabled).
func (f *providerFlags) validate(defaultProvider fledgev1.Provider) (providerConfig, error) {
	c := providerConfig{apisixURL: f.apisixURL, apisixSecretKey: f.apisixSecretKey, apisixDiscovery: f.apisixDiscovery}
	if defaultProvider == fledgev1.ProviderAPISIX && f.apisixURL == "" {
		return providerConfig{}, fmt.Errorf("--default-provider apisix needs --apisix-admin-url")
	}
	if defaultProvider == fledgev1.ProviderGatewayAPI && len(f.gatewayParents) == 0 {
		return providerConfig{}, fmt.Errorf("--default-provider gatewayapi needs --gateway-api-parent")
	}
	var err error
	if c.apisixSecret, err = namespacedName("--apisix-key-secret", f.apisixSecret); err != nil {
		return providerConfig{}, err
	}
	if f.apisixURL != "" {
		if _, err := apisix.ParseAdminURL(f.apisixURL); err != nil {
			return providerConfig{}, fmt.Errorf("--apisix-admin-url: %w", err)
		}
	}
	for _, s := range f.gatewayParents {
		ref, err := gatewayapi.ParseParentRef(s)
		if err != nil {
			return providerConfig{}, fmt.Errorf("--gateway-api-parent %q: %w", s, err)
		}
		c.gatewayParents = append(c.gatewayParents, ref)
	}
	return c, nil
}

// build reads the APISIX Admin API key from its Secret (when apisix is
// enabled) and returns how the controller makes its routers.
func (c providerConfig) build(ctx context.Context, cfg *rest.Config) (func(client.Client) (controller.Resolver, error), error) {
	pc := providers.Config{GatewayParents: c.gatewayParents}
	if c.apisixURL != "" {
		reader, err := client.New(cfg, client.Options{Scheme: controller.Scheme()})
		if err != nil {
			return nil, err
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		key, err := apisix.APIKeyFromSecret(rctx, reader, c.apisixSecret.Namespace, c.apisixSecret.Name, c.apisixSecretKey)
		if err != nil {
			return nil, err
		}
		// The Resolver is left to providers: EndpointSlices, through the
		// controller's client.
		pc.APISIX = &apisix.Config{BaseURL: c.apisixURL, APIKey: key, Discovery: c.apisixDiscovery}
	}
	return func(cl client.Client) (controller.Resolver, error) { return providers.New(cl, pc) }, nil
}
