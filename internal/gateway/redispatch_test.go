package gateway

import (
	"io"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// TestRedispatch: a request that could not be sent (the chosen version has
// no ready endpoint, or none accepts a connection) is served by another
// endpoint, else by the other version, for every method (nothing was sent);
// the version that could not take it is still charged with the failure, so
// that an unreachable canary is judged as failing.
func TestRedispatch(t *testing.T) {
	named := func(name string) *http.ServeMux {
		mux := http.NewServeMux()
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			_, _ = io.WriteString(w, name+" "+string(body))
		})
		return mux
	}
	tests := map[string]struct {
		canaryAddrs func(t *testing.T) []discoveryv1.Endpoint // endpoints of the canary slice (all on one port)
		weight      int32
		// want: answers by version out of 100, the canary's charged code and
		// the redispatch reason (empty: none).
		wantStable, wantCanary int
		chargedCode, reason    string
	}{
		"canary refuses connections":         {weight: 50, wantStable: 100, chargedCode: "502", reason: "unreachable"},
		"canary has no ready endpoint":       {weight: 50, wantStable: 100, chargedCode: "503", reason: "no-endpoint"},
		"one canary endpoint of two refuses": {weight: 100, wantCanary: 100},
	}
	for pathName, opts := range paths {
		for name, tc := range tests {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				t.Run(pathName+"/"+name+"/"+method, func(t *testing.T) {
					stable := newFastBackend(t, named("stable").ServeHTTP)
					canary := newFastBackend(t, named("canary").ServeHTTP)
					svcS, slicesS := backendObjects(t, "web-stable", hostOf(t, stable.URL))
					var slicesC []*discoveryv1.EndpointSlice
					switch name {
					case "canary refuses connections":
						_, slicesC = backendObjects(t, "web-canary", refusedAddr(t))
					case "canary has no ready endpoint":
						_, slicesC = backendObjects(t, "web-canary", hostOf(t, canary.URL))
						slicesC[0].Endpoints[0] = notReady("127.0.0.1")
					default:
						_, slicesC = backendObjects(t, "web-canary", refusedAddr(t), hostOf(t, canary.URL))
					}
					g := New(opts)
					g.Update(t.Context(), Objects{
						TrafficRoutes:  []*fledgev1.TrafficRoute{trafficRoute("web", "web.example", withCanary(tc.weight))},
						Services:       []*corev1.Service{svcS, service("web-canary")},
						EndpointSlices: append(slicesS, slicesC...),
					})
					front, done := frontend(t, g)
					answers := map[string]int{}
					for range 100 {
						req, _ := http.NewRequestWithContext(t.Context(), method, front.URL+"/", strings.NewReader("body"))
						if method == http.MethodGet {
							req.Body, req.ContentLength = nil, 0
						}
						req.Host = "web.example"
						resp, err := front.Client().Do(req)
						if err != nil {
							t.Fatal(err)
						}
						body, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						<-done
						if resp.StatusCode != http.StatusOK {
							t.Fatalf("status %d %q, want 200", resp.StatusCode, body)
						}
						who, got, _ := strings.Cut(string(body), " ")
						if want := map[string]string{http.MethodGet: "", http.MethodPost: "body"}[method]; got != want {
							t.Fatalf("the backend got body %q, want %q", got, want)
						}
						answers[who]++
					}
					if answers["stable"] != tc.wantStable || answers["canary"] != tc.wantCanary {
						t.Errorf("answers %v, want stable %d, canary %d", answers, tc.wantStable, tc.wantCanary)
					}
					mfs := scrape(t, g)
					labels := func(svc, code string) map[string]string {
						return map[string]string{"namespace": "shop", "app": "web", "service": svc, "code": code}
					}
					if tc.reason != "" {
						if v, _ := sample(mfs, metricRequests, labels("web-canary", tc.chargedCode)); v != 50 {
							t.Errorf("canary charged with %v requests of code %s, want 50", v, tc.chargedCode)
						}
						if v, _ := sample(mfs, metricRedispatch, map[string]string{"namespace": "shop", "app": "web", "from": "web-canary", "to": "web-stable", "reason": tc.reason}); v != 50 {
							t.Errorf("redispatched = %v, want 50", v)
						}
					} else if v, _ := sample(mfs, metricRequests, labels("web-canary", "200")); v != 100 {
						t.Errorf("canary 200s = %v, want 100", v)
					}
				})
			}
		}
	}
}
