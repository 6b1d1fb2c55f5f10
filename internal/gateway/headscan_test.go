package gateway

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHeadScanner: the Connection values of the final head are kept (also
// when the header says close, across reads and obs-fold lines), 1xx heads
// are passed over, and the bytes of the heads are told from the body's.
func TestHeadScanner(t *testing.T) {
	tests := map[string]struct {
		wire     string
		wantConn []string
		tail     string // the bytes after the heads
		wantLen  int64
		chunked  bool
	}{
		"no Connection": {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", nil, "ok", 2, false},
		"close and a name": {"HTTP/1.1 200 OK\r\nConnection: close, X-A\r\nContent-Length: 2\r\n\r\nok",
			[]string{"close, X-A"}, "ok", 2, false},
		"two fields, any case": {"HTTP/1.1 200 OK\r\nconnection: close\r\nCONNECTION: x-b\r\n\r\n",
			[]string{"close", "x-b"}, "", -1, false},
		"obs-fold continues": {"HTTP/1.1 200 OK\r\nConnection: close,\r\n X-C\r\n\r\n", []string{"close, X-C"}, "", -1, false},
		"1xx heads first": {"HTTP/1.1 100 Continue\r\nConnection: X-Not\r\n\r\nHTTP/1.1 103 Early\r\n\r\nHTTP/1.1 204 No Content\r\nConnection: X-Yes\r\n\r\nrest",
			[]string{"X-Yes"}, "rest", -1, false},
		"chunked": {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", nil, "2\r\nok\r\n0\r\n\r\n", -1, true},
		"bare LF": {"HTTP/1.1 200 OK\nConnection: close, X-D\nContent-Length: 0\n\n", []string{"close, X-D"}, "", 0, false},
	}
	for name, tc := range tests {
		for _, step := range []int{1, 7, 1 << 20} { // bytes per read
			t.Run(name, func(t *testing.T) {
				var s headScanner
				s.reset()
				heads := 0
				for rest := []byte(tc.wire); len(rest) > 0 && !s.done; {
					k := min(step, len(rest))
					heads += s.feed(rest[:k])
					rest = rest[k:]
				}
				conn, err := s.finalConnection()
				if err != nil {
					t.Fatal(err)
				}
				if strings.Join(conn, "|") != strings.Join(tc.wantConn, "|") {
					t.Errorf("step %d: Connection %q, want %q", step, conn, tc.wantConn)
				}
				if want := len(tc.wire) - len(tc.tail); heads != want || s.length != tc.wantLen || s.chunked != tc.chunked {
					t.Errorf("step %d: heads %d bytes, length %d, chunked %v; want %d, %d, %v", step, heads, s.length, s.chunked, want, tc.wantLen, tc.chunked)
				}
			})
		}
	}
}

// TestScanConnCutsAtResponseEnd: bytes a backend sends past the end of its
// response, or while no request waits, never reach the Transport's reader,
// and the connection then fails (so the Transport drops it rather than
// handing them to the next request).
func TestScanConnCutsAtResponseEnd(t *testing.T) {
	const leak = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nLEAKED"
	tests := map[string]struct {
		method, answer string
		wantBody       string
		wantPoisoned   bool
	}{
		"exact Content-Length":        {"GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", false},
		"bytes after Content-Length":  {"GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + leak, "ok", true},
		"body on a HEAD":              {"HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n" + leak, "", true},
		"body on a 204":               {"GET", "HTTP/1.1 204 No Content\r\n\r\n" + leak, "", true},
		"exact chunked":               {"GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n", "ok", false},
		"bytes after the last chunk":  {"GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n" + leak, "ok", true},
		"100 Continue, then response": {"GET", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			defer server.Close()
			sc := &scanConn{Conn: client, limit: 1 << 20}
			go func() {
				br := bufio.NewReader(server)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				_, _ = io.WriteString(server, tc.answer) // one write, as one segment
			}()
			go func() { _, _ = io.WriteString(sc, tc.method+" / HTTP/1.1\r\nHost: x\r\n\r\n") }()
			br := bufio.NewReader(sc)
			req := &http.Request{Method: tc.method}
			resp, err := http.ReadResponse(br, req)
			for err == nil && resp.StatusCode == http.StatusContinue {
				resp, err = http.ReadResponse(br, req)
			}
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil || string(body) != tc.wantBody {
				t.Fatalf("body %q, %v; want %q", body, err, tc.wantBody)
			}
			if n := br.Buffered(); n != 0 {
				t.Errorf("%d bytes past the response reached the reader", n)
			}
			_ = client.SetDeadline(time.Now().Add(100 * time.Millisecond))
			_, werr := sc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
			if poisoned := errors.Is(werr, errUnsolicited); poisoned != tc.wantPoisoned {
				t.Errorf("next write: %v; want poisoned %v", werr, tc.wantPoisoned)
			}
		})
	}
	t.Run("bytes while no request waits", func(t *testing.T) {
		client, server := net.Pipe()
		defer client.Close()
		defer server.Close()
		sc := &scanConn{Conn: client, limit: 1 << 20}
		go func() { _, _ = io.WriteString(server, leak) }()
		buf := make([]byte, 64)
		if n, err := sc.Read(buf); n != 0 || !errors.Is(err, errUnsolicited) {
			t.Errorf("read %d bytes, %v; want none and errUnsolicited", n, err)
		}
		if _, err := sc.Write([]byte("GET / HTTP/1.1\r\n\r\n")); !errors.Is(err, errUnsolicited) {
			t.Errorf("write after: %v, want errUnsolicited", err)
		}
	})
}
