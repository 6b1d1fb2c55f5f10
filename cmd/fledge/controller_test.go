package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// TestControllerFlagsValidate: the flags are checked without I/O (no cluster,
// no file read), before anything is built.
func TestControllerFlagsValidate(t *testing.T) {
	tests := map[string]struct {
		args []string
		want string // part of the error; "" when valid
		// check looks at the validated configuration.
		check func(t *testing.T, c controllerConfig)
	}{
		"defaults": {
			check: func(t *testing.T, c controllerConfig) {
				if c.opts.DefaultProvider != fledgev1.ProviderEmbedded || c.opts.DefaultMetricSource != fledgev1.MetricSourceBuiltin ||
					c.opts.Workers != 4 || c.opts.AnalysisInterval != time.Second || c.providers.apisixURL != "" || len(c.providers.gatewayParents) != 0 ||
					c.metrics.promURL != "" || c.metrics.gatewayMetrics.String() != "fledge-system/fledge-gateway-metrics" ||
					c.providers.apisixSecret.String() != "fledge-system/fledge-apisix" || !c.verifyReplicas {
					t.Errorf("defaults = %+v", c)
				}
			},
		},
		"every provider": {
			args: []string{"--default-provider=gatewayapi", "--apisix-admin-url=http://apisix-admin.apisix:9180",
				"--gateway-api-parent=infra/public/https", "--gateway-api-parent=edge/gw"},
			check: func(t *testing.T, c controllerConfig) {
				if c.opts.DefaultProvider != fledgev1.ProviderGatewayAPI || c.providers.apisixURL == "" || len(c.providers.gatewayParents) != 2 ||
					*c.providers.gatewayParents[0].SectionName != "https" || string(*c.providers.gatewayParents[1].Namespace) != "edge" {
					t.Errorf("config = %+v", c.providers)
				}
			},
		},
		"routed from the TrafficRoute alone": {
			args: []string{"--verify-gateway-replicas=false"},
			check: func(t *testing.T, c controllerConfig) {
				if c.verifyReplicas {
					t.Errorf("verifyReplicas = true, want false")
				}
			},
		},
		"prometheus, with a token file not read yet": {
			args: []string{"--metric-source=prometheus", "--prometheus-url=http://prometheus:9090", "--prometheus-bearer-token-file=/nonexistent/token"},
			check: func(t *testing.T, c controllerConfig) {
				if c.opts.DefaultMetricSource != fledgev1.MetricSourcePrometheus || c.metrics.promTokenFile != "/nonexistent/token" {
					t.Errorf("config = %+v", c.metrics)
				}
			},
		},
		"unknown provider":              {args: []string{"--default-provider=nginx"}, want: `--default-provider "nginx": want embedded, apisix or gatewayapi`},
		"apisix without its URL":        {args: []string{"--default-provider=apisix"}, want: "--default-provider apisix needs --apisix-admin-url"},
		"gatewayapi without a parent":   {args: []string{"--default-provider=gatewayapi"}, want: "--default-provider gatewayapi needs --gateway-api-parent"},
		"invalid APISIX URL":            {args: []string{"--apisix-admin-url=apisix:9180"}, want: "--apisix-admin-url: apisix: admin URL"},
		"APISIX URL with credentials":   {args: []string{"--apisix-admin-url=http://admin:key@apisix:9180"}, want: "must not carry credentials"},
		"invalid APISIX key Secret":     {args: []string{"--apisix-key-secret=fledge-apisix"}, want: `--apisix-key-secret "fledge-apisix": want namespace/name`},
		"invalid Gateway parent":        {args: []string{"--gateway-api-parent=public"}, want: `--gateway-api-parent "public": invalid parent reference`},
		"no workers":                    {args: []string{"--workers=0"}, want: "--workers 0: want at least 1"},
		"negative QPS":                  {args: []string{"--kube-api-qps=-1"}, want: "must not be negative"},
		"no analysis interval":          {args: []string{"--analysis-interval=0s"}, want: "--analysis-interval 0s: must be positive"},
		"unknown metric source":         {args: []string{"--metric-source=datadog"}, want: `--metric-source "datadog": want builtin or prometheus`},
		"prometheus without its URL":    {args: []string{"--metric-source=prometheus"}, want: "--metric-source prometheus needs --prometheus-url"},
		"invalid gateway metrics name":  {args: []string{"--gateway-metrics-service=fledge-gateway-metrics"}, want: "want namespace/name"},
		"provider checked before flags": {args: []string{"--default-provider=nginx", "--workers=0"}, want: "--default-provider"},
		"leader election defaults": {
			check: func(t *testing.T, c controllerConfig) {
				if c.opts.LeaseDuration != 6*time.Second || c.opts.RenewDeadline != 4*time.Second || c.opts.RetryPeriod != time.Second {
					t.Errorf("lease %v, renew %v, retry %v; want 6s, 4s, 1s", c.opts.LeaseDuration, c.opts.RenewDeadline, c.opts.RetryPeriod)
				}
			},
		},
		"leader election as Kubernetes' own": {args: []string{"--leader-elect-lease-duration=15s", "--leader-elect-renew-deadline=10s", "--leader-elect-retry-period=2s"}},
		"lease not longer than the renew deadline": {args: []string{"--leader-elect-lease-duration=4s"},
			want: "--leader-elect-lease-duration 4s must be longer than --leader-elect-renew-deadline 4s"},
		"renew deadline within the retry jitter": {args: []string{"--leader-elect-retry-period=3500ms"},
			want: "--leader-elect-renew-deadline 4s must be longer than 1.2 × --leader-elect-retry-period 3.5s"},
		"zero retry period": {args: []string{"--leader-elect-retry-period=0s"}, want: "must be positive"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var f controllerFlags
			fs := pflag.NewFlagSet("controller", pflag.ContinueOnError)
			f.bind(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			c, err := f.validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("validate() = %v; want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("validate() = %v; want an error containing %q", err, tc.want)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

// TestMetricConfigBuild: building reads the bearer token file; a missing one
// is an error naming the flag.
func TestMetricConfigBuild(t *testing.T) {
	c := metricConfig{source: fledgev1.MetricSourcePrometheus, promURL: "http://prometheus:9090", promTokenFile: filepath.Join(t.TempDir(), "token")}
	if _, err := c.build(); err == nil || !strings.Contains(err.Error(), "--prometheus-bearer-token-file") {
		t.Errorf("build() with a missing token file = %v; want an error naming the flag", err)
	}
	if err := os.WriteFile(c.promTokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sources, err := c.build()
	if err != nil {
		t.Fatal(err)
	}
	got, err := sources(nil)
	if err != nil || got[fledgev1.MetricSourcePrometheus] == nil || got[fledgev1.MetricSourceBuiltin] == nil {
		t.Errorf("sources = %v, %v; want builtin and prometheus", got, err)
	}
}
