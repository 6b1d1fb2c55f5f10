package main

import (
	"strings"
	"testing"
	"time"
)

// perfStatFledge is perf stat's output (perfArgs: -x, -a, both globs and
// filters) for the gateway ("fledge GOGC=400", 8 threads) during a 2 s
// wrk -t1 -c1 run, 5847 requests, captured here: the header lines and every
// non-zero count as printed, and 3 of its 699 zero counts.
const perfStatFledge = `Events disabled
Events enabled
Events disabled
2,,syscalls:sys_enter_rt_sigreturn,4300778497,100.00,,
2,,syscalls:sys_enter_tgkill,4299778265,100.00,,
2,,syscalls:sys_enter_getpid,4298586679,100.00,,
577,,syscalls:sys_enter_sched_yield,4294889775,100.00,,
2,,syscalls:sys_enter_sched_getaffinity,4294834677,100.00,,
17436,,syscalls:sys_enter_nanosleep,4293928546,100.00,,
23840,,syscalls:sys_enter_futex,4292748406,100.00,,
2,,syscalls:sys_enter_close,4285245693,100.00,,
2,,syscalls:sys_enter_pread64,4282413592,100.00,,
12912,,syscalls:sys_enter_write,4282318003,100.00,,
24626,,syscalls:sys_enter_read,4282227514,100.00,,
22049,,syscalls:sys_enter_epoll_pwait,4268989212,100.00,,
4,,syscalls:sys_enter_epoll_ctl,4268724596,100.00,,
10,,syscalls:sys_enter_setsockopt,4251313041,100.00,,
5847,,syscalls:sys_enter_recvfrom,4251162457,100.00,,
2,,syscalls:sys_enter_getsockname,4250689519,100.00,,
4,,syscalls:sys_enter_accept4,4250201654,100.00,,
7,,syscalls:sys_exit_futex,4204760114,100.00,,
0,,syscalls:sys_exit_close,4188821840,100.00,,
0,,syscalls:sys_exit_write,4178603952,100.00,,
11712,,syscalls:sys_exit_read,4178363694,100.00,,
0,,syscalls:sys_exit_epoll_pwait,4140705073,100.00,,
5847,,syscalls:sys_exit_recvfrom,4121393466,100.00,,
2,,syscalls:sys_exit_accept4,4119565832,100.00,,
`

func TestParsePerfStat(t *testing.T) {
	counts, err := parsePerfStat(perfStatFledge)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]syscallCount{
		"rt_sigreturn": {calls: 2}, "tgkill": {calls: 2}, "getpid": {calls: 2}, "sched_yield": {calls: 577},
		"sched_getaffinity": {calls: 2}, "nanosleep": {calls: 17436}, "futex": {calls: 23840, errors: 7},
		"close": {calls: 2}, "pread64": {calls: 2}, "write": {calls: 12912}, "read": {calls: 24626, errors: 11712},
		"epoll_pwait": {calls: 22049}, "epoll_ctl": {calls: 4}, "setsockopt": {calls: 10},
		"recvfrom": {calls: 5847, errors: 5847}, "getsockname": {calls: 2}, "accept4": {calls: 4, errors: 2},
	}
	if len(counts) != len(want) {
		t.Errorf("parsed %d system calls, want %d: %v", len(counts), len(want), counts)
	}
	for name, w := range want {
		if counts[name] != w {
			t.Errorf("%s: parsed %+v, want %+v", name, counts[name], w)
		}
	}

	s := syscallSample{requests: 5847, counts: counts}
	if got := s.total(); got != (syscallCount{calls: 107319, errors: 17568}) {
		t.Errorf("total = %+v", got)
	}
	if got := s.sorted(); len(got) != len(want) || got[0] != "read" || got[1] != "futex" || got[len(got)-1] != "tgkill" {
		t.Errorf("sorted = %v", got)
	}

	// An event whose thread never ran while counting (perf stat -x, -e
	// syscalls:sys_enter_read -p <pid of a sleep>, captured here).
	counts, err = parsePerfStat("<not counted>,,syscalls:sys_enter_read,0,100.00,,\n")
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := counts["read"]; !ok || c != (syscallCount{}) {
		t.Errorf("<not counted>: parsed %v", counts)
	}

	if _, err := parsePerfStat("<not supported>,,syscalls:sys_enter_read,0,100.00,,\n"); err == nil {
		t.Error("parsed <not supported> as a count")
	}
	if _, err := parsePerfStat("Events disabled\n"); err == nil {
		t.Error("parsed output without counts")
	}
}

func TestReportSyscalls(t *testing.T) {
	counts, err := parsePerfStat(perfStatFledge)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config{threads: 1, connections: 1, duration: 3 * time.Second, variants: []string{"haproxy", "fledge GOGC=400"}}
	var b strings.Builder
	reportSyscalls(&b, cfg, map[string]syscallSample{"fledge GOGC=400": {rps: 2923, requests: 5847, threads: 8, counts: counts}})
	want := "| fledge GOGC=400 | 2923 | 18.35 | 3.00 | read 4.21 (2.00), futex 4.08, epoll_pwait 3.77, nanosleep 2.98, write 2.21, recvfrom 1.00 (1.00), sched_yield 0.10, other 0.01 |\n"
	if !strings.Contains(b.String(), want) || !strings.Contains(b.String(), "wrk -t1 -c1 -d2s") || strings.Contains(b.String(), "| haproxy |") {
		t.Errorf("reportSyscalls printed:\n%s\nwant the row\n%s", b.String(), want)
	}
}
