package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// protocolBackend is the HTTP/1.1 backend of TestProtocols. /slow and
// /stream wait for release.
type protocolBackend struct {
	addr    string
	mu      sync.Mutex
	release map[string]chan struct{}
	arrived chan string
}

func (b *protocolBackend) gate(id string) chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.release[id]
	if c == nil {
		c = make(chan struct{})
		b.release[id] = c
	}
	return c
}

// open releases the requests waiting on id.
func (b *protocolBackend) open(id string) {
	c := b.gate(id)
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-c:
	default:
		close(c)
	}
}

func newProtocolBackend(t *testing.T) *protocolBackend {
	b := &protocolBackend{release: map[string]chan struct{}{}, arrived: make(chan string, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"xff": r.Header.Values("X-Forwarded-For"), "xfproto": r.Header.Get("X-Forwarded-Proto"),
			"xfhost": r.Header.Get("X-Forwarded-Host"), "proxyAuth": r.Header.Get("Proxy-Authorization"),
			"keepAlive": r.Header.Get("Keep-Alive"), "host": r.Host,
		})
	})
	mux.HandleFunc("/hop", func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Bar")
		h.Set("X-Bar", "hop")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("X-End", "kept")
	})
	mux.HandleFunc("/trailer", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		_, _ = io.WriteString(w, "body")
		w.Header().Set("X-Checksum", "abc123")
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-b.gate(r.URL.Query().Get("id"))
		_, _ = io.WriteString(w, "second\n")
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		b.arrived <- r.URL.Query().Get("id")
		<-b.gate(r.URL.Query().Get("id"))
		_, _ = io.WriteString(w, "finished")
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		line, _ := brw.ReadString('\n')
		_, _ = brw.WriteString("echo: " + line)
		_ = brw.Flush()
	})
	srv := newFastBackend(t, mux.ServeHTTP)
	b.addr = hostOf(t, srv.URL)
	t.Cleanup(func() { // before srv.Close, which waits for the handlers
		b.mu.Lock()
		defer b.mu.Unlock()
		for id, c := range b.release {
			select {
			case <-c:
			default:
				close(c)
			}
			delete(b.release, id)
		}
	})
	return b
}

// protocolClient is one client protocol of the table.
type protocolClient struct {
	name   string
	id     string // name as a query value
	proto  string // as the client sees the response
	scheme string // X-Forwarded-Proto the backend must see
	do     func(t *testing.T, req *http.Request) (*http.Response, error)
	// dial opens an HTTP/1.1 connection for an Upgrade; nil when the
	// protocol has none (HTTP/2 has no Upgrade).
	dial func(t *testing.T) net.Conn
}

// TestProtocols runs each forwarding behaviour against HTTP/1.1, h2 (TLS,
// ALPN) and h2c clients of one gateway: hop-by-hop headers stripped both
// ways, X-Forwarded-* replaced, response trailers passed on, streamed bodies
// flushed, the gateway's own 404/502/503, WebSocket (HTTP/1.1 Upgrade, also
// over TLS), and requests in flight finishing while the gateway drains.
//
// The plain listener's HTTP/1.1 clients are served by the event loops
// (Linux), and in a second run by the connection loop alone.
func TestProtocols(t *testing.T) {
	t.Run("event loops", func(t *testing.T) { testProtocols(t, false) })
	t.Run("connection loop", func(t *testing.T) { testProtocols(t, true) })
}

func testProtocols(t *testing.T, disableEventLoops bool) {
	ca := newTestCA(t)
	hosts := []string{"web.example", "down.example", "empty.example", "nobody.example"}
	crt, key := ca.issueNames(t, hosts, 7)
	be := newProtocolBackend(t)
	svc, slices := backendObjects(t, "web-stable", be.addr)
	downSvc, downSlices := backendObjects(t, "down-stable", refusedAddr(t))
	emptySvc := service("empty-stable")
	g := New(Options{H2C: true, DrainTimeout: 10 * time.Second, DisableEventLoops: disableEventLoops})
	g.Update(t.Context(), Objects{
		TrafficRoutes: []*fledgev1.TrafficRoute{
			trafficRoute("web", "web.example", withTLS("all-tls")),
			trafficRoute("down", "down.example", withTLS("all-tls")),
			trafficRoute("empty", "empty.example", withTLS("all-tls")),
		},
		Services:       []*corev1.Service{svc, downSvc, emptySvc},
		EndpointSlices: append(slices, downSlices...),
		Secrets:        []*corev1.Secret{tlsSecret("all-tls", "1", crt, key)},
	})
	proxyLn, httpsLn, adminLn := listen(t), listen(t), listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- g.ServeListeners(ctx, Listeners{HTTP: proxyLn, HTTPS: httpsLn, Admin: adminLn}) }()
	httpAddr, httpsAddr := proxyLn.Addr().String(), httpsLn.Addr().String()

	// sni is the server name of a TLS request for host: the host, but
	// web.example for the unknown host (an unknown server name fails the
	// handshake; a known one with another Host gets the 404).
	sni := func(host string) string {
		if host == "nobody.example" {
			return "web.example"
		}
		return host
	}
	plain := &http.Client{Timeout: 10 * time.Second}
	var h2cp http.Protocols
	h2cp.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: &h2cp}, Timeout: 10 * time.Second}
	h2 := httpsClient(httpsAddr, ca, false)
	h1tls := httpsClient(httpsAddr, ca, true)
	to := func(c *http.Client, addr, scheme string) func(*testing.T, *http.Request) (*http.Response, error) {
		return func(_ *testing.T, req *http.Request) (*http.Response, error) {
			req.URL.Scheme, req.URL.Host = scheme, addr
			return c.Do(req)
		}
	}
	clients := []protocolClient{
		{name: "HTTP/1.1", id: "h1", proto: "HTTP/1.1", scheme: "http", do: to(plain, httpAddr, "http"),
			dial: func(t *testing.T) net.Conn {
				c, err := net.Dial("tcp", httpAddr)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}},
		{name: "HTTP/1.1 over TLS", id: "h1tls", proto: "HTTP/1.1", scheme: "https",
			do: func(t *testing.T, req *http.Request) (*http.Response, error) {
				req.URL.Scheme, req.URL.Host = "https", sni(req.Host)
				return h1tls.Do(req)
			},
			dial: func(t *testing.T) net.Conn {
				c, err := tls.Dial("tcp", httpsAddr, &tls.Config{ServerName: "web.example", RootCAs: ca.pool, NextProtos: []string{"http/1.1"}})
				if err != nil {
					t.Fatal(err)
				}
				return c
			}},
		{name: "h2", id: "h2", proto: "HTTP/2.0", scheme: "https", do: func(t *testing.T, req *http.Request) (*http.Response, error) {
			req.URL.Scheme, req.URL.Host = "https", sni(req.Host) // dialled to httpsAddr
			return h2.Do(req)
		}},
		{name: "h2c", id: "h2c", proto: "HTTP/2.0", scheme: "http", do: to(h2c, httpAddr, "http")},
	}
	newReq := func(host, path string) *http.Request {
		req, err := http.NewRequest(http.MethodGet, "http://"+host+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		return req
	}

	for _, pc := range clients {
		t.Run(pc.name, func(t *testing.T) {
			exchange := func(t *testing.T, req *http.Request) (*http.Response, string) {
				t.Helper()
				res, err := pc.do(t, req)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				if res.Proto != pc.proto {
					t.Errorf("answered over %s, want %s", res.Proto, pc.proto)
				}
				return res, string(body)
			}
			t.Run("X-Forwarded and hop-by-hop request headers", func(t *testing.T) {
				req := newReq("web.example", "/echo")
				req.Header.Set("X-Forwarded-For", "6.6.6.6")
				req.Header.Set("X-Forwarded-Proto", "gopher")
				req.Header.Set("Proxy-Authorization", "Basic c2VjcmV0")
				_, body := exchange(t, req)
				var seen struct {
					XFF                              []string
					XFProto, XFHost, ProxyAuth, Host string
				}
				if err := json.Unmarshal([]byte(body), &seen); err != nil {
					t.Fatalf("%v: %s", err, body)
				}
				if len(seen.XFF) != 1 || seen.XFF[0] != "127.0.0.1" || seen.XFProto != pc.scheme ||
					seen.XFHost != "web.example" || seen.ProxyAuth != "" || seen.Host != "web.example" {
					t.Errorf("backend saw %+v; want X-Forwarded-For [127.0.0.1], -Proto %s, -Host web.example, no Proxy-Authorization", seen, pc.scheme)
				}
			})
			t.Run("hop-by-hop response headers", func(t *testing.T) {
				res, _ := exchange(t, newReq("web.example", "/hop"))
				for _, h := range []string{"X-Bar", "Keep-Alive", "Proxy-Authenticate"} {
					if v := res.Header.Get(h); v != "" {
						t.Errorf("client got hop-by-hop %s: %s", h, v)
					}
				}
				if res.Header.Get("X-End") != "kept" {
					t.Errorf("end-to-end header lost: %v", res.Header)
				}
			})
			t.Run("trailers", func(t *testing.T) {
				res, body := exchange(t, newReq("web.example", "/trailer"))
				if body != "body" || res.Trailer.Get("X-Checksum") != "abc123" {
					t.Errorf("body %q trailer %v, want \"body\" with X-Checksum abc123", body, res.Trailer)
				}
			})
			t.Run("streaming", func(t *testing.T) {
				id := pc.id + "-stream"
				res, err := pc.do(t, newReq("web.example", "/stream?id="+id))
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				br := bufio.NewReader(res.Body)
				first, err := br.ReadString('\n') // before the backend finishes
				if err != nil || first != "first\n" {
					t.Fatalf("first chunk %q, %v", first, err)
				}
				be.open(id)
				rest, err := io.ReadAll(br)
				if err != nil || string(rest) != "second\n" {
					t.Errorf("rest %q, %v", rest, err)
				}
			})
			for _, c := range []struct {
				host, what string
				code       int
			}{
				{"nobody.example", "unknown host", http.StatusNotFound},
				{"down.example", "backend refuses connections", http.StatusBadGateway},
				{"empty.example", "no ready endpoint", http.StatusServiceUnavailable},
			} {
				t.Run(c.what, func(t *testing.T) {
					if res, _ := exchange(t, newReq(c.host, "/")); res.StatusCode != c.code {
						t.Errorf("status %d, want %d", res.StatusCode, c.code)
					}
				})
			}
			t.Run("WebSocket", func(t *testing.T) {
				if pc.dial == nil {
					t.Skip("HTTP/2 has no Upgrade; WebSocket clients use HTTP/1.1 (ALPN http/1.1 over TLS)")
				}
				c := pc.dial(t)
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				_, _ = io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: web.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
				br := bufio.NewReader(c)
				res, err := http.ReadResponse(br, nil)
				if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
					t.Fatalf("upgrade: %v %v", res, err)
				}
				_, _ = io.WriteString(c, "hello\n")
				if line, err := br.ReadString('\n'); err != nil || line != "echo: hello\n" {
					t.Errorf("over the upgraded connection: %q, %v", line, err)
				}
			})
		})
	}

	// Drain: one request in flight per protocol finishes after shutdown began.
	type result struct {
		name, body string
		code       int
		err        error
	}
	results := make(chan result, len(clients))
	for _, pc := range clients {
		go func() {
			res, err := pc.do(t, newReq("web.example", "/slow?id=drain-"+pc.id))
			r := result{name: pc.name, err: err}
			if err == nil {
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				r.code, r.body = res.StatusCode, string(b)
			}
			results <- r
		}()
	}
	for range clients {
		select {
		case <-be.arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("the drain requests did not all arrive")
		}
	}
	cancel()
	<-g.drainStarted
	time.Sleep(100 * time.Millisecond) // let Shutdown begin closing idle connections
	for _, pc := range clients {
		be.open("drain-" + pc.id)
	}
	for range clients {
		r := <-results
		if r.err != nil || r.code != http.StatusOK || r.body != "finished" {
			t.Errorf("drain, %s: %d %q %v; want 200 \"finished\"", r.name, r.code, r.body, r.err)
		}
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if c, err := net.Dial("tcp", httpsAddr); err == nil {
		c.Close()
		t.Error("HTTPS listener still accepts after Serve returned")
	}
}
