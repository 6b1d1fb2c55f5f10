package metricsource_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/fledge-dev/fledge/internal/metricsource"
)

// promServer is a real Prometheus (Debian's package) scraping one gateway
// replica every second.
type promServer struct {
	url     string
	api     promv1.API
	replica *replica
}

var prom struct {
	once sync.Once
	s    *promServer
	err  error
}

// Requests served by the Prometheus replica before Prometheus starts, so that
// every series the tests increase starts high (see TestPrometheusCounts).
const (
	promPrefillOK    = 300
	promPrefill5xx   = 100
	promPrefillTotal = promPrefillOK + promPrefill5xx
)

// prometheusServer returns the Prometheus shared by the tests of this binary,
// starting it on first use (about 7 s: target discovery waits 5 s).
func prometheusServer(t *testing.T) *promServer {
	t.Helper()
	prom.once.Do(func() {
		prom.err = errors.New("starting prometheus failed in an earlier test")
		prom.s, prom.err = startPrometheus(t)
	})
	if prom.err != nil {
		t.Fatal(prom.err)
	}
	return prom.s
}

func startPrometheus(t *testing.T) (*promServer, error) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		return nil, errors.New("prometheus is not installed: run hack/setup.sh, which installs Debian's prometheus package (CI runs it)")
	}
	a := startApp()
	r := startReplica(a)
	atExit(a.srv.Close)
	atExit(r.srv.Close)
	r.Do(t, webHost, "/", true, promPrefillOK)
	r.Do(t, webHost, "/status/503", true, promPrefill5xx)
	r.Do(t, webHost, "/", false, 10)

	dir, err := os.MkdirTemp("", "metricsource-prometheus-")
	if err != nil {
		return nil, err
	}
	atExit(func() { _ = os.RemoveAll(dir) })
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: gateway
    static_configs:
      - targets: [%q]
`, strings.TrimPrefix(r.srv.URL, "http://"))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cmd := exec.Command(bin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting prometheus: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	atExit(func() {
		_ = cmd.Process.Kill()
		<-exited
		_ = logFile.Close()
	})
	fail := func(err error) (*promServer, error) {
		log, _ := os.ReadFile(logFile.Name())
		return nil, fmt.Errorf("%w\nprometheus log:\n%s", err, log)
	}

	c, err := api.NewClient(api.Config{Address: "http://" + addr})
	if err != nil {
		return nil, err
	}
	s := &promServer{url: "http://" + addr, api: promv1.NewAPI(c), replica: r}
	// Ready, then the first samples in (discovery waits about 5 s).
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			return fail(errors.New("prometheus exited"))
		default:
		}
		if time.Now().After(deadline) {
			return fail(errors.New("prometheus had no gateway samples after 30s"))
		}
		if v, err := s.value(t.Context(), `sum(fledge_gateway_requests_total{service="web-canary"})`); err == nil && v == promPrefillTotal {
			return s, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// value runs an instant query that returns one sample.
func (s *promServer) value(ctx context.Context, q string) (float64, error) {
	v, _, err := s.api.Query(ctx, q, time.Now())
	if err != nil {
		return 0, err
	}
	vec, ok := v.(model.Vector)
	if !ok || len(vec) != 1 {
		return 0, fmt.Errorf("%s: %v", q, v)
	}
	return float64(vec[0].Value), nil
}

// waitFor polls an instant query until ok accepts its value.
func (s *promServer) waitFor(t *testing.T, q string, ok func(float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, err := s.value(t.Context(), q)
		if err == nil && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: last %v, %v", q, v, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *promServer) source(t *testing.T, now time.Time, q metricsource.Queries) *metricsource.Prometheus {
	t.Helper()
	src, err := metricsource.NewPrometheus(metricsource.PrometheusOptions{URL: s.url, Queries: q, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

const canarySeries = `fledge_gateway_requests_total{namespace="shop",app="web",service="web-canary"`

// trafficWindow sends ok and failed requests to the canary inside a window:
// it starts before a sample taken before the traffic and ends after the
// sample that holds all of it.
func trafficWindow(t *testing.T, p *promServer, ok, failed int) (start, now time.Time) {
	t.Helper()
	start = time.Now()
	before := p.waitFor(t, `sum(`+canarySeries+`,code=~"200|503"})`, func(float64) bool { return true })
	p.waitFor(t, `max(timestamp(`+canarySeries+`,code="200"}))`, func(ts float64) bool { return ts > float64(start.UnixNano())/1e9 })
	p.replica.Do(t, webHost, "/", true, ok)
	p.replica.Do(t, webHost, "/status/503", true, failed)
	p.waitFor(t, `sum(`+canarySeries+`,code=~"200|503"})`, func(v float64) bool { return v == before+float64(ok+failed) })
	return start, time.Now()
}

// TestPrometheusCounts: without Queries the source reads the counters at the
// window's start and at now, so the counts are exact integers, the same as
// the builtin source's: no extrapolation.
func TestPrometheusCounts(t *testing.T) {
	p := prometheusServer(t)
	const ok, failed = 20, 5
	start, now := trafficWindow(t, p, ok, failed)
	got, err := p.source(t, now, metricsource.Queries{}).Since(t.Context(), webCanary, start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("window %v: %s", now.Sub(start).Round(time.Millisecond), describe(got))
	if got.Requests != ok+failed || got.Errors != failed {
		t.Fatalf("requests %v, errors %v; want exactly %d and %d", got.Requests, got.Errors, ok+failed, failed)
	}
	n := len(got.Latency)
	if n < 2 || !math.IsInf(got.Latency[n-1].UpperBound, 1) || got.Latency[n-1].Count != ok+failed {
		t.Fatalf("latency %v, want +Inf last with %d", got.Latency, ok+failed)
	}
	for i := 1; i < n; i++ {
		if got.Latency[i].UpperBound <= got.Latency[i-1].UpperBound || got.Latency[i].Count < got.Latency[i-1].Count ||
			got.Latency[i].Count != math.Trunc(got.Latency[i].Count) {
			t.Fatalf("latency %v is not a cumulative histogram of whole counts", got.Latency)
		}
	}
}

// TestPrometheusIncrease checks custom queries with increase() over a window
// that holds the whole increase: Prometheus extrapolates to the window's
// edges, so each value is f times the true increase, with 1 ≤ f ≤ window /
// (time between the first and last samples in it). Every series that grows
// starts high (the prefill), so Prometheus extrapolates them all by the same
// f: requests, errors and the +Inf bucket must be exactly proportional to the
// true counts. This inflation is why the default reads the counters instead.
func TestPrometheusIncrease(t *testing.T) {
	p := prometheusServer(t)
	const ok, failed = 20, 5
	start, now := trafficWindow(t, p, ok, failed)
	q := metricsource.Queries{Requests: metricsource.IncreaseRequestsQuery}
	got, err := p.source(t, now, q).Since(t.Context(), webCanary, start)
	if err != nil {
		t.Fatal(err)
	}

	// The raw samples in the same window: the increase is inside it whole.
	window := metricsource.WindowSeconds(start, now)
	raw, _, err := p.api.Query(t.Context(), fmt.Sprintf(`%s,code="200"}[%ds]`, canarySeries, window), now)
	if err != nil {
		t.Fatal(err)
	}
	m, isMatrix := raw.(model.Matrix)
	if !isMatrix || len(m) != 1 || len(m[0].Values) < 2 {
		t.Fatalf("raw samples: %v", raw)
	}
	samples := m[0].Values
	first, last := samples[0], samples[len(samples)-1]
	if float64(last.Value-first.Value) != ok {
		t.Fatalf("the window's samples rise from %v to %v, want by %d", first.Value, last.Value, ok)
	}
	sampled := last.Timestamp.Sub(first.Timestamp).Seconds()

	f := got.Requests / (ok + failed)
	t.Logf("window %ds, samples over %.3fs, extrapolation factor %.4f; %s", window, sampled, f, describe(got))
	if f < 1 || f > float64(window)/sampled+1e-9 {
		t.Fatalf("requests %v: factor %v outside [1, %v]", got.Requests, f, float64(window)/sampled)
	}
	near := func(x, y float64) bool { return math.Abs(x-y) <= 1e-9*math.Max(1, math.Abs(y)) }
	if !near(got.Errors, f*failed) {
		t.Fatalf("errors %v, want %v (= %v × %d)", got.Errors, f*failed, f, failed)
	}
	n := len(got.Latency)
	if n < 2 || !math.IsInf(got.Latency[n-1].UpperBound, 1) || !near(got.Latency[n-1].Count, f*(ok+failed)) {
		t.Fatalf("latency %v, want +Inf last with %v", got.Latency, f*(ok+failed))
	}
}

func TestPrometheusNoData(t *testing.T) {
	p := prometheusServer(t)
	now := time.Now()
	tests := map[string]struct {
		b     metricsource.Backend
		start time.Time
		q     metricsource.Queries
	}{
		"no series":            {metricsource.Backend{Namespace: "shop", App: "web", Service: "web-next"}, now.Add(-time.Minute), metricsource.Queries{}},
		"other namespace":      {metricsource.Backend{Namespace: "nope", App: "web", Service: "web-canary"}, now.Add(-time.Minute), metricsource.Queries{}},
		"window in the future": {webCanary, now.Add(time.Minute), metricsource.Queries{}},
		"NaN requests":         {webCanary, now.Add(-time.Minute), metricsource.Queries{Requests: `vector(NaN)`}},
		"+Inf requests":        {webCanary, now.Add(-time.Minute), metricsource.Queries{Requests: `vector(+Inf)`}},
		// Without "or vector(0)", no 5xx series means an empty result: never 0.
		"empty errors result": {webStable, now.Add(-time.Minute), metricsource.Queries{
			Errors: `sum(increase(fledge_gateway_requests_total{namespace="{{.Namespace}}",app="{{.App}}",service="{{.Service}}",code=~"5.."}[{{.Window}}]))`,
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := p.source(t, now, tc.q).Since(t.Context(), tc.b, tc.start)
			if !errors.Is(err, metricsource.ErrNoData) {
				t.Fatalf("got %s, %v; want ErrNoData", describe(got), err)
			}
		})
	}
	// The default errors query gives 0, not no data, for a backend without 5xx.
	// (The window starts after Prometheus' first sample: a series it had no
	// sample of at the start counts from zero, as a series born inside the
	// window does.)
	got, err := p.source(t, now, metricsource.Queries{}).Since(t.Context(), webStable, now.Add(-2*time.Second))
	if err != nil || got.Requests != 0 || got.Errors != 0 {
		t.Fatalf("stable without traffic in the window: got %s, %v; want 0 requests, 0 errors", describe(got), err)
	}
}

func TestPrometheusErrors(t *testing.T) {
	p := prometheusServer(t)
	now := time.Now()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}))
	defer unavailable.Close()
	tests := map[string]struct {
		url string
		q   metricsource.Queries
	}{
		"prometheus down":        {down.URL, metricsource.Queries{}},
		"HTTP 503":               {unavailable.URL, metricsource.Queries{}},
		"bad query":              {p.url, metricsource.Queries{Requests: `sum(rate(`}},
		"several series":         {p.url, metricsource.Queries{Requests: `sum by (code) (increase(fledge_gateway_requests_total{service="{{.Service}}"}[{{.Window}}]))`}},
		"negative":               {p.url, metricsource.Queries{Requests: `vector(-1)`}},
		"a range vector":         {p.url, metricsource.Queries{Requests: `fledge_gateway_requests_total{service="{{.Service}}"}[{{.Window}}]`}},
		"buckets without le":     {p.url, metricsource.Queries{Latency: `sum(increase(fledge_gateway_request_duration_seconds_bucket{service="{{.Service}}"}[{{.Window}}]))`}},
		"buckets without +Inf":   {p.url, metricsource.Queries{Latency: `sum by (le) (increase(fledge_gateway_request_duration_seconds_bucket{service="{{.Service}}",le!="+Inf"}[{{.Window}}]))`}},
		"buckets not aggregated": {p.url, metricsource.Queries{Latency: `increase(fledge_gateway_request_duration_seconds_bucket{service="{{.Service}}"}[{{.Window}}]) or label_replace(increase(fledge_gateway_request_duration_seconds_bucket{service="{{.Service}}"}[{{.Window}}]), "x", "y", "", "")`}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			src, err := metricsource.NewPrometheus(metricsource.PrometheusOptions{URL: tc.url, Queries: tc.q, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			got, err := src.Since(t.Context(), webCanary, now.Add(-time.Minute))
			if err == nil || errors.Is(err, metricsource.ErrNoData) {
				t.Fatalf("got %s, %v; want an error other than ErrNoData", describe(got), err)
			}
			t.Log(err)
		})
	}
}

// TestPrometheusEscaping sends label values that would change the query if
// they were not escaped: each must select nothing (no data), never data of
// another backend, nor make the query invalid.
func TestPrometheusEscaping(t *testing.T) {
	p := prometheusServer(t)
	now := time.Now()
	src := p.source(t, now, metricsource.Queries{})
	tests := map[string]metricsource.Backend{
		"matcher injection":  {Namespace: "shop", App: `web",app=~".*`, Service: "web-canary"},
		"trailing backslash": {Namespace: "shop", App: `web\`, Service: "web-canary"},
		"newline":            {Namespace: "shop\n", App: "web", Service: "web-canary"},
		"brace and quote":    {Namespace: "shop", App: "web", Service: `web-canary"}) or vector(1) or sum(x{a="`},
		"unicode":            {Namespace: "shöp", App: "wéb", Service: "web-canary"},
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := src.Since(t.Context(), b, now.Add(-time.Minute))
			if !errors.Is(err, metricsource.ErrNoData) {
				t.Fatalf("got %s, %v; want ErrNoData", describe(got), err)
			}
		})
	}
	// The injection is real: unescaped, it selects the canary's series.
	injected := fmt.Sprintf(`sum(fledge_gateway_requests_total{namespace="shop",app="%s",service="web-canary"})`, tests["matcher injection"].App)
	if v, err := p.value(t.Context(), injected); err != nil || v < promPrefillTotal {
		t.Fatalf("unescaped %s: %v, %v; want the canary's count", injected, v, err)
	}
}

// fakePrometheus answers every query with one sample (the latency query with
// a +Inf bucket) when the request carries the wanted Authorization header: 42
// at an instant in the last 30 s, 0 before, so that 42 requests were served
// in a window that starts earlier.
func fakePrometheus(t *testing.T, wantAuth string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != wantAuth {
			http.Error(w, `{"status":"error","errorType":"unauthorized","error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		_ = r.ParseForm()
		metric := `{}`
		if strings.Contains(r.Form.Get("query"), "_bucket") {
			metric = `{"le":"+Inf"}`
		}
		value := "42"
		if at, err := strconv.ParseFloat(r.Form.Get("time"), 64); err == nil && at < float64(time.Now().Add(-30*time.Second).Unix()) {
			value = "0"
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":%s,"value":[1700000000,"%s"]}]}}`, metric, value)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestPrometheusAuth(t *testing.T) {
	const token = "s3cr3t-t0ken"
	tests := map[string]struct {
		wantAuth string
		opts     metricsource.PrometheusOptions
		wantErr  bool
	}{
		"bearer token": {"Bearer " + token, metricsource.PrometheusOptions{BearerToken: token}, false},
		"basic":        {"Basic ZmxlZGdlOnB3", metricsource.PrometheusOptions{Username: "fledge", Password: "pw"}, false},
		"wrong token":  {"Bearer other", metricsource.PrometheusOptions{BearerToken: token}, true},
		"no token":     {"Bearer " + token, metricsource.PrometheusOptions{}, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.opts.URL = fakePrometheus(t, tc.wantAuth).URL
			src, err := metricsource.NewPrometheus(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := src.Since(t.Context(), webCanary, time.Now().Add(-time.Minute))
			switch {
			case tc.wantErr && (err == nil || errors.Is(err, metricsource.ErrNoData)):
				t.Fatalf("got %s, %v; want an error other than ErrNoData", describe(got), err)
			case tc.wantErr && strings.Contains(err.Error(), token):
				t.Fatalf("the error reveals the token: %v", err)
			case !tc.wantErr && (err != nil || got.Requests != 42):
				t.Fatalf("got %s, %v; want 42 requests", describe(got), err)
			}
		})
	}
	// A configuration printed in a log does not show its secrets.
	opts := metricsource.PrometheusOptions{URL: "http://prometheus:9090", BearerToken: token, Password: token}
	for _, s := range []string{fmt.Sprint(opts), fmt.Sprintf("%+v", opts), fmt.Sprintf("%#v", opts)} {
		if strings.Contains(s, token) {
			t.Fatalf("printed options reveal the token: %s", s)
		}
	}
}

func TestNewPrometheusRejects(t *testing.T) {
	tests := map[string]metricsource.PrometheusOptions{
		"no URL":                       {},
		"bearer token and basic auth":  {URL: "http://p:9090", BearerToken: "t", Username: "u"},
		"template syntax":              {URL: "http://p:9090", Queries: metricsource.Queries{Requests: `sum({{.Namespace)`}},
		"template with an unknown key": {URL: "http://p:9090", Queries: metricsource.Queries{Errors: `sum(x{a="{{.Pod}}"})`}},
		"URL that does not parse":      {URL: "http://p:9090/%zz"},
	}
	for name, opts := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := metricsource.NewPrometheus(opts); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestWindowSeconds(t *testing.T) {
	start := time.Unix(1000, 0)
	tests := map[string]struct {
		elapsed time.Duration
		want    int64
	}{
		"zero is one second":    {0, 1},
		"rounded up":            {1200 * time.Millisecond, 2},
		"whole seconds":         {5 * time.Second, 5},
		"a nanosecond over":     {5*time.Second + 1, 6},
		"long window":           {90 * time.Minute, 5400},
		"just under a second":   {999 * time.Millisecond, 1},
		"negative (clock skew)": {-time.Second, 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := metricsource.WindowSeconds(start, start.Add(tc.elapsed)); got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
}
