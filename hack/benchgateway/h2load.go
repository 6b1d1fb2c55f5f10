package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// runH2load runs "h2load -t threads -c conns -m 1 -D d" against url (h2 over
// TLS by ALPN), one stream in flight per connection as wrk has one request,
// with the route's authority, bounded by d plus 30s. h2load reports no
// percentiles: p99 is left unknown (negative).
func runH2load(ctx context.Context, threads, conns int, d time.Duration, url string) (wrkResult, error) {
	secs := int((d + time.Second - 1) / time.Second)
	return runLoad(ctx, d, parseH2load, "h2load", "-t"+strconv.Itoa(threads), "-c"+strconv.Itoa(conns), "-m1", "-D"+strconv.Itoa(secs),
		"-H", ":authority: "+routeHost, url)
}

var (
	h2RPS      = regexp.MustCompile(`(?m)^finished in [0-9.]+m?s, ([0-9.]+) req/s`)
	h2Requests = regexp.MustCompile(`(?m)^requests: [0-9]+ total, [0-9]+ started, [0-9]+ done, ([0-9]+) succeeded, ([0-9]+) failed, ([0-9]+) errored, ([0-9]+) timeout`)
	h2Codes    = regexp.MustCompile(`(?m)^status codes: ([0-9]+) 2xx, ([0-9]+) 3xx, ([0-9]+) 4xx, ([0-9]+) 5xx`)
)

// parseH2load reads h2load's text report.
func parseH2load(out string) (wrkResult, error) {
	r := wrkResult{p99: -1}
	m := h2RPS.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no req/s")
	}
	var err error
	if r.rps, err = strconv.ParseFloat(m[1], 64); err != nil {
		return r, err
	}
	if m = h2Requests.FindStringSubmatch(out); m == nil {
		return r, fmt.Errorf("no request counts")
	}
	n := make([]int64, 4)
	for i, s := range m[1:] {
		n[i], _ = strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	}
	r.requests, r.socketErrors = n[0], n[1]+n[2]+n[3]
	if m = h2Codes.FindStringSubmatch(out); m != nil {
		for _, s := range m[2:] {
			v, _ := strconv.ParseInt(s, 10, 64)
			r.non2xx += v
		}
	}
	return r, nil
}
