package main

import (
	"slices"
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	tests := map[string]struct {
		out  string
		want wrkResult
	}{
		"clean run": {
			out: `Running 1s test @ http://127.0.0.1:18765/
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   774.97us  254.57us   3.83ms   76.85%
    Req/Sec     2.40k   168.24     2.55k    81.82%
  Latency Distribution
     50%  730.00us
     75%    0.88ms
     90%    1.07ms
     99%    1.59ms
  2625 requests in 1.10s, 0.86MB read
Requests/sec:   2387.09
Transfer/sec:    797.25KB
`,
			want: wrkResult{rps: 2387.09, p99: 1590 * time.Microsecond, requests: 2625},
		},
		"errors and p99 in microseconds": {
			out: `  Latency Distribution
     50%  130.00us
     75%  180.00us
     90%  230.00us
     99%  912.00us
  18360 requests in 5.00s, 3.00MB read
  Socket errors: connect 1, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:   3672.00
`,
			want: wrkResult{rps: 3672, p99: 912 * time.Microsecond, requests: 18360, non2xx: 7, socketErrors: 6},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseWrk(tc.out)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("parseWrk = %+v, want %+v", got, tc.want)
			}
		})
	}
	if _, err := parseWrk("Requests/sec: 1\n  1 requests in 1s\n"); err == nil {
		t.Error("parseWrk without a latency distribution succeeded, want an error")
	}
}

func TestParseStatCPU(t *testing.T) {
	tests := map[string]struct {
		stat string
		want time.Duration
	}{
		"plain name": {
			stat: "19654 (cat) R 16962 16962 13213 0 -1 4194304 101 0 0 0 250 31 0 0 20 0 1 0 1397167 3133440 383",
			want: 2810 * time.Millisecond,
		},
		"name with spaces and parentheses": {
			stat: "42 (a (b) c) S 1 42 42 0 -1 4194304 0 0 0 0 7 3 0 0 20 0 2 0 1 1 1",
			want: 100 * time.Millisecond,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseStatCPU(tc.stat)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("parseStatCPU = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	tests := map[string]struct {
		in   []float64
		want float64
	}{
		"odd count":  {in: []float64{3, 1, 2}, want: 2},
		"even count": {in: []float64{4, 1, 3, 2}, want: 2.5},
		"one":        {in: []float64{7}, want: 7},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := median(tc.in); got != tc.want {
				t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// TestConnectionsFlag: -connections takes one count or a list, each
// measured in turn; anything else is refused.
func TestConnectionsFlag(t *testing.T) {
	cfg, err := parseFlags([]string{"-fledge", "f", "-connections", "50, 1"})
	if err != nil || !slices.Equal(cfg.loads, []int{50, 1}) {
		t.Fatalf("-connections \"50, 1\": loads %v, %v; want [50 1]", cfg.loads, err)
	}
	for _, bad := range [][]string{{"-connections", "0"}, {"-connections", "50,x"}, {"-connections", ""}, {"-connections", "50,1", "-threads", "2"}} {
		if _, err := parseFlags(append([]string{"-fledge", "f"}, bad...)); err == nil {
			t.Errorf("%v: accepted", bad)
		}
	}
}
