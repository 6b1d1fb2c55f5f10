package gateway

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

func TestBuildTable(t *testing.T) {
	webStable := service("web-stable")
	tests := map[string]struct {
		objs Objects
		// host is looked up; want is the route served for it (nil: none).
		host string
		want *RouteInfo
		// problems are substrings of Problems(), one each, in order.
		problems []string
		skipped  int
	}{
		"ready endpoints only: ready unset or true, not terminating": {
			objs: Objects{
				TrafficRoutes: []*fledgev1.TrafficRoute{trafficRoute("web", "web.example")},
				Services:      []*corev1.Service{webStable},
				EndpointSlices: []*discoveryv1.EndpointSlice{endpointSlice("web-stable-a", "web-stable", "http", 8080,
					ready("10.0.0.3"), readyUnset("10.0.0.1"), notReady("10.0.0.2"), terminating("10.0.0.4"),
					discoveryv1.Endpoint{}, // no address
				)},
			},
			host: "web.example",
			want: &RouteInfo{Namespace: "shop", Name: "web", Host: "web.example",
				Stable: BackendInfo{Service: "web-stable", Port: 80, Targets: []string{"10.0.0.1:8080", "10.0.0.3:8080"}}},
		},
		"named Service port resolves to the slice port of the same name": {
			objs: Objects{
				TrafficRoutes: []*fledgev1.TrafficRoute{trafficRoute("web", "web.example")},
				Services: []*corev1.Service{service("web-stable",
					corev1.ServicePort{Name: "metrics", Port: 9090, TargetPort: intstr.FromInt32(9091)},
					corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("web")},
				)},
				EndpointSlices: []*discoveryv1.EndpointSlice{{
					ObjectMeta:  webStableSliceMeta("web-stable-a"),
					AddressType: discoveryv1.AddressTypeIPv4,
					Ports: []discoveryv1.EndpointPort{
						{Name: ptr.To("metrics"), Port: ptr.To[int32](9091)},
						{Name: ptr.To("http"), Port: ptr.To[int32](8081)},
					},
					Endpoints: []discoveryv1.Endpoint{ready("10.0.0.1")},
				}},
			},
			host: "web.example",
			want: &RouteInfo{Namespace: "shop", Name: "web", Host: "web.example",
				Stable: BackendInfo{Service: "web-stable", Port: 80, Targets: []string{"10.0.0.1:8081"}}},
		},
		"unnamed single port": {
			objs: Objects{
				TrafficRoutes:  []*fledgev1.TrafficRoute{trafficRoute("web", "web.example")},
				Services:       []*corev1.Service{service("web-stable", corev1.ServicePort{Port: 80, TargetPort: intstr.FromInt32(3000)})},
				EndpointSlices: []*discoveryv1.EndpointSlice{endpointSlice("web-stable-a", "web-stable", "", 3000, ready("10.0.0.1"))},
			},
			host: "web.example",
			want: &RouteInfo{Namespace: "shop", Name: "web", Host: "web.example",
				Stable: BackendInfo{Service: "web-stable", Port: 80, Targets: []string{"10.0.0.1:3000"}}},
		},
		"ExternalName Service targets externalName:port": {
			objs: Objects{
				TrafficRoutes: []*fledgev1.TrafficRoute{trafficRoute("web", "web.example", func(tr *fledgev1.TrafficRoute) {
					tr.Spec.Stable.Port = 8443
				})},
				Services: []*corev1.Service{func() *corev1.Service {
					s := service("web-stable")
					s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "legacy.example.net"}
					return s
				}()},
			},
			host: "web.example",
			want: &RouteInfo{Namespace: "shop", Name: "web", Host: "web.example",
				Stable: BackendInfo{Service: "web-stable", Port: 8443, Targets: []string{"legacy.example.net:8443"}}},
		},
		"slices merged and deduplicated; other Services' and unlabelled slices ignored": {
			objs: Objects{
				TrafficRoutes: []*fledgev1.TrafficRoute{trafficRoute("web", "web.example")},
				Services:      []*corev1.Service{webStable},
				EndpointSlices: []*discoveryv1.EndpointSlice{
					endpointSlice("web-stable-a", "web-stable", "http", 8080, ready("10.0.0.2"), ready("10.0.0.1")),
					endpointSlice("web-stable-b", "web-stable", "http", 8080, ready("10.0.0.1"), ready("10.0.0.3")),
					endpointSlice("other", "other", "http", 8080, ready("10.9.9.9")),
					func() *discoveryv1.EndpointSlice {
						es := endpointSlice("unlabelled", "web-stable", "http", 8080, ready("10.9.9.8"))
						es.Labels = nil
						return es
					}(),
				},
			},
			host: "web.example",
			want: &RouteInfo{Namespace: "shop", Name: "web", Host: "web.example",
				Stable: BackendInfo{Service: "web-stable", Port: 80, Targets: []string{"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"}}},
		},
		"IPv6 Service uses its IPv6 slices only": {
			objs: Objects{
				TrafficRoutes: []*fledgev1.TrafficRoute{trafficRoute("web", "web.example")},
				Services: []*corev1.Service{func() *corev1.Service {
					s := service("web-stable")
					s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol}
					return s
				}()},
				EndpointSlices: []*discoveryv1.EndpointSlice{
					endpointSlice("web-stable-v4", "web-stable", "http", 8080, ready("10.0.0.1")),
					func() *discoveryv1.EndpointSlice {
						es := endpointSlice("web-stable-v6", "web-stable", "http", 8080, ready("fd00::1"))
						es.AddressType = discoveryv1.AddressTypeIPv6
						return es
					}(),
				},
			},
			host: "web.example",
			want: &RouteInfo{Namespace: "shop", Name: "web", Host: "web.example",
				Stable: BackendInfo{Service: "web-stable", Port: 80, Targets: []string{"[fd00::1]:8080"}}},
		},
		"missing Service: route served without targets": {
			objs: Objects{TrafficRoutes: []*fledgev1.TrafficRoute{trafficRoute("web", "web.example")}},
			host: "web.example",
			want: &RouteInfo{Namespace: "shop", Name: "web", Host: "web.example",
				Stable: BackendInfo{Service: "web-stable", Port: 80, Targets: []string{}}},
			problems: []string{"TrafficRoute shop/web: Service shop/web-stable not found"},
		},
		"Service without the referenced port": {
			objs: Objects{
				TrafficRoutes:  []*fledgev1.TrafficRoute{trafficRoute("web", "web.example", func(tr *fledgev1.TrafficRoute) { tr.Spec.Stable.Port = 81 })},
				Services:       []*corev1.Service{webStable},
				EndpointSlices: []*discoveryv1.EndpointSlice{endpointSlice("web-stable-a", "web-stable", "http", 8080, ready("10.0.0.1"))},
			},
			host: "web.example",
			want: &RouteInfo{Namespace: "shop", Name: "web", Host: "web.example",
				Stable: BackendInfo{Service: "web-stable", Port: 81, Targets: []string{}}},
			problems: []string{"Service shop/web-stable has no port 81"},
		},
		"no ready endpoint": {
			objs: Objects{
				TrafficRoutes:  []*fledgev1.TrafficRoute{trafficRoute("web", "web.example")},
				Services:       []*corev1.Service{webStable},
				EndpointSlices: []*discoveryv1.EndpointSlice{endpointSlice("web-stable-a", "web-stable", "http", 8080, notReady("10.0.0.1"))},
			},
			host: "web.example",
			want: &RouteInfo{Namespace: "shop", Name: "web", Host: "web.example",
				Stable: BackendInfo{Service: "web-stable", Port: 80, Targets: []string{}}},
			problems: []string{"Service shop/web-stable port 80 has no ready endpoint"},
		},
		"host conflict: the oldest route wins, whatever the names": {
			objs: Objects{
				TrafficRoutes: []*fledgev1.TrafficRoute{
					trafficRoute("a-new", "Web.Example", createdAt(5)),
					trafficRoute("z-old", "web.example", createdAt(1)),
				},
			},
			host: "web.example",
			want: &RouteInfo{Namespace: "shop", Name: "z-old", Host: "web.example",
				Stable: BackendInfo{Service: "z-old-stable", Port: 80, Targets: []string{}}},
			problems: []string{
				`TrafficRoute shop/a-new skipped: host "web.example" is served by the older TrafficRoute shop/z-old`,
				"Service shop/z-old-stable not found",
			},
			skipped: 1,
		},
		"host conflict at the same time: namespace then name decide": {
			objs: Objects{
				TrafficRoutes: []*fledgev1.TrafficRoute{
					trafficRoute("b", "web.example", inNamespace("zoo")),
					trafficRoute("c", "web.example"),
					trafficRoute("a", "web.example", inNamespace("zoo")),
				},
			},
			host: "web.example",
			want: &RouteInfo{Namespace: "shop", Name: "c", Host: "web.example",
				Stable: BackendInfo{Service: "c-stable", Port: 80, Targets: []string{}}},
			problems: []string{
				"Service shop/c-stable not found",
				`TrafficRoute zoo/a skipped: host "web.example" is served by the older TrafficRoute shop/c`,
				`TrafficRoute zoo/b skipped: host "web.example" is served by the older TrafficRoute shop/c`,
			},
			skipped: 2,
		},
		"invalid regular expression: route skipped, host free for the next route": {
			objs: Objects{
				TrafficRoutes: []*fledgev1.TrafficRoute{
					trafficRoute("bad", "web.example", withCanary(10), withMatch(fledgev1.Predicate{
						Type: fledgev1.PredicateHeader, Name: "X-Canary", Match: fledgev1.MatchRegularExpression, Value: "(unclosed",
					})),
					trafficRoute("good", "web.example", createdAt(1)),
				},
				Services: []*corev1.Service{service("good-stable")},
			},
			host: "web.example",
			want: &RouteInfo{Namespace: "shop", Name: "good", Host: "web.example",
				Stable: BackendInfo{Service: "good-stable", Port: 80, Targets: []string{}}},
			problems: []string{
				`TrafficRoute shop/bad skipped: match[0]: invalid regular expression "(unclosed"`,
				"Service shop/good-stable port 80 has no ready endpoint",
			},
			skipped: 1,
		},
		"canary weight outside 0..100: route skipped": {
			objs: Objects{TrafficRoutes: []*fledgev1.TrafficRoute{trafficRoute("web", "web.example", withCanary(101))}},
			host: "web.example",
			problems: []string{
				"TrafficRoute shop/web skipped: canaryWeight 101 outside 0..100",
			},
			skipped: 1,
		},
		"unknown predicate type: route skipped": {
			objs: Objects{TrafficRoutes: []*fledgev1.TrafficRoute{trafficRoute("web", "web.example", withCanary(1),
				withMatch(fledgev1.Predicate{Type: "Path", Name: "x"}))}},
			host:     "web.example",
			problems: []string{`TrafficRoute shop/web skipped: match[0]: unknown type "Path"`},
			skipped:  1,
		},
		"request Host matched without port, trailing dot and case": {
			objs: Objects{
				TrafficRoutes: []*fledgev1.TrafficRoute{trafficRoute("web", "Web.Example", withCanary(30))},
				Services:      []*corev1.Service{webStable, service("web-canary")},
				EndpointSlices: []*discoveryv1.EndpointSlice{
					endpointSlice("web-stable-a", "web-stable", "http", 8080, ready("10.0.0.1")),
					endpointSlice("web-canary-a", "web-canary", "http", 8080, ready("10.0.0.2")),
				},
			},
			host: "WEB.example.:8080",
			want: &RouteInfo{Namespace: "shop", Name: "web", Host: "web.example", CanaryWeight: 30,
				Stable: BackendInfo{Service: "web-stable", Port: 80, Targets: []string{"10.0.0.1:8080"}},
				Canary: &BackendInfo{Service: "web-canary", Port: 80, Targets: []string{"10.0.0.2:8080"}}},
		},
		"unknown host": {
			objs: Objects{TrafficRoutes: []*fledgev1.TrafficRoute{trafficRoute("web", "web.example")}, Services: []*corev1.Service{webStable},
				EndpointSlices: []*discoveryv1.EndpointSlice{endpointSlice("web-stable-a", "web-stable", "http", 8080, ready("10.0.0.1"))}},
			host: "web.example.org",
		},
		"weight without canary serves 0": {
			objs: Objects{TrafficRoutes: []*fledgev1.TrafficRoute{trafficRoute("web", "web.example", func(tr *fledgev1.TrafficRoute) {
				tr.Spec.CanaryWeight = 40
			})}, Services: []*corev1.Service{webStable},
				EndpointSlices: []*discoveryv1.EndpointSlice{endpointSlice("web-stable-a", "web-stable", "http", 8080, ready("10.0.0.1"))}},
			host: "web.example",
			want: &RouteInfo{Namespace: "shop", Name: "web", Host: "web.example",
				Stable: BackendInfo{Service: "web-stable", Port: 80, Targets: []string{"10.0.0.1:8080"}}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			g := New(Options{})
			table := g.Update(t.Context(), tc.objs)
			if g.Table() != table {
				t.Fatal("Update did not put its table in effect")
			}
			got, ok := table.Lookup(tc.host)
			switch {
			case tc.want == nil && ok:
				t.Errorf("Lookup(%q) = %+v, want no route", tc.host, got)
			case tc.want != nil && !ok:
				t.Errorf("Lookup(%q): no route, want %+v", tc.host, *tc.want)
			case tc.want != nil && !reflect.DeepEqual(got, *tc.want):
				t.Errorf("Lookup(%q) =\n  %+v\nwant\n  %+v", tc.host, got, *tc.want)
			}
			problems := table.Problems()
			if len(problems) != len(tc.problems) {
				t.Fatalf("Problems() = %q, want %d matching %q", problems, len(tc.problems), tc.problems)
			}
			for i, p := range problems {
				if !strings.Contains(p, tc.problems[i]) {
					t.Errorf("Problems()[%d] = %q, want it to contain %q", i, p, tc.problems[i])
				}
			}
			if table.skipped != tc.skipped {
				t.Errorf("skipped = %d, want %d", table.skipped, tc.skipped)
			}
		})
	}
}

func webStableSliceMeta(name string) metav1.ObjectMeta {
	return endpointSlice(name, "web-stable", "", 0).ObjectMeta
}

func TestNormalizeHost(t *testing.T) {
	tests := map[string]string{
		"web.example":         "web.example",
		"Web.Example:8080":    "web.example",
		"web.example.":        "web.example",
		"[fd00::1]:80":        "fd00::1",
		"[FD00::1]":           "fd00::1",
		"":                    "",
		"UPPER.example.:443":  "upper.example",
		"10.0.0.1:8080":       "10.0.0.1",
		"xn--bcher-kva.TEST.": "xn--bcher-kva.test",
	}
	for in, want := range tests {
		if got := normalizeHost(in); got != want {
			t.Errorf("normalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}
