package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// With -syscalls, after round 1's measured run of every proxy, one more load
// run of the same kind (same threads and connections, syscallRun long) counts
// the proxy process's system calls, all threads, with perf stat on the
// syscall tracepoints: syscalls:sys_enter_* for the calls and
// syscalls:sys_exit_* filtered on ret < 0 for the errors (EAGAIN reads,
// futex timeouts...). The counters are in the kernel, and they are per CPU
// (-a) with a filter on the thread ids the proxy has when the count starts:
// per-thread counters (-p) would be switched in and out, all ~720 of them, at
// every context switch of the proxy, which cut its requests/s by two thirds
// here. This way the proxy runs at nearly its normal speed, so batching
// (events per epoll_wait) is that of the load, unlike under strace. perf
// starts with the events disabled (-D -1) and is driven through its control
// pipes, so the count spans the load run only (plus a few milliseconds of
// idle proxy on either side).

// syscallRun is the length of the load run that counts system calls (at
// most -duration).
const syscallRun = 2 * time.Second

// perfExit bounds perf's exit after SIGINT: it prints at once, but removing
// its ~720 tracepoint events (one per syscall and direction, per thread)
// takes it about half a minute on a small VM.
const perfExit = 3 * time.Minute

// perfArgs are the arguments of perf stat counting the system calls of the
// threads tids on every CPU, started disabled and controlled through fds 3
// (commands) and 4 (acks), printing CSV (-x,) on stderr.
func perfArgs(tids []int) []string {
	var pids []string
	for _, tid := range tids {
		pids = append(pids, "common_pid == "+strconv.Itoa(tid))
	}
	threads := strings.Join(pids, " || ")
	return []string{"stat", "-x,", "-a", "-D", "-1", "--control", "fd:3,4",
		"-e", "syscalls:sys_enter_*", "--filter", threads,
		"-e", "syscalls:sys_exit_*", "--filter", "ret < 0 && (" + threads + ")"}
}

// threadIDs are the ids of pid's threads, from /proc/<pid>/task.
func threadIDs(pid int) ([]int, error) {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil, err
	}
	var tids []int
	for _, e := range entries {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	slices.Sort(tids)
	return tids, nil
}

// syscallCount is how often one system call was made, and how often it
// returned an error, during a run.
type syscallCount struct {
	calls, errors int64
}

// syscallSample is the system calls of one proxy during one load run.
type syscallSample struct {
	rps      float64
	requests int64
	// threads is how many threads were counted; newThreads how many the
	// proxy started during the run (not counted).
	threads, newThreads int
	counts              map[string]syscallCount
}

// total is the sum over all system calls.
func (s syscallSample) total() syscallCount {
	var t syscallCount
	for _, c := range s.counts {
		t.calls += c.calls
		t.errors += c.errors
	}
	return t
}

// sorted is the system calls made, most frequent first (ties by name).
func (s syscallSample) sorted() []string {
	var names []string
	for name, c := range s.counts {
		if c.calls > 0 || c.errors > 0 {
			names = append(names, name)
		}
	}
	slices.SortFunc(names, func(a, b string) int {
		if d := s.counts[b].calls - s.counts[a].calls; d != 0 {
			if d > 0 {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	return names
}

// checkPerf tells whether perf can count syscall tracepoints here (perf
// installed, tracefs available, filters accepted), before anything starts.
func checkPerf(ctx context.Context) error {
	if _, err := exec.LookPath("perf"); err != nil {
		return errors.New("-syscalls: perf is not installed (hack/bench-gateway.sh installs linux-perf)")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "perf", "stat", "-x,", "-e", "syscalls:sys_enter_exit_group",
		"-e", "syscalls:sys_exit_openat", "--filter", "ret < 0", "true")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err == nil {
		var counts map[string]syscallCount
		if counts, err = parsePerfStat(string(out)); err == nil && counts["exit_group"].calls != 1 {
			err = fmt.Errorf("counted %d exit_group calls of true, want 1", counts["exit_group"].calls)
		}
	}
	if err != nil {
		return fmt.Errorf("-syscalls: perf cannot count syscall tracepoints here (perf stat -e syscalls:sys_enter_exit_group true: %w): %s", err, out)
	}
	return nil
}

// syscallAttempts bounds the counts of one proxy: a count during which the
// proxy started a thread (whose system calls the filter misses) is done again,
// with that thread.
const syscallAttempts = 3

// countSyscalls counts the system calls of t's proxy process (all threads)
// during one load run of the kind of t's measured runs, again while the
// proxy starts threads during the count, up to syscallAttempts times.
func countSyscalls(ctx context.Context, cfg config, t target) (syscallSample, error) {
	var s syscallSample
	var err error
	for attempt := 1; attempt <= syscallAttempts; attempt++ {
		if s, err = countSyscallsOnce(ctx, cfg, t); err != nil || s.newThreads == 0 {
			break
		}
		fmt.Fprintf(os.Stderr, "syscalls %s: the proxy started %d threads during count %d/%d\n", t.name, s.newThreads, attempt, syscallAttempts)
	}
	return s, err
}

// countSyscallsOnce runs one load run while perf stat counts the system calls
// of the threads that t's proxy process has when it starts.
func countSyscallsOnce(ctx context.Context, cfg config, t target) (syscallSample, error) {
	load := runWrk
	if strings.Contains(t.name, "h2") {
		load = runH2load
	}
	d := min(cfg.duration, syscallRun)
	ctx, cancel := context.WithTimeout(ctx, d+perfExit+time.Minute)
	defer cancel()

	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return syscallSample{}, err
	}
	defer ctlW.Close()
	ackR, ackW, err := os.Pipe()
	if err != nil {
		ctlR.Close()
		return syscallSample{}, err
	}
	defer ackR.Close()
	tids, err := threadIDs(t.pid)
	if err != nil {
		ctlR.Close()
		ackW.Close()
		return syscallSample{}, err
	}
	cmd := exec.CommandContext(ctx, "perf", perfArgs(tids)...)
	cmd.ExtraFiles = []*os.File{ctlR, ackW} // fds 3 and 4
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Start()
	ctlR.Close()
	ackW.Close()
	if err != nil {
		return syscallSample{}, fmt.Errorf("perf stat: %w", err)
	}
	// fail stops perf and returns err with perf's output.
	fail := func(err error) (syscallSample, error) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return syscallSample{}, fmt.Errorf("perf stat (pid %d): %w: %s", t.pid, err, strings.TrimSpace(out.String()))
	}
	// Opening the events is quick; the first ack comes once they are all open.
	if err := perfControl(ctlW, ackR, "enable", time.Minute); err != nil {
		return fail(err)
	}
	res, err := load(ctx, cfg.threads, cfg.connections, d, t.url)
	if err != nil {
		return fail(err)
	}
	after, err := threadIDs(t.pid)
	if err != nil {
		return fail(err)
	}
	if err := perfControl(ctlW, ackR, "disable", 30*time.Second); err != nil {
		return fail(err)
	}
	_ = cmd.Process.Signal(os.Interrupt) // perf prints its counts and exits
	err = cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		// perf stat re-raises the SIGINT after printing.
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && (ws.Signaled() && ws.Signal() == syscall.SIGINT || ws.ExitStatus() == 130) {
			err = nil
		}
	}
	if err != nil {
		return syscallSample{}, fmt.Errorf("perf stat (pid %d): %w: %s", t.pid, err, strings.TrimSpace(out.String()))
	}
	counts, err := parsePerfStat(out.String())
	if err != nil {
		return syscallSample{}, fmt.Errorf("perf stat (pid %d): %w in output:\n%s", t.pid, err, out.String())
	}
	s := syscallSample{rps: res.rps, requests: res.requests, threads: len(tids), counts: counts}
	for _, tid := range after {
		if !slices.Contains(tids, tid) {
			s.newThreads++
		}
	}
	return s, nil
}

// perfControl writes a command to perf's control pipe and waits for its ack.
func perfControl(ctl io.Writer, ack *os.File, command string, timeout time.Duration) error {
	if _, err := io.WriteString(ctl, command+"\n"); err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	if err := ack.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	buf := make([]byte, 16)
	n, err := ack.Read(buf)
	if err != nil {
		return fmt.Errorf("%s: no ack: %w", command, err)
	}
	if !bytes.HasPrefix(buf[:n], []byte("ack")) {
		return fmt.Errorf("%s: answer %q, want ack", command, buf[:n])
	}
	return nil
}

// parsePerfStat reads perf stat's CSV output (-x,) of syscalls:sys_enter_*
// (calls) and syscalls:sys_exit_* (errors, counted with the filter ret < 0)
// events: "count,unit,event,running time,percent,...", count being
// "<not counted>" for an event whose threads never ran while it was enabled.
// Other lines (comments, "Events enabled") are ignored.
func parsePerfStat(out string) (map[string]syscallCount, error) {
	counts := make(map[string]syscallCount)
	seen := 0
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) < 3 {
			continue
		}
		name, enter := strings.CutPrefix(f[2], "syscalls:sys_enter_")
		if !enter {
			var exit bool
			if name, exit = strings.CutPrefix(f[2], "syscalls:sys_exit_"); !exit {
				continue
			}
		}
		var n int64
		switch {
		case f[0] == "<not counted>":
		case strings.HasPrefix(f[0], "<"): // <not supported>
			return nil, fmt.Errorf("event %s: %s", f[2], f[0])
		default:
			v, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				return nil, fmt.Errorf("event %s: count %q: %w", f[2], f[0], err)
			}
			n = int64(v)
		}
		c := counts[name]
		if enter {
			c.calls += n
		} else {
			c.errors += n
		}
		counts[name] = c
		seen++
	}
	if seen == 0 {
		return nil, errors.New("no syscalls:sys_enter_* or sys_exit_* counts")
	}
	return counts, nil
}
