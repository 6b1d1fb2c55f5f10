package netns

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testPrefix names everything these tests create; Cleanup removes what a
// killed run of them left behind.
const testPrefix = "fltest"

// childEnv switches the test binary into one of the helper programs below, run
// inside pods (the re-exec pattern: no other program is needed).
const childEnv = "NETNS_TEST_CHILD"

// serverPort is where the "http" child listens, in every pod: the same port in
// several pods shows that each has its own network stack.
const serverPort = 8080

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "http":
		childHTTP()
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		for {
			time.Sleep(time.Hour)
		}
	case "exit3":
		fmt.Fprintln(os.Stderr, "failing on purpose")
		os.Exit(3)
	case "leak":
		childLeak()
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", childEnv, os.Getenv(childEnv))
		os.Exit(2)
	}
}

// childHTTP answers NETNS_TEST_REPLY on / with the client's address in the
// X-Remote-Addr header, and "ok" on /healthz.
func childHTTP() {
	reply := os.Getenv("NETNS_TEST_REPLY")
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Remote-Addr", r.RemoteAddr)
		io.WriteString(w, reply)
	})
	err := http.ListenAndServe(fmt.Sprintf(":%d", serverPort), mux)
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// childLeak plays a run that gets killed: it makes a network with one pod
// running a server, prints the pod's namespace and host address, and waits
// to be killed without closing anything.
func childLeak() {
	ctx := context.Background()
	n, err := NewNetwork(ctx, testPrefix, netip.Prefix{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	p, err := n.AddPod(ctx, "leaked")
	if err == nil {
		_, err = startServer(ctx, p, "leaked")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		n.Close()
		os.Exit(1)
	}
	fmt.Printf("%s %s %s\n", p.Netns(), p.hostLink, p.HostIP())
	for {
		time.Sleep(time.Hour)
	}
}

// startServer starts the "http" child in p and waits until it answers.
func startServer(ctx context.Context, p *Pod, reply string) (*Process, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	pr, err := p.StartWith(ctx, StartOptions{Env: []string{childEnv + "=http", "NETNS_TEST_REPLY=" + reply}}, exe)
	if err != nil {
		return nil, err
	}
	if err := p.WaitHTTP(ctx, serverPort, "/healthz"); err != nil {
		return nil, err
	}
	return pr, nil
}

// requireNetns skips the test where pods cannot run, and removes what killed
// earlier runs left behind.
func requireNetns(t *testing.T) context.Context {
	t.Helper()
	if err := Supported(); err != nil {
		t.Skipf("requires root and ip netns: %v", err)
	}
	// Only a guard against hanging forever; nothing asserts on time.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	if err := Cleanup(ctx, testPrefix); err != nil {
		t.Fatalf("Cleanup(%q): %v", testPrefix, err)
	}
	return ctx
}

// newNetwork makes a network that is closed when the test ends.
func newNetwork(ctx context.Context, t *testing.T) *Network {
	t.Helper()
	n, err := NewNetwork(ctx, testPrefix, netip.Prefix{})
	if err != nil {
		t.Fatalf("NewNetwork: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return n
}

// client talks to pods directly, never through a proxy from the environment.
var client = &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 30 * time.Second}

// fetch GETs / from the pod's server and returns the body and the address
// the server saw the request come from.
func fetch(ctx context.Context, t *testing.T, p *Pod) (body string, remote netip.AddrPort) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL(serverPort, "/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET from pod %s: %v", p.Name(), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read from pod %s: %v", p.Name(), err)
	}
	remote, err = netip.ParseAddrPort(resp.Header.Get("X-Remote-Addr"))
	if err != nil {
		t.Fatalf("pod %s: X-Remote-Addr: %v", p.Name(), err)
	}
	return string(b), remote
}

func netnsList(ctx context.Context, t *testing.T) []string {
	t.Helper()
	names, _, err := listNames(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

func TestPodsAnswerFromTheirOwnAddresses(t *testing.T) {
	ctx := requireNetns(t)
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); err == nil {
		t.Logf("net.ipv4.ip_forward=%s (not needed)", strings.TrimSpace(string(b)))
	}
	n := newNetwork(ctx, t)
	pods := map[string]*Pod{}
	for _, name := range []string{"stable", "canary"} {
		p, err := n.AddPod(ctx, name)
		if err != nil {
			t.Fatalf("AddPod(%s): %v", name, err)
		}
		if !n.Block().Contains(p.IP()) || !n.Block().Contains(p.HostIP()) {
			t.Errorf("pod %s: addresses %s and %s outside the block %s", name, p.IP(), p.HostIP(), n.Block())
		}
		if _, err := startServer(ctx, p, "hello from "+name); err != nil {
			t.Fatalf("pod %s: %v", name, err)
		}
		pods[name] = p
	}
	if pods["stable"].IP() == pods["canary"].IP() {
		t.Fatalf("both pods have address %s", pods["stable"].IP())
	}
	for name, p := range pods {
		body, remote := fetch(ctx, t, p)
		if want := "hello from " + name; body != want {
			t.Errorf("pod %s at %s answered %q, want %q", name, p.IP(), body, want)
		}
		// The request came straight over the pod's own veth link.
		if remote.Addr() != p.HostIP() {
			t.Errorf("pod %s saw the request from %s, want the host side of its link %s", name, remote.Addr(), p.HostIP())
		}
	}
	out, err := pods["stable"].Run(ctx, "ip", "-4", "route", "show", "default")
	if err != nil {
		t.Fatal(err)
	}
	if want := "default via " + pods["stable"].HostIP().String(); !strings.Contains(string(out), want) {
		t.Errorf("pod stable default route %q, want %q", out, want)
	}
}

func TestCloseRemovesEverything(t *testing.T) {
	ctx := requireNetns(t)
	n, err := NewNetwork(ctx, testPrefix, netip.Prefix{})
	if err != nil {
		t.Fatalf("NewNetwork: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	var pods []*Pod
	var procs []*Process
	for _, name := range []string{"a", "b"} {
		p, err := n.AddPod(ctx, name)
		if err != nil {
			t.Fatalf("AddPod(%s): %v", name, err)
		}
		pr, err := startServer(ctx, p, name)
		if err != nil {
			t.Fatal(err)
		}
		pods, procs = append(pods, p), append(procs, pr)
	}
	for _, p := range pods {
		if !slices.Contains(netnsList(ctx, t), p.Netns()) || !linkExists(p.hostLink) {
			t.Fatalf("pod %s: namespace or link %s missing before Close", p.Name(), p.hostLink)
		}
	}

	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	names := netnsList(ctx, t)
	for i, p := range pods {
		if slices.Contains(names, p.Netns()) {
			t.Errorf("namespace %s still listed after Close: %v", p.Netns(), names)
		}
		if linkExists(p.hostLink) {
			t.Errorf("link %s still exists after Close", p.hostLink)
		}
		select {
		case <-procs[i].Done():
		default:
			t.Errorf("process %s still running after Close", procs[i])
		}
		var ee *exec.ExitError
		if err := procs[i].Wait(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
			t.Errorf("process %s ended with %v, want killed by SIGTERM", procs[i], err)
		}
	}
	if err := n.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := n.AddPod(ctx, "late"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("AddPod after Close = %v, want a 'closed' error", err)
	}
	if _, err := pods[0].Start(ctx, "true"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Start after Close = %v, want a 'closed' error", err)
	}
}

func TestConcurrentNetworksDoNotClash(t *testing.T) {
	ctx := requireNetns(t)
	const count = 4
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		nets = make([]*Network, count)
		pods = make([]*Pod, count)
	)
	for i := range count {
		wg.Go(func() {
			n, err := NewNetwork(ctx, testPrefix, netip.Prefix{})
			if err == nil {
				nets[i] = n
				// The same pod name in every network.
				pods[i], err = n.AddPod(ctx, "web")
			}
			if err == nil {
				_, err = startServer(ctx, pods[i], fmt.Sprintf("network %d", i))
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("network %d: %w", i, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, n := range nets {
			if n != nil {
				if err := n.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	blocks := map[netip.Prefix]int{}
	for i, n := range nets {
		if j, dup := blocks[n.Block()]; dup {
			t.Errorf("networks %d and %d both got block %s", j, i, n.Block())
		}
		blocks[n.Block()] = i
		body, _ := fetch(ctx, t, pods[i])
		if want := fmt.Sprintf("network %d", i); body != want {
			t.Errorf("pod of network %d at %s answered %q, want %q", i, pods[i].IP(), body, want)
		}
	}
}

func TestBlockIsExclusive(t *testing.T) {
	ctx := requireNetns(t)
	n := newNetwork(ctx, t)
	block := n.Block()
	if _, err := NewNetwork(ctx, testPrefix, block); err == nil || !strings.Contains(err.Error(), "locked by live networks") {
		t.Fatalf("NewNetwork(%s) while held = %v, want a 'locked' error", block, err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := NewNetwork(ctx, testPrefix, block)
	if err != nil {
		t.Fatalf("NewNetwork(%s) after Close: %v", block, err)
	}
	again.Close()
}

func TestCleanupRemovesOnlyWhatKilledRunsLeft(t *testing.T) {
	ctx := requireNetns(t)
	live := newNetwork(ctx, t)
	livePod, err := live.AddPod(ctx, "live")
	if err != nil {
		t.Fatal(err)
	}

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := exec.CommandContext(ctx, exe)
	child.Env = append(os.Environ(), childEnv+"=leak")
	var stderr strings.Builder
	child.Stderr = &stderr
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	child.Process.Kill()
	child.Wait()
	f := strings.Fields(line)
	if err != nil || len(f) != 3 {
		t.Fatalf("leaking child printed %q (%v); stderr:\n%s", line, err, stderr.String())
	}
	leakedNetns, leakedLink := f[0], f[1]
	t.Cleanup(func() { // in case Cleanup fails
		deleteLink(context.Background(), leakedLink)
		deleteNetns(context.Background(), leakedNetns)
	})
	if !slices.Contains(netnsList(ctx, t), leakedNetns) || !linkExists(leakedLink) {
		t.Fatalf("the killed child left no namespace %s and link %s behind; nothing to test", leakedNetns, leakedLink)
	}

	if err := Cleanup(ctx, testPrefix); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	names := netnsList(ctx, t)
	if slices.Contains(names, leakedNetns) {
		t.Errorf("stale namespace %s survived Cleanup", leakedNetns)
	}
	if linkExists(leakedLink) {
		t.Errorf("stale link %s survived Cleanup", leakedLink)
	}
	if !slices.Contains(names, livePod.Netns()) || !linkExists(livePod.hostLink) {
		t.Errorf("Cleanup removed the live network's namespace %s or link %s", livePod.Netns(), livePod.hostLink)
	}
}

func TestAddPodRollsBackOnFailure(t *testing.T) {
	ctx := requireNetns(t)
	n := newNetwork(ctx, t)
	// Take the name the first pod's host link would get.
	taken := linkName(n.Prefix(), n.Block(), 0)
	if _, err := ip(ctx, "link", "add", taken, "type", "veth", "peer", "name", taken+"x"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteLink(context.Background(), taken) })

	if _, err := n.AddPod(ctx, "a"); err == nil || !strings.Contains(err.Error(), taken) {
		t.Fatalf("AddPod with its link name taken = %v, want an error naming %s", err, taken)
	}
	if ns := netnsName(n.Prefix(), n.Block(), "a"); slices.Contains(netnsList(ctx, t), ns) {
		t.Errorf("failed AddPod left namespace %s behind", ns)
	}
	p, err := n.AddPod(ctx, "a")
	if err != nil {
		t.Fatalf("AddPod after a failed one: %v", err)
	}
	if _, err := startServer(ctx, p, "a"); err != nil {
		t.Fatal(err)
	}
}

func TestAddPodRejects(t *testing.T) {
	ctx := requireNetns(t)
	n := newNetwork(ctx, t)
	if _, err := n.AddPod(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		name, wantErr string
	}{
		"duplicate name":  {name: "web", wantErr: "already exists"},
		"upper case":      {name: "Web", wantErr: "must be 1 to 40 lowercase"},
		"empty":           {name: "", wantErr: "must be 1 to 40 lowercase"},
		"trailing dash":   {name: "web-", wantErr: "must be 1 to 40 lowercase"},
		"path separator":  {name: "a/b", wantErr: "must be 1 to 40 lowercase"},
		"forty-one chars": {name: strings.Repeat("a", 41), wantErr: "must be 1 to 40 lowercase"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := n.AddPod(ctx, tc.name); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("AddPod(%q) = %v, want an error containing %q", tc.name, err, tc.wantErr)
			}
		})
	}
}

// signalWriter closes ready when "ready" has been written to it.
type signalWriter struct {
	once  sync.Once
	ready chan struct{}
	mu    sync.Mutex
	seen  strings.Builder
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen.Write(p)
	if strings.Contains(w.seen.String(), "ready") {
		w.once.Do(func() { close(w.ready) })
	}
	return len(p), nil
}

func TestStopKillsWhatIgnoresSIGTERM(t *testing.T) {
	ctx := requireNetns(t)
	n := newNetwork(ctx, t)
	p, err := n.AddPod(ctx, "stubborn")
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	w := &signalWriter{ready: make(chan struct{})}
	pr, err := p.StartWith(ctx, StartOptions{
		Env:         []string{childEnv + "=ignore-term"},
		Output:      w,
		StopTimeout: 100 * time.Millisecond,
	}, exe)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.ready: // SIGTERM is ignored from now on
	case <-pr.Done():
		t.Fatalf("child exited early: %v\n%s", pr.Wait(), pr.Logs())
	}
	if err := pr.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	var ee *exec.ExitError
	if err := pr.Wait(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("process ended with %v, want killed by SIGKILL", err)
	}
	if !strings.Contains(pr.Logs(), "ready") {
		t.Errorf("Logs() = %q, want the child's output", pr.Logs())
	}
	if err := pr.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestWaitHTTPReportsExitedProcess(t *testing.T) {
	ctx := requireNetns(t)
	n := newNetwork(ctx, t)
	p, err := n.AddPod(ctx, "crash")
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.StartWith(ctx, StartOptions{Env: []string{childEnv + "=exit3"}}, exe); err != nil {
		t.Fatal(err)
	}
	err = p.WaitHTTP(ctx, serverPort, "/healthz")
	if err == nil {
		t.Fatal("WaitHTTP succeeded against a process that exits at once")
	}
	for _, want := range []string{"no process is left running", "exit status 3", "failing on purpose"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("WaitHTTP error %q does not contain %q", err, want)
		}
	}
}

func TestStartRejectsUnknownProgram(t *testing.T) {
	ctx := requireNetns(t)
	n := newNetwork(ctx, t)
	p, err := n.AddPod(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Start(ctx, "no-such-program-fledge"); err == nil || !strings.Contains(err.Error(), "executable file not found") {
		t.Errorf("Start(no-such-program) = %v, want 'executable file not found'", err)
	}
}
