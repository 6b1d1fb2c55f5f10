package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100
// on every Linux architecture Go supports (it is part of the kernel ABI).
const clockTicks = 100

// child is a proxy running as a child process.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	// log is the file receiving its output.
	log string
	// url is the proxy's base URL; metricsURL the gateway's /metrics.
	url, metricsURL string
}

// startChild starts cmd in its own process group, killed if this process dies,
// with its output in dir/<name>.log.
func startChild(name, dir string, cmd *exec.Cmd) (*child, error) {
	logPath := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child has its own copy
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		_ = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop sends SIGTERM to the child's process group, SIGKILL after 10s, and
// waits for the exit.
func (c *child) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = syscall.Kill(-c.pid(), syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
		<-c.done
	}
}

// waitOK asks GET url (with the route's Host) until it answers 200, for at most
// 15s or until the child exits.
func (c *child) waitOK(ctx context.Context, url string) error {
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true, TLSClientConfig: benchTLSClient}, Timeout: 2 * time.Second}
	deadline := time.Now().Add(15 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Host = routeHost
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		select {
		case <-c.done:
			return fmt.Errorf("%s exited: %s", c.name, c.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: GET %s: no 200 within 15s, last error: %v; output: %s", c.name, url, last, c.logTail())
}

func (c *child) logTail() string {
	b, _ := os.ReadFile(c.log)
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// haproxyConfig splits (100-weight)/weight between stable and canary by
// roundrobin, on 127.0.0.1:port.
// With pem set (certificate and key), it terminates TLS, offering h2 and
// http/1.1 by ALPN as the gateway does. threads is HAProxy's nbthread.
func haproxyConfig(port int, stable, canary netip.AddrPort, weight int, pem string, threads int) string {
	bind := fmt.Sprintf("127.0.0.1:%d", port)
	if pem != "" {
		bind += " ssl crt " + pem + " alpn h2,http/1.1"
	}
	return fmt.Sprintf(`global
    nbthread %d
    maxconn 4096

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    http-reuse always
    option forwardfor

frontend bench
    bind %s
    default_backend error-page

backend error-page
    balance roundrobin
    server v1 %s weight %d
    server v2 %s weight %d
`, threads, bind, stable, 100-weight, canary, weight)
}

// haproxyThreads is the nbthread of HAProxy variant name: 1 for
// "haproxy nbthread=1", else 2 (one per core of the benchmark machine).
func haproxyThreads(name string) int {
	if name == haproxyOneThread {
		return 1
	}
	return 2
}

// startHAProxy runs HAProxy in the foreground (-db) and waits until it proxies.
func startHAProxy(ctx context.Context, dir, name string, stable, canary netip.AddrPort, weight int, pem string) (*child, error) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		return nil, fmt.Errorf("haproxy is not installed (hack/bench-gateway.sh installs it)")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".cfg")
	if err := os.WriteFile(cfgPath, []byte(haproxyConfig(port, stable, canary, weight, pem, haproxyThreads(name))), 0o644); err != nil {
		return nil, err
	}
	c, err := startChild(name, dir, exec.Command("haproxy", "-db", "-f", cfgPath))
	if err != nil {
		return nil, err
	}
	scheme := "http"
	if pem != "" {
		scheme = "https"
	}
	c.url = fmt.Sprintf("%s://127.0.0.1:%d", scheme, port)
	if err := c.waitOK(ctx, c.url+"/healthz"); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// startGateway runs this binary as "benchgateway gateway" with its proxy and
// admin listeners handed over as file descriptors 3 and 4, and GOGC=gogc
// (unset when empty), and waits until it proxies. With profileDir set, the
// gateway writes its CPU profile there. name is the variant's name;
// disableFastPath sets gateway.Options.DisableFastPath. bin, when not empty,
// is another benchgateway binary to run instead of this one.
func startGateway(ctx context.Context, dir, name, bin string, stable, canary netip.AddrPort, weight int, gogc string, disableFastPath bool, profileDir string, tc *benchCerts) (*child, error) {
	self := bin
	if self == "" {
		var err error
		if self, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		f, err := ln.(*net.TCPListener).File()
		ln.Close() // f is a dup
		if err != nil {
			return nil, err
		}
		files = append(files, f)
		addrs = append(addrs, ln.Addr().String())
	}
	cmd := exec.Command(self, "gateway",
		"-stable", stable.String(), "-canary", canary.String(), "-weight", strconv.Itoa(weight),
		"-disable-fast-path="+strconv.FormatBool(disableFastPath))
	if name == floorVariant {
		cmd.Args = []string{self, "floor", "-stable", stable.String(), "-canary", canary.String(), "-weight", strconv.Itoa(weight)}
	}
	if tc != nil {
		cmd.Args = append(cmd.Args, "-tls-cert", tc.cert, "-tls-key", tc.key)
	}
	cmd.ExtraFiles = files
	oneP := strings.Contains(name, "GOMAXPROCS=1")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOGC=") && !(oneP && strings.HasPrefix(kv, "GOMAXPROCS=")) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if oneP {
		cmd.Env = append(cmd.Env, "GOMAXPROCS=1")
	}
	if gogc != "" {
		cmd.Env = append(cmd.Env, "GOGC="+gogc)
	}
	if profileDir != "" {
		if err := os.MkdirAll(profileDir, 0o755); err != nil {
			return nil, err
		}
		cmd.Args = append(cmd.Args, "-cpuprofile", filepath.Join(profileDir, strings.ReplaceAll(name, " ", "-")+".pprof"))
	}
	c, err := startChild(name, dir, cmd)
	if err != nil {
		return nil, err
	}
	c.url = "http://" + addrs[0]
	if tc != nil {
		c.url = "https://" + addrs[0]
	}
	c.metricsURL = "http://" + addrs[1] + "/metrics"
	if err := c.waitOK(ctx, c.url+"/healthz"); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// cpuTime is the user plus system CPU time that process pid (all its threads)
// has used so far.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a /proc/<pid>/stat
// line; the command name (field 2, in parentheses) may contain spaces.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc stat %q", stat)
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed /proc stat %q", stat)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed /proc stat %q: %w", stat, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

var metricsClient = &http.Client{Transport: &http.Transport{Proxy: nil}}

// scrapeMallocs reads go_memstats_mallocs_total from a Prometheus endpoint.
func scrapeMallocs(ctx context.Context, url string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := metricsClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_mallocs_total "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s has no go_memstats_mallocs_total", url)
}
