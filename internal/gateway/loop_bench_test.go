package gateway

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"strconv"
	"testing"
	"time"
)

// rawBackend is a minimal keep-alive HTTP/1.1 server answering every
// request with the same small response, so that a benchmark measures the
// gateway rather than its backend. It handles requests without a body only.
func rawBackend(tb testing.TB, body string) string {
	tb.Helper()
	res := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	return serveConns(tb, func(c net.Conn) {
		buf := make([]byte, 8192)
		n := 0
		for {
			m, err := c.Read(buf[n:])
			if err != nil {
				return
			}
			n += m
			for {
				i := bytes.Index(buf[:n], crlfcrlf)
				if i < 0 {
					break
				}
				if _, err := c.Write(res); err != nil {
					return
				}
				n = copy(buf, buf[i+4:n])
			}
			if n == len(buf) {
				return
			}
		}
	})
}

// BenchmarkLoop measures keep-alive HTTP/1.1 requests through the gateway
// (ServeListeners) to a minimal backend, each parallel client on its own
// connection: what one request costs end to end over loopback, allocations
// included, served by the event loops and by the goroutine path. The
// clients and the backend are goroutines of the same process, so the event
// loops' case also measures how well the rest of the process runs beside
// them.
func BenchmarkLoop(b *testing.B) {
	b.Run("loops", func(b *testing.B) { benchmarkLoop(b, Options{}) })
	b.Run("goroutines", func(b *testing.B) { benchmarkLoop(b, Options{DisableEventLoops: true}) })
}

func benchmarkLoop(b *testing.B, opts Options) {
	const body = `{"error": "injected by error_page service", "version": "v1"}`
	g := singleRoute(b, opts, rawBackend(b, body))
	proxyLn, adminLn := listen(b), listen(b)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- g.ServeListeners(ctx, Listeners{HTTP: proxyLn, Admin: adminLn}) }()
	b.Cleanup(func() {
		cancel()
		<-served
	})
	req := []byte("GET /api/error_page HTTP/1.1\r\nHost: web.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", proxyLn.Addr().String())
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Minute))
		br := bufio.NewReader(c)
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			if err := readSmallResponse(br, len(body)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// readSmallResponse reads one 200 response whose body is n bytes long
// (Content-Length framing).
func readSmallResponse(br *bufio.Reader, n int) error {
	status, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200 ")) {
		return &benchError{"status " + string(status)}
	}
	length := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if length != n {
		return &benchError{"Content-Length " + strconv.Itoa(length)}
	}
	_, err = br.Discard(n)
	return err
}

type benchError struct{ s string }

func (e *benchError) Error() string { return e.s }
