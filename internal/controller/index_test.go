package controller

import (
	"slices"
	"testing"

	"k8s.io/client-go/rest"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

func TestServiceNames(t *testing.T) {
	tests := map[string]struct {
		rel  fledgev1.Release
		want []string
	}{
		"nothing named": {want: []string{}},
		"spec and status agree": {
			rel: fledgev1.Release{
				Spec:   fledgev1.ReleaseSpec{Stable: &fledgev1.ServiceRef{Name: "v1"}, Canary: &fledgev1.ServiceRef{Name: "v2"}},
				Status: fledgev1.ReleaseStatus{Stable: "v1", Canary: "v2"},
			},
			want: []string{"v1", "v2"},
		},
		"the status still routes the Services the spec no longer names": {
			rel: fledgev1.Release{
				Spec:   fledgev1.ReleaseSpec{Stable: &fledgev1.ServiceRef{Name: "v2"}},
				Status: fledgev1.ReleaseStatus{Stable: "v1", Canary: "v2"},
			},
			want: []string{"v1", "v2"},
		},
		"canary only": {
			rel:  fledgev1.Release{Spec: fledgev1.ReleaseSpec{Canary: &fledgev1.ServiceRef{Name: "v3"}}, Status: fledgev1.ReleaseStatus{Canary: "v3"}},
			want: []string{"v3"},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := serviceNames(&tt.rel)
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("serviceNames = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWithLimits(t *testing.T) {
	tests := map[string]struct {
		cfg       rest.Config
		qps       float32
		burst     int
		wantQPS   float32
		wantBurst int
	}{
		"unset everywhere: no client-side limit":   {wantQPS: -1},
		"the configuration's own are kept":         {cfg: rest.Config{QPS: 20, Burst: 40}, wantQPS: 20, wantBurst: 40},
		"options win over the configuration":       {cfg: rest.Config{QPS: 20, Burst: 40}, qps: 50, burst: 100, wantQPS: 50, wantBurst: 100},
		"options can restore client-go's defaults": {qps: 5, burst: 10, wantQPS: 5, wantBurst: 10},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := withLimits(&tt.cfg, tt.qps, tt.burst)
			if got.QPS != tt.wantQPS || got.Burst != tt.wantBurst {
				t.Errorf("QPS, Burst = %v, %v; want %v, %v", got.QPS, got.Burst, tt.wantQPS, tt.wantBurst)
			}
			if got == &tt.cfg {
				t.Error("the caller's configuration was changed")
			}
		})
	}
}
