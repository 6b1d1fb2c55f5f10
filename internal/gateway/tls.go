package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fledge-dev/fledge/internal/gateway/framing"
)

// TLS termination: each TrafficRoute with spec.tls is served on the HTTPS
// listener with the certificate of its kubernetes.io/tls Secret, chosen by
// the client's SNI from the routing table in effect (so a changed Secret
// takes effect for the next handshake, and connections already open keep
// theirs). An unknown or missing server name gets the default certificate
// (Options.DefaultTLSSecret) or, without one, a failed handshake.

// errNoCertificate fails a handshake whose server name no route serves when
// there is no default certificate.
var errNoCertificate = errors.New("no certificate for this server name")

// parsedCert is a Secret's certificate as parsed by a build, kept while the
// Secret's resourceVersion stays the same.
type parsedCert struct {
	resourceVersion string
	cert            *tls.Certificate
	problem         string
}

// loadCert returns the certificate of the Secret namespace/name, or why it
// cannot serve (a problem naming the Secret and what is wrong). Parsed
// certificates are carried over in next while the Secret is unchanged.
func (g *Gateway) loadCert(ctx context.Context, src source, namespace, name string, next *buildState) (*tls.Certificate, string) {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	if pc, ok := next.certs[key]; ok {
		return pc.cert, pc.problem
	}
	sec, err := src.secret(ctx, namespace, name)
	pc := &parsedCert{}
	switch {
	case err != nil:
		pc.problem = fmt.Sprintf("TLS Secret %s/%s %v", namespace, name, err)
	case sec == nil:
		pc.problem = fmt.Sprintf("TLS Secret %s/%s not found", namespace, name)
	default:
		pc.resourceVersion = sec.ResourceVersion
		if prev, ok := g.state.certs[key]; ok && prev.resourceVersion != "" && prev.resourceVersion == sec.ResourceVersion {
			pc = prev
			break
		}
		pc.cert, err = parseTLSSecret(sec)
		if err != nil {
			pc.problem = fmt.Sprintf("TLS Secret %s/%s: %v", namespace, name, err)
		}
	}
	next.certs[key] = pc
	return pc.cert, pc.problem
}

// parseTLSSecret returns the certificate of a kubernetes.io/tls Secret. Its
// errors never quote the key.
func parseTLSSecret(sec *corev1.Secret) (*tls.Certificate, error) {
	if sec.Type != corev1.SecretTypeTLS {
		return nil, fmt.Errorf("has type %q, want %q", sec.Type, corev1.SecretTypeTLS)
	}
	crt, key := sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey]
	switch {
	case len(crt) == 0:
		return nil, fmt.Errorf("has no %s", corev1.TLSCertKey)
	case len(key) == 0:
		return nil, fmt.Errorf("has no %s", corev1.TLSPrivateKeyKey)
	}
	cert, err := tls.X509KeyPair(crt, key)
	if err != nil {
		return nil, fmt.Errorf("%s and %s: %w", corev1.TLSCertKey, corev1.TLSPrivateKeyKey, err)
	}
	return &cert, nil
}

// parseSecretRef parses "namespace/name".
func parseSecretRef(s string) (types.NamespacedName, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, fmt.Errorf("TLS Secret %q: want namespace/name", s)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}

// getCertificate picks the certificate of a handshake from the table in
// effect: the route of the server name, else the default one.
func (g *Gateway) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	t := g.table.Load()
	if t == nil {
		return nil, errNoCertificate
	}
	if c := t.certs[normalizeHost(hello.ServerName)]; c != nil {
		return c, nil
	}
	if t.defaultCert != nil {
		return t.defaultCert, nil
	}
	g.metrics.tlsUnknownName.Inc()
	return nil, errNoCertificate
}

// tlsConfig is the HTTPS listener's configuration: Go's defaults, TLS 1.2 or
// newer, h2 and http/1.1 offered by ALPN.
func (g *Gateway) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: g.getCertificate,
	}
}

// tlsListener terminates TLS on the connections of its inner listener. The
// handshakes run concurrently (each bounded by timeout), so that a slow
// client does not hold up the others. A connection that negotiated h2 is
// handed out as it is; an HTTP/1.x one gets the framing checks (package
// framing) over its plaintext. Both are tlsServedConns, whose state
// ServeHTTP puts into Request.TLS.
type tlsListener struct {
	net.Listener
	config  *tls.Config
	timeout time.Duration
	framing framing.Options
	onError func(error)

	conns     chan net.Conn
	done      chan struct{} // closed by Close
	closeOnce sync.Once
	// acceptDone is closed when the inner listener failed, with err.
	acceptDone chan struct{}
	err        error
}

func newTLSListener(ln net.Listener, config *tls.Config, timeout time.Duration, fo framing.Options, onError func(error)) *tlsListener {
	l := &tlsListener{Listener: ln, config: config, timeout: timeout, framing: fo, onError: onError,
		conns: make(chan net.Conn), done: make(chan struct{}), acceptDone: make(chan struct{})}
	go l.acceptLoop()
	return l
}

func (l *tlsListener) acceptLoop() {
	defer close(l.acceptDone) // not conns: handshakes may still be sending
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			l.err = err
			return
		}
		go l.handshake(c)
	}
}

func (l *tlsListener) handshake(c net.Conn) {
	tc := tls.Server(c, l.config)
	_ = tc.SetDeadline(time.Now().Add(l.timeout))
	if err := tc.Handshake(); err != nil {
		_ = tc.Close()
		if l.onError != nil {
			l.onError(err)
		}
		return
	}
	_ = tc.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	var inner net.Conn = tc
	if st.NegotiatedProtocol != "h2" {
		inner = framing.Wrap(tc, l.framing)
	}
	sc := &tlsServedConn{Conn: inner, state: st}
	select {
	case l.conns <- sc:
	case <-l.done:
		_ = sc.Close()
	case <-l.acceptDone:
		_ = sc.Close()
	}
}

// Accept returns the next connection whose handshake succeeded.
func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-l.acceptDone:
		return nil, l.err
	}
}

func (l *tlsListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// tlsServedConn is a TLS connection's plaintext with its state. net/http
// does not see a *tls.Conn (the handshake is done, and HTTP/2 is served on
// it as on h2c), so Gateway.Serve's ConnContext carries the state to
// ServeHTTP.
type tlsServedConn struct {
	net.Conn
	state tls.ConnectionState
}

// CloseWrite sends a close_notify, so that net/http's graceful close works.
func (c *tlsServedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

type tlsStateKey struct{}

// connContext remembers the TLS state of a connection of the HTTPS listener.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if sc, ok := c.(*tlsServedConn); ok {
		return context.WithValue(ctx, tlsStateKey{}, &sc.state)
	}
	return ctx
}
