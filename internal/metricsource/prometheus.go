package metricsource

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"text/template"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/fledge-dev/fledge/internal/gatewaymetrics"
)

// PromQL templates of increase() over the window, for the gateway's metrics:
// the defaults of the Queries fields left empty when some are set. See
// [QueryData] for what a template can use. Label values are inserted already
// escaped, so a template puts them between double quotes.
const (
	IncreaseRequestsQuery = `sum(increase(` + requestsCounter + `[{{.Window}}]))`
	IncreaseErrorsQuery   = `sum(increase(` + errorsCounter + `[{{.Window}}])) or vector(0)`
	IncreaseLatencyQuery  = `sum by (le) (increase(` + latencyCounter + `[{{.Window}}]))`

	// The gateway's counters of one backend, read at two instants when no
	// Queries are set.
	requestsCounter = gatewaymetrics.Requests + `{` + backendSelector + `,code!="499"}`
	errorsCounter   = gatewaymetrics.Requests + `{` + backendSelector + `,code=~"5.."}`
	latencyCounter  = gatewaymetrics.RequestDuration + `_bucket{` + backendSelector + `}`

	// backendSelector selects one backend's series of the gateway's metrics.
	backendSelector = gatewaymetrics.Namespace + `="{{.Namespace}}",` + gatewaymetrics.App + `="{{.App}}",` + gatewaymetrics.Service + `="{{.Service}}"`
)

// Queries are the PromQL templates (text/template) of a Prometheus source.
// Leave them all empty to read the gateway's counters exactly: each series at
// the window's start and at now, the difference summed (no extrapolation).
// When one is set, the others default to IncreaseRequestsQuery,
// IncreaseErrorsQuery and IncreaseLatencyQuery, and every count is the
// query's result at now (increase() extrapolates: see the package
// documentation).
type Queries struct {
	// Requests must return one sample (or a scalar): the requests answered in
	// the window. An empty result, NaN or ±Inf means no data.
	Requests string
	// Errors must return one sample: the failed requests in the window. Its
	// result is never taken as 0 when empty (a typo would pass every canary):
	// add "or vector(0)" to the query, as the default does.
	Errors string
	// Latency must return one sample per bucket, labelled le (a cumulative
	// histogram, +Inf bucket included); an empty result gives no latency data.
	Latency string
}

// QueryData is what a query template is executed with.
type QueryData struct {
	// Namespace, App and Service are the backend's, escaped for use between
	// double quotes in a PromQL string (" and \ escaped).
	Namespace, App, Service string
	// Window is the window as a PromQL duration: whole seconds since the
	// window's start, rounded up, at least 1 ("95s").
	Window string
	// Seconds is the same window as a number of seconds.
	Seconds int64
}

// Secret is a credential. It prints as "REDACTED", so that logging a
// configuration does not reveal it.
type Secret string

// String returns "REDACTED" (or "" when empty).
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "REDACTED"
}

// GoString returns the same as String, for %#v.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// PrometheusOptions configure a Prometheus source. Zero fields take the
// defaults documented on them.
type PrometheusOptions struct {
	// URL of the Prometheus server, e.g. "http://prometheus.monitoring:9090";
	// its HTTP API is under /api/v1. Required.
	URL string
	// BearerToken, when set, is sent as "Authorization: Bearer <token>".
	BearerToken Secret
	// Username and Password, when Username is set, are sent as basic
	// authentication. Not together with BearerToken.
	Username string
	Password Secret
	// Timeout bounds one Since (all its queries). Default 10s.
	Timeout time.Duration
	// Queries are the PromQL templates; none (the default) reads the
	// gateway's counters exactly at two instants.
	Queries Queries
	// Transport sends the requests (e.g. with TLS settings). Default: a clone
	// of http.DefaultTransport.
	Transport http.RoundTripper
	// Now returns the current time. Default time.Now; tests set a fake clock.
	Now func() time.Time
}

// Prometheus is the Source reading the gateway's metrics (or any metrics, with
// other queries) from a Prometheus server, with instant queries at now.
type Prometheus struct {
	api     promv1.API
	timeout time.Duration
	now     func() time.Time
	// exact: the templates are counter selectors, read at two instants.
	exact                     bool
	requests, errors, latency *template.Template
}

var _ Source = (*Prometheus)(nil)

// NewPrometheus returns a Prometheus source. It checks the options and parses
// and tries the templates; it does not contact the server.
func NewPrometheus(opts PrometheusOptions) (*Prometheus, error) {
	if opts.URL == "" {
		return nil, errors.New("prometheus source: no URL")
	}
	if opts.BearerToken != "" && opts.Username != "" {
		return nil, errors.New("prometheus source: both a bearer token and basic authentication")
	}
	rt := opts.Transport
	if rt == nil {
		rt = http.DefaultTransport.(*http.Transport).Clone()
	}
	switch {
	case opts.BearerToken != "":
		rt = authTransport{next: rt, header: "Bearer " + string(opts.BearerToken)}
	case opts.Username != "":
		rt = authTransport{next: rt, username: opts.Username, password: string(opts.Password)}
	}
	c, err := api.NewClient(api.Config{Address: opts.URL, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus source: %w", err)
	}
	p := &Prometheus{
		api:     promv1.NewAPI(c),
		timeout: opts.Timeout,
		now:     opts.Now,
	}
	if p.timeout <= 0 {
		p.timeout = 10 * time.Second
	}
	if p.now == nil {
		p.now = time.Now
	}
	defaults := Queries{Requests: IncreaseRequestsQuery, Errors: IncreaseErrorsQuery, Latency: IncreaseLatencyQuery}
	if opts.Queries == (Queries{}) {
		p.exact = true
		defaults = Queries{Requests: requestsCounter, Errors: errorsCounter, Latency: latencyCounter}
	}
	for _, q := range []struct {
		name     string
		text     string
		def      string
		template **template.Template
	}{
		{"requests", opts.Queries.Requests, defaults.Requests, &p.requests},
		{"errors", opts.Queries.Errors, defaults.Errors, &p.errors},
		{"latency", opts.Queries.Latency, defaults.Latency, &p.latency},
	} {
		t, err := template.New(q.name).Option("missingkey=error").Parse(cmp.Or(q.text, q.def))
		if err == nil {
			_, err = render(t, Backend{Namespace: "ns", App: "app", Service: "svc"}, 1)
		}
		if err != nil {
			return nil, fmt.Errorf("prometheus source: %s query template: %w", q.name, err)
		}
		*q.template = t
	}
	return p, nil
}

// authTransport adds an Authorization header.
type authTransport struct {
	next               http.RoundTripper
	header             string
	username, password string
}

func (a authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if a.header != "" {
		r.Header.Set("Authorization", a.header)
	} else {
		r.SetBasicAuth(a.username, a.password)
	}
	return a.next.RoundTrip(r)
}

// quote escapes s for the inside of a double-quoted PromQL string, which
// PromQL unquotes as Go does.
func quote(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// WindowSeconds returns the length of the PromQL range of a window from start
// to now: whole seconds, rounded up, at least one.
func WindowSeconds(start, now time.Time) int64 {
	d := now.Sub(start)
	s := int64(d / time.Second)
	if d%time.Second > 0 {
		s++
	}
	return max(s, 1)
}

func render(t *template.Template, b Backend, seconds int64) (string, error) {
	var buf bytes.Buffer
	err := t.Execute(&buf, QueryData{
		Namespace: quote(b.Namespace), App: quote(b.App), Service: quote(b.Service),
		Window: strconv.FormatInt(seconds, 10) + "s", Seconds: seconds,
	})
	return buf.String(), err
}

// Since queries what b served from start until now.
func (p *Prometheus) Since(ctx context.Context, b Backend, start time.Time) (Counts, error) {
	now := p.now()
	if start.After(now) {
		return Counts{}, fmt.Errorf("backend %s: window starts in the future (%s): %w", b, start.Format(time.RFC3339), ErrNoData)
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	if p.exact {
		return p.exactSince(ctx, b, start, now)
	}
	seconds := WindowSeconds(start, now)
	requests, err := p.scalar(ctx, p.requests, b, seconds, now)
	if err != nil {
		return Counts{}, err
	}
	errs, err := p.scalar(ctx, p.errors, b, seconds, now)
	if err != nil {
		return Counts{}, err
	}
	latency, err := p.histogram(ctx, b, seconds, now)
	if err != nil {
		return Counts{}, err
	}
	return Counts{Requests: requests, Errors: errs, Latency: latency}, nil
}

// exactSince reads the gateway's counters of b at start and at now, each
// series on its own: a series' count in the window is its value at now minus
// its value at start; a series that went down (its replica restarted) counts
// its value at now; a series without a sample at start (born inside the
// window) counts from zero. No requests series at now is ErrNoData; no 5xx
// series counts 0 errors.
func (p *Prometheus) exactSince(ctx context.Context, b Backend, start, now time.Time) (Counts, error) {
	diff := func(t *template.Template) (model.Vector, string, error) {
		q, before, err := p.query(ctx, t, b, 0, start)
		if err != nil {
			return nil, q, err
		}
		_, after, err := p.query(ctx, t, b, 0, now)
		if err != nil {
			return nil, q, err
		}
		v0, ok0 := before.(model.Vector)
		v1, ok1 := after.(model.Vector)
		if !ok0 || !ok1 {
			return nil, q, fmt.Errorf("backend %s: prometheus query %s: a %s result, want a vector", b, q, after.Type())
		}
		base := make(map[model.Fingerprint]float64, len(v0))
		for _, s := range v0 {
			base[s.Metric.Fingerprint()] = float64(s.Value)
		}
		out := make(model.Vector, 0, len(v1))
		for _, s := range v1 {
			x := float64(s.Value)
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, q, fmt.Errorf("backend %s: prometheus query %s: series %s is %v: %w", b, q, s.Metric, x, ErrNoData)
			}
			if x0, ok := base[s.Metric.Fingerprint()]; ok && x0 <= x {
				x -= x0
			}
			out = append(out, &model.Sample{Metric: s.Metric, Value: model.SampleValue(x), Timestamp: s.Timestamp})
		}
		return out, q, nil
	}
	sum := func(v model.Vector) float64 {
		var x float64
		for _, s := range v {
			x += float64(s.Value)
		}
		return x
	}
	reqs, q, err := diff(p.requests)
	if err != nil {
		return Counts{}, err
	}
	if len(reqs) == 0 {
		return Counts{}, fmt.Errorf("backend %s: prometheus query %s: no series: %w", b, q, ErrNoData)
	}
	errs, _, err := diff(p.errors)
	if err != nil {
		return Counts{}, err
	}
	buckets, q, err := diff(p.latency)
	if err != nil {
		return Counts{}, err
	}
	byLe := map[string]float64{}
	for _, s := range buckets {
		le, ok := s.Metric[model.BucketLabel]
		if !ok {
			return Counts{}, fmt.Errorf("backend %s: prometheus query %s: a series without an le label", b, q)
		}
		byLe[string(le)] += float64(s.Value)
	}
	var sumVec model.Vector
	for le, x := range byLe {
		sumVec = append(sumVec, &model.Sample{Metric: model.Metric{model.BucketLabel: model.LabelValue(le)}, Value: model.SampleValue(x)})
	}
	latency, err := bucketsOf(b, q, sumVec)
	if err != nil {
		return Counts{}, err
	}
	return Counts{Requests: sum(reqs), Errors: sum(errs), Latency: latency}, nil
}

// query renders and runs one query at now.
func (p *Prometheus) query(ctx context.Context, t *template.Template, b Backend, seconds int64, now time.Time) (string, model.Value, error) {
	q, err := render(t, b, seconds)
	if err != nil {
		return "", nil, fmt.Errorf("backend %s: %s query: %w", b, t.Name(), err)
	}
	v, warnings, err := p.api.Query(ctx, q, now)
	if len(warnings) > 0 {
		logr.FromContextOrDiscard(ctx).V(1).Info("prometheus query warnings", "query", q, "warnings", warnings)
	}
	if err != nil {
		return q, nil, fmt.Errorf("backend %s: prometheus query %s: %w", b, q, err)
	}
	return q, v, nil
}

// scalar runs a query that must give one number.
func (p *Prometheus) scalar(ctx context.Context, t *template.Template, b Backend, seconds int64, now time.Time) (float64, error) {
	q, v, err := p.query(ctx, t, b, seconds, now)
	if err != nil {
		return 0, err
	}
	var x float64
	switch v := v.(type) {
	case model.Vector:
		switch len(v) {
		case 0:
			return 0, fmt.Errorf("backend %s: prometheus query %s: empty result: %w", b, q, ErrNoData)
		case 1:
			x = float64(v[0].Value)
		default:
			return 0, fmt.Errorf("backend %s: prometheus query %s: %d series, want one (aggregate with sum)", b, q, len(v))
		}
	case *model.Scalar:
		x = float64(v.Value)
	default:
		return 0, fmt.Errorf("backend %s: prometheus query %s: a %s result, want a vector or a scalar", b, q, v.Type())
	}
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return 0, fmt.Errorf("backend %s: prometheus query %s: result %v: %w", b, q, x, ErrNoData)
	case x < 0:
		return 0, fmt.Errorf("backend %s: prometheus query %s: negative result %v", b, q, x)
	}
	return x, nil
}

// histogram runs the latency query. Each bucket's increase is extrapolated on
// its own, so the result may dip slightly between buckets; it is made
// cumulative again with a running maximum (as histogram_quantile does).
func (p *Prometheus) histogram(ctx context.Context, b Backend, seconds int64, now time.Time) ([]Bucket, error) {
	q, v, err := p.query(ctx, p.latency, b, seconds, now)
	if err != nil {
		return nil, err
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("backend %s: prometheus query %s: a %s result, want a vector", b, q, v.Type())
	}
	return bucketsOf(b, q, vec)
}

// bucketsOf turns the result of a latency query into a cumulative histogram.
func bucketsOf(b Backend, q string, vec model.Vector) ([]Bucket, error) {
	if len(vec) == 0 {
		return nil, nil
	}
	out := make([]Bucket, 0, len(vec))
	for _, s := range vec {
		le, ok := s.Metric[model.BucketLabel]
		if !ok {
			return nil, fmt.Errorf("backend %s: prometheus query %s: a series without an le label", b, q)
		}
		bound, err := strconv.ParseFloat(string(le), 64)
		if err != nil {
			return nil, fmt.Errorf("backend %s: prometheus query %s: le=%q: %w", b, q, le, err)
		}
		x := float64(s.Value)
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("backend %s: prometheus query %s: bucket le=%q is %v: %w", b, q, le, x, ErrNoData)
		}
		out = append(out, Bucket{UpperBound: bound, Count: x})
	}
	slices.SortFunc(out, func(x, y Bucket) int { return cmp.Compare(x.UpperBound, y.UpperBound) })
	for i := 1; i < len(out); i++ {
		if out[i].UpperBound == out[i-1].UpperBound {
			return nil, fmt.Errorf("backend %s: prometheus query %s: two buckets le=%v (aggregate by le)", b, q, out[i].UpperBound)
		}
		out[i].Count = max(out[i].Count, out[i-1].Count)
	}
	if !math.IsInf(out[len(out)-1].UpperBound, 1) {
		return nil, fmt.Errorf("backend %s: prometheus query %s: no +Inf bucket", b, q)
	}
	return out, nil
}
