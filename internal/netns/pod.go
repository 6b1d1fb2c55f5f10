package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultStopTimeout is how long Process.Stop waits after SIGTERM before it
// sends SIGKILL, unless StartOptions.StopTimeout says otherwise.
const DefaultStopTimeout = 5 * time.Second

// maxLogBytes is how much of a process's output Process.Logs keeps (the end).
const maxLogBytes = 1 << 20

// pollInterval is how often WaitHTTP asks again.
const pollInterval = 50 * time.Millisecond

// Pod is one network namespace of a Network, with its own address. Create it
// with Network.AddPod; it lives until the Network is closed.
type Pod struct {
	name     string
	netns    string
	hostLink string
	ip       netip.Addr
	hostIP   netip.Addr

	mu     sync.Mutex
	procs  []*Process
	closed bool
}

// Name is the name given to AddPod.
func (p *Pod) Name() string { return p.name }

// Netns is the name of the pod's network namespace, for "ip netns exec".
func (p *Pod) Netns() string { return p.netns }

// IP is the pod's address, reachable from the host.
func (p *Pod) IP() netip.Addr { return p.ip }

// HostIP is the host's address on the pod's link: the pod's default gateway,
// and the address at which processes in the pod reach servers on the host
// (those listening on all addresses or on this one).
func (p *Pod) HostIP() netip.Addr { return p.hostIP }

// AddrPort is the pod's address with port.
func (p *Pod) AddrPort(port uint16) netip.AddrPort { return netip.AddrPortFrom(p.ip, port) }

// URL is "http://<pod IP>:<port><path>".
func (p *Pod) URL(port uint16, path string) string {
	return "http://" + p.AddrPort(port).String() + path
}

// StartOptions tunes Pod.StartWith.
type StartOptions struct {
	// Env is added to the environment of the current process ("KEY=value").
	Env []string
	// Output, when set, also receives the process's stdout and stderr as they
	// come (for example os.Stderr, or a file in a test's temporary directory).
	// Process.Logs has them either way.
	Output io.Writer
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL; zero
	// means DefaultStopTimeout.
	StopTimeout time.Duration
}

// Start runs the program name with args inside the pod ("ip netns exec"),
// with the environment of the current process, until Stop, until ctx ends, or
// until the Network is closed, whichever comes first. name is looked up in
// PATH on the host (the pod shares the host's filesystem). The process gets
// SIGKILL if the current process dies, so a killed test leaves no server
// running.
func (p *Pod) Start(ctx context.Context, name string, args ...string) (*Process, error) {
	return p.StartWith(ctx, StartOptions{}, name, args...)
}

// StartWith is Start with options.
func (p *Pod) StartWith(ctx context.Context, opts StartOptions, name string, args ...string) (*Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("netns: pod %s: start %s: %w", p.name, name, err)
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("netns: pod %s: start %s: %w", p.name, name, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("netns: pod %s: start %s: network closed", p.name, name)
	}
	pr := &Process{
		pod:         p,
		desc:        strings.Join(append([]string{name}, args...), " "),
		stopTimeout: opts.StopTimeout,
		done:        make(chan struct{}),
	}
	if pr.stopTimeout <= 0 {
		pr.stopTimeout = DefaultStopTimeout
	}
	var out io.Writer = &pr.logs
	if opts.Output != nil {
		out = io.MultiWriter(&pr.logs, opts.Output)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", p.netns, path}, args...)...)
	cmd.Env = append(os.Environ(), opts.Env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = procAttr()
	// After the process exits, do not wait forever for grandchildren that
	// still hold its output open.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("netns: pod %s: start %s: %w", p.name, pr.desc, err)
	}
	pr.cmd = cmd
	p.procs = append(p.procs, pr)

	go func() {
		pr.err = cmd.Wait()
		close(pr.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			pr.Stop()
		case <-pr.done:
		}
	}()
	return pr, nil
}

// Run runs name with args inside the pod to completion and returns its
// combined output, for setup steps and diagnostics.
func (p *Pod) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", p.netns, name}, args...)...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("netns: pod %s: run %s: %w: %s", p.name, strings.Join(append([]string{name}, args...), " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// WaitHTTP asks GET http://<pod IP>:<port><path> from the host until the answer
// is a 2xx or 3xx status, and returns nil then. It gives up with an error when
// ctx ends, or as soon as every process started in the pod has exited; the
// error carries the last failure and the end of the processes' output.
func (p *Pod) WaitHTTP(ctx context.Context, port uint16, path string) error {
	url := p.URL(port, path)
	client := &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		Timeout:   2 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("netns: pod %s: %w", p.name, err)
		}
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 400 {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		if exited, report := p.allExited(); exited {
			return fmt.Errorf("netns: pod %s: GET %s: %w; and no process is left running in the pod:%s", p.name, url, last, report)
		}
		select {
		case <-ctx.Done():
			_, report := p.allExited()
			return fmt.Errorf("netns: pod %s: GET %s: gave up (%w), last error: %w%s", p.name, url, ctx.Err(), last, report)
		case <-tick.C:
		}
	}
}

// allExited reports whether the pod has processes and all of them exited,
// with a report on each process.
func (p *Pod) allExited() (bool, string) {
	p.mu.Lock()
	procs := append([]*Process(nil), p.procs...)
	p.mu.Unlock()
	var b strings.Builder
	exited := len(procs) > 0
	for _, pr := range procs {
		state := "running"
		select {
		case <-pr.done:
			state = "exited: " + exitString(pr.err)
		default:
			exited = false
		}
		fmt.Fprintf(&b, "\n--- %s (%s), output:\n%s", pr.desc, state, tail(pr.Logs(), 4096))
	}
	return exited, b.String()
}

// close marks the pod closed and returns its processes.
func (p *Pod) close() []*Process {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return append([]*Process(nil), p.procs...)
}

// Process is a program running in a pod.
type Process struct {
	pod         *Pod
	desc        string
	cmd         *exec.Cmd
	stopTimeout time.Duration
	logs        logBuffer
	stopOnce    sync.Once
	done        chan struct{}
	err         error // set before done is closed
}

// Pid is the process id (of the program itself: ip netns exec execs it).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Logs returns what the process wrote to stdout and stderr so far (the last
// megabyte), for failure diagnostics.
func (p *Process) Logs() string { return p.logs.String() }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits for the process to exit and returns how it did (nil for status
// 0, an *exec.ExitError otherwise, also when it was stopped by a signal).
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Stop sends SIGTERM to the process and its process group, then SIGKILL if
// they have not exited after the stop timeout, and waits for the exit. It may
// be called more than once, concurrently, and after the process exited; how it
// exited is Wait's business, so Stop only fails if it cannot signal.
func (p *Process) Stop() error {
	var err error
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		if err = signalGroup(p.cmd.Process, sigTerm); err != nil {
			err = fmt.Errorf("netns: pod %s: stop %s: %w", p.pod.name, p.desc, err)
			return
		}
		t := time.NewTimer(p.stopTimeout)
		defer t.Stop()
		select {
		case <-p.done:
		case <-t.C:
			if kerr := signalGroup(p.cmd.Process, sigKill); kerr != nil {
				err = fmt.Errorf("netns: pod %s: kill %s: %w", p.pod.name, p.desc, kerr)
				return
			}
		}
	})
	if err != nil {
		return err
	}
	<-p.done
	return nil
}

// String describes the process for messages: pod, pid and command line.
func (p *Process) String() string {
	return fmt.Sprintf("%s[%d] %s", p.pod.name, p.Pid(), p.desc)
}

func exitString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.String()
	}
	return err.Error()
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "[" + strconv.Itoa(len(s)-n) + " bytes cut]..." + s[len(s)-n:]
}

// logBuffer keeps the last maxLogBytes written to it; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf []byte
	cut bool
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > 2*maxLogBytes {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-maxLogBytes:]...)
		b.cut = true
	}
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf
	if len(s) > maxLogBytes {
		s = s[len(s)-maxLogBytes:]
	}
	if b.cut || len(b.buf) > maxLogBytes {
		return "[earlier output cut]..." + string(s)
	}
	return string(s)
}
