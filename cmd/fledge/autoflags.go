package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/metricsource"
)

// autoFlags configure the metric sources of automated releases.
type autoFlags struct {
	source          string
	gatewayMetrics  string
	gatewayPortName string
}

func bindAutoFlags(fs *pflag.FlagSet, f *controllerFlags) {
	fs.StringVar(&f.auto.source, "metric-source", string(fledgev1.MetricSourceBuiltin),
		"default metric source of automated releases: builtin (the embedded gateway's own counters) or prometheus")
	fs.StringVar(&f.auto.gatewayMetrics, "gateway-metrics-service", "fledge-system/fledge-gateway-metrics",
		"namespace/name of the Service whose endpoints are the gateway replicas' metrics (builtin source)")
	fs.StringVar(&f.auto.gatewayPortName, "gateway-metrics-port", "metrics", "name of that Service's metrics port")
	bindPrometheusFlags(fs, f)
}

func (f *controllerFlags) completeAuto() error {
	switch m := fledgev1.MetricSource(f.auto.source); m {
	case fledgev1.MetricSourceBuiltin, fledgev1.MetricSourcePrometheus:
		f.opts.DefaultMetricSource = m
	default:
		return fmt.Errorf("--metric-source %q: want builtin or prometheus", f.auto.source)
	}
	ns, name, ok := strings.Cut(f.auto.gatewayMetrics, "/")
	if !ok || ns == "" || name == "" {
		return fmt.Errorf("--gateway-metrics-service %q: want namespace/name", f.auto.gatewayMetrics)
	}
	prom, err := f.prometheusSource()
	if err != nil {
		return err
	}
	if f.opts.DefaultMetricSource == fledgev1.MetricSourcePrometheus && prom == nil {
		return fmt.Errorf("--metric-source prometheus needs --prometheus-url")
	}
	f.opts.MetricSources = func(c client.Reader) (map[fledgev1.MetricSource]metricsource.Source, error) {
		sources := map[fledgev1.MetricSource]metricsource.Source{
			fledgev1.MetricSourceBuiltin: metricsource.NewBuiltin(metricsource.EndpointSliceTargets{
				Reader: c, Namespace: ns, Service: name, PortName: f.auto.gatewayPortName}, metricsource.BuiltinOptions{}),
		}
		if prom != nil {
			sources[fledgev1.MetricSourcePrometheus] = prom
		}
		return sources, nil
	}
	return nil
}
