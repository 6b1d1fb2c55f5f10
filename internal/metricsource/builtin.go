package metricsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fledge-dev/fledge/internal/gatewaymetrics"
)

// The gateway's metrics read here, and the process collector's start time,
// which every gateway replica exposes.
const (
	metricRequests     = gatewaymetrics.Requests
	metricDuration     = gatewaymetrics.RequestDuration
	metricProcessStart = "process_start_time_seconds"
)

// BuiltinOptions configure a Builtin source. Zero fields take the defaults
// documented on them.
type BuiltinOptions struct {
	// Timeout bounds the scrape of one replica. Default 5s.
	Timeout time.Duration
	// MaxAge is how long a scrape of all replicas is reused by later reads
	// (of any backend), so that reading the stable and the canary of many
	// applications costs one scrape. Default 1s.
	MaxAge time.Duration
	// IdleTimeout forgets a window (backend, start) not read for this long.
	// Default 1h.
	IdleTimeout time.Duration
	// WindowsPerBackend is how many windows (starts) of one backend are kept;
	// beyond it the least recently read one is forgotten. Default 4.
	WindowsPerBackend int
	// MaxBytes bounds the size of one replica's /metrics response. Default 64 MiB.
	MaxBytes int64
	// Transport sends the scrapes. Default: a transport without proxy, with a
	// 2s connect timeout.
	Transport http.RoundTripper
	// Now returns the current time. Default time.Now; tests set a fake clock.
	Now func() time.Time
}

func (o BuiltinOptions) withDefaults() BuiltinOptions {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.MaxAge <= 0 {
		o.MaxAge = time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = time.Hour
	}
	if o.WindowsPerBackend <= 0 {
		o.WindowsPerBackend = 4
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 64 << 20
	}
	if o.Transport == nil {
		o.Transport = &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Builtin is the Source reading the gateway's own counters from every replica,
// without Prometheus. See the package documentation for its window semantics.
type Builtin struct {
	targets Targets
	opts    BuiltinOptions
	client  *http.Client

	// mu guards the fields below. It is never held during a scrape.
	mu sync.Mutex
	// last is the latest successful scrape; inflight the scrape in progress.
	last     *snapshot
	inflight *scrapeCall
	windows  map[windowKey]*window
	// byBackend lists the windows of each backend (for WindowsPerBackend).
	byBackend map[Backend][]windowKey
	swept     time.Time
}

var _ Source = (*Builtin)(nil)

// NewBuiltin returns a Builtin source scraping the replicas that targets lists.
func NewBuiltin(targets Targets, opts BuiltinOptions) *Builtin {
	opts = opts.withDefaults()
	return &Builtin{
		targets:   targets,
		opts:      opts,
		client:    &http.Client{Transport: opts.Transport, Timeout: opts.Timeout},
		windows:   map[windowKey]*window{},
		byBackend: map[Backend][]windowKey{},
	}
}

type windowKey struct {
	b     Backend
	start int64 // Unix nanoseconds
}

// snapshot is one scrape of every replica.
type snapshot struct {
	// at is when the scrape began: every value was read at or after it.
	at       time.Time
	replicas []replicaScrape
}

type replicaScrape struct {
	url string
	// started is process_start_time_seconds, 0 when absent.
	started  float64
	backends map[Backend]counters
}

type scrapeCall struct {
	done chan struct{}
	snap *snapshot
	err  error
}

// Since returns what b served from its window's start until now, summed over
// every gateway replica.
func (s *Builtin) Since(ctx context.Context, b Backend, start time.Time) (Counts, error) {
	now := s.opts.Now()
	if start.After(now) {
		return Counts{}, fmt.Errorf("backend %s: window starts in the future (%s): %w", b, start.Format(time.RFC3339), ErrNoData)
	}
	snap, err := s.snapshot(ctx, start)
	if err != nil {
		return Counts{}, fmt.Errorf("backend %s: %w", b, err)
	}
	obs := make([]observation, 0, len(snap.replicas))
	found := false
	for _, r := range snap.replicas {
		c := r.backends[b]
		found = found || c.answered
		obs = append(obs, observation{url: r.url, started: r.started, cur: c})
	}

	s.mu.Lock()
	w := s.window(b, start, now)
	total := w.apply(snap.at, obs)
	s.mu.Unlock()

	if !found {
		return Counts{}, fmt.Errorf("backend %s: no request series on any of %d gateway replicas: %w", b, len(snap.replicas), ErrNoData)
	}
	return Counts{Requests: total.requests, Errors: total.errors, Latency: total.latency()}, nil
}

// window returns the window (b, start), creating it, and forgets old windows.
// s.mu is held.
func (s *Builtin) window(b Backend, start, now time.Time) *window {
	if now.Sub(s.swept) >= s.opts.IdleTimeout/4 {
		s.swept = now
		for k, w := range s.windows {
			if now.Sub(w.used) > s.opts.IdleTimeout {
				s.forget(k)
			}
		}
	}
	k := windowKey{b: b, start: start.UnixNano()}
	w := s.windows[k]
	if w == nil {
		if keys := s.byBackend[b]; len(keys) >= s.opts.WindowsPerBackend {
			lru := slices.MinFunc(keys, func(x, y windowKey) int { return s.windows[x].used.Compare(s.windows[y].used) })
			s.forget(lru)
		}
		w = &window{start: start, replicas: map[string]*replicaWindow{}}
		s.windows[k] = w
		s.byBackend[b] = append(s.byBackend[b], k)
	}
	w.used = now
	return w
}

// forget deletes a window. s.mu is held.
func (s *Builtin) forget(k windowKey) {
	delete(s.windows, k)
	keys := slices.DeleteFunc(s.byBackend[k.b], func(x windowKey) bool { return x == k })
	if len(keys) == 0 {
		delete(s.byBackend, k.b)
	} else {
		s.byBackend[k.b] = keys
	}
}

// snapshot returns a scrape of every replica taken at or after notBefore and at
// most MaxAge old, scraping when there is none. Concurrent callers share one
// scrape, which runs on even when they give up (bounded by Timeout).
func (s *Builtin) snapshot(ctx context.Context, notBefore time.Time) (*snapshot, error) {
	for {
		s.mu.Lock()
		now := s.opts.Now()
		if l := s.last; l != nil && !l.at.Before(notBefore) && now.Sub(l.at) <= s.opts.MaxAge {
			s.mu.Unlock()
			return l, nil
		}
		call := s.inflight
		if call == nil {
			call = &scrapeCall{done: make(chan struct{})}
			s.inflight = call
			go s.run(context.WithoutCancel(ctx), call, now)
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-call.done:
		}
		if call.err != nil {
			return nil, call.err
		}
		if !call.snap.at.Before(notBefore) {
			return call.snap, nil
		}
		// That scrape began before this window: take another one.
	}
}

// run performs a shared scrape.
func (s *Builtin) run(ctx context.Context, call *scrapeCall, at time.Time) {
	ctx, cancel := context.WithTimeout(ctx, 2*s.opts.Timeout) // listing, then scraping
	defer cancel()
	call.snap, call.err = s.scrape(ctx, at)
	s.mu.Lock()
	s.inflight = nil
	if call.err == nil {
		s.last = call.snap
	}
	s.mu.Unlock()
	close(call.done)
}

// scrape reads every replica concurrently. Any failure fails the whole scrape:
// counts summed over some replicas would silently leave out a replica's
// traffic (and a failing replica may be the one serving the canary badly), so
// the read is inconclusive instead and the next one tries again.
func (s *Builtin) scrape(ctx context.Context, at time.Time) (*snapshot, error) {
	urls, err := s.targets.URLs(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing gateway replicas: %w", err)
	}
	if len(urls) == 0 {
		return nil, errors.New("no ready gateway replica to scrape")
	}
	slices.Sort(urls)
	urls = slices.Compact(urls)
	snap := &snapshot{at: at, replicas: make([]replicaScrape, len(urls))}
	errs := make([]error, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Go(func() {
			snap.replicas[i], errs[i] = s.scrapeOne(ctx, u)
		})
	}
	wg.Wait()
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		return nil, fmt.Errorf("scraping %d of %d gateway replicas failed: %w", len(failed), len(urls), errors.Join(failed...))
	}
	return snap, nil
}

func (s *Builtin) scrapeOne(ctx context.Context, url string) (replicaScrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return replicaScrape{}, fmt.Errorf("scraping %s: %w", url, err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := s.client.Do(req)
	if err != nil {
		return replicaScrape{}, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return replicaScrape{}, fmt.Errorf("scraping %s: HTTP %s", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "text/plain") {
		return replicaScrape{}, fmt.Errorf("scraping %s: content type %q is not the text format", url, ct)
	}
	body := &limitedReader{r: resp.Body, n: s.opts.MaxBytes}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(body)
	if body.exceeded {
		return replicaScrape{}, fmt.Errorf("scraping %s: response larger than %d bytes", url, s.opts.MaxBytes)
	}
	if err != nil {
		return replicaScrape{}, fmt.Errorf("scraping %s: %w", url, err)
	}
	r := parseScrape(mfs)
	r.url = url
	return r, nil
}

// limitedReader reads at most n bytes and remembers whether there was more.
type limitedReader struct {
	r        io.Reader
	n        int64
	exceeded bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		var one [1]byte
		if n, _ := l.r.Read(one[:]); n > 0 {
			l.exceeded = true
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// parseScrape extracts, per backend, the requests (without 499), the 5xx
// requests and the latency histogram, and the process start time.
func parseScrape(mfs map[string]*dto.MetricFamily) replicaScrape {
	r := replicaScrape{backends: map[Backend]counters{}}
	if ms := mfs[metricProcessStart].GetMetric(); len(ms) == 1 {
		if v := value(ms[0]); v > 0 && !math.IsInf(v, 0) {
			r.started = v
		}
	}
	for _, m := range mfs[metricRequests].GetMetric() {
		b, labels := backendOf(m)
		code := labels[gatewaymetrics.Code]
		c := r.backends[b]
		if v := value(m); code != "499" && !math.IsNaN(v) {
			c.answered = true
			c.requests += v
			if len(code) == 3 && code[0] == '5' {
				c.errors += v
			}
		}
		r.backends[b] = c
	}
	for _, m := range mfs[metricDuration].GetMetric() {
		h := m.GetHistogram()
		if h == nil {
			continue
		}
		b, _ := backendOf(m)
		c := r.backends[b]
		var bounds, buckets []float64
		for _, bk := range h.GetBucket() {
			n := bk.GetCumulativeCountFloat()
			if n == 0 {
				n = float64(bk.GetCumulativeCount())
			}
			bounds = append(bounds, bk.GetUpperBound())
			buckets = append(buckets, n)
		}
		total := h.GetSampleCountFloat()
		if total == 0 {
			total = float64(h.GetSampleCount())
		}
		c.bounds, c.buckets = withInf(bounds, buckets, total)
		r.backends[b] = c
	}
	return r
}

// backendOf returns the backend a gateway series belongs to, and its labels.
func backendOf(m *dto.Metric) (Backend, map[string]string) {
	labels := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	return Backend{Namespace: labels[gatewaymetrics.Namespace], App: labels[gatewaymetrics.App], Service: labels[gatewaymetrics.Service]}, labels
}

// value is a counter's, gauge's or untyped sample's value.
func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return math.NaN()
}
