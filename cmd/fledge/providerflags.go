package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fledge-dev/fledge/internal/metricsource"
	"github.com/fledge-dev/fledge/internal/traffic"
	"github.com/fledge-dev/fledge/internal/traffic/gatewayapi"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// promFlags configure the Prometheus metric source.
type promFlags struct {
	url       string
	tokenFile string
	timeout   time.Duration
}

func bindPrometheusFlags(fs *pflag.FlagSet, f *controllerFlags) {
	fs.StringVar(&f.prom.url, "prometheus-url", "", "Prometheus server of the prometheus metric source, e.g. http://prometheus.monitoring:9090")
	fs.StringVar(&f.prom.tokenFile, "prometheus-bearer-token-file", "", "file holding a bearer token for Prometheus (never logged)")
	fs.DurationVar(&f.prom.timeout, "prometheus-timeout", 10*time.Second, "timeout of one Prometheus query")
	fs.StringArrayVar(&f.gatewayParents, "gateway-api-parent", nil,
		"parent Gateway of the HTTPRoutes, namespace/name[/sectionName] (repeatable; enables the gatewayapi provider)")
}

// prometheusSource returns the Prometheus source, or nil without --prometheus-url.
func (f *controllerFlags) prometheusSource() (metricsource.Source, error) {
	if f.prom.url == "" {
		return nil, nil
	}
	opts := metricsource.PrometheusOptions{URL: f.prom.url, Timeout: f.prom.timeout}
	if f.prom.tokenFile != "" {
		b, err := os.ReadFile(f.prom.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--prometheus-bearer-token-file: %w", err)
		}
		opts.BearerToken = metricsource.Secret(strings.TrimSpace(string(b)))
	}
	src, err := metricsource.NewPrometheus(opts)
	if err != nil {
		return nil, fmt.Errorf("--prometheus-url: %w", err)
	}
	return src, nil
}

// gatewayAPIParents parses --gateway-api-parent and returns how to build the
// gatewayapi provider, or nil when the flag is not given.
func (f *controllerFlags) gatewayAPIParents() (func(client.Client) (traffic.Router, error), error) {
	if len(f.gatewayParents) == 0 {
		return nil, nil
	}
	var refs []gatewayv1.ParentReference
	for _, s := range f.gatewayParents {
		ref, err := gatewayapi.ParseParentRef(s)
		if err != nil {
			return nil, fmt.Errorf("--gateway-api-parent %q: %w", s, err)
		}
		refs = append(refs, ref)
	}
	return func(c client.Client) (traffic.Router, error) {
		return gatewayapi.New(c, gatewayapi.Config{ParentRefs: refs})
	}, nil
}
