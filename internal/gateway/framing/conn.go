package framing

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Modes of the reading side.
const (
	modeHead    uint8 = iota // expecting a request head
	modeLength               // in a Content-Length body
	modeChunked              // in a chunked body
	modeAwait                // after an upgrade request, until its response tells
	modePass                 // no longer checking
	modeRefused              // a head was refused
	modeFailed               // a chunked body was malformed
)

type conn struct {
	net.Conn
	self     net.Conn
	maxHold  int
	onRefuse func(net.Conn, error)

	// Reading goroutine only.
	mode      uint8
	buf       []byte // buf[r:a] approved, not yet returned; buf[a:] pending
	r, a      int
	rerr      error // inner read error to return once pending bytes are dealt with
	head      headState
	afterPost bool
	length    int64
	chunk     chunkState
	upgrade   bool  // an upgrade request's response decides what follows
	armAt     int64 // stream offset whose release arms the watch, or -1
	approved  int64 // stream offset approved so far
	released  int64 // stream offset returned so far
	canned    int   // bytes of cannedRequest returned
	failErr   error

	// Shared with the writing goroutine.
	armed    atomic.Bool
	dec      atomic.Int32
	stopped  atomic.Bool // refused or failed: close lingers
	mu       sync.Mutex
	cond     sync.Cond
	watch    statusWatch // under mu
	deadline time.Time   // read deadline, under mu
	timer    *time.Timer // wakes waitDecision at the deadline, under mu
	closed   bool        // under mu
	once     sync.Once
}

func (c *conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		c.checkDecision()
		if c.r < c.a {
			n := copy(p, c.buf[c.r:c.a])
			c.r += n
			if c.r == len(c.buf) {
				c.buf, c.r, c.a = c.buf[:0], 0, 0
			}
			return c.release(n), nil
		}
		switch c.mode {
		case modeRefused:
			if c.canned < len(cannedRequest) {
				n := copy(p, cannedRequest[c.canned:])
				c.canned += n
				return n, nil
			}
			return 0, io.EOF
		case modeFailed:
			return 0, c.failErr
		case modeAwait:
			if err := c.fill(); err != nil {
				return 0, err
			}
			continue
		}
		if c.a < len(c.buf) {
			before, mode := c.a, c.mode
			c.a += c.advance(c.buf[c.a:])
			if c.mode == modeRefused || c.mode == modeFailed {
				c.buf = c.buf[:c.a]
			}
			if c.a > before || c.mode != mode {
				continue
			}
		}
		if c.rerr != nil {
			err := c.rerr
			c.rerr = nil
			return 0, err
		}
		if len(c.buf) == 0 && len(p) >= minDirectRead {
			if n, err := c.readDirect(p); n > 0 || err != nil {
				return n, err
			}
			continue
		}
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
}

// readDirect reads into p and returns what of it is approved at once; the
// rest is kept in the hold buffer. No byte is copied when all is approved.
func (c *conn) readDirect(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n <= 0 {
		return 0, err
	}
	k := c.advance(p[:n])
	if k == n {
		return c.release(k), err
	}
	if c.mode != modeRefused && c.mode != modeFailed {
		c.buf = append(c.buf[:0], p[k:n]...)
		c.r, c.a = 0, 0
	}
	c.rerr = err
	return c.release(k), nil
}

// fill reads more of the inner connection into the hold buffer, or, when
// that is full while an upgrade is undecided, waits for the decision.
func (c *conn) fill() error {
	if c.rerr != nil {
		err := c.rerr
		c.rerr = nil
		return err
	}
	if c.r > 0 && cap(c.buf)-len(c.buf) < minFill {
		n := copy(c.buf, c.buf[c.r:])
		c.buf, c.a, c.r = c.buf[:n], c.a-c.r, 0
	}
	if cap(c.buf)-len(c.buf) < minFill {
		if c.mode == modeAwait && len(c.buf) >= c.maxHold {
			return c.waitDecision()
		}
		nb := make([]byte, len(c.buf), max(2*cap(c.buf), len(c.buf)+minFill))
		copy(nb, c.buf)
		c.buf = nb
	}
	n, err := c.Conn.Read(c.buf[len(c.buf):cap(c.buf)])
	c.buf = c.buf[:len(c.buf)+n]
	if n > 0 {
		c.rerr = err
		return nil
	}
	return err
}

// advance follows the framing over b, the bytes after those approved, and
// returns how many of them are approved now.
func (c *conn) advance(b []byte) int {
	n := c.follow(b)
	c.approved += int64(n)
	return n
}

func (c *conn) follow(b []byte) int {
	i := 0
	for i < len(b) {
		switch c.mode {
		case modeHead:
			res, err := c.head.scan(b[i:], c.afterPost)
			if err == errHeadIncomplete {
				if len(b)-i > c.maxHold {
					c.mode, i = modePass, len(b)
				}
				return i
			}
			c.head = headState{}
			if err != nil {
				c.stop(modeRefused, err)
				return i
			}
			if res.upgrade && i > 0 {
				// Not in one Read with what precedes it: the server may
				// still write the responses to earlier requests after
				// reading that, and the watch must not take them for the
				// upgrade's answer. The head is scanned again next Read.
				return i
			}
			i += res.n
			c.afterPost = res.post
			switch {
			case res.h2:
				c.mode = modePass
				continue
			case res.body == bodyLength:
				c.mode, c.length = modeLength, res.length
			case res.body == bodyChunked:
				c.mode = modeChunked
			}
			if res.upgrade {
				c.upgrade = true
				c.dec.Store(decNone)
				c.armAt = c.approved + int64(i)
			}
			if c.mode == modeHead {
				c.endBody()
			}
		case modeLength:
			take := min(int64(len(b)-i), c.length)
			i += int(take)
			c.length -= take
			if c.length == 0 {
				c.endBody()
			}
		case modeChunked:
			n, done, err := c.chunk.feed(b[i:])
			i += n
			if err != nil {
				c.stop(modeFailed, err)
				return i
			}
			if done {
				c.endBody()
			}
		case modePass:
			i = len(b)
		default:
			return i
		}
	}
	return i
}

func (c *conn) endBody() {
	if c.upgrade {
		c.mode = modeAwait
	} else {
		c.mode = modeHead
	}
}

func (c *conn) stop(mode uint8, reason error) {
	c.mode = mode
	c.stopped.Store(true)
	if mode == modeFailed {
		c.failErr = &net.OpError{Op: "read", Net: c.LocalAddr().Network(),
			Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: reason}
	}
	if c.onRefuse != nil {
		c.onRefuse(c.self, reason)
	}
}

// release accounts for n bytes returned to the reader, arming the watch of
// the response once an upgrade request's head has been read in full.
func (c *conn) release(n int) int {
	c.released += int64(n)
	if c.armAt >= 0 && c.released >= c.armAt {
		c.armAt = -1
		c.mu.Lock()
		c.watch = statusWatch{}
		c.armed.Store(true)
		c.mu.Unlock()
	}
	return n
}

// checkDecision applies the decision on an upgrade request, if made.
func (c *conn) checkDecision() {
	if !c.upgrade {
		return
	}
	if c.mode == modeRefused || c.mode == modeFailed {
		c.upgrade = false // stopped for good
		return
	}
	switch c.dec.Load() {
	case decPass:
		c.upgrade, c.mode = false, modePass
	case decResume:
		c.upgrade = false
		if c.mode == modeAwait {
			c.mode = modeHead
		}
	}
}
