package metricsource

import (
	"math"
	"reflect"
	"testing"
	"time"
)

var inf = math.Inf(1)

// reqs is a scraped value with n requests, e errors and the histogram
// bounds/buckets given as pairs.
func reqs(n, e float64, hist ...float64) counters {
	c := counters{requests: n, errors: e, answered: true}
	for i := 0; i+1 < len(hist); i += 2 {
		c.bounds = append(c.bounds, hist[i])
		c.buckets = append(c.buckets, hist[i+1])
	}
	return c
}

func TestWindowApply(t *testing.T) {
	start := time.Unix(1000, 0)
	const before, after = 900.0, 1100.0 // process start times
	type scrape struct {
		obs  []observation
		want counters
	}
	tests := map[string][]scrape{
		"first sight is the baseline": {
			{[]observation{{"a", before, reqs(10, 1, 0.1, 4, inf, 10)}}, reqs(0, 0, 0.1, 0, inf, 0)},
			{[]observation{{"a", before, reqs(15, 2, 0.1, 6, inf, 15)}}, reqs(5, 1, 0.1, 2, inf, 5)},
		},
		"a replica started after the window's start counts in full": {
			{[]observation{{"a", after, reqs(10, 1, inf, 10)}}, reqs(10, 1, inf, 10)},
		},
		"unknown process start: baseline at first sight": {
			{[]observation{{"a", 0, reqs(10, 1, inf, 10)}}, reqs(0, 0, inf, 0)},
		},
		"a value went down: the new value is new, the old delta kept": {
			{[]observation{{"a", before, reqs(10, 0, inf, 10)}}, reqs(0, 0, inf, 0)},
			{[]observation{{"a", before, reqs(13, 0, inf, 13)}}, reqs(3, 0, inf, 3)},
			{[]observation{{"a", before, reqs(2, 0, inf, 2)}}, reqs(5, 0, inf, 5)},
			{[]observation{{"a", before, reqs(4, 0, inf, 4)}}, reqs(7, 0, inf, 7)},
		},
		"only a bucket went down": {
			{[]observation{{"a", before, reqs(10, 0, 0.1, 8, inf, 10)}}, reqs(0, 0, 0.1, 0, inf, 0)},
			{[]observation{{"a", before, reqs(11, 0, 0.1, 8, inf, 11)}}, reqs(1, 0, 0.1, 0, inf, 1)},
			{[]observation{{"a", before, reqs(12, 0, 0.1, 1, inf, 12)}}, reqs(13, 0, 0.1, 1, inf, 13)},
		},
		"the process start changed though every value grew": {
			{[]observation{{"a", before, reqs(10, 0, inf, 10)}}, reqs(0, 0, inf, 0)},
			{[]observation{{"a", before, reqs(15, 0, inf, 15)}}, reqs(5, 0, inf, 5)},
			{[]observation{{"a", after, reqs(20, 0, inf, 20)}}, reqs(25, 0, inf, 25)},
		},
		"series deleted, then made again": {
			{[]observation{{"a", before, reqs(10, 0, inf, 10)}}, reqs(0, 0, inf, 0)},
			{[]observation{{"a", before, reqs(12, 0, inf, 12)}}, reqs(2, 0, inf, 2)},
			{[]observation{{"a", before, counters{}}}, reqs(2, 0, inf, 2)},
			{[]observation{{"a", before, reqs(30, 0, inf, 30)}}, reqs(32, 0, inf, 32)},
		},
		"series absent at first sight, made in the window": {
			{[]observation{{"a", before, counters{}}}, counters{}},
			{[]observation{{"a", before, reqs(3, 1, inf, 3)}}, reqs(3, 1, inf, 3)},
		},
		"replicas summed; a missing one keeps its delta": {
			{[]observation{{"a", before, reqs(10, 0, inf, 10)}, {"b", before, reqs(20, 0, inf, 20)}}, reqs(0, 0, inf, 0)},
			{[]observation{{"a", before, reqs(11, 0, inf, 11)}, {"b", before, reqs(22, 0, inf, 22)}}, reqs(3, 0, inf, 3)},
			{[]observation{{"a", before, reqs(14, 0, inf, 14)}}, reqs(6, 0, inf, 6)},
		},
		"different bucket layouts sum on the shared bounds": {
			{[]observation{{"a", after, reqs(2, 0, 0.1, 1, 0.5, 2, inf, 2)}, {"b", after, reqs(3, 0, 0.2, 1, 0.5, 3, inf, 3)}}, reqs(5, 0, 0.5, 5, inf, 5)},
		},
	}
	for name, scrapes := range tests {
		t.Run(name, func(t *testing.T) {
			w := &window{start: start, replicas: map[string]*replicaWindow{}}
			at := start
			for i, s := range scrapes {
				at = at.Add(time.Second)
				got := w.apply(at, s.obs)
				got.answered, s.want.answered = false, false
				if !reflect.DeepEqual(got, s.want) {
					t.Fatalf("scrape %d: got %+v, want %+v", i+1, got, s.want)
				}
			}
		})
	}
}

func TestWindowIgnoresOlderScrape(t *testing.T) {
	start := time.Unix(1000, 0)
	w := &window{start: start, replicas: map[string]*replicaWindow{}}
	w.apply(start.Add(1*time.Second), []observation{{"a", 900, reqs(10, 0)}})
	w.apply(start.Add(3*time.Second), []observation{{"a", 900, reqs(14, 0)}})
	// A scrape that began earlier but finished later must not look like a reset.
	got := w.apply(start.Add(2*time.Second), []observation{{"a", 900, reqs(12, 0)}})
	if got.requests != 4 {
		t.Fatalf("got %v requests, want 4", got.requests)
	}
	if got := w.apply(start.Add(4*time.Second), []observation{{"a", 900, reqs(15, 0)}}); got.requests != 5 {
		t.Fatalf("got %v requests, want 5", got.requests)
	}
}
