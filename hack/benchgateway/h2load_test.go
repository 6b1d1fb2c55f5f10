package main

import "testing"

func TestParseH2load(t *testing.T) {
	out := `starting benchmark...
spawning thread #0: 50 total client(s). Timing-based test with 0s of warm-up time and 4s of main duration for measurements.

finished in 4.00s, 12345.67 req/s, 1.23MB/s
requests: 49383 total, 49390 started, 49383 done, 49380 succeeded, 3 failed, 0 errored, 0 timeout
status codes: 49380 2xx, 0 3xx, 0 4xx, 3 5xx
traffic: 4.92MB (5158470) total, 96.53KB (98850) headers (space savings 95.02%), 3.25MB (3407427) data
                     min         max         mean         sd        +/- sd
time for request:      123us      4.56ms       789us       321us    80.00%
`
	r, err := parseH2load(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.rps != 12345.67 || r.requests != 49380 || r.socketErrors != 3 || r.non2xx != 3 || r.p99 >= 0 {
		t.Errorf("parsed %+v", r)
	}
	if _, err := parseH2load("nothing"); err == nil {
		t.Error("parsed an empty report")
	}
}
