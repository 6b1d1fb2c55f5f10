package errorpage

import (
	"context"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := map[string]struct {
		opts    Options
		wantErr string // empty: valid
	}{
		"minimal":                 {opts: Options{Version: "v1"}},
		"all errors, latency":     {opts: Options{Version: "v2", ErrorRatio: 1, Latency: time.Second, LatencyJitter: time.Millisecond}},
		"semver-like version":     {opts: Options{Version: "1.4.0-rc.1_b"}},
		"empty version":           {opts: Options{}, wantErr: "version must not be empty"},
		"version with a quote":    {opts: Options{Version: `v1"`}, wantErr: `version "v1\"" must be a simple token`},
		"version with a space":    {opts: Options{Version: "v 1"}, wantErr: "must be a simple token"},
		"version starting with -": {opts: Options{Version: "-v1"}, wantErr: "must be a simple token"},
		"version too long":        {opts: Options{Version: strings.Repeat("v", 64)}, wantErr: "must be a simple token"},
		"negative ratio":          {opts: Options{Version: "v1", ErrorRatio: -0.01}, wantErr: "error ratio -0.01 must be between 0 and 1"},
		"ratio above one":         {opts: Options{Version: "v1", ErrorRatio: 1.5}, wantErr: "error ratio 1.5 must be between 0 and 1"},
		"ratio as a percentage":   {opts: Options{Version: "v1", ErrorRatio: 10}, wantErr: "error ratio 10 must be between 0 and 1"},
		"ratio NaN":               {opts: Options{Version: "v1", ErrorRatio: math.NaN()}, wantErr: "error ratio NaN must be between 0 and 1"},
		"negative latency":        {opts: Options{Version: "v1", Latency: -time.Millisecond}, wantErr: "latency -1ms must not be negative"},
		"negative latency jitter": {opts: Options{Version: "v1", LatencyJitter: -time.Second}, wantErr: "latency jitter -1s must not be negative"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.opts.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	tests := map[string]struct {
		opts            Options
		method, path    string
		wantStatus      int
		wantBody        string // compared byte for byte when wantExactBody
		wantExactBody   bool
		wantContentType string
	}{
		"v1 answers with its version": {
			opts: Options{Version: "v1"}, method: http.MethodGet, path: "/api/error_page",
			wantStatus: http.StatusOK, wantExactBody: true, wantContentType: "application/json",
			wantBody: `{"error": "injected by error_page service", "version": "v1"}`,
		},
		"v2 answers with its version": {
			opts: Options{Version: "v2"}, method: http.MethodGet, path: "/api/error_page",
			wantStatus: http.StatusOK, wantExactBody: true, wantContentType: "application/json",
			wantBody: `{"error": "injected by error_page service", "version": "v2"}`,
		},
		"injected failure": {
			opts: Options{Version: "v2", ErrorRatio: 1}, method: http.MethodGet, path: "/api/error_page",
			wantStatus: http.StatusInternalServerError, wantExactBody: true, wantContentType: "application/json",
			wantBody: `{"error": "injected failure", "version": "v2"}`,
		},
		"a dependency that is down": {
			opts: Options{Version: "v2"}, method: http.MethodGet, path: "/api/unavailable",
			wantStatus: http.StatusServiceUnavailable, wantExactBody: true, wantContentType: "application/json",
			wantBody: `{"error": "dependency unavailable", "version": "v2"}`,
		},
		"HEAD has headers and no body": {
			opts: Options{Version: "v1"}, method: http.MethodHead, path: "/api/error_page",
			wantStatus: http.StatusOK, wantExactBody: true, wantContentType: "application/json",
		},
		"healthz": {
			opts: Options{Version: "v1"}, method: http.MethodGet, path: "/healthz",
			wantStatus: http.StatusOK, wantExactBody: true, wantBody: "ok\n",
		},
		"healthz never fails": {
			opts: Options{Version: "v1", ErrorRatio: 1}, method: http.MethodGet, path: "/healthz",
			wantStatus: http.StatusOK,
		},
		"root is not found": {
			opts: Options{Version: "v1"}, method: http.MethodGet, path: "/", wantStatus: http.StatusNotFound,
		},
		"trailing slash is not found": {
			opts: Options{Version: "v1"}, method: http.MethodGet, path: "/api/error_page/", wantStatus: http.StatusNotFound,
		},
		"other api path is not found": {
			opts: Options{Version: "v1"}, method: http.MethodGet, path: "/api/other", wantStatus: http.StatusNotFound,
		},
		"POST is not allowed": {
			opts: Options{Version: "v1"}, method: http.MethodPost, path: "/api/error_page", wantStatus: http.StatusMethodNotAllowed,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			NewHandler(tc.opts).ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d (body %q)", rec.Code, tc.wantStatus, rec.Body.String())
			}
			if tc.wantExactBody && rec.Body.String() != tc.wantBody {
				t.Errorf("body = %q, want exactly %q", rec.Body.String(), tc.wantBody)
			}
			if tc.wantContentType != "" {
				if got := rec.Header().Get("Content-Type"); got != tc.wantContentType {
					t.Errorf("Content-Type = %q, want %q", got, tc.wantContentType)
				}
			}
		})
	}
}

// get sends one GET /api/error_page through h and returns the status.
func get(h http.Handler) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, Path, nil))
	return rec.Code
}

func TestErrorRatioIsExact(t *testing.T) {
	tests := map[string]struct {
		ratio      float64
		requests   int
		wantFailed int
	}{
		"five percent of 1000":   {ratio: 0.05, requests: 1000, wantFailed: 50},
		"five percent of 19":     {ratio: 0.05, requests: 19, wantFailed: 0},
		"five percent of 20":     {ratio: 0.05, requests: 20, wantFailed: 1},
		"none":                   {ratio: 0, requests: 1000, wantFailed: 0},
		"all":                    {ratio: 1, requests: 1000, wantFailed: 1000},
		"0.333 of 1000":          {ratio: 0.333, requests: 1000, wantFailed: 333},
		"a third, in millionths": {ratio: 1.0 / 3, requests: 999, wantFailed: 332}, // 333333/1e6 * 999 = 332.9997
		"one in a million of 2M": {ratio: 0.000001, requests: 2_000_000, wantFailed: 2},
		"half of 7":              {ratio: 0.5, requests: 7, wantFailed: 3},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			// The 2M case goes through the counter directly; the rest through HTTP.
			failed := 0
			if tc.requests > 10_000 {
				ap := &app{failPerM: uint64(math.Round(tc.ratio * ratioScale))}
				for range tc.requests {
					if ap.fails(ap.requests.Add(1)) {
						failed++
					}
				}
			} else {
				h := NewHandler(Options{Version: "v1", ErrorRatio: tc.ratio})
				for range tc.requests {
					switch code := get(h); code {
					case http.StatusInternalServerError:
						failed++
					case http.StatusOK:
					default:
						t.Fatalf("unexpected status %d", code)
					}
				}
			}
			if failed != tc.wantFailed {
				t.Errorf("%d of %d requests failed, want exactly %d", failed, tc.requests, tc.wantFailed)
			}
		})
	}
}

func TestErrorRatioIsEvenlySpread(t *testing.T) {
	h := NewHandler(Options{Version: "v1", ErrorRatio: 0.25})
	var got strings.Builder
	for range 12 {
		if get(h) == http.StatusInternalServerError {
			got.WriteByte('x')
		} else {
			got.WriteByte('.')
		}
	}
	if want := "...x...x...x"; got.String() != want {
		t.Errorf("failure pattern = %q, want %q", got.String(), want)
	}
}

func TestErrorRatioIsExactUnderConcurrency(t *testing.T) {
	h := NewHandler(Options{Version: "v1", ErrorRatio: 0.05})
	const workers, each = 8, 125
	var (
		mu     sync.Mutex
		failed int
		wg     sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			n := 0
			for range each {
				if get(h) == http.StatusInternalServerError {
					n++
				}
			}
			mu.Lock()
			failed += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if failed != 50 {
		t.Errorf("%d of %d concurrent requests failed, want exactly 50", failed, workers*each)
	}
}

func TestCounterWraps(t *testing.T) {
	a := &app{failPerM: 50_000} // 5%
	a.requests.Store(math.MaxUint64 - 999)
	failed := 0
	for range 2000 { // crosses the wrap-around of the counter
		if a.fails(a.requests.Add(1)) {
			failed++
		}
	}
	if failed != 100 {
		t.Errorf("%d of 2000 requests around the counter wrap failed, want 100", failed)
	}
}

func TestLatencyIsAdded(t *testing.T) {
	tests := map[string]Options{
		"success":     {Version: "v1", Latency: 30 * time.Millisecond},
		"failure":     {Version: "v1", Latency: 30 * time.Millisecond, ErrorRatio: 1},
		"with jitter": {Version: "v1", Latency: 30 * time.Millisecond, LatencyJitter: 10 * time.Millisecond},
	}
	for name, opts := range tests {
		t.Run(name, func(t *testing.T) {
			h := NewHandler(opts)
			start := time.Now()
			get(h)
			// Only a lower bound: a busy machine may be arbitrarily slower.
			if elapsed := time.Since(start); elapsed < opts.Latency {
				t.Errorf("answered after %v, want at least the latency %v", elapsed, opts.Latency)
			}
		})
	}
}

func TestLatencyEndsWhenClientLeaves(t *testing.T) {
	h := NewHandler(Options{Version: "v1", Latency: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, Path, nil))
	if rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "" {
		t.Errorf("answered %q (Content-Type %q) to a client that left, want nothing", rec.Body.String(), rec.Header().Get("Content-Type"))
	}
}

func TestNewHandlerPanicsOnInvalidOptions(t *testing.T) {
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(r.(string), "version must not be empty") {
			t.Errorf("recovered %v, want a panic naming the invalid version", r)
		}
	}()
	NewHandler(Options{})
}

func TestServeAndShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, Options{Version: "v7"}) }()

	resp, err := http.Get("http://" + addr + Path)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", Path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `{"error": "injected by error_page service", "version": "v7"}`; string(b) != want {
		t.Errorf("body = %q, want %q", b, want)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after shutdown = %v, want nil", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after shutdown", addr)
	}
}

func TestRunErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := map[string]struct {
		opts    Options
		wantErr string
	}{
		"invalid options": {opts: Options{Version: "v1", ErrorRatio: 2}, wantErr: "error-page: error ratio 2 must be between 0 and 1"},
		"address in use":  {opts: Options{Version: "v1", Addr: busy.Addr().String()}, wantErr: "address already in use"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := Run(t.Context(), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Run() = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
