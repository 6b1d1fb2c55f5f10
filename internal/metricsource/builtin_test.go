package metricsource_test

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fledge-dev/fledge/internal/metricsource"
)

// newBuiltin returns a Builtin source on the fake clock c.
func newBuiltin(targets metricsource.Targets, c *clock, opts ...func(*metricsource.BuiltinOptions)) *metricsource.Builtin {
	o := metricsource.BuiltinOptions{Now: c.Now}
	for _, f := range opts {
		f(&o)
	}
	return metricsource.NewBuiltin(targets, o)
}

// later moves the clock past the scrape reuse time (MaxAge, default 1s), so
// the next read scrapes again.
func later(c *clock) { c.Advance(2 * time.Second) }

// since reads b's window and fails the test on error.
func since(t *testing.T, src metricsource.Source, b metricsource.Backend, start time.Time) metricsource.Counts {
	t.Helper()
	got, err := src.Since(t.Context(), b, start)
	if err != nil {
		t.Fatalf("Since(%s): %v", b, err)
	}
	return got
}

// wantRequests checks the requests and errors of a read.
func wantRequests(t *testing.T, got metricsource.Counts, requests, errs float64) {
	t.Helper()
	if got.Requests != requests || got.Errors != errs {
		t.Fatalf("got %s, want requests=%v errors=%v", describe(got), requests, errs)
	}
}

// histogram reads b's latency histogram straight from a replica's gateway, as
// an independent account of what Since must sum.
func histogram(t *testing.T, r *replica, b metricsource.Backend) []metricsource.Bucket {
	t.Helper()
	rec := httptest.NewRecorder()
	r.gw.Load().AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out []metricsource.Bucket
	for _, m := range mfs["fledge_gateway_request_duration_seconds"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["namespace"] != b.Namespace || labels["app"] != b.App || labels["service"] != b.Service {
			continue
		}
		for _, bk := range m.GetHistogram().GetBucket() {
			out = append(out, metricsource.Bucket{UpperBound: bk.GetUpperBound(), Count: float64(bk.GetCumulativeCount())})
		}
		if n := len(out); n == 0 || !math.IsInf(out[n-1].UpperBound, 1) {
			out = append(out, metricsource.Bucket{UpperBound: math.Inf(1), Count: float64(m.GetHistogram().GetSampleCount())})
		}
	}
	return out
}

// combine adds (sign 1) or subtracts (sign -1) histograms with equal bounds.
func combine(t *testing.T, a, b []metricsource.Bucket, sign float64) []metricsource.Bucket {
	t.Helper()
	if len(a) == 0 {
		a = make([]metricsource.Bucket, len(b))
		for i := range b {
			a[i].UpperBound = b[i].UpperBound
		}
	}
	if len(a) != len(b) {
		t.Fatalf("histograms with %d and %d buckets", len(a), len(b))
	}
	out := slices.Clone(a)
	for i := range out {
		if a[i].UpperBound != b[i].UpperBound {
			t.Fatalf("bucket %d: bounds %v and %v", i, a[i].UpperBound, b[i].UpperBound)
		}
		out[i].Count += sign * b[i].Count
	}
	return out
}

func TestBuiltinSumsReplicasByBackend(t *testing.T) {
	a := newApp(t)
	r1, r2 := newReplica(t, a), newReplica(t, a)
	// Before the window: not counted.
	r1.Do(t, webHost, "/", true, 7)
	r2.Do(t, webHost, "/status/500", true, 2)
	r1.Do(t, webHost, "/", false, 3)
	r2.Do(t, apiHost, "/", false, 4)
	r1.Do(t, otherHost, "/", false, 5)

	c := newClock()
	src := newBuiltin(metricsource.StaticTargets{r1.URL(), r2.URL()}, c)
	start := c.Now()
	backends := []metricsource.Backend{webCanary, webStable, apiStable, otherWeb}
	for _, b := range backends {
		got := since(t, src, b, start)
		wantRequests(t, got, 0, 0)
		if n := len(got.Latency); n == 0 || got.Latency[n-1].Count != 0 || !math.IsInf(got.Latency[n-1].UpperBound, 1) {
			t.Fatalf("%s: first read latency %v, want zero counts ending with +Inf", b, got.Latency)
		}
	}
	before := combine(t, histogram(t, r1, webCanary), histogram(t, r2, webCanary), 1)

	// In the window.
	r1.Do(t, webHost, "/", true, 3)
	r1.Do(t, webHost, "/status/503", true, 2)
	r1.Abandon(t) // 499: not a request answered, but timed
	r2.Do(t, webHost, "/", true, 4)
	r2.Do(t, webHost, "/status/500", true, 1)
	r2.Do(t, webHost, "/status/404", true, 1)
	r1.Do(t, webHost, "/status/502", false, 6)
	r2.Do(t, webHost, "/", false, 1)
	r1.Do(t, apiHost, "/", false, 2)
	r2.Do(t, otherHost, "/status/503", false, 8)
	later(c)

	tests := map[string]struct {
		b              metricsource.Backend
		requests, errs float64
		timed          float64
	}{
		"canary: both replicas, 499 excluded, 404 not an error": {webCanary, 11, 3, 12},
		"stable of the same app":                                {webStable, 7, 6, 7},
		"another app, same namespace":                           {apiStable, 2, 0, 2},
		"same app and Service names, other namespace":           {otherWeb, 8, 8, 8},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := since(t, src, tc.b, start)
			wantRequests(t, got, tc.requests, tc.errs)
			if n := len(got.Latency); n == 0 || got.Latency[n-1].Count != tc.timed {
				t.Fatalf("latency %v, want %v requests in +Inf", got.Latency, tc.timed)
			}
		})
	}

	got := since(t, src, webCanary, start)
	after := combine(t, histogram(t, r1, webCanary), histogram(t, r2, webCanary), 1)
	if want := combine(t, after, before, -1); !slices.Equal(got.Latency, want) {
		t.Fatalf("latency\n got %v\nwant %v (scraped after − before, summed over replicas)", got.Latency, want)
	}
}

func TestBuiltinCounterReset(t *testing.T) {
	tests := map[string]struct {
		// restartedAt is the new process start time (0: the same as before, as
		// when only the series were recreated).
		restartedAt    float64
		after          int
		wantAfterReset float64
	}{
		"value went down": {restartedAt: 0, after: 2, wantAfterReset: 5 + 2},
		// Only the new process start time shows this restart: the new count (20)
		// is above the last one seen (10 before the window + 5).
		"process restarted, new count above the old one": {restartedAt: 4e9, after: 20, wantAfterReset: 5 + 20},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := newApp(t)
			r := newReplica(t, a)
			r.Do(t, webHost, "/", true, 10)
			c := newClock()
			src := newBuiltin(metricsource.StaticTargets{r.URL()}, c)
			start := c.Now()
			wantRequests(t, since(t, src, webCanary, start), 0, 0)

			r.Do(t, webHost, "/", true, 5)
			later(c)
			wantRequests(t, since(t, src, webCanary, start), 5, 0)

			r.Restart(tc.restartedAt)
			r.Do(t, webHost, "/", true, tc.after)
			later(c)
			got := since(t, src, webCanary, start)
			wantRequests(t, got, tc.wantAfterReset, 0)
			if n := len(got.Latency); got.Latency[n-1].Count != tc.wantAfterReset {
				t.Fatalf("latency %v, want %v in +Inf", got.Latency, tc.wantAfterReset)
			}

			r.Do(t, webHost, "/", true, 3)
			later(c)
			wantRequests(t, since(t, src, webCanary, start), tc.wantAfterReset+3, 0)
		})
	}
}

// targetList is a Targets whose list the test changes.
type targetList struct {
	mu   sync.Mutex
	urls []string
	err  error
}

func (l *targetList) Set(urls ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.urls = urls
}

func (l *targetList) URLs(context.Context) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.urls), l.err
}

func TestBuiltinReplicasComeAndGo(t *testing.T) {
	a := newApp(t)
	r1, r2, r3 := newReplica(t, a), newReplica(t, a), newReplica(t, a)
	r1.Do(t, webHost, "/", true, 4)
	r2.Do(t, webHost, "/", true, 6)
	r3.Do(t, webHost, "/", true, 8)
	c := newClock()
	start := c.Now()
	// r3's process started after the window began: all it counted is inside.
	r3.started.Store(float64(start.Add(time.Second).Unix()))
	targets := &targetList{}
	targets.Set(r1.URL())
	src := newBuiltin(targets, c)

	steps := []struct {
		name    string
		do      func()
		targets []string
		want    float64
	}{
		{"first read: r1's baseline", nil, []string{r1.URL()}, 0},
		{"r1 serves", func() { r1.Do(t, webHost, "/", true, 1) }, []string{r1.URL()}, 1},
		{"r2 appears: counted from first sight (it started before the window)", nil, []string{r1.URL(), r2.URL()}, 1},
		{"r2 serves", func() { r2.Do(t, webHost, "/", true, 2) }, []string{r1.URL(), r2.URL()}, 3},
		{"r3 appears: started after the window began, all of it counted", nil, []string{r1.URL(), r2.URL(), r3.URL()}, 3 + 8},
		{"r2 goes away: what it served in the window stays", func() { r2.Do(t, webHost, "/", true, 100) }, []string{r1.URL(), r3.URL()}, 3 + 8},
		{"r1 serves", func() { r1.Do(t, webHost, "/", true, 1) }, []string{r1.URL(), r3.URL()}, 4 + 8},
		{"r2 comes back: what it served meanwhile is counted", nil, []string{r1.URL(), r2.URL(), r3.URL()}, 4 + 8 + 100},
	}
	for _, s := range steps {
		if s.do != nil {
			s.do()
		}
		targets.Set(s.targets...)
		later(c)
		got, err := src.Since(t.Context(), webCanary, start)
		if err != nil || got.Requests != s.want {
			t.Fatalf("%s: got %s, %v; want %v requests", s.name, describe(got), err, s.want)
		}
	}
}

func TestBuiltinReplicaFails(t *testing.T) {
	a := newApp(t)
	r1, r2 := newReplica(t, a), newReplica(t, a)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	c := newClock()
	targets := &targetList{}
	targets.Set(r1.URL(), r2.URL())
	src := newBuiltin(targets, c)
	start := c.Now()
	r1.Do(t, webHost, "/", true, 1)
	r2.Do(t, webHost, "/", true, 1)
	wantRequests(t, since(t, src, webCanary, start), 0, 0)
	r1.Do(t, webHost, "/", true, 2)
	r2.Do(t, webHost, "/", true, 3)

	fails := map[string]struct {
		setup, undo func()
		wantInError string
	}{
		"a replica answers 503": {
			setup: func() { r2.status.Store(http.StatusServiceUnavailable) }, undo: func() { r2.status.Store(0) },
			wantInError: r2.URL(),
		},
		"a replica refuses connections": {
			setup: func() { targets.Set(r1.URL(), r2.URL(), down.URL+"/metrics") }, undo: func() { targets.Set(r1.URL(), r2.URL()) },
			wantInError: down.URL,
		},
		"listing the replicas fails": {
			setup: func() { targets.err = errors.New("forbidden") }, undo: func() { targets.err = nil },
			wantInError: "forbidden",
		},
		"no replica": {
			setup: func() { targets.Set() }, undo: func() { targets.Set(r1.URL(), r2.URL()) },
			wantInError: "no ready gateway replica",
		},
	}
	for name, tc := range fails {
		t.Run(name, func(t *testing.T) {
			tc.setup()
			defer tc.undo()
			later(c)
			got, err := src.Since(t.Context(), webCanary, start)
			if err == nil || errors.Is(err, metricsource.ErrNoData) || !strings.Contains(err.Error(), tc.wantInError) {
				t.Fatalf("got %s, %v; want an error (not ErrNoData) naming %q", describe(got), err, tc.wantInError)
			}
		})
	}
	// A failed scrape changes nothing: the replicas count on.
	r2.Do(t, webHost, "/", true, 1)
	later(c)
	wantRequests(t, since(t, src, webCanary, start), 2+3+1, 0)
}

func TestBuiltinNoData(t *testing.T) {
	a := newApp(t)
	r := newReplica(t, a)
	r.Do(t, webHost, "/", true, 1)
	c := newClock()
	src := newBuiltin(metricsource.StaticTargets{r.URL()}, c)
	tests := map[string]struct {
		b     metricsource.Backend
		start time.Time
	}{
		"unknown backend":          {metricsource.Backend{Namespace: "shop", App: "web", Service: "web-next"}, c.Now()},
		"no traffic yet":           {webStable, c.Now()},
		"window in the future":     {webCanary, c.Now().Add(time.Minute)},
		"namespace of another app": {metricsource.Backend{Namespace: "other", App: "web", Service: "web-canary"}, c.Now()},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := src.Since(t.Context(), tc.b, tc.start)
			if !errors.Is(err, metricsource.ErrNoData) {
				t.Fatalf("got %s, %v; want ErrNoData", describe(got), err)
			}
		})
	}
	// A backend without series when its window began is counted in full once
	// its series appear (they were made inside the window).
	start := c.Now()
	if _, err := src.Since(t.Context(), webStable, start); !errors.Is(err, metricsource.ErrNoData) {
		t.Fatalf("got %v, want ErrNoData", err)
	}
	r.Do(t, webHost, "/", false, 4)
	later(c)
	wantRequests(t, since(t, src, webStable, start), 4, 0)
}

func TestBuiltinForgetsWindows(t *testing.T) {
	a := newApp(t)
	r := newReplica(t, a)
	r.Do(t, webHost, "/", true, 1)
	r.Do(t, webHost, "/", false, 1)
	c := newClock()
	src := newBuiltin(metricsource.StaticTargets{r.URL()}, c, func(o *metricsource.BuiltinOptions) {
		o.IdleTimeout = 10 * time.Minute
		o.WindowsPerBackend = 2
	})
	// serve sends one canary request and moves the clock on.
	serve := func() { r.Do(t, webHost, "/", true, 1); later(c) }

	t.Run("least recently read window of a backend beyond WindowsPerBackend", func(t *testing.T) {
		s1 := c.Now()
		since(t, src, webCanary, s1)
		serve()
		s2 := c.Now()
		since(t, src, webCanary, s2)
		serve()
		wantRequests(t, since(t, src, webCanary, s1), 2, 0) // s1 read after s2
		s3 := c.Now()
		since(t, src, webCanary, s3) // forgets s2
		serve()
		wantRequests(t, since(t, src, webCanary, s1), 3, 0)
		wantRequests(t, since(t, src, webCanary, s3), 1, 0)
		wantRequests(t, since(t, src, webCanary, s2), 0, 0) // forgotten: starts over
	})

	t.Run("idle windows", func(t *testing.T) {
		s := c.Now()
		since(t, src, webCanary, s)
		serve()
		wantRequests(t, since(t, src, webCanary, s), 1, 0)
		c.Advance(11 * time.Minute)
		since(t, src, webStable, c.Now()) // any read sweeps
		if w, b := src.Windows(); w != 1 || b != 1 {
			t.Fatalf("%d windows of %d backends kept, want only the one just read", w, b)
		}
		wantRequests(t, since(t, src, webCanary, s), 0, 0) // forgotten: starts over
	})

	t.Run("memory stays bounded", func(t *testing.T) {
		for i := range 100 {
			b := metricsource.Backend{Namespace: "shop", App: "web", Service: []string{"web-stable", "web-canary"}[i%2]}
			c.Advance(time.Second)
			since(t, src, b, c.Now())
		}
		if w, b := src.Windows(); w > 2*2 || b > 2 {
			t.Fatalf("%d windows of %d backends kept, want at most 2 per backend", w, b)
		}
	})
}

func TestBuiltinSharesScrapes(t *testing.T) {
	a := newApp(t)
	r := newReplica(t, a)
	r.Do(t, webHost, "/", true, 1)
	r.Do(t, webHost, "/", false, 1)
	c := newClock()
	src := newBuiltin(metricsource.StaticTargets{r.URL()}, c)
	start := c.Now()

	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			b := []metricsource.Backend{webStable, webCanary}[i%2]
			if _, err := src.Since(t.Context(), b, start); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := r.scrapes.Load(); n != 1 {
		t.Fatalf("20 concurrent reads made %d scrapes, want 1", n)
	}

	c.Advance(500 * time.Millisecond)
	since(t, src, webCanary, start)
	if n := r.scrapes.Load(); n != 1 {
		t.Fatalf("a read within MaxAge made %d scrapes in all, want 1", n)
	}
	since(t, src, webCanary, c.Now())
	if n := r.scrapes.Load(); n != 2 {
		t.Fatalf("a window that began after the last scrape made %d scrapes in all, want 2 (its baseline must come from a scrape at or after its start)", n)
	}
	later(c)
	since(t, src, webCanary, start)
	if n := r.scrapes.Load(); n != 3 {
		t.Fatalf("a read after MaxAge made %d scrapes in all, want 3", n)
	}
}

func TestBuiltinCancelledRead(t *testing.T) {
	block := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer slow.Close()
	defer close(block)
	c := newClock()
	src := newBuiltin(metricsource.StaticTargets{slow.URL + "/metrics"}, c)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := src.Since(ctx, webCanary, c.Now()); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestBuiltinBoundsResponseSize(t *testing.T) {
	a := newApp(t)
	r := newReplica(t, a)
	r.Do(t, webHost, "/", true, 1)
	c := newClock()
	src := newBuiltin(metricsource.StaticTargets{r.URL()}, c, func(o *metricsource.BuiltinOptions) { o.MaxBytes = 1000 })
	_, err := src.Since(t.Context(), webCanary, c.Now())
	if err == nil || errors.Is(err, metricsource.ErrNoData) || !strings.Contains(err.Error(), "larger than 1000 bytes") {
		t.Fatalf("got %v, want an error about the response size", err)
	}
}
