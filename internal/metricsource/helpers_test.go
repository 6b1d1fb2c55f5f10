package metricsource_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/gateway"
	"github.com/fledge-dev/fledge/internal/metricsource"
)

// The backends the test gateways serve. webStable and otherWeb differ only by
// namespace; apiStable only by app.
var (
	webStable = metricsource.Backend{Namespace: "shop", App: "web", Service: "web-stable"}
	webCanary = metricsource.Backend{Namespace: "shop", App: "web", Service: "web-canary"}
	apiStable = metricsource.Backend{Namespace: "shop", App: "api", Service: "api-stable"}
	otherWeb  = metricsource.Backend{Namespace: "other", App: "web", Service: "web-stable"}
)

// Hosts of the test routes. Requests to webHost with header X-Canary: yes go to
// the canary, the others to the stable (weight 0).
const (
	webHost   = "web.example"
	apiHost   = "api.example"
	otherHost = "web.other"
)

var cleanups struct {
	sync.Mutex
	fns []func()
}

// atExit registers f to run after every test of the binary (shared servers).
func atExit(f func()) {
	cleanups.Lock()
	defer cleanups.Unlock()
	cleanups.fns = append(cleanups.fns, f)
}

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(cleanups.fns) - 1; i >= 0; i-- {
		cleanups.fns[i]()
	}
	os.Exit(code)
}

// app is the application behind every test backend: /status/N answers N,
// /hang waits until the request is cancelled (after signalling hanging).
type app struct {
	srv     *httptest.Server
	hanging chan struct{}
}

func newApp(t *testing.T) *app {
	a := startApp()
	t.Cleanup(a.srv.Close)
	return a
}

// startApp starts an app that the caller closes.
func startApp() *app {
	a := &app{hanging: make(chan struct{}, 1)}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/hang":
			a.hanging <- struct{}{}
			<-r.Context().Done()
		case strings.HasPrefix(r.URL.Path, "/status/"):
			code, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
			if err != nil {
				code = http.StatusBadRequest
			}
			w.WriteHeader(code)
		default:
			_, _ = w.Write([]byte("ok\n"))
		}
	}))
	return a
}

// routing returns the objects of the test routes, every backend served by a.
func routing(a *app) gateway.Objects {
	host, portStr, err := net.SplitHostPort(strings.TrimPrefix(a.srv.URL, "http://"))
	if err != nil {
		panic(err)
	}
	port, _ := strconv.Atoi(portStr)
	route := func(ns, name, host string, canary bool) *fledgev1.TrafficRoute {
		tr := &fledgev1.TrafficRoute{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(time.Unix(0, 0))},
			Spec:       fledgev1.TrafficRouteSpec{Host: host, Stable: fledgev1.BackendRef{Service: name + "-stable", Port: 80}},
		}
		if canary {
			tr.Spec.Canary = &fledgev1.BackendRef{Service: name + "-canary", Port: 80}
			tr.Spec.Match = []fledgev1.Predicate{{Type: fledgev1.PredicateHeader, Name: "X-Canary", Value: "yes"}}
		}
		return tr
	}
	objs := gateway.Objects{TrafficRoutes: []*fledgev1.TrafficRoute{
		route("shop", "web", webHost, true), route("shop", "api", apiHost, false), route("other", "web", otherHost, false),
	}}
	for _, b := range []metricsource.Backend{webStable, webCanary, apiStable, otherWeb} {
		objs.Services = append(objs.Services, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: b.Namespace, Name: b.Service},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{{
				Name: "http", Port: 80, TargetPort: intstr.FromInt32(int32(port)), Protocol: corev1.ProtocolTCP,
			}}},
		})
		objs.EndpointSlices = append(objs.EndpointSlices, &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: b.Namespace, Name: b.Service + "-1",
				Labels: map[string]string{discoveryv1.LabelServiceName: b.Service},
			},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(port)), Protocol: ptr.To(corev1.ProtocolTCP)}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{host}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		})
	}
	return objs
}

// replica is one gateway replica: a real gateway.Gateway whose admin handler
// is served on a loopback port. Restart replaces the gateway by a new one (its
// counters start from zero) at the same URL.
type replica struct {
	app *app
	gw  atomic.Pointer[gateway.Gateway]
	srv *httptest.Server
	// started, when not 0, replaces process_start_time_seconds (every test
	// replica runs in this process, so they all share its real start time).
	started atomic.Value // float64
	// status, when not 0, is answered instead of /metrics.
	status atomic.Int32
	// scrapes counts the /metrics requests.
	scrapes atomic.Int32
}

func newReplica(t *testing.T, a *app) *replica {
	r := startReplica(a)
	t.Cleanup(r.srv.Close)
	return r
}

// startReplica starts a replica that the caller closes.
func startReplica(a *app) *replica {
	r := &replica{app: a}
	r.Restart(0)
	r.srv = httptest.NewServer(http.HandlerFunc(r.serveAdmin))
	return r
}

// URL is the replica's /metrics URL.
func (r *replica) URL() string { return r.srv.URL + "/metrics" }

// Restart replaces the gateway by a fresh one; started, when not 0, becomes
// its process start time.
func (r *replica) Restart(started float64) {
	g := gateway.New(gateway.Options{})
	g.Update(context.Background(), routing(r.app))
	r.gw.Store(g)
	r.started.Store(started)
}

func (r *replica) serveAdmin(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/metrics" {
		r.scrapes.Add(1)
	}
	if s := r.status.Load(); s != 0 {
		http.Error(w, "unavailable", int(s))
		return
	}
	started := r.started.Load().(float64)
	if started == 0 || req.URL.Path != "/metrics" {
		r.gw.Load().AdminHandler().ServeHTTP(w, req)
		return
	}
	rec := httptest.NewRecorder()
	req.Header.Del("Accept-Encoding") // plain text, to rewrite it
	r.gw.Load().AdminHandler().ServeHTTP(rec, req)
	var out bytes.Buffer
	sc := bufio.NewScanner(rec.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "process_start_time_seconds ") {
			line = "process_start_time_seconds " + strconv.FormatFloat(started, 'g', -1, 64)
		}
		out.WriteString(line + "\n")
	}
	w.Header().Set("Content-Type", rec.Header().Get("Content-Type"))
	_, _ = w.Write(out.Bytes())
}

// Do sends n requests for target with Host host through the replica's proxy,
// to the canary when canary is set. Metrics are recorded when it returns.
func (r *replica) Do(tb testing.TB, host, target string, canary bool, n int) {
	tb.Helper()
	for range n {
		req := httptest.NewRequest(http.MethodGet, "http://"+host+target, nil)
		if canary {
			req.Header.Set("X-Canary", "yes")
		}
		rec := httptest.NewRecorder()
		r.gw.Load().ServeHTTP(rec, req)
		if want := wantCode(target); rec.Code != want {
			tb.Fatalf("GET %s%s: %d, want %d", host, target, rec.Code, want)
		}
	}
}

func wantCode(target string) int {
	if code, err := strconv.Atoi(strings.TrimPrefix(target, "/status/")); err == nil {
		return code
	}
	return http.StatusOK
}

// Abandon sends one request to the web canary whose client goes away before
// the backend answers: the gateway records it as 499.
func (r *replica) Abandon(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "http://"+webHost+"/hang", nil)
	req.Header.Set("X-Canary", "yes")
	go func() {
		<-r.app.hanging
		cancel()
	}()
	rec := httptest.NewRecorder()
	r.gw.Load().ServeHTTP(rec, req)
	if rec.Code != 499 {
		tb.Fatalf("abandoned request: %d, want 499", rec.Code)
	}
}

// clock is a fake clock for the sources.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func describe(c metricsource.Counts) string {
	return fmt.Sprintf("requests=%v errors=%v latency=%v", c.Requests, c.Errors, c.Latency)
}
