package framing

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// BenchmarkWrapKeepAlive sends requests one after the other on one keep-alive
// connection to a net/http server, over the raw and the wrapped listener.
// Allocations are the whole process's (server and client) per request.
func BenchmarkWrapKeepAlive(b *testing.B) {
	for _, kind := range []struct {
		name string
		req  string
	}{
		{"GET", "GET /x HTTP/1.1\r\nHost: example.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"},
		{"POST-1KiB", "POST /x HTTP/1.1\r\nHost: example.test\r\nContent-Length: 1024\r\n\r\n" + strings.Repeat("b", 1024)},
		{"POST-chunked", "POST /x HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"400\r\n" + strings.Repeat("b", 1024) + "\r\n0\r\n\r\n"},
	} {
		for _, wrapped := range []bool{false, true} {
			name := kind.name + "/raw"
			if wrapped {
				name = kind.name + "/wrapped"
			}
			b.Run(name, func(b *testing.B) { benchKeepAlive(b, kind.req, wrapped) })
		}
	}
}

func benchKeepAlive(b *testing.B, request string, wrapped bool) {
	ln, err := (&net.ListenConfig{}).Listen(b.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	if wrapped {
		ln = NewListener(ln, Options{})
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header()["Content-Length"] = []string{"2"}
		io.WriteString(w, "ok")
	})}
	go srv.Serve(ln)
	defer srv.Close()
	c, err := (&net.Dialer{}).DialContext(b.Context(), "tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReader(c)
	reqBytes := []byte(request)
	var body [2]byte
	roundTrip := func() {
		if _, err := c.Write(reqBytes); err != nil {
			b.Fatal(err)
		}
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			if len(line) == 2 {
				break
			}
		}
		if _, err := io.ReadFull(br, body[:]); err != nil || string(body[:]) != "ok" {
			b.Fatalf("body %q, %v", body, err)
		}
	}
	for range 100 { // warm up pools
		roundTrip()
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(request)))
	b.ResetTimer()
	for range b.N {
		roundTrip()
	}
}

// loopConn hands out the same message again and again, at most one whole
// message a Read, as a client sending one request at a time.
type loopConn struct {
	scriptConn
	msg []byte
	off int
}

func (l *loopConn) Read(p []byte) (int, error) {
	n := copy(p, l.msg[l.off:])
	l.off = (l.off + n) % len(l.msg)
	return n, nil
}

// BenchmarkWrapRead measures the wrapper alone: reading pipelined requests
// through it, without a network or a server.
func BenchmarkWrapRead(b *testing.B) {
	for _, kind := range []struct{ name, req string }{
		{"GET", "GET /x HTTP/1.1\r\nHost: example.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"},
		{"POST-chunked", "POST /x HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"400\r\n" + strings.Repeat("b", 1024) + "\r\n0\r\n\r\n"},
	} {
		for _, wrapped := range []bool{false, true} {
			name := kind.name + "/raw"
			if wrapped {
				name = kind.name + "/wrapped"
			}
			b.Run(name, func(b *testing.B) {
				var c net.Conn = &loopConn{msg: []byte(kind.req)}
				if wrapped {
					c = Wrap(c, Options{})
				}
				buf := make([]byte, 4096) // as net/http's bufio.Reader
				b.ReportAllocs()
				b.SetBytes(int64(len(kind.req)))
				for range b.N {
					for n := 0; n < len(kind.req); {
						k, err := c.Read(buf)
						if err != nil {
							b.Fatal(err)
						}
						n += k
					}
				}
			})
		}
	}
}
