//go:build scale

package scale

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/annotations"
	"github.com/fledge-dev/fledge/internal/controller"
	"github.com/fledge-dev/fledge/internal/testenv"
	"github.com/fledge-dev/fledge/internal/traffic/providers"
)

var (
	flagApps       = flag.Int("scale.apps", 1000, "applications (a stable and a canary Service each)")
	flagNamespaces = flag.Int("scale.namespaces", 1, "namespaces the applications are spread over")
	flagWorkers    = flag.Int("scale.workers", 8, "concurrent writers of the test's objects")
	flagQPS        = flag.Float64("scale.qps", 0, "controller client QPS (0: unset, as the fledge binary leaves it; -1: no client-side limit)")
	flagBurst      = flag.Int("scale.burst", 0, "controller client burst (0: unset)")
	flagTimeout    = flag.Duration("scale.timeout", 4*time.Minute, "limit of each phase")
	flagSlices     = flag.Bool("scale.endpointslices", true, "write an EndpointSlice per Service, as kube-controller-manager would")
	flagReconciler = flag.Int("scale.reconcilers", 4, "controller.Options.Workers (default: the fledge binary's --workers default)")
	flagLog        = flag.String("scale.log", "", "controller log file (default: a temporary file)")
)

// envFlags name the variables that set the flags not given on the command line.
var envFlags = map[string]string{
	"scale.apps": "FLEDGE_SCALE_APPS", "scale.namespaces": "FLEDGE_SCALE_NAMESPACES", "scale.workers": "FLEDGE_SCALE_WORKERS",
	"scale.qps": "FLEDGE_SCALE_QPS", "scale.burst": "FLEDGE_SCALE_BURST", "scale.timeout": "FLEDGE_SCALE_TIMEOUT",
	"scale.endpointslices": "FLEDGE_SCALE_ENDPOINTSLICES", "scale.reconcilers": "FLEDGE_SCALE_RECONCILERS", "scale.log": "FLEDGE_SCALE_LOG",
}

// flagsFromEnv sets the flags not given on the command line from their
// variables. It runs in the test, not at init, so that go test keys its cache
// on the variables (run with -count=1 anyway: a cached benchmark is no
// measurement).
func flagsFromEnv(t *testing.T) {
	given := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for name, env := range envFlags {
		if v, ok := os.LookupEnv(env); ok && !given[name] {
			if err := flag.Set(name, v); err != nil {
				t.Fatalf("%s=%q: %v", env, v, err)
			}
		}
	}
}

const (
	initialWeight = 10
	changedWeight = 50
	probeApp      = "probe"
)

// TestScale runs the controller as in production (leader election, embedded
// provider, the ServiceAccount's RBAC, the client configuration the fledge
// binary builds) against a real kube-apiserver and etcd, and measures:
//
//  1. create: N applications published with annotations, canary at 10%, until
//     every Release is Routed at 10% and every TrafficRoute says 10%;
//  2. mass change: every canary set to 50%, until all converge again;
//  3. restart: the controller stopped and a new one started, until it routed an
//     application created after the restart and reconciled every Release
//     again; no Release or TrafficRoute may have been rewritten.
//
// It prints a table; it fails only when a phase does not converge in time or
// an object was rewritten after the restart.
func TestScale(t *testing.T) {
	flagsFromEnv(t)
	logPath := setupLogging(t)
	metrics.RegisterRESTClientMetrics(metrics.MetricRateLimiterLatency)
	ctx := t.Context()

	env, err := testenv.Start(ctx, testenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()

	b := &bench{t: t, c: env.Client, counter: newAPICounter(), apps: *flagApps}
	b.cfg = env.ServiceAccountConfig("fledge-controller")
	// The fledge binary builds its configuration with clientcmd or
	// rest.InClusterConfig, which leave QPS and Burst unset; envtest's admin
	// configuration sets 1000/2000, which would hide client-side throttling.
	b.cfg.QPS, b.cfg.Burst = float32(*flagQPS), *flagBurst
	b.cfg.Wrap(b.counter.wrap)
	for i := range max(*flagNamespaces, 1) {
		ns := fmt.Sprintf("scale-%03d", i)
		if err := b.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		b.namespaces = append(b.namespaces, ns)
	}
	defer b.print(logPath)

	// 0. An empty cluster: start and win the election.
	s := b.snap()
	b.ctrl = b.start(ctx)
	holder, err := b.waitLeader(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // let the caches sync and the queue drain
	b.record("start, no applications", s, time.Since(s.at), 0)

	// 1. Create N applications at 10%.
	s = b.snap()
	wrote := b.parallel(ctx, b.apps, func(ctx context.Context, i int) error { return b.createApp(ctx, b.ns(i), appName(i), initialWeight) })
	took, err := b.waitConverged(ctx, s.at, initialWeight)
	b.record(fmt.Sprintf("create %d apps (%d Services) at %d%%", b.apps, 2*b.apps, initialWeight), s, took, wrote)
	if err != nil {
		t.Fatal(err)
	}

	// 2. Mass change: every canary to 50%.
	s = b.snap()
	wrote = b.parallel(ctx, b.apps, func(ctx context.Context, i int) error {
		return b.setWeight(ctx, b.ns(i), appName(i), changedWeight)
	})
	took, err = b.waitConverged(ctx, s.at, changedWeight)
	b.record(fmt.Sprintf("set every canary to %d%%", changedWeight), s, took, wrote)
	if err != nil {
		t.Fatal(err)
	}

	// 3. Restart: stop, note every object's resourceVersion, start a new one.
	if err := b.restartController(ctx, holder); err != nil {
		t.Fatal(err)
	}
	b.ctrl.stop(t)
}

type bench struct {
	t          *testing.T
	c          client.Client // admin client of the test
	cfg        *rest.Config  // the controller's
	counter    *apiCounter
	namespaces []string
	apps       int
	ctrl       *running

	rows    []row
	restart restartResult
}

// snapshot is what the counters said at one time.
type snapshot struct {
	at  time.Time
	q   queueStats
	api requestCounts
	cpu cpuTimes
}

func (b *bench) snap() snapshot {
	return snapshot{at: time.Now(), q: readQueueStats(), api: b.counter.snapshot(), cpu: readCPU()}
}

// row is one phase of the report.
type row struct {
	phase   string
	took    time.Duration // until converged
	drained time.Duration // until the controller's queue was empty again
	wrote   time.Duration // the test's own writes
	q       queueStats
	api     requestCounts
	cpu     cpuTimes
	mem     memStats
}

func (b *bench) record(phase string, s snapshot, took, wrote time.Duration) {
	drained := b.waitIdle(s.at)
	now := b.snap()
	r := row{phase: phase, took: took, drained: drained, wrote: wrote, q: now.q.since(s.q), api: now.api.since(s.api), cpu: now.cpu.since(s.cpu), mem: readMem()}
	b.rows = append(b.rows, r)
	b.t.Logf("%s: %s s, %.0f reconciles, %d API requests, live heap %s MiB", phase, secs(took), r.q.Reconciles, r.api.total(), mib(r.mem.HeapAlloc))
}

func (b *bench) ns(i int) string { return b.namespaces[i%len(b.namespaces)] }

func appName(i int) string { return fmt.Sprintf("app-%05d", i) }

// running is one controller process (in this process).
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func (b *bench) start(ctx context.Context) *running {
	ctx, cancel := context.WithCancel(ctx)
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- controller.Run(ctx, b.cfg, controller.Options{
			MetricsAddr: "0", HealthAddr: "0", // not served: the numbers are read in-process
			LeaderElect: true, LeaderElectionNamespace: testenv.SystemNamespace,
			DefaultProvider: fledgev1.ProviderEmbedded,
			Routers: func(c client.Client) (controller.Resolver, error) {
				return providers.New(c, providers.Config{})
			},
			SkipNameValidation: true, // the restart runs a second controller in this process
			Workers:            *flagReconciler,
		})
	}()
	return r
}

func (r *running) stop(t *testing.T) time.Duration {
	start := time.Now()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("controller: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("controller did not stop in 30s")
	}
	return time.Since(start)
}

// parallel runs f for 0..n-1 on the workers and returns how long it took;
// the test stops at the first error.
func (b *bench) parallel(ctx context.Context, n int, f func(context.Context, int) error) time.Duration {
	start := time.Now()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(*flagWorkers, 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					cancel(fmt.Errorf("application %d: %w", i, err))
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		b.t.Fatalf("writing: %v", err)
	}
	return time.Since(start)
}

// createApp creates the stable Service, then the canary Service, annotated as
// in the walkthrough.
func (b *bench) createApp(ctx context.Context, ns, app string, weight int) error {
	stable := service(ns, app+"-v1", map[string]string{annotations.PublishedService: app})
	canary := service(ns, app+"-v2", map[string]string{annotations.PublishedService: app,
		annotations.CanaryService: "true", annotations.CanaryPercentage: strconv.Itoa(weight)})
	for _, svc := range []*corev1.Service{stable, canary} {
		if err := b.c.Create(ctx, svc); err != nil {
			return err
		}
		if !*flagSlices {
			continue
		}
		if err := b.c.Create(ctx, endpointSlice(svc)); err != nil {
			return err
		}
	}
	return nil
}

// endpointSlice is the EndpointSlice kube-controller-manager would write for
// a Service with two ready pods (envtest runs no kube-controller-manager).
// The addresses are from TEST-NET-1 (RFC 5737), which the API server accepts
// (it refuses loopback ones): nothing connects to them.
func endpointSlice(svc *corev1.Service) *discoveryv1.EndpointSlice {
	ready := true
	eps := make([]discoveryv1.Endpoint, 2)
	for i := range eps {
		eps[i] = discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("192.0.2.%d", 1+i)},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready}}
	}
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name + "-x1",
			Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name, discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(9011))}},
	}
}

func ptr[T any](v T) *T { return &v }

func service(ns, name string, ann map[string]string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: ann},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 9011}}}}
}

func (b *bench) setWeight(ctx context.Context, ns, app string, weight int) error {
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, annotations.CanaryPercentage, strconv.Itoa(weight))
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app + "-v2"}}
	return b.c.Patch(ctx, svc, client.RawPatch(types.MergePatchType, []byte(patch)))
}

// waitLeader waits until a holder other than previous holds the Lease.
func (b *bench) waitLeader(ctx context.Context, previous string) (string, error) {
	deadline := time.Now().Add(*flagTimeout)
	for time.Now().Before(deadline) {
		if h := b.leaseHolder(ctx); h != "" && h != previous {
			return h, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "", errors.New("no controller took the lease")
}

func (b *bench) leaseHolder(ctx context.Context) string {
	var lease coordinationv1.Lease
	if err := b.c.Get(ctx, client.ObjectKey{Namespace: testenv.SystemNamespace, Name: controller.LeaderElectionID}, &lease); err != nil {
		return ""
	}
	if lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

// waitIdle waits until the controller's queue has been empty, with no
// reconcile running, for a second, and returns the time since start.
func (b *bench) waitIdle(start time.Time) time.Duration {
	var idleSince time.Time
	for time.Since(start) < 2**flagTimeout {
		if !readQueueStats().idle() {
			idleSince = time.Time{}
		} else if idleSince.IsZero() {
			idleSince = time.Now()
		} else if time.Since(idleSince) >= time.Second {
			return idleSince.Sub(start)
		}
		time.Sleep(pollInterval())
	}
	b.t.Errorf("the controller's queue did not drain in %s", 2**flagTimeout)
	return time.Since(start)
}

// waitConverged waits until every application is routed at weight, and
// returns the time since start. It lists from the API server when the
// controller's queue is idle (at most twice a second) or every 5 seconds.
func (b *bench) waitConverged(ctx context.Context, start time.Time, weight int32) (time.Duration, error) {
	var last, lastLog time.Time
	var p progress
	for time.Since(start) < *flagTimeout {
		q := readQueueStats()
		if (q.idle() && time.Since(last) >= 500*time.Millisecond) || time.Since(last) >= 5*time.Second {
			last = time.Now()
			var err error
			if p, err = b.progress(ctx, weight); err != nil {
				return 0, err
			}
			if p.done(b.apps) {
				return time.Since(start), nil
			}
		}
		if time.Since(lastLog) >= 10*time.Second {
			lastLog = time.Now()
			b.t.Logf("%s s: %d/%d Releases and %d/%d TrafficRoutes at %d%%; queue %.0f, %.0f reconciles so far",
				secs(time.Since(start)), p.releases, b.apps, p.routes, b.apps, weight, q.Depth, q.Reconciles)
		}
		time.Sleep(pollInterval())
	}
	return time.Since(start), fmt.Errorf("not converged in %s: %d/%d Releases and %d/%d TrafficRoutes at %d%%",
		*flagTimeout, p.releases, b.apps, p.routes, b.apps, weight)
}

// progress counts the benchmark's applications whose Release and TrafficRoute
// say weight.
type progress struct{ releases, routes int }

func (p progress) done(n int) bool { return p.releases == n && p.routes == n }

func (b *bench) progress(ctx context.Context, weight int32) (progress, error) {
	var p progress
	err := listAll(ctx, b.c, &fledgev1.ReleaseList{}, func(l client.ObjectList) {
		for i := range l.(*fledgev1.ReleaseList).Items {
			if rel := &l.(*fledgev1.ReleaseList).Items[i]; rel.Name != probeApp && routedAt(rel, weight) {
				p.releases++
			}
		}
	})
	if err != nil {
		return p, err
	}
	err = listAll(ctx, b.c, &fledgev1.TrafficRouteList{}, func(l client.ObjectList) {
		for _, tr := range l.(*fledgev1.TrafficRouteList).Items {
			if tr.Name != probeApp && tr.Spec.Stable.Service == tr.Name+"-v1" && tr.Spec.Canary != nil &&
				tr.Spec.Canary.Service == tr.Name+"-v2" && tr.Spec.CanaryWeight == weight {
				p.routes++
			}
		}
	})
	return p, err
}

// routedAt: the controller has seen the Release's spec, routed it and read
// weight back.
func routedAt(rel *fledgev1.Release, weight int32) bool {
	c := meta.FindStatusCondition(rel.Status.Conditions, fledgev1.ConditionRouted)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == rel.Generation &&
		rel.Status.ObservedGeneration == rel.Generation && rel.Spec.CanaryWeight == weight &&
		rel.Status.DesiredWeight == weight && rel.Status.EffectiveWeight == weight && rel.Status.Phase == fledgev1.PhaseCanary
}

// listAll lists every object of the list's kind in pages of 500.
func listAll(ctx context.Context, c client.Client, list client.ObjectList, each func(client.ObjectList)) error {
	opts := []client.ListOption{client.Limit(500)}
	for {
		if err := c.List(ctx, list, opts...); err != nil {
			return err
		}
		each(list)
		cont := list.(metav1.ListInterface).GetContinue()
		if cont == "" {
			return nil
		}
		opts = []client.ListOption{client.Limit(500), client.Continue(cont)}
	}
}

// restartResult is what the restart phase found.
type restartResult struct {
	stop, leader, verified time.Duration
	probeCreated, probe    time.Duration // the new application: created after the restart, routed after its creation
	probeBehind            int           // Releases not yet re-verified when it was created (at most)
	releases, routes       int           // objects before the restart
	rewrittenReleases      int
	rewrittenRoutes        int
	getRoutes              int
}

func (b *bench) restartController(ctx context.Context, holder string) error {
	b.restart.stop = b.ctrl.stop(b.t)
	before, err := b.versions(ctx)
	if err != nil {
		return err
	}
	b.restart.releases, b.restart.routes = countKind(before, "Release"), countKind(before, "TrafficRoute")

	// The new controller starts; as soon as it is at work (its first
	// reconcile), an application is published in the middle of its
	// re-verification of the others, and we time how long it waits.
	s := b.snap()
	b.ctrl = b.start(ctx)
	r := &b.restart
	var probeAt, lastGather time.Time
	var q queueStats
	for time.Since(s.at) < *flagTimeout {
		elapsed := time.Since(s.at)
		if r.leader == 0 {
			if h := b.leaseHolder(ctx); h != "" && h != holder {
				r.leader = elapsed
			}
		}
		if time.Since(lastGather) >= pollInterval() {
			q, lastGather = readQueueStats().since(s.q), time.Now()
		}
		switch {
		case probeAt.IsZero() && b.counter.snapshot().since(s.api).of("get", "trafficroutes") > 0:
			// The first reconcile reads a TrafficRoute back (the counter is
			// cheaper to poll than the metrics registry).
			if err := b.createApp(ctx, b.namespaces[0], probeApp, initialWeight); err != nil {
				return err
			}
			q = readQueueStats().since(s.q)
			probeAt, r.probeCreated, r.probeBehind = time.Now(), time.Since(s.at), b.apps-int(q.Reconciles)
		case !probeAt.IsZero() && r.probe == 0:
			var rel fledgev1.Release
			if err := b.c.Get(ctx, client.ObjectKey{Namespace: b.namespaces[0], Name: probeApp}, &rel); err == nil && routedAt(&rel, initialWeight) {
				r.probe = time.Since(probeAt)
			}
		}
		if r.leader > 0 && r.probe > 0 && q.Reconciles >= float64(b.apps+1) && q.idle() {
			r.verified = elapsed
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.record("restart: re-verify every app, route a new one", s, r.verified, 0)
	api := b.counter.snapshot().since(s.api)
	r.getRoutes = api.of("get", "trafficroutes")
	if r.verified == 0 {
		return fmt.Errorf("the new controller did not re-verify in %s (leader after %s, probe routed after %s)", *flagTimeout, r.leader, r.probe)
	}
	after, err := b.versions(ctx)
	if err != nil {
		return err
	}
	for k, v := range before {
		if after[k] != v {
			if strings.HasPrefix(k, "Release ") {
				r.rewrittenReleases++
			} else {
				r.rewrittenRoutes++
			}
		}
	}
	if r.rewrittenReleases+r.rewrittenRoutes > 0 {
		b.t.Errorf("the restart rewrote %d Releases and %d TrafficRoutes", r.rewrittenReleases, r.rewrittenRoutes)
	}
	return nil
}

// versions maps "Kind namespace/name" to resourceVersion for every Release
// and TrafficRoute.
func (b *bench) versions(ctx context.Context) (map[string]string, error) {
	v := map[string]string{}
	err := listAll(ctx, b.c, &fledgev1.ReleaseList{}, func(l client.ObjectList) {
		for _, o := range l.(*fledgev1.ReleaseList).Items {
			v["Release "+o.Namespace+"/"+o.Name] = o.ResourceVersion
		}
	})
	if err == nil {
		err = listAll(ctx, b.c, &fledgev1.TrafficRouteList{}, func(l client.ObjectList) {
			for _, o := range l.(*fledgev1.TrafficRouteList).Items {
				v["TrafficRoute "+o.Namespace+"/"+o.Name] = o.ResourceVersion
			}
		})
	}
	return v, err
}

func countKind(v map[string]string, kind string) int {
	n := 0
	for k := range v {
		if strings.HasPrefix(k, kind+" ") {
			n++
		}
	}
	return n
}

// print writes the report as Markdown to stdout.
func (b *bench) print(logPath string) {
	w := os.Stdout
	qps := "configuration unset (as the fledge binary builds it)"
	if b.cfg.QPS != 0 || b.cfg.Burst != 0 {
		qps = fmt.Sprintf("QPS %g, burst %d", b.cfg.QPS, b.cfg.Burst)
	}
	slices := "with an EndpointSlice per Service"
	if !*flagSlices {
		slices = "without EndpointSlices"
	}
	workers := "1 reconciler (the controller's default)"
	if *flagReconciler > 0 {
		workers = fmt.Sprintf("%d reconcilers", *flagReconciler)
	}
	fmt.Fprintf(w, "\n## fledge scale run: %d applications in %d namespace(s) %s, controller client %s, %s\n\n", b.apps, len(b.namespaces), slices, qps, workers)
	fmt.Fprintln(w, "| phase | converged (s) | queue drained (s) | test writes (s) | reconciles | errors | mean reconcile (ms) | API requests | API writes | throttled (s) | CPU s: test process / apiserver / etcd | live heap (MiB) | goroutines |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
	for _, r := range b.rows {
		mean := 0.0
		if r.q.Reconciles > 0 {
			mean = r.q.ReconcileS / r.q.Reconciles * 1000
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.0f | %.0f | %.1f | %d | %d | %.1f | %.1f / %.1f / %.1f | %s | %d |\n",
			r.phase, secs(r.took), secs(r.drained), secs(r.wrote), r.q.Reconciles, r.q.Errors, mean, r.api.total(), r.api.writes(), r.q.ThrottleS,
			r.cpu.Self, r.cpu.APIServer, r.cpu.Etcd, mib(r.mem.HeapAlloc), r.mem.Goroutines)
	}
	fmt.Fprintln(w, "\nAPI requests of the controller by phase:")
	fmt.Fprintln(w)
	for _, r := range b.rows {
		fmt.Fprintf(w, "- %s: %s\n", r.phase, r.api)
	}
	if r := b.restart; r.verified > 0 {
		fmt.Fprintf(w, "\nRestart: the old controller stopped in %s s; the new one held the lease after %s s and had reconciled all %d Releases again after %s s (%d GETs of TrafficRoutes). An application published %s s after the restart, with up to %d Releases still to re-verify, was routed %s s after its creation. Rewritten by the new controller: %d of %d Releases, %d of %d TrafficRoutes.\n",
			secs(r.stop), secs(r.leader), r.releases, secs(r.verified), r.getRoutes, secs(r.probeCreated), r.probeBehind, secs(r.probe),
			r.rewrittenReleases, r.releases, r.rewrittenRoutes, r.routes)
	}
	n, d := gatherCost()
	fmt.Fprintf(w, "\nBenchmark overhead: %d reads of the metrics registry took %s s in this process.\n", n, secs(d))
	fmt.Fprintf(w, "\nController log: %s\n", logPath)
}

// setupLogging sends the controller's and client-go's logs to a file.
func setupLogging(t *testing.T) string {
	path := *flagLog
	var f *os.File
	var err error
	if path == "" {
		f, err = os.CreateTemp("", "fledge-scale-*.log")
	} else {
		f, err = os.Create(path)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	logger := zap.New(zap.WriteTo(f))
	ctrl.SetLogger(logger)
	klog.SetLogger(logger)
	return f.Name()
}
