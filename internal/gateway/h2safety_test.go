package gateway

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	corev1 "k8s.io/api/core/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// h2Exchange sends one request as raw HTTP/2 frames on c (h2c prior
// knowledge or h2 after a TLS handshake): the headers fields (pseudo-headers
// first) and, when data is not nil, one DATA frame. It returns the response
// status (":status"), or the stream or connection error code the server
// ended the stream with.
func h2Exchange(t *testing.T, c net.Conn, fields [][2]string, data []byte) (status string, code http2.ErrCode) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range fields {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: data == nil}); err != nil {
		t.Fatal(err)
	}
	if data != nil {
		if err := fr.WriteData(1, true, data); err != nil {
			t.Fatal(err)
		}
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the answer: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == 1 {
				return f.PseudoValue("status"), 0
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				return "", f.ErrCode
			}
		case *http2.GoAwayFrame:
			return "", f.ErrCode
		}
	}
}

// bigHeaders returns n header fields of size bytes each.
func bigHeaders(n, size int) [][2]string {
	var out [][2]string
	for i := range n {
		out = append(out, [2]string{"x-big-" + strconv.Itoa(i), strings.Repeat("a", size)})
	}
	return out
}

// TestH2Refused: requests that HTTP/2 forbids — the framing of HTTP/1.1
// smuggled in (Transfer-Encoding, Connection), a body longer than its
// Content-Length, a header value with CR or LF, an oversized header list —
// are refused by the gateway over h2c and h2, and the backend never sees
// them (HTTP/1.1 framing headers get 400, as over HTTP/1.1; too large a
// header list 431; a malformed stream is reset); a valid request on a fresh connection after each still passes.
func TestH2Refused(t *testing.T) {
	var seen atomic.Int64
	be := newFastBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		seen.Add(1)
		_, _ = io.WriteString(w, "ok")
	})
	ca := newTestCA(t)
	crt, key := ca.issue(t, "web.example", 1)
	svc, slices := backendObjects(t, "web-stable", hostOf(t, be.URL))
	g := New(Options{H2C: true, MaxRequestHeaderBytes: 8 << 10})
	g.Update(t.Context(), Objects{
		TrafficRoutes: []*fledgev1.TrafficRoute{trafficRoute("web", "web.example", withTLS("web-tls"))},
		Services:      []*corev1.Service{svc}, EndpointSlices: slices,
		Secrets: []*corev1.Secret{tlsSecret("web-tls", "1", crt, key)},
	})
	httpsAddr, httpAddr := serveTLS(t, g)
	dials := map[string]func(t *testing.T) net.Conn{
		"h2c": func(t *testing.T) net.Conn {
			c, err := net.Dial("tcp", httpAddr)
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		"h2": func(t *testing.T) net.Conn {
			c, err := tls.Dial("tcp", httpsAddr, &tls.Config{ServerName: "web.example", RootCAs: ca.pool, NextProtos: []string{"h2"}})
			if err != nil {
				t.Fatal(err)
			}
			if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
				t.Fatalf("ALPN negotiated %q, want h2", p)
			}
			return c
		},
	}
	get := func(extra ...[2]string) [][2]string {
		return append([][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "web.example"}, {":path", "/"}}, extra...)
	}
	cases := []struct {
		name   string
		fields [][2]string
		data   []byte
		want   string // ":status", or "reset" for a stream or connection error
	}{
		{"Transfer-Encoding", get([2]string{"transfer-encoding", "chunked"}), []byte("0\r\n\r\n"), "400"},
		{"Connection", get([2]string{"connection", "keep-alive"}), nil, "400"},
		{"body longer than Content-Length", get([2]string{"content-length", "3"}), []byte("abcdefgh"), "reset"},
		{"CR LF in a header value", get([2]string{"x-a", "1\r\nx-b: 2"}), nil, "reset"},
		{"header list over the limit", get(bigHeaders(12, 1<<10)...), nil, "431"},
	}
	for proto, dial := range dials {
		for _, tc := range cases {
			t.Run(proto+"/"+tc.name, func(t *testing.T) {
				before := seen.Load()
				c := dial(t)
				defer c.Close()
				status, code := h2Exchange(t, c, tc.fields, tc.data)
				switch {
				case tc.want == "reset" && status != "":
					t.Errorf("answered %s, want the stream refused (RST_STREAM or GOAWAY)", status)
				case tc.want != "reset" && status != tc.want:
					t.Errorf("answered %q (error code %v), want %s", status, code, tc.want)
				}
				time.Sleep(50 * time.Millisecond) // a request let through would have reached the backend by now
				if n := seen.Load() - before; n != 0 {
					t.Errorf("the backend handled %d such requests, want 0", n)
				}
				c2 := dial(t)
				defer c2.Close()
				if status, code := h2Exchange(t, c2, get([2]string{"content-length", "2"}), []byte("hi")); status != "200" {
					t.Errorf("a valid request afterwards: status %q, error %v; want 200", status, code)
				}
			})
		}
	}
}
