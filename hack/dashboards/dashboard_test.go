// Package dashboards checks deploy/grafana/fledge.json against fledge's real
// registries: the gateway's (a real gateway.Gateway that proxied a request to
// a real backend, scraped on its /metrics) and the controller's.
package dashboards

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/controller"
	"github.com/fledge-dev/fledge/internal/gateway"
)

const (
	dashboardFile = "../../deploy/grafana/fledge.json"
	chartCopy     = "../../deploy/helm/fledge/dashboards/fledge.json"
)

// catalog maps a metric name to its labels.
type catalog map[string]map[string]bool

// gatewayCatalog proxies one request through a real gateway to a real backend
// and reads the metric families and labels its /metrics serves.
func gatewayCatalog(t *testing.T) catalog {
	t.Helper()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	t.Cleanup(backend.Close)
	host, portStr, err := net.SplitHostPort(strings.TrimPrefix(backend.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(portStr)
	g := gateway.New(gateway.Options{})
	ready := true
	g.Update(context.Background(), gateway.Objects{
		TrafficRoutes: []*fledgev1.TrafficRoute{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
			Spec: fledgev1.TrafficRouteSpec{Host: "web", Stable: fledgev1.BackendRef{Service: "web-v1", Port: 80},
				Canary: &fledgev1.BackendRef{Service: "web-v2", Port: 80}, CanaryWeight: 50}}},
		Services:       []*corev1.Service{svc("web-v1", port), svc("web-v2", port)},
		EndpointSlices: []*discoveryv1.EndpointSlice{slice("web-v1", host, port, &ready), slice("web-v2", host, port, &ready)},
	})
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://web/", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("the gateway answered %d, want 200", rec.Code)
	}
	rec = httptest.NewRecorder()
	g.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	tp := expfmt.NewTextParser(model.UTF8Validation)
	families, err := tp.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parsing the gateway's /metrics: %v", err)
	}
	out := catalog{}
	for name, f := range families {
		ls := map[string]bool{}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				ls[l.GetName()] = true
			}
		}
		switch f.GetType().String() {
		case "HISTOGRAM":
			out[name+"_bucket"] = with(ls, "le")
			out[name+"_sum"], out[name+"_count"] = ls, ls
		case "SUMMARY":
			out[name] = with(ls, "quantile")
			out[name+"_sum"], out[name+"_count"] = ls, ls
		default:
			out[name] = ls
		}
	}
	return out
}

func with(m map[string]bool, k string) map[string]bool {
	m = maps.Clone(m)
	m[k] = true
	return m
}

func svc(name string, port int) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{{
			Name: "http", Port: 80, TargetPort: intstr.FromInt32(int32(port)), Protocol: corev1.ProtocolTCP}}}}
}

func slice(name, host string, port int, ready *bool) *discoveryv1.EndpointSlice {
	p, proto, portName := int32(port), corev1.ProtocolTCP, "http"
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "shop", Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &p, Protocol: &proto}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{host}, Conditions: discoveryv1.EndpointConditions{Ready: ready}}},
	}
}

func fledgeCatalog(t *testing.T) catalog {
	c := gatewayCatalog(t)
	for name, ls := range controller.MetricLabels() {
		c[name] = map[string]bool{}
		for _, l := range ls {
			c[name][l] = true
		}
	}
	return c
}

// query is one PromQL expression of the dashboard and where it is.
type query struct {
	where, expr, legend string
}

type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr         string `json:"expr"`
			LegendFormat string `json:"legendFormat"`
		} `json:"targets"`
	} `json:"panels"`
	Annotations struct {
		List []struct {
			Name        string `json:"name"`
			Expr        string `json:"expr"`
			TitleFormat string `json:"titleFormat"`
			TextFormat  string `json:"textFormat"`
			TagKeys     string `json:"tagKeys"`
		} `json:"list"`
	} `json:"annotations"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

var labelValuesRE = regexp.MustCompile(`^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// queries returns every PromQL expression of the dashboard: the panels'
// targets, the annotations, and the selectors of the label_values variables
// (as selector{...} by (label), so the label is checked too).
func queries(t *testing.T, d dashboard) []query {
	t.Helper()
	var out []query
	for _, p := range d.Panels {
		for i, tg := range p.Targets {
			out = append(out, query{where: "panel " + strconv.Quote(p.Title) + " target " + strconv.Itoa(i), expr: tg.Expr, legend: tg.LegendFormat})
		}
	}
	for _, a := range d.Annotations.List {
		legend := a.TitleFormat + a.TextFormat
		for _, k := range strings.Split(a.TagKeys, ",") {
			legend += "{{" + strings.TrimSpace(k) + "}}"
		}
		out = append(out, query{where: "annotation " + strconv.Quote(a.Name), expr: a.Expr, legend: legend})
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		m := labelValuesRE.FindStringSubmatch(q.Query)
		if m == nil {
			t.Fatalf("variable %s: query %q is not label_values(SELECTOR, LABEL)", v.Name, q.Query)
		}
		out = append(out, query{where: "variable " + v.Name, expr: "count by (" + m[2] + ") (" + m[1] + ")", legend: "{{" + m[2] + "}}"})
	}
	return out
}

// grafanaVars are Grafana's interval variables, which PromQL cannot parse.
var grafanaVars = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "$__range", "1h")

var legendRE = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)

// check parses q and returns what it names that the catalog lacks.
func check(q query, cat catalog) []string {
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaVars.Replace(q.expr))
	if err != nil {
		return []string{"does not parse: " + err.Error()}
	}
	var problems []string
	used := map[string]bool{} // labels of the metrics used
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		ls, ok := cat[name]
		if !ok {
			problems = append(problems, "metric "+name+" is not in fledge's registries")
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name != labels.MetricName && !ls[m.Name] {
				problems = append(problems, "metric "+name+" has no label "+m.Name)
			}
		}
		maps.Copy(used, ls)
		return nil
	})
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		var grouping []string
		switch e := n.(type) {
		case *parser.AggregateExpr:
			grouping = e.Grouping
		case *parser.BinaryExpr:
			if e.VectorMatching != nil {
				grouping = append(slices.Clone(e.VectorMatching.MatchingLabels), e.VectorMatching.Include...)
			}
		}
		for _, l := range grouping {
			if !used[l] {
				problems = append(problems, "groups or matches by label "+l+", which none of its metrics has")
			}
		}
		return nil
	})
	for _, m := range legendRE.FindAllStringSubmatch(q.legend, -1) {
		if !used[m[1]] {
			problems = append(problems, "legend names label "+m[1]+", which none of its metrics has")
		}
	}
	return problems
}

func TestDashboard(t *testing.T) {
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if chart, err := os.ReadFile(chartCopy); err != nil || !bytes.Equal(chart, data) {
		t.Errorf("the chart's %s is not the same file as %s (copy it): %v", chartCopy, dashboardFile, err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	cat := fledgeCatalog(t)
	qs := queries(t, d)
	if len(qs) < 10 {
		t.Fatalf("found %d expressions in the dashboard, want its panels', annotations' and variables' (10 or more)", len(qs))
	}
	metrics := map[string]bool{}
	for _, q := range qs {
		for _, p := range check(q, cat) {
			t.Errorf("%s: %s\n\t%s", q.where, p, q.expr)
		}
		for name := range cat {
			if strings.Contains(q.expr, name) {
				metrics[name] = true
			}
		}
	}
	// What the issue asks the dashboard to show.
	for _, want := range []string{"fledge_gateway_requests_total", "fledge_gateway_request_duration_seconds_bucket",
		"fledge_gateway_route_canary_weight", "fledge_release_decisions_total"} {
		if !metrics[want] {
			t.Errorf("the dashboard does not use %s", want)
		}
	}
	t.Logf("%d expressions checked against %d metrics", len(qs), len(cat))
}

// TestCheckFindsMistakes: the check is not vacuous.
func TestCheckFindsMistakes(t *testing.T) {
	cat := fledgeCatalog(t)
	for expr, want := range map[string]string{
		`sum(rate(fledge_gateway_requests_total{app="x"}[5m]))`:                 "",
		`sum(rate(fledge_gateway_request_total[5m]))`:                           "metric fledge_gateway_request_total is not in",
		`sum(rate(fledge_gateway_requests_total{release="x"}[5m]))`:             "has no label release",
		`sum by (release) (rate(fledge_gateway_requests_total[5m]))`:            "groups or matches by label release",
		`sum(rate(fledge_gateway_requests_total[5m])`:                           "does not parse",
		`histogram_quantile(0.9, sum by (le) (rate(fledge_release_phase[5m])))`: "groups or matches by label le",
		`fledge_release_decisions_total{reason="StepUp", namespace="a"}`:        "",
		`max by (namespace, release) (fledge_release_canary_weight{app=~".*"})`: "has no label app",
	} {
		got := strings.Join(check(query{expr: expr}, cat), "; ")
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("check(%s) = %q, want %q", expr, got, want)
		}
	}
}
