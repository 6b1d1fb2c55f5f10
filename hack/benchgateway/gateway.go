package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/gateway"
)

// benchNamespace is the namespace of the objects the gateway's table is built
// from.
const benchNamespace = "bench"

// runGateway is "benchgateway gateway": fledge's gateway serving one route
// (Host routeHost) split between the stable and canary addresses, on the
// listeners inherited as file descriptors 3 (proxy) and 4 (admin), until
// SIGTERM or SIGINT.
func runGateway(args []string) error {
	fs := flag.NewFlagSet("benchgateway gateway", flag.ContinueOnError)
	stable := fs.String("stable", "", "address:port of the stable (v1) pod")
	canary := fs.String("canary", "", "address:port of the canary (v2) pod")
	weight := fs.Int("weight", 10, "canary weight, percent")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	disableFastPath := fs.Bool("disable-fast-path", false, "gateway.Options.DisableFastPath: proxy every request with httputil.ReverseProxy")
	tlsCert := fs.String("tls-cert", "", "PEM certificate: serve the proxy listener as HTTPS with it (and -tls-key)")
	tlsKey := fs.String("tls-key", "", "PEM private key of -tls-cert")
	if err := fs.Parse(args); err != nil {
		return err
	}
	stop, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	stableAddr, err := netip.ParseAddrPort(*stable)
	if err != nil {
		return fmt.Errorf("-stable: %w", err)
	}
	canaryAddr, err := netip.ParseAddrPort(*canary)
	if err != nil {
		return fmt.Errorf("-canary: %w", err)
	}
	var lns [2]net.Listener
	for i := range lns {
		f := os.NewFile(uintptr(3+i), fmt.Sprintf("listener-%d", i))
		if f == nil {
			return errors.New("expects its two listeners as file descriptors 3 and 4")
		}
		if lns[i], err = net.FileListener(f); err != nil {
			return fmt.Errorf("listener on fd %d: %w", 3+i, err)
		}
		f.Close()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx = logr.NewContext(ctx, logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, nil)))
	opts := gateway.Options{DisableFastPath: *disableFastPath}
	objs := routeObjects(stableAddr, canaryAddr, int32(*weight))
	ls := gateway.Listeners{HTTP: lns[0], Admin: lns[1]}
	if *tlsCert != "" {
		crt, err := os.ReadFile(*tlsCert)
		if err != nil {
			return err
		}
		key, err := os.ReadFile(*tlsKey)
		if err != nil {
			return err
		}
		// wrk sends the IP address as server name: the route's certificate
		// is also the default one.
		opts.DefaultTLSSecret = benchNamespace + "/error-page-tls"
		objs.TrafficRoutes[0].Spec.TLS = &fledgev1.RouteTLS{SecretName: "error-page-tls"}
		objs.Secrets = []*corev1.Secret{{
			ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: "error-page-tls", ResourceVersion: "1"},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key},
		}}
		plain, err := net.Listen("tcp", "127.0.0.1:0") // unused
		if err != nil {
			return err
		}
		ls.HTTP, ls.HTTPS = plain, lns[0]
	}
	g := gateway.New(opts)
	t := g.Update(ctx, objs)
	if p := t.Problems(); len(p) > 0 {
		return fmt.Errorf("routing table has problems: %v", p)
	}
	return g.ServeListeners(ctx, ls)
}

// routeObjects are what the controller and Kubernetes would hold for the
// route: a TrafficRoute for routeHost splitting between the Services
// error-page-v1 and error-page-v2 (port 80 "http", target port of the pod),
// and one EndpointSlice per Service with the pod's address.
func routeObjects(stable, canary netip.AddrPort, weight int32) gateway.Objects {
	objs := gateway.Objects{
		TrafficRoutes: []*fledgev1.TrafficRoute{{
			ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: "error-page"},
			Spec: fledgev1.TrafficRouteSpec{
				Host:         routeHost,
				Stable:       fledgev1.BackendRef{Service: "error-page-v1", Port: 80},
				Canary:       &fledgev1.BackendRef{Service: "error-page-v2", Port: 80},
				CanaryWeight: weight,
			},
		}},
	}
	for _, b := range []struct {
		service string
		addr    netip.AddrPort
	}{{"error-page-v1", stable}, {"error-page-v2", canary}} {
		objs.Services = append(objs.Services, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: b.service},
			Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeClusterIP,
				Ports: []corev1.ServicePort{{
					Name: "http", Port: 80, Protocol: corev1.ProtocolTCP,
					TargetPort: intstr.FromInt32(int32(b.addr.Port())),
				}},
			},
		})
		objs.EndpointSlices = append(objs.EndpointSlices, &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: benchNamespace, Name: b.service + "-1",
				Labels: map[string]string{discoveryv1.LabelServiceName: b.service},
			},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports: []discoveryv1.EndpointPort{{
				Name: ptr.To("http"), Port: ptr.To(int32(b.addr.Port())), Protocol: ptr.To(corev1.ProtocolTCP),
			}},
			Endpoints: []discoveryv1.Endpoint{{
				Addresses:  []string{b.addr.Addr().String()},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			}},
		})
	}
	return objs
}

// startCPUProfile writes a CPU profile of the process to path until stop
// is called; with no path it does nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
