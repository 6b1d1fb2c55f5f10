package analysis

import (
	"math"
	"testing"
)

func TestForecast(t *testing.T) {
	c := DefaultCriteria()
	c.LatencyQuantile = 0
	at := func(n float64, c Criteria) (float64, bool) {
		obs := Observation{Windows: []Window{{Stable: Sample{Requests: 9 * n, Errors: 0.09 * n}, Canary: Sample{Requests: n, Errors: 0.01 * n}}}}
		return Forecast(c, obs, Judge(c, obs), n/2) // 2 canary requests/s
	}
	early, ok := at(100, c)
	if !ok || !(early > 0) || math.IsInf(early, 0) {
		t.Fatalf("after 100 canary requests: %v, %v; want a finite time", early, ok)
	}
	later, _ := at(1000, c)
	if !(later < early) {
		t.Errorf("forecast after 1000 canary requests %v s, not under the one after 100 (%v s)", later, early)
	}
	// The expected evidence per error at a 10% share, 2× bad: about 0.026
	// nats; 0.2 errors/s; log(40) nats missing at the start.
	if want := math.Log(40) / (0.2 * 0.026); math.Abs(early-want) > 0.2*want {
		t.Errorf("forecast %v s, want about %v s", early, want)
	}
	if passed, _ := at(1e6, c); passed != 0 {
		t.Errorf("forecast once the test passes: %v, want 0", passed)
	}
	off := c
	off.AcceptableErrorRate = 0
	obs := Observation{Windows: []Window{{Stable: Sample{Requests: 900}, Canary: Sample{Requests: 100}}}}
	if s, ok := Forecast(off, obs, Judge(off, obs), 10); !ok || !math.IsInf(s, 1) {
		t.Errorf("no errors and no absolute route: %v, %v; want +Inf", s, ok)
	}
	empty := Observation{Windows: []Window{{Stable: Sample{Requests: 900}}}}
	if _, ok := Forecast(c, empty, Judge(c, empty), 10); ok {
		t.Error("a forecast without canary traffic")
	}
}
