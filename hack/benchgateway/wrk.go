package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what one wrk run reports.
type wrkResult struct {
	rps      float64
	p99      time.Duration
	requests int64
	// non2xx are responses with another status; socket errors (connect, read,
	// write, timeout) are counted apart.
	non2xx, socketErrors int64
}

func (r wrkResult) errors() int64 { return r.non2xx + r.socketErrors }

// runWrk runs "wrk -t threads -c conns -d d --latency" against url with the
// route's Host, bounded by d plus 30s.
func runWrk(ctx context.Context, threads, conns int, d time.Duration, url string) (wrkResult, error) {
	secs := int((d + time.Second - 1) / time.Second)
	return runLoad(ctx, d, parseWrk, "wrk", "-t"+strconv.Itoa(threads), "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(secs)+"s",
		"--latency", "-H", "Host: "+routeHost, url)
}

// runLoad runs the load generator tool with args, bounded by d plus 30s, and
// parses its report with parse.
func runLoad(ctx context.Context, d time.Duration, parse func(string) (wrkResult, error), tool string, args ...string) (wrkResult, error) {
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("%s: %w: %s", tool, err, out)
	}
	res, err := parse(string(out))
	if err != nil {
		return res, fmt.Errorf("%s: %w in output:\n%s", tool, err, out)
	}
	return res, nil
}

var (
	wrkRPS      = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkP99      = regexp.MustCompile(`(?m)^\s+99%\s+([0-9.]+)(us|ms|s|m|h)\s*$`)
	wrkRequests = regexp.MustCompile(`(?m)^\s+([0-9]+) requests in `)
	wrkNon2xx   = regexp.MustCompile(`(?m)^\s+Non-2xx or 3xx responses: ([0-9]+)`)
	wrkSocket   = regexp.MustCompile(`(?m)^\s+Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)`)
)

// parseWrk reads wrk's text report (run with --latency).
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	m := wrkRPS.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec")
	}
	var err error
	if r.rps, err = strconv.ParseFloat(m[1], 64); err != nil {
		return r, err
	}
	if m = wrkRequests.FindStringSubmatch(out); m == nil {
		return r, fmt.Errorf("no request count")
	}
	if r.requests, err = strconv.ParseInt(m[1], 10, 64); err != nil {
		return r, err
	}
	if m = wrkP99.FindStringSubmatch(out); m == nil {
		return r, fmt.Errorf("no 99%% latency (was --latency given?)")
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return r, err
	}
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour}[m[2]]
	r.p99 = time.Duration(v * float64(unit))
	if m = wrkNon2xx.FindStringSubmatch(out); m != nil {
		r.non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m = wrkSocket.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			r.socketErrors += n
		}
	}
	return r, nil
}
