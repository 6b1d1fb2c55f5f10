package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/go-logr/logr"

	"github.com/fledge-dev/fledge/internal/gateway/framing"
)

// Event loops (Linux). The plain HTTP listener's clients are served by
// event loops, one per P (GOMAXPROCS, which then gets one P more for the
// rest of the process: see loopProcs): each is a goroutine waiting in an
// epoll set of its own over raw non-blocking descriptors, as HAProxy's
// threads do (not locked to its thread: a yield, see evYield, then costs
// no switch of threads). A loop reads a client's bytes
// only when epoll says they came, so no read finds nothing, and no
// goroutine parks or wakes per request. It serves the plainest exchange
// itself: a bodiless GET the connection loop would serve (framing checked
// by package framing, handOffReason, parse), routed, split and sent to a
// backend connection of the loop's own, and a plainHead response with a
// Content-Type (writeThrough's case) that arrives whole in the backend
// buffer. Idle backend connections stay in the epoll set: an event on one
// (the backend closed it, or sent bytes nobody asked for) drops it, so it
// needs no probe before reuse.
//
// Everything else is handed to the goroutine path (h1Conn, which hands to
// net/http's server what it does not serve), with every byte not consumed:
//
//   - before anything was sent to a backend (another method, a body, an
//     upgrade, a framing refusal, a head larger than the buffer, no route,
//     no endpoint, an overloaded endpoint, a failed connect), the client
//     connection, which then serves the request as if the loop had never
//     seen it;
//   - after the request was sent (a response that is not a plainHead, a
//     body larger than the buffer, a response that does not come within
//     ResponseHeaderTimeout, a backend that closes a new connection without
//     answering), the client connection together with the exchange: the
//     backend connection and the response bytes read so far (resumed).
//
// A connection handed on stays with the goroutine path until it closes.
// Timeouts are checked every evSweep: they end up to that much later than
// configured.

// evSweep is how often a loop checks its connections' timeouts.
const evSweep = 250 * time.Millisecond

// evYield is how often a loop yields its P (runtime.Gosched: whatever
// else waits for a P runs, else the loop goes on at once). A goroutine
// that has not yielded for 10 ms (its system calls do not count) is
// preempted by the runtime with a signal; a loop yields before that.
const evYield = 5 * time.Millisecond

// evBackendBuffer is the size of a loop's backend connection buffer: a
// response larger than that is handed on.
const evBackendBuffer = 16 << 10

// evServer serves one plain HTTP listener with event loops.
type evServer struct {
	g   *Gateway
	h1  *h1Server // serves the connections handed on
	fo  framing.Options
	ln  net.Listener
	lfd int // a duplicate of ln's descriptor
	log logr.Logger

	loops []*evLoop
	wg    sync.WaitGroup
	// open counts the client connections open (in loops and handed on),
	// at most max; blocked tells that a loop stopped accepting at max.
	open     atomic.Int64
	max      int64
	blocked  atomic.Bool
	shutting atomic.Bool
	closing  atomic.Bool
	// unlistened counts loops that left the listener for good; the last
	// one closes lfd.
	unlistened atomic.Int32
	done       chan struct{}
}

// newEventServer returns the event loops' server of ln, nil when ln is not
// a TCP listener or the loops cannot be set up (the goroutine path then
// serves it).
func (g *Gateway) newEventServer(h1 *h1Server, fo framing.Options, ln net.Listener, log logr.Logger) server {
	if g.opts.DisableFastPath || g.opts.DisableEventLoops {
		return nil
	}
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return nil
	}
	lfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) { lfd, derr = dupCloexec(int(fd)) }); err != nil || derr != nil {
		log.Info("event loops not available, serving with goroutines", "error", errors.Join(err, derr).Error())
		return nil
	}
	s := &evServer{g: g, h1: h1, fo: fo, ln: ln, lfd: lfd, log: log, max: int64(g.opts.MaxClientConns), done: make(chan struct{})}
	for range reserveProcs() {
		l, err := newEvLoop(s)
		if err != nil {
			for _, l := range s.loops {
				l.closeFDs()
			}
			releaseProcs()
			_ = syscall.Close(lfd)
			log.Info("event loops not available, serving with goroutines", "error", err.Error())
			return nil
		}
		s.loops = append(s.loops, l)
	}
	return s
}

func dupCloexec(fd int) (int, error) {
	nfd, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if e != 0 {
		return -1, e
	}
	return int(nfd), nil
}

// Serve runs the loops until Shutdown or Close; ln is the listener given
// to newEventServer.
func (s *evServer) Serve(net.Listener) error {
	for _, l := range s.loops {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			l.run()
		}()
	}
	s.wg.Wait()
	releaseProcs()
	close(s.done)
	return http.ErrServerClosed
}

// loopProcs counts the event servers running. A loop holds its P even
// while it waits in epoll_wait (a system call the scheduler cannot see
// through), so with one loop per P nothing else would have a P to run on
// but the ones sysmon takes back from a waiting loop, after 20 µs to
// 10 ms: every goroutine of the process (TLS and HTTP/2 connections,
// the connections handed on, the admin server, the API server's watch,
// the garbage collector's workers) would wait that long at each wake-up.
// So while any server runs, GOMAXPROCS is one more than the loops: the
// loops take the Ps GOMAXPROCS gave when the first server started, and
// the extra P runs the rest (and the network poller). It costs nothing
// while the rest is idle; the OS shares the CPUs when it is not.
var loopProcs struct {
	sync.Mutex
	servers int
	loops   int
}

// reserveProcs returns how many loops a server runs and raises GOMAXPROCS
// by one if no server runs yet.
func reserveProcs() int {
	loopProcs.Lock()
	defer loopProcs.Unlock()
	if loopProcs.servers == 0 {
		loopProcs.loops = runtime.GOMAXPROCS(0)
		runtime.GOMAXPROCS(loopProcs.loops + 1)
	}
	loopProcs.servers++
	return loopProcs.loops
}

// releaseProcs undoes reserveProcs: the last server to stop puts
// GOMAXPROCS back, unless someone else changed it meanwhile.
func releaseProcs() {
	loopProcs.Lock()
	defer loopProcs.Unlock()
	if loopProcs.servers--; loopProcs.servers == 0 && runtime.GOMAXPROCS(0) == loopProcs.loops+1 {
		runtime.GOMAXPROCS(loopProcs.loops)
	}
}

// Shutdown stops accepting, closes idle connections, lets the others finish
// their request (answered with Connection: close), and waits for them and
// for the connections handed on until ctx is done.
func (s *evServer) Shutdown(ctx context.Context) error {
	s.begin()
	select {
	case <-s.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.h1.Shutdown(ctx)
}

// Close closes the listener and every connection.
func (s *evServer) Close() error {
	s.closing.Store(true)
	s.begin()
	return s.h1.Close()
}

func (s *evServer) begin() {
	if !s.shutting.Swap(true) {
		_ = s.ln.Close()
	}
	s.wakeAll()
}

func (s *evServer) wakeAll() {
	for _, l := range s.loops {
		l.wake()
	}
}

// reserve takes a client connection's place, false at MaxClientConns.
func (s *evServer) reserve() bool {
	if s.open.Add(1) > s.max {
		s.open.Add(-1)
		return false
	}
	return true
}

// release gives a client connection's place back, and wakes the loops
// that stopped accepting.
func (s *evServer) release() {
	if s.open.Add(-1) < s.max && s.blocked.CompareAndSwap(true, false) {
		s.wakeAll()
	}
}

// evHandler is what a loop knows by descriptor: a client or a backend
// connection.
type evHandler interface {
	event(l *evLoop, ev uint32)
}

// evLoop is one event loop.
type evLoop struct {
	s            *evServer
	g            *Gateway
	ep           int
	wakeR, wakeW int
	woken        atomic.Bool
	// mu orders wake against closeFDs (a closed pipe's number may be
	// reused); closed is set by closeFDs.
	mu     sync.Mutex
	closed bool
	// served counts the requests the loop sent itself (tests read it).
	served    atomic.Uint64
	listening bool
	left      bool // left the listener for good (shutting down)
	fds       []evHandler
	// load counts the loop's client connections, those passed to it by
	// another loop and not yet taken from inbox included.
	load    atomic.Int64
	inboxMu sync.Mutex
	inbox   []evAccepted
	exited  bool // inbox closed: the loop ended
	pools   map[*connPool]*evPool
	events  [128]syscall.EpollEvent
	now     time.Time
	swept   time.Time
	yielded time.Time
	sink    byteSink
	bw      *bufio.Writer
	ph      plainHead
	scan    headScanner // the Connection values of a head to write through
	ctx     context.Context
}

// evPool is a loop's idle connections to one endpoint.
type evPool struct {
	p    *connPool
	sa   syscall.Sockaddr // nil: the address is not an IP literal
	idle []*evBackend     // most recently used last
}

const (
	epollET        = 1 << 31
	epollExclusive = 1 << 28
	evRead         = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLHUP | syscall.EPOLLERR
)

func newEvLoop(s *evServer) (*evLoop, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		_ = syscall.Close(ep)
		return nil, fmt.Errorf("pipe2: %w", err)
	}
	l := &evLoop{s: s, g: s.g, ep: ep, wakeR: p[0], wakeW: p[1], pools: map[*connPool]*evPool{}, ctx: s.h1.ctx}
	l.bw = bufio.NewWriterSize(&l.sink, 4<<10)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | epollET, Fd: int32(l.wakeR)}
	if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, l.wakeR, &ev); err != nil {
		l.closeFDs()
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	if err := l.listen(); err != nil {
		l.closeFDs()
		return nil, fmt.Errorf("epoll_ctl (listener): %w", err)
	}
	return l, nil
}

func (l *evLoop) closeFDs() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	_ = syscall.Close(l.ep)
	_ = syscall.Close(l.wakeR)
	_ = syscall.Close(l.wakeW)
}

// listen adds the listener to the loop's set: level-triggered, one loop
// woken per connection (EPOLLEXCLUSIVE).
func (l *evLoop) listen() error {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | epollExclusive, Fd: int32(l.s.lfd)}
	if err := syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, l.s.lfd, &ev); err != nil {
		return err
	}
	l.listening = true
	return nil
}

func (l *evLoop) unlisten() {
	if l.listening {
		_ = syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_DEL, l.s.lfd, nil)
		l.listening = false
	}
}

// wake makes the loop look at the server's state (shutting down, or
// accepting again) soon.
func (l *evLoop) wake() {
	if l.woken.Swap(true) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		_, _ = rawWrite(l.wakeW, []byte{1})
	}
}

func (l *evLoop) run() {
	defer l.closeFDs()
	l.now = time.Now()
	l.swept, l.yielded = l.now, l.now
	for {
		if l.now.Sub(l.yielded) >= evYield {
			l.yielded = l.now
			runtime.Gosched()
		}
		n, err := syscall.EpollWait(l.ep, l.events[:], int(evSweep/time.Millisecond))
		l.now = time.Now()
		if err != nil && !errors.Is(err, syscall.EINTR) {
			l.s.log.Error(err, "event loop failed")
			l.takeInbox(true)
			l.closeAll()
			return
		}
		for i := range max(n, 0) {
			ev := l.events[i]
			switch fd := int(ev.Fd); {
			case fd == l.s.lfd && l.listening:
				l.accept()
			case fd == l.wakeR:
				l.woken.Store(false)
				var b [64]byte
				for {
					if m, _ := rawRead(l.wakeR, b[:]); m <= 0 {
						break
					}
				}
				l.takeInbox(false)
				l.checkState()
			case fd < len(l.fds) && l.fds[fd] != nil:
				l.fds[fd].event(l, ev.Events)
			}
		}
		if l.now.Sub(l.swept) >= evSweep {
			l.swept = l.now
			l.sweep()
			l.checkState()
		}
		if l.s.closing.Load() || (l.left && l.load.Load() == 0) {
			l.takeInbox(true)
			l.closeAll()
			return
		}
	}
}

// checkState follows the server's state: leaving the listener and closing
// idle clients when shutting down, listening again when a place freed.
func (l *evLoop) checkState() {
	s := l.s
	if s.shutting.Load() {
		if !l.left {
			l.unlisten()
			l.left = true
			if s.unlistened.Add(1) == int32(len(s.loops)) {
				_ = syscall.Close(s.lfd)
			}
		}
		for _, h := range l.fds {
			if c, ok := h.(*evClient); ok && c.idle() {
				l.closeClient(c)
			}
		}
		return
	}
	if !l.listening && s.open.Load() < s.max {
		if err := l.listen(); err == nil {
			l.accept() // level-triggered: the backlog is offered again anyway
		}
	}
}

func (l *evLoop) closeAll() {
	for _, h := range l.fds {
		switch h := h.(type) {
		case *evClient:
			l.closeClient(h)
		case *evBackend:
			l.closeBackend(h)
		}
	}
}

func evEvents(out bool) uint32 {
	ev := uint32(syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET)
	if out {
		ev |= syscall.EPOLLOUT
	}
	return ev
}

// watchOut changes whether fd is watched for writing.
func (l *evLoop) watchOut(fd int, out bool) {
	ev := syscall.EpollEvent{Events: evEvents(out), Fd: int32(fd)}
	_ = syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_MOD, fd, &ev)
}

func (l *evLoop) set(fd int, h evHandler) {
	if fd >= len(l.fds) {
		l.fds = append(l.fds, make([]evHandler, fd+1-len(l.fds)+64)...)
	}
	l.fds[fd] = h
}

// add adds fd to the loop's set, edge-triggered, for reading, and for
// writing when out. A descriptor is watched for writing only while a write
// waits (a connect, a client that does not read): otherwise every
// acknowledgement that frees send buffer space would wake the loop.
func (l *evLoop) add(fd int, h evHandler, out bool) error {
	ev := syscall.EpollEvent{Events: evEvents(out), Fd: int32(fd)}
	if err := syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return err
	}
	l.set(fd, h)
	return nil
}

// accept accepts a few connections (the others are offered again: the
// listener is level-triggered, and another loop may take them).
func (l *evLoop) accept() {
	for range 8 {
		if !l.s.reserve() {
			l.s.blocked.Store(true)
			l.unlisten() // until a place frees (release wakes the loops)
			return
		}
		fd, sa, err := syscall.Accept4(l.s.lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			l.s.release()
			return // EAGAIN: another loop took it, or none is left
		}
		_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		l.leastLoaded().give(l, fd, sa)
	}
}

// leastLoaded returns the loop with the fewest client connections, l on a
// tie: a loop that accepted passes a connection on to the loop that has
// fewer (HAProxy's listener multi-queue does the same), since which loop
// wakes for a connection is the kernel's choice.
func (l *evLoop) leastLoaded() *evLoop {
	best, n := l, l.load.Load()
	for _, o := range l.s.loops {
		if m := o.load.Load(); m < n {
			best, n = o, m
		}
	}
	return best
}

// give makes the accepted connection fd one of l's, by from (a loop's
// thread): at once when from is l, else through l's inbox.
func (l *evLoop) give(from *evLoop, fd int, sa syscall.Sockaddr) {
	l.load.Add(1)
	if from != l {
		l.inboxMu.Lock()
		if !l.exited {
			l.inbox = append(l.inbox, evAccepted{fd, sa})
			l.inboxMu.Unlock()
			l.wake()
			return
		}
		l.inboxMu.Unlock()
		l.load.Add(-1)
		l = from
		l.load.Add(1)
	}
	l.adopt(fd, sa)
}

// evAccepted is a connection accepted by another loop.
type evAccepted struct {
	fd int
	sa syscall.Sockaddr
}

// adopt adds the accepted connection fd (counted in l.load) to the loop.
func (l *evLoop) adopt(fd int, sa syscall.Sockaddr) {
	c := &evClient{fd: fd, buf: make([]byte, h1BufferSize), since: l.now}
	c.remote = sockaddrString(sa)
	c.reqBase = new(http.Request).WithContext(l.ctx)
	c.req = new(http.Request)
	c.header = make(http.Header, 16)
	if err := l.add(fd, c, false); err != nil {
		_ = syscall.Close(fd)
		l.load.Add(-1)
		l.s.release()
	}
}

// takeInbox adopts the connections other loops passed on; with exit, it
// closes the inbox for good first (the loop ends), closing them instead.
func (l *evLoop) takeInbox(exit bool) {
	l.inboxMu.Lock()
	in := l.inbox
	l.inbox = nil
	l.exited = l.exited || exit
	l.inboxMu.Unlock()
	for _, a := range in {
		if exit {
			_ = syscall.Close(a.fd)
			l.load.Add(-1)
			l.s.release()
			continue
		}
		l.adopt(a.fd, a.sa)
	}
}

func sockaddrString(sa syscall.Sockaddr) string {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)).String()
	case *syscall.SockaddrInet6:
		a := netip.AddrFrom16(sa.Addr).Unmap()
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				a = a.WithZone(ifi.Name)
			}
		}
		return netip.AddrPortFrom(a, uint16(sa.Port)).String()
	}
	return ""
}

// evClient is a client connection of a loop, and its exchange in flight.
type evClient struct {
	fd  int
	buf []byte // bytes read, the request head being served first
	n   int
	// out is the response being written, from outOff on.
	out    []byte
	outOff int
	// since is when the connection started waiting for its next request
	// (accepted, or the last response written); headAt when the first
	// byte of the head being read came (zero: none yet); wroteAt when a
	// write last made progress.
	since, headAt, wroteAt time.Time
	served                 bool // a request was answered (IdleTimeout applies)
	watchingOut            bool // the loop watches fd for writing
	full                   bool // buf filled up during an exchange: more may wait unread
	eof                    bool // the client sent its end of file
	requestParser

	// The exchange in flight (r != nil): the request, its head's length
	// in buf, the rewritten head sent (reqOut), and where it goes.
	r          *http.Request
	headLen    int
	closeAfter bool
	reqOut     []byte
	b          *backend
	tg         *target
	pool       *evPool
	bk         *evBackend
	start      time.Time
}

// idle reports whether c waits for a request and has none of it.
func (c *evClient) idle() bool { return c.r == nil && c.n == 0 && c.outOff >= len(c.out) }

func (c *evClient) event(l *evLoop, ev uint32) {
	if ev&syscall.EPOLLOUT != 0 && c.outOff < len(c.out) {
		l.flush(c)
	}
	if ev&evRead != 0 && c.fd >= 0 {
		l.clientRead(c)
	}
}

// clientRead reads what the client sent and serves it.
func (l *evLoop) clientRead(c *evClient) {
	for c.n < len(c.buf) {
		m, err := rawRead(c.fd, c.buf[c.n:])
		if m > 0 {
			room := len(c.buf) - c.n
			c.n += m
			if m < room {
				break // the socket is drained (a new edge comes with more)
			}
			continue
		}
		if m == 0 {
			c.eof = true
			break
		}
		if err == syscall.EAGAIN {
			break
		}
		l.closeClient(c) // reset
		return
	}
	c.full = c.n == len(c.buf)
	if c.r != nil || c.outOff < len(c.out) {
		return // served after the response; an end of file is seen by sweep
	}
	l.serveNext(c)
}

// serveNext serves the request buffered in c, if its head is complete.
func (l *evLoop) serveNext(c *evClient) {
	if c.n == 0 {
		if c.eof {
			l.closeClient(c)
		}
		return
	}
	if c.headAt.IsZero() {
		c.headAt = l.now
		if !c.served {
			c.headAt = c.since // the first head: ReadHeaderTimeout from the start
		}
	}
	n, more, err := framing.CheckHead(c.buf[:c.n])
	switch {
	case err != nil || more:
		l.handOff(c) // refused (the wrapped connection answers 400), or a body
		return
	case n == 0:
		if c.n == len(c.buf) || c.eof {
			l.handOff(c) // too large for the loop, or cut short: net/http answers
		}
		return
	}
	head := c.buf[:n]
	if !bytes.HasPrefix(head, []byte("GET ")) || handOffReason(head) != "" {
		l.handOff(c)
		return
	}
	// The request's strings are those of head, in place: buf keeps the
	// head until the exchange ends (endExchange), and nothing keeps the
	// request after that (a resumed exchange takes a copy of the head, a
	// connection handed on its bytes), so serving it allocates nothing.
	r, ok := c.parseString(unsafe.String(unsafe.SliceData(head), len(head)-2))
	if !ok || !fastPathOK(r) {
		l.handOff(c)
		return
	}
	t := l.g.table.Load()
	if t == nil {
		l.handOff(c)
		return
	}
	rt := t.lookup(r.Host)
	if rt == nil {
		l.handOff(c)
		return
	}
	b := rt.pick(r)
	tg := b.next()
	if tg == nil || tg.pool == nil {
		l.handOff(c)
		return
	}
	p := l.pool(tg)
	if p.sa == nil {
		l.handOff(c)
		return
	}
	if tg.inflight.Add(1) > int64(l.g.opts.MaxEndpointRequests) {
		tg.inflight.Add(-1)
		l.handOff(c) // answered 503 there
		return
	}
	l.sink.b = l.sink.b[:0]
	l.bw.Reset(&l.sink)
	writeRequestHead(l.bw, r)
	_ = l.bw.Flush()
	c.reqOut = append(c.reqOut[:0], l.sink.b...)
	c.r, c.headLen, c.b, c.tg, c.pool, c.start = r, n, b, tg, p, time.Now()
	c.closeAfter = r.Close
	l.served.Add(1)
	l.send(c)
}

// pool returns the loop's pool of tg's endpoint.
func (l *evLoop) pool(tg *target) *evPool {
	if p := l.pools[tg.pool]; p != nil {
		return p
	}
	p := &evPool{p: tg.pool}
	if ap, err := netip.ParseAddrPort(tg.addr); err == nil {
		if a := ap.Addr(); a.Is4() {
			p.sa = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
		} else if a.Zone() == "" {
			p.sa = &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
		}
	}
	l.pools[tg.pool] = p
	return p
}

// send writes c's request on an idle connection of its pool, or on a new
// one once connected.
func (l *evLoop) send(c *evClient) {
	p := c.pool
	for len(p.idle) > 0 {
		bk := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		l.g.idle.n.Add(-1)
		bk.idle = false
		if l.now.Sub(bk.idleSince) >= p.p.idleTimeout {
			l.closeBackend(bk)
			continue
		}
		if m, _ := rawWrite(bk.fd, c.reqOut); m != len(c.reqOut) {
			l.closeBackend(bk) // closed meanwhile; a GET may be sent again
			continue
		}
		bk.c, c.bk, bk.reused, bk.sentAt = c, bk, true, l.now
		return
	}
	bk, err := l.dial(p)
	if err != nil {
		l.endExchange(c)
		l.handOff(c) // which tries, and answers, as ServeHTTP does
		return
	}
	bk.c, c.bk = c, bk
}

func (l *evLoop) dial(p *evPool) (*evBackend, error) {
	family := syscall.AF_INET
	if _, ok := p.sa.(*syscall.SockaddrInet6); ok {
		family = syscall.AF_INET6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	if err := syscall.Connect(fd, p.sa); err != nil && err != syscall.EINPROGRESS {
		_ = syscall.Close(fd)
		return nil, err
	}
	bk := &evBackend{fd: fd, pool: p, buf: make([]byte, evBackendBuffer), connecting: true, sentAt: l.now}
	if err := l.add(fd, bk, true); err != nil {
		_ = syscall.Close(fd)
		return nil, err
	}
	return bk, nil
}

// evBackend is a backend connection of a loop.
type evBackend struct {
	fd   int
	pool *evPool
	buf  []byte
	n    int
	// c is the client whose exchange it serves, nil when idle (in
	// pool.idle).
	c          *evClient
	idle       bool
	connecting bool
	reused     bool
	// sentAt is when the request was sent (or the connect started);
	// idleSince when it went idle.
	sentAt, idleSince time.Time
}

func (bk *evBackend) event(l *evLoop, ev uint32) {
	switch {
	case bk.idle:
		if ev&evRead != 0 {
			l.closeBackend(bk) // closed, or bytes nobody asked for
		}
		return
	case bk.c == nil:
		return
	case bk.connecting:
		if ev&(syscall.EPOLLOUT|syscall.EPOLLERR|syscall.EPOLLHUP) == 0 {
			return
		}
		c := bk.c
		e, err := syscall.GetsockoptInt(bk.fd, syscall.SOL_SOCKET, syscall.SO_ERROR)
		if err == nil && e == 0 {
			bk.connecting = false
			l.watchOut(bk.fd, false)
			if m, _ := rawWrite(bk.fd, c.reqOut); m == len(c.reqOut) {
				bk.sentAt = l.now
				break
			}
		}
		l.closeBackend(bk)
		c.bk = nil
		l.endExchange(c)
		l.handOff(c) // a failed connect: tried again, and answered, there
		return
	}
	if ev&evRead != 0 {
		l.backendRead(bk)
	}
}

// backendRead reads the response of bk's exchange and answers the client
// when it is all there.
func (l *evLoop) backendRead(bk *evBackend) {
	c := bk.c
	eof := false
	for bk.n < len(bk.buf) {
		m, err := rawRead(bk.fd, bk.buf[bk.n:])
		if m > 0 {
			room := len(bk.buf) - bk.n
			bk.n += m
			if m < room {
				break
			}
			continue
		}
		if m < 0 && err == syscall.EAGAIN {
			break
		}
		eof = true // an end of file or a reset
		break
	}
	if bk.n == 0 {
		if !eof {
			return
		}
		reused := bk.reused
		l.closeBackend(bk)
		c.bk = nil
		if reused {
			l.send(c) // the backend had closed it: a GET may be sent again
			return
		}
		l.resume(c, nil, fmt.Errorf("%w: %w", errNoResponse, io.EOF))
		return
	}
	buf := bk.buf[:bk.n]
	ph := &l.ph
	if !ph.scan(buf) {
		if !eof && bk.n < len(bk.buf) && bytes.Index(buf, crlfcrlf) < 0 {
			return // the head is still coming
		}
		l.resume(c, bk, nil)
		return
	}
	if !ph.throughOK() || int64(ph.n) > l.g.opts.MaxResponseHeaderBytes || int64(ph.n)+ph.length > int64(len(bk.buf)) {
		l.resume(c, bk, nil)
		return
	}
	total := ph.n + int(ph.length)
	if bk.n < total {
		if eof {
			l.resume(c, bk, nil) // cut short: the goroutine path reports it
		}
		return
	}
	var conn []string // none in a verbatim head (Connection is hop-by-hop)
	if !ph.verbatim {
		l.scan.reset()
		l.scan.feed(buf[:ph.n])
		var err error
		if conn, err = l.scan.finalConnection(); err != nil {
			l.resume(c, bk, nil)
			return
		}
	}
	c.closeAfter = c.closeAfter || l.s.shutting.Load()
	c.out = appendThroughHead(c.out[:0], ph, conn, c.closeAfter)
	c.out = append(c.out, buf[ph.n:total]...)
	c.outOff = 0
	code, reusable := ph.code, !ph.close && bk.n == total && !eof
	c.bk, bk.c, bk.n = nil, nil, 0
	if reusable {
		l.putIdle(bk)
	} else {
		l.closeBackend(bk)
	}
	l.observe(c, code)
	l.endExchange(c)
	c.wroteAt = l.now
	l.flush(c)
}

// flush writes c's response and goes on (answered) once it is all
// written; what the client cannot take yet is written on EPOLLOUT.
func (l *evLoop) flush(c *evClient) {
	for c.outOff < len(c.out) {
		m, err := rawWrite(c.fd, c.out[c.outOff:])
		if m > 0 {
			c.outOff += m
			c.wroteAt = l.now
			continue
		}
		if err != syscall.EAGAIN {
			l.closeClient(c)
			return
		}
		if !c.watchingOut {
			c.watchingOut = true
			l.watchOut(c.fd, true)
		}
		return
	}
	if c.watchingOut {
		c.watchingOut = false
		l.watchOut(c.fd, false)
	}
	l.answered(c)
}

// answered goes on after a response was written completely: the
// connection ends after it, or the next request is served.
func (l *evLoop) answered(c *evClient) {
	c.out, c.outOff = c.out[:0], 0
	if c.closeAfter {
		_ = syscall.Shutdown(c.fd, syscall.SHUT_WR)
		l.closeClient(c)
		return
	}
	c.n = copy(c.buf, c.buf[c.headLen:c.n])
	c.headLen, c.served, c.since, c.headAt = 0, true, l.now, time.Time{}
	if c.full {
		l.clientRead(c) // reads more and serves
		return
	}
	l.serveNext(c)
}

// observe records the answer code to c's request, as Gateway.observe.
func (l *evLoop) observe(c *evClient, code int) {
	d := time.Since(c.start)
	c.b.obs.duration.Observe(d.Seconds())
	c.b.obs.counter(code).Inc()
	l.g.accessLog(c.r, c.b, code, d)
}

// endExchange ends c's exchange: the endpoint's in-flight count is given
// back and the request forgotten (its head stays in buf until answered).
func (l *evLoop) endExchange(c *evClient) {
	if c.tg != nil {
		c.tg.inflight.Add(-1)
	}
	c.r, c.b, c.tg, c.pool = nil, nil, nil, nil
}

// handOff passes c, with every byte it sent not consumed, to the goroutine
// path, which serves it from its first unanswered request on.
func (l *evLoop) handOff(c *evClient) {
	l.handOn(c, c.buf[:c.n], nil)
}

// resume passes c and its exchange on: bk (nil when none is left) with
// the response bytes read so far, or err, why the backend did not answer.
func (l *evLoop) resume(c *evClient, bk *evBackend, err error) {
	x := &resumed{head: bytes.Clone(c.buf[:c.headLen]), b: c.b, tg: c.tg, err: err, start: c.start}
	if bk != nil {
		l.forget(bk.fd)
		nc, ferr := fdConn(bk.fd)
		if ferr != nil {
			x.err = ferr
		} else {
			x.bc = newBackendConn(&prefixConn{Conn: nc, prefix: bytes.Clone(bk.buf[:bk.n])})
		}
		bk.fd = -1
	}
	c.bk = nil
	rest := c.buf[c.headLen:c.n]
	c.tg = nil // its in-flight count goes with x
	l.handOn(c, rest, x)
}

func (l *evLoop) handOn(c *evClient, prefix []byte, x *resumed) {
	stage := "request"
	if x != nil {
		stage = "response"
	}
	l.g.metrics.loopHandoffs.WithLabelValues(stage).Inc()
	l.forget(c.fd)
	l.load.Add(-1)
	nc, err := fdConn(c.fd)
	c.fd = -1
	if err != nil {
		l.s.release()
		l.dropResumed(x)
		return
	}
	var fc net.Conn = &limitConn{Conn: nc, release: l.s.release}
	fc = framing.Wrap(&prefixConn{Conn: fc, prefix: bytes.Clone(prefix)}, l.s.fo)
	hc := l.s.h1.newConn(fc)
	if hc == nil {
		l.dropResumed(x)
		return
	}
	go hc.serve(x)
}

// dropResumed gives up an exchange that could not be handed on.
func (l *evLoop) dropResumed(x *resumed) {
	if x == nil {
		return
	}
	x.tg.inflight.Add(-1)
	if x.bc != nil {
		x.bc.close()
	}
}

// forget removes fd from the loop (it is handed on or closed).
func (l *evLoop) forget(fd int) {
	_ = syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_DEL, fd, nil)
	l.fds[fd] = nil
}

// fdConn returns a net.Conn of the descriptor fd, which it takes over.
func fdConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "")
	nc, err := net.FileConn(f) // a duplicate
	_ = f.Close()
	return nc, err
}

func (l *evLoop) closeClient(c *evClient) {
	if c.fd < 0 {
		return
	}
	if c.bk != nil {
		l.closeBackend(c.bk)
		c.bk = nil
	}
	if c.r != nil {
		l.observe(c, statusClientClosedRequest)
		l.endExchange(c)
	}
	l.forget(c.fd)
	_ = syscall.Close(c.fd)
	c.fd = -1
	l.load.Add(-1)
	l.s.release()
}

func (l *evLoop) closeBackend(bk *evBackend) {
	if bk.fd < 0 {
		return
	}
	if bk.idle {
		l.removeIdle(bk)
	}
	l.forget(bk.fd)
	_ = syscall.Close(bk.fd)
	bk.fd = -1
}

// putIdle keeps bk for the next request to its endpoint, within the
// gateway's idle limits (MaxIdleConnsPerHost per loop, MaxIdleConns in
// all).
func (l *evLoop) putIdle(bk *evBackend) {
	p := bk.pool
	if len(p.idle) >= p.p.maxIdle {
		l.closeBackend(bk)
		return
	}
	if l.g.idle.n.Add(1) > l.g.idle.max {
		l.g.idle.n.Add(-1)
		l.closeBackend(bk)
		return
	}
	bk.idle, bk.reused, bk.idleSince = true, false, l.now
	p.idle = append(p.idle, bk)
}

func (l *evLoop) removeIdle(bk *evBackend) {
	p := bk.pool
	for i, x := range p.idle {
		if x == bk {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			l.g.idle.n.Add(-1)
			break
		}
	}
	bk.idle = false
}

// sweep applies the timeouts.
func (l *evLoop) sweep() {
	o := &l.g.opts
	for _, h := range l.fds {
		switch h := h.(type) {
		case *evClient:
			c := h
			switch {
			case c.outOff < len(c.out):
				if l.now.Sub(c.wroteAt) >= o.ClientSendTimeout {
					l.closeClient(c)
				}
			case c.r != nil:
				bk := c.bk
				switch {
				case c.eof && l.now.Sub(c.start) >= clientWatchDelay:
					l.closeClient(c) // gone: 499, as the connection loop's watch
				case bk != nil && bk.connecting && l.now.Sub(bk.sentAt) >= o.DialTimeout:
					l.closeBackend(bk)
					c.bk = nil
					l.endExchange(c)
					l.handOff(c)
				case bk != nil && !bk.connecting && l.now.Sub(bk.sentAt) >= o.ResponseHeaderTimeout:
					l.closeBackend(bk)
					l.resume(c, nil, errResponseTimeout)
				}
			case c.n > 0:
				if l.now.Sub(c.headAt) >= o.ReadHeaderTimeout {
					l.closeClient(c) // as net/http: no answer
				}
			default:
				wait := o.ReadHeaderTimeout
				if c.served {
					wait = o.IdleTimeout
				}
				if l.now.Sub(c.since) >= wait {
					l.closeClient(c)
				}
			}
		case *evBackend:
			if h.idle && (l.now.Sub(h.idleSince) >= h.pool.p.idleTimeout || h.pool.p.isClosed()) {
				l.closeBackend(h)
			}
		}
	}
	for cp, p := range l.pools {
		if len(p.idle) == 0 && cp.isClosed() {
			delete(l.pools, cp)
		}
	}
}

// byteSink collects what a bufio.Writer writes.
type byteSink struct{ b []byte }

func (s *byteSink) Write(p []byte) (int, error) {
	s.b = append(s.b, p...)
	return len(p), nil
}

// rawRead and rawWrite are read(2) and write(2) on a non-blocking
// descriptor, without the scheduler's bookkeeping for calls that may block.
// They return -1 and the error on failure.
func rawRead(fd int, p []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

func rawWrite(fd int, p []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}
