package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// testCA issues certificates for test hosts.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fledge test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns PEM certificate and key for host, with serial as its serial
// number (to tell reissued certificates apart).
func (ca *testCA) issue(t testing.TB, host string, serial int64) (crtPEM, keyPEM []byte) {
	t.Helper()
	return ca.issueNames(t, []string{host}, serial)
}

// issueNames is issue for a certificate naming all hosts.
func (ca *testCA) issueNames(t testing.TB, hosts []string, serial int64) (crtPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: hosts[0]}, DNSNames: hosts,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// tlsSecret returns a kubernetes.io/tls Secret in "shop".
func tlsSecret(name, rv string, crt, key []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, ResourceVersion: rv},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key},
	}
}

func withTLS(secret string) func(*fledgev1.TrafficRoute) {
	return func(tr *fledgev1.TrafficRoute) { tr.Spec.TLS = &fledgev1.RouteTLS{SecretName: secret} }
}

// serveTLS serves g on a plain and an HTTPS loopback listener until the
// test ends; it returns the HTTPS address.
func serveTLS(t *testing.T, g *Gateway) (httpsAddr, httpAddr string) {
	t.Helper()
	proxyLn, httpsLn, adminLn := listen(t), listen(t), listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- g.ServeListeners(ctx, Listeners{HTTP: proxyLn, HTTPS: httpsLn, Admin: adminLn}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return httpsLn.Addr().String(), proxyLn.Addr().String()
}

// httpsClient dials addr for every request, trusting ca, speaking h2 unless
// http1.
func httpsClient(addr string, ca *testCA, http1 bool) *http.Client {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(!http1)
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.pool},
		Protocols:       &p,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		},
	}, Timeout: 10 * time.Second}
}

// TestTLSTermination serves two hosts over HTTPS with their own
// certificates, chosen by SNI, over h2 and HTTP/1.1, and skips the routes
// whose Secret is unusable, naming it, without touching the others.
func TestTLSTermination(t *testing.T) {
	ca := newTestCA(t)
	aCrt, aKey := ca.issue(t, "a.example", 10)
	bCrt, bKey := ca.issue(t, "b.example", 20)
	_, otherKey := ca.issue(t, "c.example", 30)
	be := echoBackend(t, "v1")
	objs := Objects{Secrets: []*corev1.Secret{
		tlsSecret("a-tls", "1", aCrt, aKey),
		tlsSecret("b-tls", "1", bCrt, bKey),
		tlsSecret("no-key", "1", aCrt, nil),
		tlsSecret("no-cert", "1", nil, aKey),
		tlsSecret("not-a-cert", "1", []byte("hello"), aKey),
		tlsSecret("mismatch", "1", aCrt, otherKey),
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "opaque"}, Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{corev1.TLSCertKey: aCrt, corev1.TLSPrivateKeyKey: aKey}},
	}}
	bad := map[string]string{ // route -> what its problem must say
		"no-key":     "TLS Secret shop/no-key: has no tls.key",
		"no-cert":    "TLS Secret shop/no-cert: has no tls.crt",
		"not-a-cert": "TLS Secret shop/not-a-cert: tls.crt and tls.key:",
		"mismatch":   "TLS Secret shop/mismatch: tls.crt and tls.key: tls: private key does not match public key",
		"opaque":     `TLS Secret shop/opaque: has type "Opaque", want "kubernetes.io/tls"`,
		"missing":    "TLS Secret shop/missing not found",
	}
	add := func(name, host, secret string) {
		svc, slices := backendObjects(t, name+"-stable", hostOf(t, be.URL))
		objs.TrafficRoutes = append(objs.TrafficRoutes, trafficRoute(name, host, withTLS(secret)))
		objs.Services = append(objs.Services, svc)
		objs.EndpointSlices = append(objs.EndpointSlices, slices...)
	}
	add("a", "a.example", "a-tls")
	add("b", "b.example", "b-tls")
	for name := range bad {
		add(name, name+".example", name)
	}
	g := New(Options{})
	tb := g.Update(t.Context(), objs)
	problems := strings.Join(tb.Problems(), "\n")
	for name, want := range bad {
		if !strings.Contains(problems, "TrafficRoute shop/"+name+" skipped: "+want) {
			t.Errorf("problems lack route %s skipped with %q:\n%s", name, want, problems)
		}
		if _, ok := tb.Lookup(name + ".example"); ok {
			t.Errorf("route %s with a bad Secret is served", name)
		}
	}
	if strings.Contains(problems, "PRIVATE KEY") || strings.Contains(problems, string(aKey[30:60])) {
		t.Errorf("problems quote key material:\n%s", problems)
	}
	mfs := scrape(t, g)
	for name, want := range map[string]float64{
		"fledge_gateway_tls_certificates": 2, "fledge_gateway_tls_rejected_secrets": float64(len(bad)),
		"fledge_gateway_routes_skipped": float64(len(bad)), "fledge_gateway_routes": 2,
	} {
		if v, _ := sample(mfs, name, map[string]string{}); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if ri, _ := tb.Lookup("a.example"); ri.TLSSecret != "a-tls" {
		t.Errorf("/routes of a.example: tlsSecret %q, want a-tls", ri.TLSSecret)
	}

	addr, _ := serveTLS(t, g)
	for _, tc := range []struct {
		name   string
		host   string
		serial int64
		http1  bool
	}{
		{"a over h2", "a.example", 10, false},
		{"b over h2", "b.example", 20, false},
		{"a over HTTP/1.1", "a.example", 10, true},
		{"b over HTTP/1.1", "b.example", 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := httpsClient(addr, ca, tc.http1).Get("https://" + tc.host + "/x?y=1")
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var s seen
			if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
				t.Fatal(err)
			}
			wantProto := "HTTP/2.0"
			if tc.http1 {
				wantProto = "HTTP/1.1"
			}
			if res.Proto != wantProto {
				t.Errorf("protocol %s, want %s", res.Proto, wantProto)
			}
			if got := res.TLS.PeerCertificates[0].SerialNumber.Int64(); got != tc.serial {
				t.Errorf("certificate serial %d, want %d (the host's own)", got, tc.serial)
			}
			if res.TLS.Version < tls.VersionTLS12 {
				t.Errorf("TLS version %x, want 1.2 or newer", res.TLS.Version)
			}
			if s.Host != tc.host || s.URI != "/x?y=1" || s.XFProto != "https" || s.XFHost != tc.host {
				t.Errorf("backend saw %+v, want Host %s, URI /x?y=1, X-Forwarded-Proto https", s, tc.host)
			}
		})
	}

	t.Run("unknown server name fails the handshake", func(t *testing.T) {
		before, _ := sample(scrape(t, g), "fledge_gateway_tls_unknown_server_name_total", map[string]string{})
		_, err := httpsClient(addr, ca, false).Get("https://unknown.example/")
		if err == nil {
			t.Fatal("a handshake for a server name no route serves succeeded")
		}
		after, _ := sample(scrape(t, g), "fledge_gateway_tls_unknown_server_name_total", map[string]string{})
		if after != before+1 {
			t.Errorf("fledge_gateway_tls_unknown_server_name_total went %v -> %v, want +1", before, after)
		}
	})
	t.Run("TLS 1.1 is refused", func(t *testing.T) {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "a.example", RootCAs: ca.pool, MaxVersion: tls.VersionTLS11})
		if err == nil {
			c.Close()
			t.Fatal("a TLS 1.1 handshake succeeded")
		}
	})
	t.Run("plain HTTP still serves the TLS hosts", func(t *testing.T) {
		_, httpAddr := serveTLS(t, g)
		if a := httpGet(t, "http://"+httpAddr+"/", "a.example"); a.code != http.StatusOK || !strings.Contains(a.body, `"XFProto":"http"`) {
			t.Errorf("plain request to a.example: %d %s", a.code, a.body)
		}
	})
}

// TestTLSDefaultCertificate: a handshake whose server name no route serves
// gets the default certificate, and its request the 404 of an unknown host.
func TestTLSDefaultCertificate(t *testing.T) {
	ca := newTestCA(t)
	crt, key := ca.issue(t, "default.example", 99)
	g := New(Options{DefaultTLSSecret: "shop/default"})
	g.Update(t.Context(), Objects{Secrets: []*corev1.Secret{tlsSecret("default", "1", crt, key)}})
	addr, _ := serveTLS(t, g)
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "nobody.example", InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("handshake for an unknown name with a default certificate: %v", err)
	}
	serial := c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	c.Close()
	if serial != 99 {
		t.Errorf("certificate serial %d, want 99 (the default)", serial)
	}
	if err := (Options{DefaultTLSSecret: "default"}).Validate(); err == nil || !strings.Contains(err.Error(), "namespace/name") {
		t.Errorf("Validate of a default TLS Secret without namespace: %v, want an error asking for namespace/name", err)
	}
}

// TestTLSReload: a changed Secret serves the next handshakes with its new
// certificate, while a connection opened before keeps working.
func TestTLSReload(t *testing.T) {
	ca := newTestCA(t)
	crt1, key1 := ca.issue(t, "a.example", 1)
	crt2, key2 := ca.issue(t, "a.example", 2)
	be := echoBackend(t, "v1")
	svc, slices := backendObjects(t, "a-stable", hostOf(t, be.URL))
	objs := func(s *corev1.Secret) Objects {
		return Objects{
			TrafficRoutes: []*fledgev1.TrafficRoute{trafficRoute("a", "a.example", withTLS("a-tls"))},
			Services:      []*corev1.Service{svc}, EndpointSlices: slices, Secrets: []*corev1.Secret{s},
		}
	}
	g := New(Options{})
	g.Update(t.Context(), objs(tlsSecret("a-tls", "1", crt1, key1)))
	addr, _ := serveTLS(t, g)

	old := httpsClient(addr, ca, false) // keeps its h2 connection
	serialOf := func(c *http.Client) int64 {
		t.Helper()
		res, err := c.Get("https://a.example/")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status %d", res.StatusCode)
		}
		return res.TLS.PeerCertificates[0].SerialNumber.Int64()
	}
	if s := serialOf(old); s != 1 {
		t.Fatalf("serial %d before the change, want 1", s)
	}
	g.Update(t.Context(), objs(tlsSecret("a-tls", "2", crt2, key2)))
	if s := serialOf(httpsClient(addr, ca, false)); s != 2 {
		t.Errorf("new connection after the Secret changed: serial %d, want 2", s)
	}
	if s := serialOf(old); s != 1 {
		t.Errorf("connection opened before the change: serial %d, want 1 (the same connection)", s)
	}
	// A Secret broken later skips the route; the previous certificate is not kept.
	g.Update(t.Context(), objs(tlsSecret("a-tls", "3", crt2, key1)))
	if _, err := httpsClient(addr, ca, false).Get("https://a.example/"); err == nil {
		t.Error("a route whose Secret turned invalid is still served over HTTPS")
	}
}

// TestTLSRejectedSecretCountedOnce: two routes naming one bad Secret are
// both skipped, and the Secret is counted once.
func TestTLSRejectedSecretCountedOnce(t *testing.T) {
	be := echoBackend(t, "v1")
	var objs Objects
	for _, name := range []string{"a", "b"} {
		svc, slices := backendObjects(t, name+"-stable", hostOf(t, be.URL))
		objs.TrafficRoutes = append(objs.TrafficRoutes, trafficRoute(name, name+".example", withTLS("gone")))
		objs.Services = append(objs.Services, svc)
		objs.EndpointSlices = append(objs.EndpointSlices, slices...)
	}
	g := New(Options{})
	g.Update(t.Context(), objs)
	mfs := scrape(t, g)
	if v, _ := sample(mfs, "fledge_gateway_tls_rejected_secrets", map[string]string{}); v != 1 {
		t.Errorf("tls_rejected_secrets = %v, want 1", v)
	}
	if v, _ := sample(mfs, "fledge_gateway_routes_skipped", map[string]string{}); v != 2 {
		t.Errorf("routes_skipped = %v, want 2", v)
	}
}
