package main

// "benchgateway floor" is not fledge: it is the least an HTTP/1.1 proxy in Go
// does for the benchmark's requests when it is driven by readiness, as
// HAProxy is, instead of by goroutines parked in Go's poller. Each of
// GOMAXPROCS threads runs an epoll loop of its own over raw non-blocking
// descriptors: it accepts, reads a request head only when epoll said the
// client sent bytes, writes the rewritten head to a pooled backend
// connection, reads the response when epoll says it came, and writes it to
// the client. Idle backend connections stay in epoll, so that one the backend
// closed (or wrote to unasked) is dropped when that event comes, with no
// check per reuse. It serves only bodiless requests with a Content-Length
// response, splits 100-w/w by a counter and keeps none of the gateway's
// routing table, metrics, timeouts or limits. Its numbers are a floor: what
// reads driven by readiness could buy the gateway at most, measured in the
// same rounds as HAProxy and the gateway (variant "go epoll floor").

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// floorVariant is the name of the floor's variant.
const floorVariant = "go epoll floor"

func runFloor(args []string) error {
	fs := flag.NewFlagSet("benchgateway floor", flag.ContinueOnError)
	stable := fs.String("stable", "", "address:port of the stable (v1) pod")
	canary := fs.String("canary", "", "address:port of the canary (v2) pod")
	weight := fs.Int("weight", 10, "canary weight, percent")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	stop, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	var backends [2]syscall.SockaddrInet4
	for i, s := range []string{*stable, *canary} {
		ap, err := netip.ParseAddrPort(s)
		if err != nil || !ap.Addr().Is4() {
			return fmt.Errorf("backend %q: want an IPv4 address:port", s)
		}
		backends[i] = syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	if *weight < 0 || *weight > 100 {
		return fmt.Errorf("-weight %d: want 0..100", *weight)
	}
	lfd, err := syscall.Dup(3)
	if err != nil {
		return fmt.Errorf("listener (fd 3): %w", err)
	}
	if err := syscall.SetNonblock(lfd, true); err != nil {
		return err
	}
	// The admin listener (fd 4) serves go_memstats_mallocs_total, which the
	// benchmark reads as it does from the gateway.
	admin, err := net.FileListener(os.NewFile(4, "admin"))
	if err != nil {
		return fmt.Errorf("admin listener (fd 4): %w", err)
	}
	go http.Serve(admin, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(w, "go_memstats_mallocs_total %d\n", ms.Mallocs)
	}))
	split := &floorSplit{weight: uint64(*weight)}
	errs := make(chan error, runtime.GOMAXPROCS(0))
	for range runtime.GOMAXPROCS(0) {
		l, err := newFloorLoop(lfd, backends, split)
		if err != nil {
			return err
		}
		go func() { errs <- l.run() }()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
		return nil
	case err := <-errs:
		return err
	}
}

// floorSplit sends weight of every 100 requests to the canary, in a fixed
// order (the benchmark's split check counts exactly weight of 100).
type floorSplit struct {
	weight uint64
	n      atomic.Uint64
}

func (s *floorSplit) canary() bool { return (s.n.Add(1)-1)%100 < s.weight }

const floorBuf = 8 << 10

type floorLoop struct {
	ep       int
	lfd      int
	backends [2]syscall.SockaddrInet4
	split    *floorSplit
	conns    map[int32]*floorConn
	idle     [2][]*floorConn // backend connections in no exchange
	events   [128]syscall.EpollEvent
}

// floorConn is a client or a backend connection of one loop.
type floorConn struct {
	fd      int
	backend int  // backend index; -1 for a client
	idle    bool // a backend connection in the pool
	close   bool // a client: close after the response
	buf     []byte
	n       int
	peer    *floorConn // the client's backend connection in an exchange, and back
	pending []byte     // a request to write once a new backend connection is up
}

func newFloorLoop(lfd int, backends [2]syscall.SockaddrInet4, split *floorSplit) (*floorLoop, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	l := &floorLoop{ep: ep, lfd: lfd, backends: backends, split: split, conns: map[int32]*floorConn{}}
	const epollExclusive = 1 << 28
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | epollExclusive, Fd: int32(lfd)}
	if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, lfd, &ev); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *floorLoop) run() error {
	runtime.LockOSThread()
	for {
		n, err := syscall.EpollWait(l.ep, l.events[:], -1)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return err
		}
		for i := range n {
			ev := l.events[i]
			if int(ev.Fd) == l.lfd {
				l.accept()
				continue
			}
			c := l.conns[ev.Fd]
			if c == nil {
				continue
			}
			switch {
			case c.backend < 0:
				if ev.Events&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR|syscall.EPOLLRDHUP) != 0 {
					l.clientReadable(c)
				}
			case c.idle:
				if ev.Events&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR|syscall.EPOLLRDHUP) != 0 {
					l.dropIdle(c) // closed, or bytes nobody asked for
				}
			default:
				if c.pending != nil && ev.Events&(syscall.EPOLLOUT|syscall.EPOLLERR|syscall.EPOLLHUP) != 0 {
					l.connected(c)
				}
				if c.pending == nil && ev.Events&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR|syscall.EPOLLRDHUP) != 0 {
					l.backendReadable(c)
				}
			}
		}
	}
}

func (l *floorLoop) add(c *floorConn) error {
	const edgeTriggered = 1 << 31 // EPOLLET
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP | edgeTriggered, Fd: int32(c.fd)}
	if err := syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		syscall.Close(c.fd)
		return err
	}
	l.conns[int32(c.fd)] = c
	return nil
}

func (l *floorLoop) closeConn(c *floorConn) {
	delete(l.conns, int32(c.fd))
	syscall.Close(c.fd) // leaves epoll with its last descriptor
	c.fd = -1
}

func (l *floorLoop) accept() {
	for {
		fd, _, err := syscall.Accept4(l.lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN: another loop took it, or none is left
		}
		_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		_ = l.add(&floorConn{fd: fd, backend: -1, buf: make([]byte, floorBuf)})
	}
}

func (l *floorLoop) clientReadable(c *floorConn) {
	m, err := rawRead(c.fd, c.buf[c.n:])
	if m <= 0 {
		if err != syscall.EAGAIN {
			if bc := c.peer; bc != nil {
				bc.peer = nil
				l.closeConn(bc)
			}
			l.closeConn(c)
		}
		return
	}
	c.n += m
	if c.peer == nil {
		l.serve(c) // else a pipelined request, served after the response
	}
}

// serve forwards the request whose head is buffered in c, if it is all
// there.
func (l *floorLoop) serve(c *floorConn) {
	head := c.buf[:c.n]
	end := bytes.Index(head, crlfcrlf)
	if end < 0 {
		if c.n == len(c.buf) {
			l.closeConn(c)
		}
		return
	}
	head = head[:end+4]
	out, closing, ok := floorRequest(head)
	if !ok {
		_, _ = rawWrite(c.fd, []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
		l.closeConn(c)
		return
	}
	c.close = closing
	c.n = copy(c.buf, c.buf[len(head):c.n])
	b := 0
	if l.split.canary() {
		b = 1
	}
	var bc *floorConn
	if k := len(l.idle[b]); k > 0 {
		bc = l.idle[b][k-1]
		l.idle[b] = l.idle[b][:k-1]
		bc.idle = false
	} else {
		var err error
		if bc, err = l.dial(b); err != nil {
			l.fail(c)
			return
		}
	}
	bc.peer, c.peer = c, bc
	if bc.pending != nil {
		bc.pending = append(bc.pending[:0], out...)
		return
	}
	if m, err := rawWrite(bc.fd, out); err != nil || m != len(out) {
		l.closeConn(bc)
		l.fail(c)
	}
}

func (l *floorLoop) dial(b int) (*floorConn, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	sa := l.backends[b]
	if err := syscall.Connect(fd, &sa); err != nil && err != syscall.EINPROGRESS {
		syscall.Close(fd)
		return nil, err
	}
	bc := &floorConn{fd: fd, backend: b, buf: make([]byte, floorBuf), pending: []byte{}}
	if err := l.add(bc); err != nil {
		return nil, err
	}
	return bc, nil
}

// connected writes the request that waited for bc's connection.
func (l *floorLoop) connected(bc *floorConn) {
	if len(bc.pending) == 0 {
		return // not yet asked to send anything
	}
	if e, _ := syscall.GetsockoptInt(bc.fd, syscall.SOL_SOCKET, syscall.SO_ERROR); e != 0 {
		c := bc.peer
		l.closeConn(bc)
		l.fail(c)
		return
	}
	out := bc.pending
	bc.pending = nil
	if m, err := rawWrite(bc.fd, out); err != nil || m != len(out) {
		c := bc.peer
		l.closeConn(bc)
		l.fail(c)
	}
}

func (l *floorLoop) backendReadable(bc *floorConn) {
	c := bc.peer
	if c == nil {
		l.dropIdle(bc)
		return
	}
	m, err := rawRead(bc.fd, bc.buf[bc.n:])
	if m <= 0 {
		if err == syscall.EAGAIN {
			return
		}
		l.closeConn(bc)
		l.fail(c)
		return
	}
	bc.n += m
	resp := bc.buf[:bc.n]
	end := bytes.Index(resp, crlfcrlf)
	if end < 0 {
		if bc.n == len(bc.buf) {
			l.closeConn(bc)
			l.fail(c)
		}
		return
	}
	length, keep, ok := floorResponse(resp[:end+4])
	total := end + 4 + length
	if !ok || total > len(bc.buf) {
		l.closeConn(bc)
		l.fail(c)
		return
	}
	if bc.n < total {
		return // the rest of the body is to come
	}
	if bc.n > total {
		keep = false // bytes after the response: nobody asked for them
	}
	out := floorClientHead(c.buf[c.n:c.n], resp[:end+4], c.close)
	out = append(out, resp[end+4:total]...)
	bc.n, bc.peer, c.peer = 0, nil, nil
	if keep {
		bc.idle = true
		l.idle[bc.backend] = append(l.idle[bc.backend], bc)
	} else {
		l.closeConn(bc)
	}
	if m, err := rawWrite(c.fd, out); err != nil || m != len(out) || c.close {
		l.closeConn(c)
		return
	}
	if c.n > 0 {
		l.serve(c) // a pipelined request
	}
}

func (l *floorLoop) dropIdle(bc *floorConn) {
	p := l.idle[bc.backend]
	for i, x := range p {
		if x == bc {
			l.idle[bc.backend] = append(p[:i], p[i+1:]...)
			break
		}
	}
	l.closeConn(bc)
}

// fail answers 502 and closes the client connection.
func (l *floorLoop) fail(c *floorConn) {
	if c == nil || c.fd < 0 {
		return
	}
	_, _ = rawWrite(c.fd, []byte("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
	l.closeConn(c)
}

var crlfcrlf = []byte("\r\n\r\n")

// floorRequest rewrites a request head as the gateway does (hop-by-hop
// headers and client-sent X-Forwarded-* left out, X-Forwarded-* set); it
// refuses a request with a body.
func floorRequest(head []byte) (out []byte, closing, ok bool) {
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	if !bytes.HasSuffix(line, []byte(" HTTP/1.1")) {
		return nil, false, false
	}
	out = make([]byte, 0, len(head)+96)
	out = append(out, line...)
	out = append(out, "\r\n"...)
	var host []byte
	for len(rest) > 2 {
		var h []byte
		h, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, found := bytes.Cut(h, []byte(":"))
		if !found {
			return nil, false, false
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Host")):
			host = value
		case bytes.EqualFold(name, []byte("Connection")):
			closing = bytes.EqualFold(value, []byte("close"))
			continue
		case bytes.EqualFold(name, []byte("Content-Length")), bytes.EqualFold(name, []byte("Transfer-Encoding")):
			if !bytes.Equal(value, []byte("0")) {
				return nil, false, false
			}
		case bytes.EqualFold(name, []byte("Keep-Alive")), bytes.EqualFold(name, []byte("X-Forwarded-For")),
			bytes.EqualFold(name, []byte("X-Forwarded-Host")), bytes.EqualFold(name, []byte("X-Forwarded-Proto")):
			continue
		}
		out = append(out, h...)
		out = append(out, "\r\n"...)
	}
	if host == nil {
		return nil, false, false
	}
	out = append(out, "X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Host: "...)
	out = append(out, host...)
	out = append(out, "\r\nX-Forwarded-Proto: http\r\n\r\n"...)
	return out, closing, true
}

// floorResponse reads a response head's Content-Length and whether the
// backend keeps the connection.
func floorResponse(head []byte) (length int, keep, ok bool) {
	_, rest, _ := bytes.Cut(head, []byte("\r\n"))
	length, keep = -1, true
	for len(rest) > 2 {
		var h []byte
		h, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, _ := bytes.Cut(h, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.Atoi(string(value))
			if err != nil || n < 0 {
				return 0, false, false
			}
			length = n
		case bytes.EqualFold(name, []byte("Connection")):
			keep = !bytes.EqualFold(value, []byte("close"))
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, false, false
		}
	}
	return length, keep, length >= 0
}

// floorClientHead appends the response head for the client to dst: the
// backend's lines but Connection and Keep-Alive, and Connection: close when
// the client asked for it.
func floorClientHead(dst, head []byte, closing bool) []byte {
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	dst = append(dst, line...)
	dst = append(dst, "\r\n"...)
	for len(rest) > 2 {
		var h []byte
		h, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, _, _ := bytes.Cut(h, []byte(":"))
		if bytes.EqualFold(name, []byte("Connection")) || bytes.EqualFold(name, []byte("Keep-Alive")) {
			continue
		}
		dst = append(dst, h...)
		dst = append(dst, "\r\n"...)
	}
	if closing {
		dst = append(dst, "Connection: close\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// rawRead and rawWrite are read(2) and write(2) on a non-blocking descriptor,
// without the scheduler's bookkeeping for calls that may block.
func rawRead(fd int, p []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafePointer(p)), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

func rawWrite(fd int, p []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafePointer(p)), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

func unsafePointer(p []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(p)) }
