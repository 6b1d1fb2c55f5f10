// Command benchgateway measures fledge's embedded gateway against HAProxy and
// against no proxy at all, on this machine, and prints the ratios.
//
// Two backends ("fledge error-page v1" and "v2") run in their own network
// namespaces (internal/netns). On the host, each proxy splits their traffic
// (100-w)/w, w being -weight:
//
//   - haproxy: HAProxy (nbthread 2, roundrobin weights (100-w)/w, http-reuse
//     always, option forwardfor), run in the foreground as a child process;
//   - fledge: the gateway package (gateway.New, Update with a TrafficRoute, two
//     Services and their EndpointSlices holding the pods' addresses, Serve),
//     run as a child process: this binary re-executed as "benchgateway
//     gateway", so that its CPU time is its own, like HAProxy's;
//   - "fledge GOGC=400": the same with GOGC=400 in its environment;
//   - direct: wrk straight to the v1 pod, the ceiling;
//   - "haproxy TLS" and "fledge TLS GOGC=400": the same proxies terminating
//     TLS (a self-signed ECDSA P-256 certificate made for the run; HAProxy
//     "bind ... ssl crt", the gateway's HTTPS listener with the certificate
//     as a kubernetes.io/tls Secret), wrk over https (TLS 1.3, HTTP/1.1);
//     their "× HAProxy" is against "haproxy TLS";
//   - "haproxy h2" and "fledge h2 GOGC=400": the same over h2 (ALPN h2; HTTP/1.1
//     to the backends), h2load instead of wrk (-m1: one stream in flight per
//     connection, as wrk's one request), against "haproxy h2";
//   - "fledge GOGC=400 GOMAXPROCS=1": the gateway on one P (the others
//     inherit GOMAXPROCS from the environment), and "haproxy nbthread=1",
//     its counterpart, against which it is compared when both run.
//
// Before measuring, 100 sequential requests through each proxy must carry
// exactly w canary (v2) answers. Then every round runs every variant once
// (the order rotates from round to round): a warm-up wrk run, then a measured
// "wrk -t1 -cC -dD --latency" run, reading the proxy's utime+stime from
// /proc/<pid>/stat before and after it. The report gives, per variant, the
// median over rounds of requests/s, of the ratio to HAProxy and to direct in
// the same round, of wrk's p99 latency, of the proxy's CPU time per request,
// and (fledge only) of Go heap allocations per request, read from the
// gateway's own /metrics (go_memstats_mallocs_total). With -syscalls, one
// more load run per proxy after its measured run in round 1 counts the
// proxy's system calls by name (perf stat on the syscall tracepoints, see
// syscalls.go), printed per request in a second table.
//
// Traffic goes only to 127.0.0.1 and to the pods' addresses. Everything
// started is stopped at the end, also on SIGINT/SIGTERM; "benchgateway
// cleanup" removes network namespaces that a killed run left behind.
//
// Run it through hack/bench-gateway.sh, which installs wrk and haproxy and
// builds fledge. Needs root (network namespaces).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fledge-dev/fledge/internal/netns"
)

// netnsPrefix names this benchmark's namespaces and links.
const netnsPrefix = "flbench"

// backendPort is where error-page listens in its pod.
const backendPort = 9011

// routeHost is the Host the gateway's route serves (sent to every variant).
const routeHost = "error-page"

// requestPath is the path requested from every variant.
const requestPath = "/api/error_page"

// config is the benchmark's flags.
type config struct {
	fledge      string
	rounds      int
	duration    time.Duration
	warmup      time.Duration
	connections int
	// loads are the connection counts to measure, one after the other
	// with the same proxies (-connections 50,1); connections is the one
	// being measured.
	loads    []int
	threads  int
	weight   int
	variants []string
	// profileDir, when set, receives a CPU profile of each gateway process.
	profileDir string
	// baseline is a benchgateway binary built from an earlier commit, run as
	// the "baseline GOGC=400" variant: the same measurement of older code,
	// side by side.
	baseline string
	// syscalls adds a count of each proxy's system calls per request (perf
	// stat, one extra load run per proxy in round 1).
	syscalls bool
}

// allVariants are the variants known, in report order.
var allVariants = []string{"haproxy", "fledge", "fledge GOGC=400", "fledge GOGC=400 DisableFastPath", "baseline GOGC=400", "direct",
	"haproxy TLS", "fledge TLS GOGC=400", "haproxy h2", "fledge h2 GOGC=400", "fledge GOGC=400 GOMAXPROCS=1", haproxyOneThread, floorVariant}

// haproxyOneThread is HAProxy with one thread, the counterpart of the
// gateway on one P.
const haproxyOneThread = "haproxy nbthread=1"

// defaultVariants are run without -variants.
var defaultVariants = []string{"haproxy", "fledge", "fledge GOGC=400", "direct"}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "gateway":
			if err := runGateway(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, "benchgateway gateway:", err)
				os.Exit(1)
			}
			return
		case "floor":
			if err := runFloor(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, "benchgateway floor:", err)
				os.Exit(1)
			}
			return
		case "cleanup":
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := netns.Cleanup(ctx, netnsPrefix); err != nil {
				fmt.Fprintln(os.Stderr, "benchgateway cleanup:", err)
				os.Exit(1)
			}
			return
		}
	}
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchgateway:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Every step below has its own bound; this one only guards against a hang.
	perRun := cfg.warmup + cfg.duration + 15*time.Second
	bound := time.Duration(cfg.rounds*len(cfg.variants)*len(cfg.loads))*perRun + 3*time.Minute
	if cfg.syscalls {
		bound += time.Duration(len(cfg.variants)*len(cfg.loads)) * (syscallRun + perfExit + time.Minute)
	}
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchgateway:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("benchgateway", flag.ContinueOnError)
	var cfg config
	var variants string
	fs.StringVar(&cfg.fledge, "fledge", "", "the fledge binary, run as the backends (fledge error-page VERSION)")
	fs.IntVar(&cfg.rounds, "rounds", 5, "rounds; every round measures every variant once")
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "measured wrk run per variant and round")
	fs.DurationVar(&cfg.warmup, "warmup", time.Second, "wrk warm-up before each measured run")
	loads := fs.String("connections", "50", "wrk connections (-c); a comma-separated list (50,1) measures each in turn, with the same proxies, one table each")
	fs.IntVar(&cfg.threads, "threads", 1, "wrk threads (-t)")
	fs.IntVar(&cfg.weight, "weight", 10, "canary (v2) weight, percent")
	fs.StringVar(&cfg.profileDir, "cpuprofile-dir", "", "write a CPU profile of each fledge gateway process (whole run) into this directory")
	fs.StringVar(&cfg.baseline, "baseline", "", "a benchgateway binary built from an earlier commit, for the \"baseline GOGC=400\" variant")
	fs.BoolVar(&cfg.syscalls, "syscalls", false, "also count each proxy's system calls per request, by name (perf stat on an extra load run in round 1)")
	fs.StringVar(&variants, "variants", strings.Join(defaultVariants, ","), "variants to run, comma-separated, from: "+strings.Join(allVariants, ", "))
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	for _, f := range strings.Split(*loads, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 10000 {
			return cfg, fmt.Errorf("-connections %q: want counts in 1..10000, comma-separated", *loads)
		}
		cfg.loads = append(cfg.loads, n)
	}
	cfg.connections = slices.Min(cfg.loads)
	switch {
	case cfg.fledge == "":
		return cfg, errors.New("-fledge is required")
	case cfg.rounds < 1 || cfg.rounds > 100:
		return cfg, fmt.Errorf("-rounds %d outside 1..100", cfg.rounds)
	case cfg.duration < time.Second || cfg.duration > 10*time.Minute:
		return cfg, fmt.Errorf("-duration %v outside 1s..10m", cfg.duration)
	case cfg.warmup < 0 || cfg.warmup > time.Minute:
		return cfg, fmt.Errorf("-warmup %v outside 0..1m", cfg.warmup)
	case cfg.threads < 1 || cfg.threads > cfg.connections:
		return cfg, fmt.Errorf("-threads %d outside 1..connections", cfg.threads)
	case cfg.weight < 0 || cfg.weight > 100:
		return cfg, fmt.Errorf("-weight %d outside 0..100", cfg.weight)
	}
	for _, v := range strings.Split(variants, ",") {
		v = strings.TrimSpace(v)
		if !contains(allVariants, v) {
			return cfg, fmt.Errorf("unknown variant %q (known: %s)", v, strings.Join(allVariants, ", "))
		}
		if !contains(cfg.variants, v) {
			cfg.variants = append(cfg.variants, v)
		}
	}
	if contains(cfg.variants, "baseline GOGC=400") != (cfg.baseline != "") {
		return cfg, errors.New(`-baseline and the "baseline GOGC=400" variant go together`)
	}
	if cfg.baseline != "" {
		var err error
		if cfg.baseline, err = filepath.Abs(cfg.baseline); err != nil {
			return cfg, err
		}
	}
	abs, err := filepath.Abs(cfg.fledge)
	if err != nil {
		return cfg, err
	}
	cfg.fledge = abs
	if cfg.profileDir != "" {
		if cfg.profileDir, err = filepath.Abs(cfg.profileDir); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// target is one variant ready to be measured.
type target struct {
	name string
	// url is what wrk requests.
	url string
	// pid is the proxy process (0: no proxy).
	pid int
	// metricsURL is the gateway's /metrics ("" for others).
	metricsURL string
}

func run(ctx context.Context, cfg config, out io.Writer) error {
	tools := []string{"wrk", "ip"}
	for _, v := range cfg.variants {
		if strings.Contains(v, "h2") {
			tools = append(tools, "h2load")
			break
		}
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (hack/bench-gateway.sh installs it)", tool)
		}
	}
	if err := netns.Supported(); err != nil {
		return err
	}
	if cfg.syscalls {
		if err := checkPerf(ctx); err != nil {
			return err
		}
	}
	tmp, err := os.MkdirTemp("", "benchgateway-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	env := describeMachine(ctx)

	// The backends.
	if err := netns.Cleanup(ctx, netnsPrefix); err != nil {
		return err
	}
	network, err := netns.NewNetwork(ctx, netnsPrefix, netip.Prefix{})
	if err != nil {
		return err
	}
	defer func() {
		if err := network.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "benchgateway:", err)
		}
	}()
	var backends [2]netip.AddrPort
	for i, version := range []string{"v1", "v2"} {
		pod, err := network.AddPod(ctx, version)
		if err != nil {
			return err
		}
		if _, err := pod.Start(ctx, cfg.fledge, "error-page", version, "--addr", fmt.Sprintf(":%d", backendPort)); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = pod.WaitHTTP(wctx, backendPort, "/healthz")
		cancel()
		if err != nil {
			return err
		}
		backends[i] = pod.AddrPort(backendPort)
	}
	stable, canary := backends[0], backends[1]
	fmt.Fprintf(os.Stderr, "backends: v1 at %s, v2 at %s\n", stable, canary)

	certs, err := writeBenchCerts(tmp)
	if err != nil {
		return err
	}

	// The proxies, each checked for an exact split before any load.
	var targets []target
	for _, name := range cfg.variants {
		var t target
		switch name {
		case "haproxy", "haproxy TLS", "haproxy h2", haproxyOneThread:
			pem := ""
			if strings.Contains(name, "TLS") || strings.Contains(name, "h2") {
				pem = certs.pem
			}
			p, err := startHAProxy(ctx, tmp, name, stable, canary, cfg.weight, pem)
			if err != nil {
				return err
			}
			defer p.stop()
			t = target{name: name, url: p.url + requestPath, pid: p.pid()}
		case "fledge", "fledge GOGC=400", "fledge GOGC=400 DisableFastPath", "baseline GOGC=400", "fledge TLS GOGC=400", "fledge h2 GOGC=400",
			"fledge GOGC=400 GOMAXPROCS=1", floorVariant:
			gogc := ""
			if strings.Contains(name, "GOGC=400") {
				gogc = "400"
			}
			bin := ""
			if strings.HasPrefix(name, "baseline") {
				bin = cfg.baseline
			}
			var tc *benchCerts
			if strings.Contains(name, "TLS") || strings.Contains(name, "h2") {
				tc = &certs
			}
			p, err := startGateway(ctx, tmp, name, bin, stable, canary, cfg.weight, gogc, strings.HasSuffix(name, "DisableFastPath"), cfg.profileDir, tc)
			if err != nil {
				return err
			}
			defer p.stop()
			t = target{name: name, url: p.url + requestPath, pid: p.pid(), metricsURL: p.metricsURL}
		case "direct":
			t = target{name: name, url: "http://" + stable.String() + requestPath}
		}
		if t.pid != 0 {
			v1, v2, err := checkSplit(ctx, t.url, 100)
			if err != nil {
				return fmt.Errorf("%s: split check: %w", name, err)
			}
			if v2 != cfg.weight || v1 != 100-cfg.weight {
				return fmt.Errorf("%s: split check: 100 sequential requests went %d to v1 and %d to v2, want exactly %d/%d", name, v1, v2, 100-cfg.weight, cfg.weight)
			}
			fmt.Fprintf(os.Stderr, "%s: split check: 100 sequential requests went %d to v1, %d to v2\n", name, v1, v2)
		}
		targets = append(targets, t)
	}

	for i, n := range cfg.loads {
		if i > 0 {
			fmt.Fprintln(out)
		}
		cfg.connections = n
		if err := measureRounds(ctx, cfg, env, targets, out); err != nil {
			return err
		}
	}
	return nil
}

// measureRounds runs cfg's rounds at cfg.connections over targets and
// prints their report.
func measureRounds(ctx context.Context, cfg config, env machine, targets []target, out io.Writer) error {
	env.loadBefore = loadAverage()
	results := make(map[string][]sample, len(targets))
	syscalls := make(map[string]syscallSample)
	for r := range cfg.rounds {
		for i := range targets {
			t := targets[(i+r)%len(targets)] // rotate the order
			s, err := measure(ctx, cfg, t)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, t.name, err)
			}
			p99 := "     —"
			if s.p99 >= 0 {
				p99 = fmt.Sprintf("%6.2f", ms(s.p99))
			}
			fmt.Fprintf(os.Stderr, "round %d/%d %-16s %9.0f req/s  p99 %s ms  proxy CPU %6.1f µs/req  errors %d\n",
				r+1, cfg.rounds, t.name, s.rps, p99, s.cpuPerRequest(), s.errors)
			results[t.name] = append(results[t.name], s)
			if cfg.syscalls && r == 0 && t.pid != 0 {
				start := time.Now()
				sc, err := countSyscalls(ctx, cfg, t)
				if err != nil {
					return fmt.Errorf("%s: counting system calls: %w", t.name, err)
				}
				total := sc.total()
				fmt.Fprintf(os.Stderr, "syscalls %-16s %9.0f req/s  %d requests  %.2f syscalls/req  %.2f errors/req  %d threads (+%d not counted)  in %s\n",
					t.name, sc.rps, sc.requests, float64(total.calls)/float64(max(sc.requests, 1)), float64(total.errors)/float64(max(sc.requests, 1)),
					sc.threads, sc.newThreads, time.Since(start).Round(time.Second))
				syscalls[t.name] = sc
			}
		}
	}
	env.loadAfter = loadAverage()
	report(out, cfg, env, results)
	reportSyscalls(out, cfg, syscalls)
	return nil
}

// measure runs the warm-up and the measured wrk (h2load for h2) run against t.
func measure(ctx context.Context, cfg config, t target) (sample, error) {
	runWrk := runWrk
	if strings.Contains(t.name, "h2") {
		runWrk = runH2load
	}
	if cfg.warmup > 0 {
		if _, err := runWrk(ctx, cfg.threads, cfg.connections, cfg.warmup, t.url); err != nil {
			return sample{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	var s sample
	var cpu0 time.Duration
	var mallocs0 float64
	var err error
	if t.metricsURL != "" {
		if mallocs0, err = scrapeMallocs(ctx, t.metricsURL); err != nil {
			return s, err
		}
	}
	if t.pid != 0 {
		if cpu0, err = cpuTime(t.pid); err != nil {
			return s, err
		}
	}
	res, err := runWrk(ctx, cfg.threads, cfg.connections, cfg.duration, t.url)
	if err != nil {
		return s, err
	}
	s = sample{rps: res.rps, p99: res.p99, requests: res.requests, errors: res.errors(), cpu: -1, mallocs: -1}
	if t.pid != 0 {
		cpu1, err := cpuTime(t.pid)
		if err != nil {
			return s, err
		}
		s.cpu = cpu1 - cpu0
	}
	if t.metricsURL != "" {
		mallocs1, err := scrapeMallocs(ctx, t.metricsURL)
		if err != nil {
			return s, err
		}
		s.mallocs = mallocs1 - mallocs0
	}
	return s, nil
}

// checkSplit sends n sequential requests to url (one keep-alive connection) and
// counts the answers of v1 and v2.
func checkSplit(ctx context.Context, url string, n int) (v1, v2 int, err error) {
	client := &http.Client{
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1, DisableCompression: true, TLSClientConfig: benchTLSClient},
		Timeout:   5 * time.Second,
	}
	defer client.CloseIdleConnections()
	for i := range n {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, 0, err
		}
		req.Host = routeHost
		resp, err := client.Do(req)
		if err != nil {
			return 0, 0, fmt.Errorf("request %d: %w", i+1, err)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if err != nil {
			return 0, 0, fmt.Errorf("request %d: %w", i+1, err)
		}
		switch {
		case resp.StatusCode != http.StatusOK:
			return 0, 0, fmt.Errorf("request %d: status %s: %s", i+1, resp.Status, b)
		case strings.Contains(string(b), `"version": "v1"`):
			v1++
		case strings.Contains(string(b), `"version": "v2"`):
			v2++
		default:
			return 0, 0, fmt.Errorf("request %d: unexpected answer %q", i+1, b)
		}
	}
	return v1, v2, nil
}

// machine describes where the benchmark ran.
type machine struct {
	cpus                  int
	cpuModel, kernel      string
	goVersion             string
	haproxy, wrk          string
	loadBefore, loadAfter string
}

func describeMachine(ctx context.Context) machine {
	m := machine{cpus: runtime.NumCPU(), goVersion: runtime.Version(), loadBefore: loadAverage()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpuModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	// version is the first words of the first line a command prints.
	version := func(words int, name string, args ...string) string {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		out, _ := exec.CommandContext(cctx, name, args...).CombinedOutput() // wrk -v exits 1
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		f := strings.Fields(line)
		return strings.Join(f[:min(words, len(f))], " ")
	}
	m.haproxy = version(3, "haproxy", "-v") // HAProxy version 2.6.12-1+deb12u4
	m.wrk = version(2, "wrk", "-v")         // wrk debian/4.1.0-3+b2
	return m
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
