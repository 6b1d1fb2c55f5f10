package gateway

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// idleBudget counts the idle connections of all pools against MaxIdleConns.
type idleBudget struct {
	n   atomic.Int64
	max int64
}

// connPool keeps the idle HTTP/1.1 connections to one backend endpoint, most
// recently used first out (the oldest time out). Its mutex is per endpoint,
// held only to push or pop a connection; there is no global lock.
type connPool struct {
	addr        string
	dialer      *net.Dialer
	maxIdle     int
	idleTimeout time.Duration
	budget      *idleBudget

	mu sync.Mutex
	// idle connections, oldest first.
	idle []*backendConn
	// closed: the endpoint left the table; returned connections are closed.
	closed bool
	// timer closes connections idle for idleTimeout; armed while idle is not
	// empty.
	timer *time.Timer
	armed bool
}

// backendConn is one connection to a backend with its buffers.
type backendConn struct {
	c net.Conn
	// io is under bw and head: c, with a request head sent by the read
	// of its response; its probe checks c before reuse.
	io backendIO
	// head sits between io and br: it caps and scans response heads.
	head headReader
	br   *bufio.Reader
	bw   *bufio.Writer
	// abort closes c; made once so that registering it allocates nothing.
	abort func()
	// idleSince is when it was returned to the pool.
	idleSince time.Time
	// rdl is c's read deadline.
	rdl readDeadline
	// plain, res, header and body are reused by scanResponse and
	// plainHead.response.
	plain  plainHead
	res    http.Response
	header http.Header
	body   countedBody
}

func (bc *backendConn) close() { _ = bc.c.Close() }

// readDeadline is a connection's read deadline as last set (zero: none),
// so that it is set coarsely (coarseDeadline) and lifted only when set. It
// serves backend and client connections alike.
type readDeadline struct {
	c  net.Conn
	at time.Time
}

// in sets the deadline to d from now, or leaves the one set already when
// coarseDeadline allows.
func (rd *readDeadline) in(d time.Duration) {
	t := time.Now().Add(d)
	if coarseDeadline(rd.at, t, d) {
		return
	}
	_ = rd.set(t)
}

// set sets the deadline to t exactly (zero lifts it).
func (rd *readDeadline) set(t time.Time) error {
	rd.at = t
	return rd.c.SetReadDeadline(t)
}

// clear lifts the deadline.
func (rd *readDeadline) clear() {
	if !rd.at.IsZero() {
		_ = rd.set(time.Time{})
	}
}

// coarseDeadline reports whether a deadline set (cur) may stand for the
// one asked for (want, d from now): it is not zero, not later than want, and
// earlier by less than d/16 and one second. A timeout is then up to 1/16
// shorter than configured, and a connection serving many requests a second
// sets its deadline about once per d/16 instead of once or twice per request.
func coarseDeadline(cur, want time.Time, d time.Duration) bool {
	if cur.IsZero() || cur.After(want) {
		return false
	}
	return want.Sub(cur) < min(d/16, time.Second)
}

func (g *Gateway) newConnPool(addr string) *connPool {
	return &connPool{
		addr:        addr,
		dialer:      g.dialer,
		maxIdle:     g.opts.MaxIdleConnsPerHost,
		idleTimeout: g.opts.IdleConnTimeout,
		budget:      g.idle,
	}
}

// get returns an idle connection (reused) or a new one. An idle connection
// is checked before it is handed out (a non-blocking peek, as http.Transport's
// read loop notices at once): one the backend closed, or on which it sent
// bytes nobody asked for, is closed instead. Otherwise a request that cannot
// be replayed would fail on a connection the backend had already closed, and
// unsolicited bytes would be read as the next client's response.
func (p *connPool) get(ctx context.Context) (bc *backendConn, reused bool, err error) {
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		bc = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		p.budget.n.Add(-1)
		now := time.Now()
		if !bc.rdl.at.IsZero() && !now.Before(bc.rdl.at) {
			bc.rdl.clear() // a past deadline fails the probe
		}
		if now.Sub(bc.idleSince) < p.idleTimeout && bc.br.Buffered() == 0 && bc.io.probe.alive() {
			return bc, true, nil
		}
		bc.close()
	}
	c, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, false, err
	}
	return newBackendConn(c), false, nil
}

// newBackendConn returns a backend connection over c with its buffers.
func newBackendConn(c net.Conn) *backendConn {
	bc := &backendConn{c: c, rdl: readDeadline{c: c}}
	bc.io = backendIO{c: c, probe: newProber(c)}
	bc.head = headReader{r: &bc.io, left: -1}
	bc.bw = bufio.NewWriterSize(&bc.io, 4<<10)
	bc.br = bufio.NewReaderSize(&bc.head, 4<<10)
	bc.abort = func() { _ = c.Close() }
	return bc
}

// put returns a connection whose last response was read completely and
// exactly: nothing of it, nor anything else, is left unread.
func (p *connPool) put(bc *backendConn) {
	if bc.br.Buffered() > 0 {
		bc.close() // more bytes than the response's framing said
		return
	}
	if p.budget.n.Add(1) > p.budget.max {
		p.budget.n.Add(-1)
		bc.close()
		return
	}
	bc.idleSince = time.Now()
	p.mu.Lock()
	if p.closed || len(p.idle) >= p.maxIdle {
		p.mu.Unlock()
		p.budget.n.Add(-1)
		bc.close()
		return
	}
	p.idle = append(p.idle, bc)
	if !p.armed {
		p.armed = true
		if p.timer == nil {
			p.timer = time.AfterFunc(p.idleTimeout, p.expire)
		} else {
			p.timer.Reset(p.idleTimeout)
		}
	}
	p.mu.Unlock()
}

// expire closes the connections idle for idleTimeout and re-arms the timer for
// the oldest remaining one.
func (p *connPool) expire() {
	now := time.Now()
	p.mu.Lock()
	i := 0
	for i < len(p.idle) && now.Sub(p.idle[i].idleSince) >= p.idleTimeout {
		i++
	}
	old := make([]*backendConn, i)
	copy(old, p.idle[:i])
	n := copy(p.idle, p.idle[i:])
	clear(p.idle[n:])
	p.idle = p.idle[:n]
	if n > 0 {
		p.timer.Reset(p.idle[0].idleSince.Add(p.idleTimeout).Sub(now))
	} else {
		p.armed = false
	}
	p.mu.Unlock()
	p.discard(old)
}

// closeIdle closes the idle connections.
func (p *connPool) closeIdle() {
	p.mu.Lock()
	old := p.idle
	p.idle = nil
	if p.timer != nil {
		p.timer.Stop()
	}
	p.armed = false
	p.mu.Unlock()
	p.discard(old)
}

// discard closes connections taken out of the idle list and gives their
// places in the idle budget back.
func (p *connPool) discard(old []*backendConn) {
	p.budget.n.Add(-int64(len(old)))
	for _, bc := range old {
		bc.close()
	}
}

// close closes the idle connections and those returned later.
func (p *connPool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.closeIdle()
}

// isClosed reports whether the endpoint left the table.
func (p *connPool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}
