package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
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
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/errorpage"
	"github.com/fledge-dev/fledge/internal/netns"
	"github.com/fledge-dev/fledge/internal/sandbox"
)

// grpcPods counts the gRPC pods started, so that each gets a name of its own
// (a pod name is taken for the sandbox's life).
var grpcPods atomic.Int64

// grpcPod starts `fledge error-page version --grpc-addr :9012` in a new pod.
func grpcPod(t *testing.T, version string, extra ...string) *sandbox.Pod {
	t.Helper()
	ctx := t.Context()
	pod, err := sb.Net.AddPod(ctx, fmt.Sprintf("grpc-%s-%d", version, grpcPods.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"error-page", version, "--addr", ":9011", "--grpc-addr", ":9012"}, extra...)
	if _, err := pod.StartWith(ctx, netns.StartOptions{}, fledgeBinary, args...); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := pod.WaitHTTP(wctx, 9011, "/healthz"); err != nil {
		t.Fatal(err)
	}
	return pod
}

// grpcService creates Service name with one port 9012 of appProtocol
// kubernetes.io/h2c (gRPC), backed by pod.
func (a *app) grpcService(t *testing.T, name string, pod *sandbox.Pod, ann map[string]string) {
	t.Helper()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: name, Annotations: ann},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "grpc", Port: 9012, AppProtocol: ptr.To("kubernetes.io/h2c")}}}}
	if err := sb.Client.Create(t.Context(), svc); err != nil {
		t.Fatal(err)
	}
	if err := sb.SetEndpoints(t.Context(), a.ns, name, 9012, pod); err != nil {
		t.Fatal(err)
	}
}

// grpcLoad calls Health.Check for host at rate calls/s, spread over the
// gateways (h2c), and counts the answers by version and gRPC code.
type grpcLoad struct {
	mu        sync.Mutex
	byVersion map[string]int
	byCode    map[codes.Code]int
	stop      context.CancelFunc
	done      sync.WaitGroup
}

func startGRPCLoad(t *testing.T, host string, rate int) *grpcLoad {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	l := &grpcLoad{byVersion: map[string]int{}, byCode: map[codes.Code]int{}, stop: cancel}
	for _, g := range sb.Gateways {
		conn, err := grpc.NewClient(strings.TrimPrefix(g.URL, "http://"),
			grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority(host))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		client := healthpb.NewHealthClient(conn)
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			tick := time.NewTicker(time.Second * time.Duration(len(sb.Gateways)) / time.Duration(rate))
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
				var md metadata.MD
				_, err := client.Check(cctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md))
				ccancel()
				if ctx.Err() != nil {
					return
				}
				l.mu.Lock()
				if v := md.Get(errorpage.VersionHeader); len(v) == 1 {
					l.byVersion[v[0]]++
				}
				l.byCode[status.Code(err)]++
				l.mu.Unlock()
			}
		}()
	}
	t.Cleanup(l.Stop)
	return l
}

func (l *grpcLoad) Stop() {
	l.stop()
	l.done.Wait()
}

func (l *grpcLoad) counts() (map[string]int, map[codes.Code]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, c := map[string]int{}, map[codes.Code]int{}
	for k, n := range l.byVersion {
		v[k] = n
	}
	for k, n := range l.byCode {
		c[k] = n
	}
	return v, c
}

// TestGRPCCanaryRolledBack: a gRPC application (real grpc-go servers as
// pods, h2c Service ports) gets an automated canary whose server answers
// UNAVAILABLE to 5% of the calls; under 100 calls/s of a real gRPC client
// through both gateways, fledge rolls it back by itself: the gateways count
// the gRPC errors as 503s, which the analysis judges.
func TestGRPCCanaryRolledBack(t *testing.T) {
	v1, v2 := grpcPod(t, "v1"), grpcPod(t, "v2", "--error-ratio", "0.05")
	a := newApp(t, "grpc-canary")
	a.unpublishAtEnd(t)
	a.grpcService(t, "v1", v1, map[string]string{published: a.name})
	a.served(t, "v1", "", 0)
	load := startGRPCLoad(t, a.name, rate)
	a.grpcService(t, "v2", v2, map[string]string{published: a.name, canaryKey: "true", autoPolicy: "steps=10,50"})
	rel := a.waitAuto(t, 90*time.Second, "rollback", func(s *fledgev1.AutoStatus) bool { return s.Result != "" })
	if rel.Status.Auto.Result != fledgev1.AutoRolledBack {
		t.Fatalf("result = %s, want RolledBack; evidence: %s", rel.Status.Auto.Result, rel.Status.Auto.Evidence)
	}
	t.Logf("gRPC canary rolled back: %s", rel.Status.Auto.Evidence)
	a.served(t, "v1", "v2", 0)
	load.Stop()
	versions, byCode := load.counts()
	t.Logf("calls by version %v, by code %v", versions, byCode)
	if versions["v2"] == 0 || byCode[codes.Unavailable] == 0 {
		t.Errorf("the canary got %d calls and %d UNAVAILABLE; want some of both", versions["v2"], byCode[codes.Unavailable])
	}
	for code, n := range byCode {
		if code != codes.OK && code != codes.Unavailable {
			t.Errorf("%d calls ended with %v; want only OK and the injected UNAVAILABLE", n, code)
		}
	}
	if e, ok := a.event(t, "RolledBack"); !ok || e.Type != corev1.EventTypeWarning {
		t.Errorf("no Warning RolledBack event (found %v: %+v)", ok, e)
	}
}

// issueCert returns a self-signed PEM certificate and key for host.
func issueCert(t *testing.T, host string, serial int64) (crt, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// tlsSecret creates a kubernetes.io/tls Secret and, when grant, the Role
// and RoleBinding letting the gateway read exactly it (docs/security.md).
func (a *app) tlsSecret(t *testing.T, name string, crt, key []byte, grant bool) {
	t.Helper()
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: name}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}}
	if err := sb.Client.Create(t.Context(), sec); err != nil {
		t.Fatal(err)
	}
	if !grant {
		return
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "fledge-gateway-tls-" + name},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{name},
			Verbs: []string{"get", "list", "watch"}}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "fledge-gateway-tls-" + name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "fledge-gateway", Namespace: sandbox.SystemNamespace}}}
	if err := sb.Client.Create(t.Context(), role); err != nil {
		t.Fatal(err)
	}
	if err := sb.Client.Create(t.Context(), binding); err != nil {
		t.Fatal(err)
	}
}

// httpsGet asks gateway g for https://host/api/error_page with SNI host,
// trusting only crt; it returns the status and the certificate's serial.
func httpsGet(t *testing.T, g sandbox.Gateway, host string, crt []byte) (int, int64, error) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(crt)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", g.HTTPSAddr)
		},
	}}
	res, err := c.Get("https://" + host + errorpage.Path)
	if err != nil {
		return 0, 0, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.Proto != "HTTP/2.0" {
		t.Errorf("HTTPS answer over %s, want HTTP/2.0 (h2 by ALPN)", res.Proto)
	}
	return res.StatusCode, res.TLS.PeerCertificates[0].SerialNumber.Int64(), nil
}

// TestTLSRelease: a Release whose stable Service names a TLS Secret
// (fledge.dev/tls-secret) is served over HTTPS by every gateway with that
// certificate, the gateway reading only that Secret (a Role with
// resourceNames); a changed Secret serves the next handshakes. A Secret whose
// key does not match, or one the gateway may not read, skips the route and
// is reported as a Warning event on the Release.
func TestTLSRelease(t *testing.T) {
	a := newApp(t, "tls-app")
	a.unpublishAtEnd(t)
	crt, key := issueCert(t, a.name, 1)
	a.tlsSecret(t, "tls-app-cert", crt, key, true)
	a.service(t, "v1", "v1", map[string]string{published: a.name, "fledge.dev/tls-secret": "tls-app-cert"})
	a.served(t, "v1", "", 0)
	for _, g := range sb.Gateways {
		code, serial, err := httpsGet(t, g, a.name, crt)
		if err != nil || code != http.StatusOK || serial != 1 {
			t.Errorf("gateway %s over HTTPS: %d, serial %d, %v; want 200 with serial 1", g.HTTPSAddr, code, serial, err)
		}
	}

	crt2, key2 := issueCert(t, a.name, 2)
	var sec corev1.Secret
	if err := sb.Client.Get(t.Context(), client.ObjectKey{Namespace: a.ns, Name: "tls-app-cert"}, &sec); err != nil {
		t.Fatal(err)
	}
	sec.Data = map[string][]byte{corev1.TLSCertKey: crt2, corev1.TLSPrivateKeyKey: key2}
	if err := sb.Client.Update(t.Context(), &sec); err != nil {
		t.Fatal(err)
	}
	for _, g := range sb.Gateways {
		deadline := time.Now().Add(15 * time.Second)
		for {
			code, serial, err := httpsGet(t, g, a.name, crt2)
			if err == nil && code == http.StatusOK && serial == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("gateway %s after the Secret changed: %d, serial %d, %v; want 200 with serial 2", g.HTTPSAddr, code, serial, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	t.Run("key mismatch", func(t *testing.T) {
		b := newApp(t, "tls-mismatch")
		b.unpublishAtEnd(t)
		crt, _ := issueCert(t, b.name, 3)
		_, other := issueCert(t, b.name, 4)
		b.tlsSecret(t, "bad-cert", crt, other, true)
		b.service(t, "v1", "v1", map[string]string{published: b.name, "fledge.dev/tls-secret": "bad-cert"})
		b.releaseWarning(t, "RouteRejected", "TLS Secret "+b.ns+"/bad-cert: tls.crt and tls.key", "private key does not match")
	})
	t.Run("not readable by the gateway", func(t *testing.T) {
		b := newApp(t, "tls-forbidden")
		b.unpublishAtEnd(t)
		crt, key := issueCert(t, b.name, 5)
		b.tlsSecret(t, "secret-cert", crt, key, false)
		b.service(t, "v1", "v1", map[string]string{published: b.name, "fledge.dev/tls-secret": "secret-cert"})
		b.releaseWarning(t, "RouteRejected", "TLS Secret "+b.ns+"/secret-cert cannot be read", "forbidden")
	})
}
