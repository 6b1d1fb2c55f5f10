//go:build scale

package scale

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// controllerName is the name of fledge's Release controller (its workqueue and
// its controller_runtime_* series).
const controllerName = "release"

// queueStats are the in-process metrics of the Release controller, read from
// controller-runtime's registry (the same numbers /metrics serves).
type queueStats struct {
	Reconciles float64 // controller_runtime_reconcile_total, all results
	Errors     float64 // controller_runtime_reconcile_errors_total
	ReconcileS float64 // sum of controller_runtime_reconcile_time_seconds
	Depth      float64 // workqueue_depth
	Active     float64 // controller_runtime_active_workers
	ThrottleS  float64 // sum of rest_client_rate_limiter_duration_seconds (whole process)
}

func (q queueStats) idle() bool { return q.Depth == 0 && q.Active == 0 }

func (q queueStats) since(before queueStats) queueStats {
	return queueStats{Reconciles: q.Reconciles - before.Reconciles, Errors: q.Errors - before.Errors,
		ReconcileS: q.ReconcileS - before.ReconcileS, Depth: q.Depth, Active: q.Active, ThrottleS: q.ThrottleS - before.ThrottleS}
}

var gathers struct {
	sync.Mutex
	n    int
	d    time.Duration
	last time.Duration
}

// pollInterval is how often the benchmark reads the controller's queue
// metrics: every 250 ms, or less often when a read is slow, so that reading
// costs at most a tenth of a core. Each read gathers the whole registry,
// fledge's per-Release series included (8 series per Release).
func pollInterval() time.Duration {
	gathers.Lock()
	defer gathers.Unlock()
	return max(250*time.Millisecond, 10*gathers.last)
}

// gatherCost returns how many times, and how long, the registry was read.
func gatherCost() (int, time.Duration) {
	gathers.Lock()
	defer gathers.Unlock()
	return gathers.n, gathers.d
}

func readQueueStats() queueStats {
	var q queueStats
	start := time.Now()
	families, err := metrics.Registry.Gather()
	gathers.Lock()
	gathers.n++
	gathers.last = time.Since(start)
	gathers.d += gathers.last
	gathers.Unlock()
	if err != nil {
		return q
	}
	for _, f := range families {
		switch f.GetName() {
		case "controller_runtime_reconcile_total":
			q.Reconciles = sum(f, false)
		case "controller_runtime_reconcile_errors_total":
			q.Errors = sum(f, false)
		case "controller_runtime_reconcile_time_seconds":
			q.ReconcileS = sum(f, false)
		case "workqueue_depth":
			q.Depth = sum(f, false)
		case "controller_runtime_active_workers":
			q.Active = sum(f, false)
		case "rest_client_rate_limiter_duration_seconds":
			q.ThrottleS = sum(f, true)
		}
	}
	return q
}

// sum adds the series of the Release controller (or every series, when all):
// counters, gauges, and histogram sums.
func sum(f *dto.MetricFamily, all bool) float64 {
	t := 0.0
	for _, m := range f.GetMetric() {
		if !all && !ofController(m) {
			continue
		}
		switch {
		case m.Counter != nil:
			t += m.Counter.GetValue()
		case m.Gauge != nil:
			t += m.Gauge.GetValue()
		case m.Histogram != nil:
			t += m.Histogram.GetSampleSum()
		}
	}
	return t
}

func ofController(m *dto.Metric) bool {
	for _, l := range m.GetLabel() {
		if (l.GetName() == "controller" || l.GetName() == "name") && l.GetValue() == controllerName {
			return true
		}
	}
	return false
}

// memStats is the heap of this process (controller, test client and checks)
// after a full garbage collection.
type memStats struct {
	HeapAlloc  uint64 // live objects after GC
	HeapInuse  uint64
	Sys        uint64 // memory obtained from the OS
	Goroutines int
}

func readMem() memStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memStats{HeapAlloc: m.HeapAlloc, HeapInuse: m.HeapInuse, Sys: m.Sys, Goroutines: runtime.NumGoroutine()}
}

func mib(b uint64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) }

// cpuTimes are CPU seconds used so far by this process (the controller and the
// load generator) and by its children kube-apiserver and etcd.
type cpuTimes struct {
	Self, APIServer, Etcd float64
}

func (c cpuTimes) since(before cpuTimes) cpuTimes {
	return cpuTimes{Self: c.Self - before.Self, APIServer: c.APIServer - before.APIServer, Etcd: c.Etcd - before.Etcd}
}

func readCPU() cpuTimes {
	var c cpuTimes
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		c.Self = tv(ru.Utime) + tv(ru.Stime)
	}
	self := os.Getpid()
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range dirs {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(data)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		comm := s[open+1 : close]
		f := strings.Fields(s[close+1:])
		// After the command: state ppid ... utime(12) stime(13), 0-based.
		if len(f) < 14 || f[1] != strconv.Itoa(self) {
			continue
		}
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		sec := (ut + st) / 100 // USER_HZ is 100 on Linux
		switch comm {
		case "kube-apiserver":
			c.APIServer += sec
		case "etcd":
			c.Etcd += sec
		}
	}
	return c
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) }
