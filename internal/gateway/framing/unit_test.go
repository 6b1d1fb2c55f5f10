package framing

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestStatusWatch(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   int32
	}{
		{"101", []string{"HTTP/1.1 101 Switching Protocols\r\n\r\n"}, decPass},
		{"101 one byte a write", strings.Split("HTTP/1.1 101 Switching Protocols\r\n\r\n", ""), decPass},
		{"200", []string{"HTTP/1.1 200 OK\r\n\r\n"}, decResume},
		{"400 on HTTP/1.0", []string{"HTTP/1.0 400 Bad Request\r\n\r\n"}, decResume},
		{"100 then 101", []string{"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n"}, decPass},
		{"100 then 400", []string{"HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n\r\n"}, decResume},
		{"103 with CR inside headers then 101", []string{"HTTP/1.1 103 Early Hints\r\nLink: <\r>\r\n\r\nHTTP/1.1 101 x\r\n\r\n"}, decPass},
		{"100 alone", []string{"HTTP/1.1 100 Continue\r\n\r\n"}, decNone},
		{"status line cut short", []string{"HTTP/1.1 10"}, decNone},
		{"not HTTP", []string{"garbage garbage"}, decResume},
		{"status code not digits", []string{"HTTP/1.1 1x1 Switching\r\n\r\n"}, decResume},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w statusWatch
			got := decNone
			for _, s := range tt.writes {
				if got = w.feed([]byte(s)); got != decNone {
					break
				}
			}
			if got != tt.want {
				t.Fatalf("decision = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestChunkStateSplits(t *testing.T) {
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", true},
		{"extensions, upper-case hex, trailers", "A;a=b;c=\"d e\"\r\n0123456789\r\n1f \r\n" + strings.Repeat("x", 31) + "\r\n0;z\r\nX-A: 1\r\nX-B:\r\n\r\n", true},
		{"sixteen digits", "0000000000000001\r\nx\r\n0\r\n\r\n", true},
		{"seventeen digits", "00000000000000001\r\nx\r\n0\r\n\r\n", false},
		{"no digits", ";x\r\n", false},
		{"LF alone after size", "1\nx\r\n0\r\n\r\n", false},
		{"CR alone after size", "1\rx\r\n0\r\n\r\n", false},
		{"data not followed by CRLF", "1\r\nxy\r\n", false},
		{"DEL in extension", "1;\x7f\r\nx\r\n0\r\n\r\n", false},
		{"trailer folded", "0\r\nX: 1\r\n\t2\r\n\r\n", false},
		{"trailer empty name", "0\r\n: 1\r\n\r\n", false},
		{"trailer control character", "0\r\nX: \x01\r\n\r\n", false},
		{"bare LF ending", "0\r\n\n", false},
		{"trailer too long", "0\r\nX: " + strings.Repeat("t", maxTrailer) + "\r\n\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every way of cutting the body in two gives the same answer.
			for cut := 0; cut <= len(tt.body); cut++ {
				var s chunkState
				n1, done, err := s.feed([]byte(tt.body[:cut]))
				total := n1
				if err == nil && !done {
					var n2 int
					n2, done, err = s.feed([]byte(tt.body[cut:]))
					total += n2
				}
				if tt.ok && (err != nil || !done || total != len(tt.body)) {
					t.Fatalf("cut %d: consumed %d of %d, done %v, err %v", cut, total, len(tt.body), done, err)
				}
				if !tt.ok && !errors.Is(err, ErrMalformedBody) {
					t.Fatalf("cut %d: err %v, done %v, want ErrMalformedBody", cut, err, done)
				}
			}
		})
	}
}

func TestHeadScanIncremental(t *testing.T) {
	tests := []struct {
		name string
		head string
		want error
		body int
	}{
		{"GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", nil, bodyNone},
		{"chunked", "POST / HTTP/1.1\r\ntransfer-encoding: CHUNKED\r\n\r\n", nil, bodyChunked},
		{"length", "POST / HTTP/1.1\r\nContent-Length:\t7\t\r\n\r\n", nil, bodyLength},
		{"CR at a line end split", "GET / HTTP/1.1\r\nX-A: 1\r\r\n\r\n", ErrBadLineEnding, 0},
		{"CR mid line", "GET / HTTP/1.1\r\nX-A: 1\rx\r\n\r\n", ErrBadLineEnding, 0},
		{"bare LF", "GET / HTTP/1.1\r\nX-A: 1\n\r\n", ErrBadLineEnding, 0},
		{"folding", "GET / HTTP/1.1\r\nX-A: 1\r\n 2\r\n\r\n", ErrObsFold, 0},
		{"both lengths", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n", ErrAmbiguousLength, 0},
		{"HTTP/1.0 chunked", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", ErrTransferEncoding10, 0},
		{"HTTP/3.1", "GET / HTTP/3.1\r\n\r\n", ErrUnsupportedVersion, 0},
		{"HTTP/1.10", "GET / HTTP/1.10\r\n\r\n", ErrBadRequestLine, 0},
		{"two spaces", "GET  / HTTP/1.1\r\n\r\n", ErrBadRequestLine, 0},
		{"control character in target", "GET /\x01 HTTP/1.1\r\n\r\n", ErrBadRequestLine, 0},
		{"method not a token", "G(T / HTTP/1.1\r\n\r\n", ErrBadRequestLine, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Whole, then one byte more at a time: the same answer.
			for _, whole := range []bool{true, false} {
				var h headState
				var res headResult
				err := errHeadIncomplete
				for n := 1; n <= len(tt.head) && err == errHeadIncomplete; n++ {
					if whole {
						n = len(tt.head)
					}
					res, err = h.scan([]byte(tt.head[:n]), false)
				}
				if err != tt.want {
					t.Fatalf("whole %v: err %v, want %v", whole, err, tt.want)
				}
				if err == nil && (res.n != len(tt.head) || res.body != tt.body) {
					t.Fatalf("whole %v: head of %d bytes, body %d; want %d, %d", whole, res.n, res.body, len(tt.head), tt.body)
				}
			}
		})
	}
}

func TestCloseWritePassedThrough(t *testing.T) {
	tests := []struct {
		name  string
		inner func(t *testing.T) net.Conn
		want  bool
	}{
		{"TCP connection", func(t *testing.T) net.Conn {
			ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			c, err := (&net.Dialer{}).DialContext(t.Context(), "tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			return c
		}, true},
		{"pipe", func(*testing.T) net.Conn { c, _ := net.Pipe(); return c }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Wrap(tt.inner(t), Options{})
			defer c.Close()
			cw, ok := c.(interface{ CloseWrite() error })
			if ok != tt.want {
				t.Fatalf("has CloseWrite = %v, want %v", ok, tt.want)
			}
			if ok {
				if err := cw.CloseWrite(); err != nil {
					t.Fatalf("CloseWrite: %v", err)
				}
			}
		})
	}
}

// TestUndecidedUpgradeWaits fills the hold buffer after an upgrade request
// and checks that Read then waits for the response's decision or the read
// deadline, whichever comes first.
func TestUndecidedUpgradeWaits(t *testing.T) {
	const head = "GET /up HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\n\r\n"
	tests := []struct {
		name     string
		write    string // written 50ms later, if not empty
		deadline time.Duration
		wantErr  bool
	}{
		{"101 written", "HTTP/1.1 101 Switching Protocols\r\n\r\n", 0, false},
		{"200 written", "HTTP/1.1 200 OK\r\n\r\n", 0, false},
		{"deadline passes", "", 50 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner := &scriptConn{data: []byte(head + strings.Repeat("GET /next HTTP/1.1\r\nHost: a\r\n\r\n", 200)), step: 4096}
			c := Wrap(inner, Options{MaxHeadBytes: 1024})
			buf := make([]byte, 4096)
			if n, err := c.Read(buf); err != nil || string(buf[:n]) != head {
				t.Fatalf("first Read = %q, %v; want the upgrade head", buf[:n], err)
			}
			if tt.deadline > 0 {
				c.SetReadDeadline(time.Now().Add(tt.deadline))
			}
			written := make(chan time.Time, 1)
			if tt.write != "" {
				go func() {
					time.Sleep(50 * time.Millisecond)
					written <- time.Now()
					c.Write([]byte(tt.write))
				}()
			}
			start := time.Now()
			n, err := c.Read(buf)
			if tt.wantErr {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() || n != 0 {
					t.Fatalf("Read = %d, %v; want a timeout", n, err)
				}
				if time.Since(start) < tt.deadline {
					t.Fatalf("Read returned after %v, before the deadline", time.Since(start))
				}
				return
			}
			if err != nil || !strings.HasPrefix(string(buf[:n]), "GET /next HTTP/1.1\r\n") {
				t.Fatalf("Read = %q, %v", buf[:n], err)
			}
			select {
			case <-written:
			default:
				t.Fatal("Read released held bytes before the response was written")
			}
		})
	}
}

func TestCheckHead(t *testing.T) {
	for _, tc := range []struct {
		head string
		n    int
		more bool
		err  error
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET", 27, false, nil},
		{"GET / HTTP/1.1\r\nHost: a\r\n", 0, false, nil},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", 47, true, nil},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 47, false, nil},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 56, true, nil},
		{"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", 47, true, nil},
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 18, true, nil},
		{"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 0, false, ErrBadContentLength},
		{"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 0, false, ErrAmbiguousLength},
		{"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 0, false, ErrObsFold},
		{"GET / HTTP/1.1\nHost: a\r\n\r\n", 0, false, ErrBadLineEnding},
	} {
		n, more, err := CheckHead([]byte(tc.head))
		if n != tc.n || more != tc.more || err != tc.err {
			t.Errorf("CheckHead(%q) = %d, %v, %v; want %d, %v, %v", tc.head, n, more, err, tc.n, tc.more, tc.err)
		}
	}
}
