package framing

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// scriptConn is a net.Conn whose client bytes are data, handed out at most
// step bytes a Read, and whose writes are kept.
type scriptConn struct {
	data    []byte
	step    int
	written bytes.Buffer
}

func (s *scriptConn) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), s.step)], s.data)
	s.data = s.data[n:]
	return n, nil
}

func (s *scriptConn) Write(p []byte) (int, error)      { return s.written.Write(p) }
func (s *scriptConn) Close() error                     { return nil }
func (s *scriptConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }
func (s *scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (s *scriptConn) SetDeadline(time.Time) error      { return nil }
func (s *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (s *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// seedStreams are client byte streams for FuzzWrap's seed corpus: each case
// of the server tests.
var seedStreams = []string{
	smuggle10,
	req("GET", "/a", "") + req("POST", "/b", "", "Content-Length: 5", "Transfer-Encoding: chunked") + "0\r\n\r\n",
	req("POST", "/b", "HTTP/1.0", "Transfer-Encoding: chunked") + "0\r\n\r\n",
	req("POST", "/b", "", "Transfer-Encoding: gzip, chunked"),
	req("POST", "/b", "", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked") + "0\r\n\r\n",
	req("POST", "/b", "", "Content-Length: 1", "Content-Length: 1") + "x",
	req("POST", "/b", "", "Content-Length: 1, 1") + "x",
	req("GET", "/b", "", "X-A: a", " b"),
	"GET /b HTTP/1.1\nHost: x\r\n\r\n",
	"GET /b HTTP/1.1\r\nHost: x\r\n\n",
	"GET /b HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
	req("POST", "/b", "", "Content-Length : 1") + "x",
	req("GET", "/b", "", ": 1"),
	req("GET", "/a", "") + req("POST", "/b", "", "Content-Length: 5") + "hello" + req("GET", "/c", ""),
	req("POST", "/a", "", "Transfer-Encoding: chunked") + "5\r\nhello\r\n6;ext=1;q=\"a b\"\r\n world\r\n0\r\n\r\n" +
		req("POST", "/b", "", "Transfer-Encoding: chunked") + "A  \r\n0123456789\r\n0\r\nX-Sum: 42\r\n\r\n" + req("GET", "/c", ""),
	req("POST", "/a", "HTTP/1.0", "Connection: keep-alive", "Content-Length: 2") + "hi" + req("GET", "/b", "HTTP/1.0"),
	req("POST", "/a", "", "Expect: 100-continue", "Content-Length: 4") + "data" + req("GET", "/b", ""),
	req("POST", "/a", "", "Content-Length: 1") + "x\r\n" + req("GET", "/b", ""),
	req("POST", "/a", "", "Transfer-Encoding: chunked") + "5\r\nhello\r\nzz\r\n0\r\n\r\n" + req("GET", "/after", ""),
	req("POST", "/a", "", "Transfer-Encoding: chunked") + "5\r\nhello\n0\r\n\r\n",
	req("POST", "/a", "", "Transfer-Encoding: chunked") + "0\r\nX-A: 1\r\n 2\r\n\r\n",
	req("GET", "/big", "", "X-Fill: "+strings.Repeat("f", 3000)),
	req("GET", "/up", "", "Upgrade: echo", "Connection: Upgrade") + "GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n\x00\xff",
	req("GET", "/a", "") + req("GET", "/up", "", "Upgrade: echo") + req("GET", "/next", "") +
		req("POST", "/bad", "", "Content-Length: 5", "Transfer-Encoding: chunked") + "0\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04",
}

func TestWriteSeedCorpus(t *testing.T) {
	if os.Getenv("FRAMING_WRITE_CORPUS") == "" {
		t.Skip("set FRAMING_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzWrap")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzWrap")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range seedStreams {
		for j, step := range []uint8{255, 6} {
			body := fmt.Sprintf("go test fuzz v1\nuint8(%d)\nbool(%t)\n[]byte(%q)\n", step, j == 0, s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d-%d", i, j)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// FuzzWrap reads a client stream through the wrapper, with reads of step+1
// bytes alternating with one-byte reads (as net/http's background read), and
// answers each undecided upgrade with 101 when accept, 200 otherwise. The
// bytes released must be the stream's own, in order, up to a refusal.
func FuzzWrap(f *testing.F) {
	f.Fuzz(runFuzzOnce)
}

func runFuzzOnce(t *testing.T, step uint8, accept bool, data []byte) {
	watchdog := time.AfterFunc(5*time.Second, func() { panic(fmt.Sprintf("hung on step %d accept %v %q", step, accept, data)) })
	defer watchdog.Stop()
	{
		inner := &scriptConn{data: data, step: int(step%32) + 1}
		c := Wrap(inner, Options{MaxHeadBytes: 1024}).(*conn)
		// A past deadline: a Read waiting for an upgrade's decision with a
		// full hold buffer fails at once instead of blocking.
		c.SetReadDeadline(time.Unix(1, 0))
		var out []byte
		buf := make([]byte, int(step)+1)
		for i := 0; i < 4*len(data)+16; i++ {
			size := len(buf)
			if i%3 == 2 {
				size = 1
			}
			n, err := c.Read(buf[:size])
			if n < 0 || n > size {
				t.Fatalf("Read returned %d for %d bytes", n, size)
			}
			out = append(out, buf[:n]...)
			if err == nil {
				continue
			}
			if !c.armed.Load() {
				break
			}
			status := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
			if accept {
				status = "HTTP/1.1 101 Switching Protocols\r\n\r\n"
			}
			c.Write([]byte(status))
		}
		released := out
		switch c.mode {
		case modeRefused:
			if !bytes.HasSuffix(out, []byte(cannedRequest)) {
				t.Fatalf("refused without the canned request; released %q", out)
			}
			released = out[:len(out)-len(cannedRequest)]
		case modeFailed:
			if _, err := c.Read(buf); err == nil {
				t.Fatal("Read after a malformed body did not fail")
			}
		}
		if !bytes.HasPrefix(data, released) {
			t.Fatalf("released bytes differ from the stream:\nstream   %q\nreleased %q", data, released)
		}
		held := len(c.buf) - c.r
		switch c.mode {
		case modeRefused, modeFailed:
		case modeHead, modeAwait:
			if len(released)+held != len(data) {
				t.Fatalf("released %d + held %d of %d bytes", len(released), held, len(data))
			}
		default:
			if len(released) != len(data) {
				t.Fatalf("mode %d: released %d of %d bytes", c.mode, len(released), len(data))
			}
		}
	}
}
