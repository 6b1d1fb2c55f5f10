package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// healthBackend is a real gRPC server (the standard health service) that
// says which version it is in a response header and fails every failEvery-th
// unary call with UNAVAILABLE (never when 0).
type healthBackend struct {
	healthpb.UnimplementedHealthServer
	version   string
	failEvery int64
	calls     atomic.Int64
}

func (h *healthBackend) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-version", h.version))
	if n := h.calls.Add(1); h.failEvery > 0 && n%h.failEvery == 0 {
		return nil, status.Error(codes.Unavailable, "injected failure")
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

// Watch streams three answers.
func (h *healthBackend) Watch(_ *healthpb.HealthCheckRequest, s grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	if err := s.SendHeader(metadata.Pairs("x-version", h.version)); err != nil {
		return err
	}
	for range 3 {
		if err := s.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}); err != nil {
			return err
		}
	}
	return nil
}

func startGRPC(t *testing.T, h *healthBackend) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, h)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

// h2cBackendObjects is backendObjects with the Service port declared
// appProtocol kubernetes.io/h2c.
func h2cBackendObjects(t *testing.T, svc, addr string) (*corev1.Service, Objects) {
	s, slices := backendObjects(t, svc, addr)
	s.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080),
		Protocol: corev1.ProtocolTCP, AppProtocol: ptr.To(appProtocolH2C)}}
	return s, Objects{Services: []*corev1.Service{s}, EndpointSlices: slices}
}

// TestGRPCCanary runs a grpc-go client through the gateway's h2c listener to
// two real gRPC servers (stable and canary, h2c Service ports): unary and
// streaming calls split like HTTP requests, and the canary's UNAVAILABLE
// answers are counted as 503 (and by grpc-status), so that the analysis
// sees them as errors.
func TestGRPCCanary(t *testing.T) {
	stable := &healthBackend{version: "v1"}
	canary := &healthBackend{version: "v2", failEvery: 4}
	objs := Objects{TrafficRoutes: []*fledgev1.TrafficRoute{trafficRoute("rpc", "rpc.example", withCanary(20))}}
	for svc, h := range map[string]*healthBackend{"rpc-stable": stable, "rpc-canary": canary} {
		_, o := h2cBackendObjects(t, svc, startGRPC(t, h))
		objs.Services = append(objs.Services, o.Services...)
		objs.EndpointSlices = append(objs.EndpointSlices, o.EndpointSlices...)
	}
	g := New(Options{H2C: true})
	tb := g.Update(t.Context(), objs)
	if ri, _ := tb.Lookup("rpc.example"); !ri.Stable.H2C || ri.Canary == nil || !ri.Canary.H2C {
		t.Fatalf("route %+v: want both backends h2c", ri)
	}
	_, httpAddr := serveTLS(t, g)
	conn, err := grpc.NewClient(httpAddr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority("rpc.example"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	const calls = 100
	versions := map[string]int{}
	failed := 0
	for range calls {
		var md metadata.MD
		_, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md))
		if v := md.Get("x-version"); len(v) == 1 {
			versions[v[0]]++
		}
		if err != nil {
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("call failed with %v, want only injected UNAVAILABLE", err)
			}
			failed++
		}
	}
	if versions["v1"] != 80 || versions["v2"] != 20 {
		t.Errorf("unary calls by version %v, want exactly v1 80, v2 20", versions)
	}
	if failed != 5 {
		t.Errorf("%d calls failed, want 5 (every 4th of the canary's 20)", failed)
	}
	mfs := scrape(t, g)
	lbl := func(svc, code string) map[string]string {
		return map[string]string{"namespace": "shop", "app": "rpc", "service": svc, "code": code}
	}
	for _, c := range []struct {
		svc, code string
		want      float64
	}{{"rpc-stable", "200", 80}, {"rpc-canary", "200", 15}, {"rpc-canary", "503", 5}} {
		if v, _ := sample(mfs, "fledge_gateway_requests_total", lbl(c.svc, c.code)); v != c.want {
			t.Errorf("requests_total{service=%s,code=%s} = %v, want %v", c.svc, c.code, v, c.want)
		}
	}
	if v, _ := sample(mfs, "fledge_gateway_grpc_responses_total",
		map[string]string{"namespace": "shop", "app": "rpc", "service": "rpc-canary", "grpc_status": "14"}); v != 5 {
		t.Errorf("grpc_responses_total{service=rpc-canary,grpc_status=14} = %v, want 5", v)
	}

	// Streaming calls split by the same sequence.
	streams := map[string]int{}
	for range calls {
		s, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		md, err := s.Header()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			if _, err := s.Recv(); err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("stream: %v", err)
				}
				break
			}
			n++
		}
		if n != 3 {
			t.Fatalf("stream carried %d messages, want 3", n)
		}
		streams[md.Get("x-version")[0]]++
	}
	if streams["v1"] != 80 || streams["v2"] != 20 {
		t.Errorf("streaming calls by version %v, want exactly v1 80, v2 20", streams)
	}
}

// TestH2CListenerAndBackend: with Options.H2C the plain listener speaks
// HTTP/2 with prior knowledge next to HTTP/1.1; a backend whose Service port
// is kubernetes.io/h2c receives HTTP/2, the others HTTP/1.1.
func TestH2CListenerAndBackend(t *testing.T) {
	protoOf := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend-Proto", r.Proto)
		w.Header().Set("X-Forwarded-Seen", r.Header.Get("X-Forwarded-Proto")+" "+strconv.Itoa(len(r.Header.Values("X-Forwarded-For"))))
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	h2cLn := listen(t)
	h2cSrv := &http.Server{Handler: http.HandlerFunc(protoOf), Protocols: &p}
	go func() { _ = h2cSrv.Serve(h2cLn) }()
	t.Cleanup(func() { _ = h2cSrv.Close() })
	h1 := newFastBackend(t, protoOf)

	_, h2cObjs := h2cBackendObjects(t, "h2c-stable", h2cLn.Addr().String())
	h1svc, h1slices := backendObjects(t, "h1-stable", hostOf(t, h1.URL))
	g := New(Options{H2C: true})
	g.Update(t.Context(), Objects{
		TrafficRoutes:  []*fledgev1.TrafficRoute{trafficRoute("h2c", "h2c.example"), trafficRoute("h1", "h1.example")},
		Services:       append(h2cObjs.Services, h1svc),
		EndpointSlices: append(h2cObjs.EndpointSlices, h1slices...),
	})
	_, addr := serveTLS(t, g)
	h2cClient := &http.Client{Transport: &http.Transport{Protocols: &p}, Timeout: 10 * time.Second}
	h1Client := &http.Client{Timeout: 10 * time.Second}
	for _, tc := range []struct {
		name              string
		client            *http.Client
		host              string
		wantFront, wantBk string
	}{
		{"h2c client, h2c backend", h2cClient, "h2c.example", "HTTP/2.0", "HTTP/2.0"},
		{"h2c client, HTTP/1.1 backend", h2cClient, "h1.example", "HTTP/2.0", "HTTP/1.1"},
		{"HTTP/1.1 client, h2c backend", h1Client, "h2c.example", "HTTP/1.1", "HTTP/2.0"},
		{"HTTP/1.1 client, HTTP/1.1 backend", h1Client, "h1.example", "HTTP/1.1", "HTTP/1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
			req.Host = tc.host
			req.Header.Set("X-Forwarded-For", "6.6.6.6")
			res, err := tc.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || res.Proto != tc.wantFront || res.Header.Get("X-Backend-Proto") != tc.wantBk {
				t.Errorf("%d over %s, backend over %s; want 200 over %s, backend over %s",
					res.StatusCode, res.Proto, res.Header.Get("X-Backend-Proto"), tc.wantFront, tc.wantBk)
			}
			if tc.name == "h2c client, HTTP/1.1 backend" {
				// The first request to this backend: HTTP/2 requests take the fast
				// path, whose pool now holds the connection.
				if n := g.Table().lookup("h1.example").stable.targets[0].pool.idleLen(); n != 1 {
					t.Errorf("fast path pool of the HTTP/1.1 backend holds %d idle connections, want 1", n)
				}
			}
			if got := res.Header.Get("X-Forwarded-Seen"); got != "http 1" {
				t.Errorf("backend saw X-Forwarded-Proto and X-Forwarded-For count %q, want \"http 1\" (client-sent one replaced)", got)
			}
		})
	}
	t.Run("without H2C the preface is refused", func(t *testing.T) {
		g2 := New(Options{})
		g2.Update(t.Context(), Objects{TrafficRoutes: []*fledgev1.TrafficRoute{trafficRoute("h1", "h1.example")},
			Services: []*corev1.Service{h1svc}, EndpointSlices: h1slices})
		_, addr2 := serveTLS(t, g2)
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr2+"/", nil)
		req.Host = "h1.example"
		if res, err := h2cClient.Do(req); err == nil {
			res.Body.Close()
			t.Errorf("an h2c request was answered (%s %d) by a gateway without H2C", res.Proto, res.StatusCode)
		}
	})
}
