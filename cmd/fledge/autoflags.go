package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/metricsource"
)

// metricFlags configure the metric sources of automated releases: the
// builtin one (the gateway replicas' own counters) and Prometheus.
type metricFlags struct {
	source          string
	gatewayMetrics  string
	gatewayPortName string

	promURL       string
	promTokenFile string
	promTimeout   time.Duration
}

// metricConfig is what metricFlags ask for, validated.
type metricConfig struct {
	// source is the default metric source.
	source          fledgev1.MetricSource
	gatewayMetrics  types.NamespacedName
	gatewayPortName string
	// promURL enables the prometheus source when not empty.
	promURL       string
	promTokenFile string
	promTimeout   time.Duration
}

func (f *metricFlags) bind(fs *pflag.FlagSet) {
	fs.StringVar(&f.source, "metric-source", string(fledgev1.MetricSourceBuiltin),
		"default metric source of automated releases: builtin (the embedded gateway's own counters) or prometheus")
	fs.StringVar(&f.gatewayMetrics, "gateway-metrics-service", "fledge-system/fledge-gateway-metrics",
		"namespace/name of the Service whose endpoints are the gateway replicas' metrics (builtin source)")
	fs.StringVar(&f.gatewayPortName, "gateway-metrics-port", "metrics", "name of that Service's metrics port")
	fs.StringVar(&f.promURL, "prometheus-url", "", "Prometheus server of the prometheus metric source, e.g. http://prometheus.monitoring:9090")
	fs.StringVar(&f.promTokenFile, "prometheus-bearer-token-file", "", "file holding a bearer token for Prometheus (never logged)")
	fs.DurationVar(&f.promTimeout, "prometheus-timeout", 10*time.Second, "timeout of one Prometheus query")
}

// validate checks the metric flags, without I/O.
func (f *metricFlags) validate() (metricConfig, error) {
	c := metricConfig{gatewayPortName: f.gatewayPortName, promURL: f.promURL, promTokenFile: f.promTokenFile, promTimeout: f.promTimeout}
	switch m := fledgev1.MetricSource(f.source); m {
	case fledgev1.MetricSourceBuiltin, fledgev1.MetricSourcePrometheus:
		c.source = m
	default:
		return metricConfig{}, fmt.Errorf("--metric-source %q: want builtin or prometheus", f.source)
	}
	var err error
	if c.gatewayMetrics, err = namespacedName("--gateway-metrics-service", f.gatewayMetrics); err != nil {
		return metricConfig{}, err
	}
	if f.promURL != "" {
		if err := serverURL("prometheus-url", f.promURL); err != nil {
			return metricConfig{}, err
		}
	}
	if f.promTimeout <= 0 {
		return metricConfig{}, fmt.Errorf("--prometheus-timeout %v: must be positive", f.promTimeout)
	}
	if c.source == fledgev1.MetricSourcePrometheus && f.promURL == "" {
		return metricConfig{}, fmt.Errorf("--metric-source prometheus needs --prometheus-url")
	}
	return c, nil
}

// build reads the Prometheus bearer token file and returns how the
// controller makes its metric sources.
func (c metricConfig) build() (func(client.Reader) (map[fledgev1.MetricSource]metricsource.Source, error), error) {
	var prom metricsource.Source
	if c.promURL != "" {
		opts := metricsource.PrometheusOptions{URL: c.promURL, Timeout: c.promTimeout}
		if c.promTokenFile != "" {
			b, err := os.ReadFile(c.promTokenFile)
			if err != nil {
				return nil, fmt.Errorf("--prometheus-bearer-token-file: %w", err)
			}
			opts.BearerToken = metricsource.Secret(strings.TrimSpace(string(b)))
		}
		src, err := metricsource.NewPrometheus(opts)
		if err != nil {
			return nil, fmt.Errorf("--prometheus-url: %w", err)
		}
		prom = src
	}
	return func(r client.Reader) (map[fledgev1.MetricSource]metricsource.Source, error) {
		sources := map[fledgev1.MetricSource]metricsource.Source{
			fledgev1.MetricSourceBuiltin: metricsource.NewBuiltin(c.gatewayReplicas(r, metricsource.DefaultMetricsPath),
				metricsource.BuiltinOptions{}),
		}
		if prom != nil {
			sources[fledgev1.MetricSourcePrometheus] = prom
		}
		return sources, nil
	}, nil
}

// gatewayReplicas lists one URL (path on the metrics port) per ready gateway
// replica: the endpoints of --gateway-metrics-service. The builtin metric
// source reads their /metrics, the controller's verification their /routes.
func (c metricConfig) gatewayReplicas(r client.Reader, path string) metricsource.EndpointSliceTargets {
	return metricsource.EndpointSliceTargets{
		Reader: r, Namespace: c.gatewayMetrics.Namespace, Service: c.gatewayMetrics.Name, PortName: c.gatewayPortName, Path: path}
}
