package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// sample is one measured run of one variant.
type sample struct {
	rps      float64
	p99      time.Duration
	requests int64
	errors   int64
	// cpu is the proxy's CPU time during the run; negative without a proxy.
	cpu time.Duration
	// mallocs are the proxy's heap allocations during the run; negative when
	// unknown.
	mallocs float64
}

// cpuPerRequest is the proxy's CPU time per request in µs, negative when
// unknown.
func (s sample) cpuPerRequest() float64 {
	if s.cpu < 0 || s.requests == 0 {
		return -1
	}
	return float64(s.cpu.Microseconds()) / float64(s.requests)
}

func (s sample) allocsPerRequest() float64 {
	if s.mallocs < 0 || s.requests == 0 {
		return -1
	}
	return s.mallocs / float64(s.requests)
}

// median of xs (mean of the middle two for an even count); NaN-free input.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return -1
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// perRound applies f to every sample of a variant.
func perRound(ss []sample, f func(sample) float64) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}

// ratios are the per-round ratios of a's requests/s to b's (same rounds).
func ratios(a, b []sample) []float64 {
	out := make([]float64, 0, len(a))
	for i := range min(len(a), len(b)) {
		if b[i].rps > 0 {
			out = append(out, a[i].rps/b[i].rps)
		}
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// report prints the results as Markdown.
func report(w io.Writer, cfg config, m machine, results map[string][]sample) {
	fmt.Fprintf(w, "Machine: %d CPUs (%s), Linux %s; %s; %s; %s.\n", m.cpus, m.cpuModel, m.kernel, m.goVersion, m.haproxy, m.wrk)
	fmt.Fprintf(w, "Load average before: %s, after: %s.\n", m.loadBefore, m.loadAfter)
	fmt.Fprintf(w, "wrk -t%d -c%d -d%s --latency after a %s warm-up, %d rounds, variants alternated (order rotated each round), canary weight %d%%.\n\n",
		cfg.threads, cfg.connections, cfg.duration, cfg.warmup, cfg.rounds, cfg.weight)
	for _, v := range cfg.variants {
		if strings.Contains(v, "h2") {
			fmt.Fprintf(w, "The h2 variants ran h2load -t%d -c%d -m1 instead of wrk (no percentiles: p99 —).\n\n", cfg.threads, cfg.connections)
			break
		}
	}

	fmt.Fprintln(w, "| variant | req/s | × HAProxy | × direct | p99 ms | proxy CPU µs/req | allocs/req | errors |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
	num := func(v float64, format string) string {
		if v < 0 {
			return "—"
		}
		return fmt.Sprintf(format, v)
	}
	for _, name := range cfg.variants {
		ss := results[name]
		var errs int64
		for _, s := range ss {
			errs += s.errors
		}
		ratio := func(base string) string {
			if _, ok := results[base]; !ok {
				return "—"
			}
			r := ratios(ss, results[base])
			if len(r) == 0 {
				return "—"
			}
			return fmt.Sprintf("%.2f (%.2f–%.2f)", median(r), slices.Min(r), slices.Max(r))
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %d |\n", name,
			num(median(perRound(ss, func(s sample) float64 { return s.rps })), "%.0f"),
			ratio(haproxyOf(name, results)), ratio("direct"),
			num(median(perRound(ss, func(s sample) float64 { return ms(s.p99) })), "%.2f"),
			num(median(perRound(ss, sample.cpuPerRequest)), "%.1f"),
			num(median(perRound(ss, sample.allocsPerRequest)), "%.1f"),
			errs)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Medians over rounds; ratios are medians of per-round ratios (min–max in parentheses).")
	fmt.Fprintln(w)

	fmt.Fprintln(w, "Per round, req/s (proxy CPU µs/req):")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| round | %s |\n", strings.Join(cfg.variants, " | "))
	fmt.Fprintf(w, "|---|%s\n", strings.Repeat("---:|", len(cfg.variants)))
	for r := range cfg.rounds {
		cells := make([]string, len(cfg.variants))
		for i, name := range cfg.variants {
			s := results[name][r]
			cells[i] = fmt.Sprintf("%.0f", s.rps)
			if c := s.cpuPerRequest(); c >= 0 {
				cells[i] += fmt.Sprintf(" (%.1f)", c)
			}
		}
		fmt.Fprintf(w, "| %d | %s |\n", r+1, strings.Join(cells, " | "))
	}
}

// haproxyOf is the HAProxy variant a variant is compared with: "haproxy TLS"
// for the TLS ones, "haproxy h2" for the h2 ones, "haproxy nbthread=1" for
// the gateway on one P when that variant ran (else "haproxy").
func haproxyOf[T any](name string, results map[string]T) string {
	if _, ok := results[haproxyOneThread]; ok && strings.Contains(name, "GOMAXPROCS=1") {
		return haproxyOneThread
	}
	if strings.Contains(name, "h2") {
		return "haproxy h2"
	}
	if strings.Contains(name, "TLS") {
		return "haproxy TLS"
	}
	return "haproxy"
}

// topSyscalls is how many system calls the -syscalls table names per variant.
const topSyscalls = 8

// reportSyscalls prints the system calls per request of each proxy (-syscalls)
// as Markdown; nothing without counts.
func reportSyscalls(w io.Writer, cfg config, counts map[string]syscallSample) {
	if len(counts) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "System calls per request of the proxy process (all its threads), counted by perf stat (syscalls:sys_enter_*; errors: sys_exit_* with ret < 0) during one extra wrk -t%d -c%d -d%s run after round 1's measured run (req/s of that run):\n\n",
		cfg.threads, cfg.connections, min(cfg.duration, syscallRun))
	fmt.Fprintln(w, "| variant | req/s | syscalls/req | errors/req | calls/req by system call (errors/req) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---|")
	for _, name := range cfg.variants {
		s, ok := counts[name]
		if !ok || s.requests == 0 {
			continue
		}
		per := func(n int64) float64 { return float64(n) / float64(s.requests) }
		var cells []string
		var other int64
		for i, sc := range s.sorted() {
			c := s.counts[sc]
			if i >= topSyscalls || per(c.calls) < 0.005 {
				other += c.calls
				continue
			}
			cell := fmt.Sprintf("%s %.2f", sc, per(c.calls))
			if per(c.errors) >= 0.005 {
				cell += fmt.Sprintf(" (%.2f)", per(c.errors))
			}
			cells = append(cells, cell)
		}
		if per(other) >= 0.005 {
			cells = append(cells, fmt.Sprintf("other %.2f", per(other)))
		}
		total := s.total()
		fmt.Fprintf(w, "| %s | %.0f | %.2f | %.2f | %s |\n", name, s.rps, per(total.calls), per(total.errors), strings.Join(cells, ", "))
	}
	for _, name := range cfg.variants {
		if s, ok := counts[name]; ok && s.newThreads > 0 {
			fmt.Fprintf(w, "\n%s started %d threads during the count (%d counted): their system calls are missing.\n", name, s.newThreads, s.threads)
		}
	}
}
