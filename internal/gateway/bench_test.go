package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	corev1 "k8s.io/api/core/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// BenchmarkPick measures routing one request: host lookup, predicates, weighted
// split and endpoint round robin. It should not allocate.
func BenchmarkPick(b *testing.B) {
	cases := map[string][]fledgev1.Predicate{
		"no predicates": nil,
		"header regex and cookie predicates": {
			{Type: fledgev1.PredicateHeader, Name: "User-Agent", Match: fledgev1.MatchRegularExpression, Value: "Firefox/1[0-9]{2}"},
			{Type: fledgev1.PredicateCookie, Name: "canary", Value: "always"},
		},
	}
	for name, match := range cases {
		objs := splitObjects(10, "10.0.0.1", "10.0.0.2", "10.0.0.3")
		objs.TrafficRoutes[0].Spec.Match = match
		g := New(Options{})
		g.Update(b.Context(), objs)
		r := request("web.example:8080", "/")
		r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0")
		r.Header.Set("Cookie", "session=abc; canary=never")
		pick := func() {
			if g.Table().lookup(r.Host).pick(r).next() == nil {
				b.Fatal("no target")
			}
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				pick()
			}
		})
		b.Run(name+" parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					pick()
				}
			})
		})
	}
}

// BenchmarkProxy measures proxied requests to loopback backends at weight 10:
// "handler" calls the gateway's handler directly (the proxy's own cost plus the
// backend's), "network" goes through a loopback frontend and client as well.
func BenchmarkProxy(b *testing.B) {
	body := []byte("hello from the backend\n")
	backend := func() *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write(body)
		}))
		b.Cleanup(s.Close)
		return s
	}
	stableSvc, stableSlices := backendObjects(b, "web-stable", hostOf(b, backend().URL))
	canarySvc, canarySlices := backendObjects(b, "web-canary", hostOf(b, backend().URL))
	g := New(Options{})
	g.Update(b.Context(), Objects{
		TrafficRoutes:  []*fledgev1.TrafficRoute{trafficRoute("web", "web.example", withCanary(10))},
		Services:       []*corev1.Service{stableSvc, canarySvc},
		EndpointSlices: append(stableSlices, canarySlices...),
	})

	b.Run("handler", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rec := httptest.NewRecorder()
				g.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://web.example/path?q=1", nil))
				if rec.Code != http.StatusOK || rec.Body.Len() != len(body) {
					b.Fatalf("status %d body %q", rec.Code, rec.Body)
				}
			}
		})
	})

	b.Run("network", func(b *testing.B) {
		front := httptest.NewServer(g)
		defer front.Close()
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, DisableCompression: true}}
		defer client.CloseIdleConnections()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, err := http.NewRequest(http.MethodGet, front.URL+"/path?q=1", nil)
				if err != nil {
					b.Fatal(err)
				}
				req.Host = "web.example"
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || n != int64(len(body)) {
					b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
				}
			}
		})
	})
}
