package gateway

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// scrape GETs /metrics from g's admin handler and parses the text format.
func scrape(t testing.TB, g *Gateway) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	g.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// sample returns the value of the series of family name with exactly labels: a
// counter's or gauge's value, a histogram's sample count.
func sample(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// describe prints a family's series for failure messages.
func describe(mfs map[string]*dto.MetricFamily, name string) string {
	var b strings.Builder
	for _, m := range mfs[name].GetMetric() {
		fmt.Fprintf(&b, "%v ", m.GetLabel())
	}
	return b.String()
}

func TestMetrics(t *testing.T) {
	g := New(Options{})
	objs := proxyObjects(t)
	objs.TrafficRoutes[0].Spec.CanaryWeight = 25
	g.Update(t.Context(), objs)
	front, done := frontend(t, g)
	requests := []struct {
		host   string
		header []string
	}{
		{"error-page", nil}, {"error-page", nil}, {"error-page", nil}, {"error-page", nil}, // 3 stable, 1 canary
		{"error-page", []string{"X-Canary", "yes"}},
		{"empty.example", nil}, {"empty.example", nil},
		{"down.example", nil},
		{"nowhere.example", nil},
	}
	for _, r := range requests {
		get(t, front, r.host, "/", r.header...)
		<-done
	}
	mfs := scrape(t, g)
	series := func(app, service string) map[string]string {
		return map[string]string{"namespace": "shop", "app": app, "service": service}
	}
	withCode := func(labels map[string]string, code string) map[string]string {
		out := map[string]string{"code": code}
		for k, v := range labels {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{metricRequests, withCode(series("error-page", "error-page-stable"), "200"), 3},
		{metricRequests, withCode(series("error-page", "error-page-canary"), "200"), 2},
		{metricRequests, withCode(series("empty", "empty-stable"), "503"), 2},
		{metricRequests, withCode(series("down", "down-stable"), "502"), 1},
		{metricDuration, series("error-page", "error-page-stable"), 3},
		{metricDuration, series("error-page", "error-page-canary"), 2},
		{metricDuration, series("empty", "empty-stable"), 2},
		{metricWeight, map[string]string{"namespace": "shop", "app": "error-page"}, 25},
		{metricWeight, map[string]string{"namespace": "shop", "app": "empty"}, 0},
		{metricRoutes, map[string]string{}, 3},
		{metricSkipped, map[string]string{}, 0},
		{metricUnknownHost, map[string]string{}, 1},
	}
	for _, tc := range tests {
		got, ok := sample(mfs, tc.name, tc.labels)
		if !ok || got != tc.want {
			t.Errorf("%s%v = %v (found %v), want %v; series: %s", tc.name, tc.labels, got, ok, tc.want, describe(mfs, tc.name))
		}
	}
	if n := len(mfs[metricRequests].GetMetric()); n != 4 {
		t.Errorf("%s has %d series, want 4: %s", metricRequests, n, describe(mfs, metricRequests))
	}
	h := mfs[metricDuration].GetMetric()[0].GetHistogram()
	if n := len(h.GetBucket()); n != 21 { // 20 and +Inf
		t.Fatalf("%s has %d buckets, want 20 and +Inf", metricDuration, n)
	}
	if lo, hi := h.GetBucket()[0].GetUpperBound(), h.GetBucket()[19].GetUpperBound(); lo != 0.001 || hi < 9.99 || hi > 10.01 {
		t.Errorf("buckets from %v to %v, want 0.001 to 10", lo, hi)
	}

	// A route leaving the table takes its series along; the others stay.
	objs.TrafficRoutes = []*fledgev1.TrafficRoute{objs.TrafficRoutes[0], objs.TrafficRoutes[2]}
	g.Update(t.Context(), objs)
	mfs = scrape(t, g)
	if _, ok := sample(mfs, metricRequests, withCode(series("empty", "empty-stable"), "503")); ok {
		t.Error("requests of the removed route still exported")
	}
	if _, ok := sample(mfs, metricWeight, map[string]string{"namespace": "shop", "app": "empty"}); ok {
		t.Error("weight of the removed route still exported")
	}
	if got, _ := sample(mfs, metricRequests, withCode(series("error-page", "error-page-stable"), "200")); got != 3 {
		t.Errorf("requests of a kept route = %v after a rebuild, want 3 (counters must survive)", got)
	}
	if got, _ := sample(mfs, metricRoutes, map[string]string{}); got != 2 {
		t.Errorf("%s = %v, want 2", metricRoutes, got)
	}
}

func TestRoutesSkippedGauge(t *testing.T) {
	g := New(Options{})
	g.Update(t.Context(), Objects{TrafficRoutes: []*fledgev1.TrafficRoute{
		trafficRoute("a", "web.example"), trafficRoute("b", "web.example"), trafficRoute("c", "x.example", withCanary(-1)),
	}})
	if got, _ := sample(scrape(t, g), metricSkipped, map[string]string{}); got != 2 {
		t.Errorf("%s = %v, want 2", metricSkipped, got)
	}
}
