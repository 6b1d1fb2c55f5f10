package framing

import (
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// Options configures a wrapped connection.
type Options struct {
	// MaxHeadBytes is the most bytes of one request head the server reads:
	// its MaxHeaderBytes (http.DefaultMaxHeaderBytes when zero) plus 4096, as
	// net/http allows that much. Zero means http.DefaultMaxHeaderBytes+4096.
	MaxHeadBytes int
	// OnRefuse, if set, is called with the connection and the reason (one of
	// the Err values of this package) when a request head is refused or a
	// chunked body found malformed. It runs on the reading goroutine.
	OnRefuse func(c net.Conn, reason error)
}

// Listener wraps each connection its inner Listener accepts, as [Wrap] does.
type Listener struct {
	net.Listener
	Options Options
}

// NewListener returns a Listener over l.
func NewListener(l net.Listener, opts Options) *Listener {
	return &Listener{Listener: l, Options: opts}
}

// Accept accepts a connection from the inner listener and wraps it.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c, l.Options), nil
}

type closeWriter interface{ CloseWrite() error }

// Wrap returns c with the framing of the requests read from it checked. The
// result has a CloseWrite method when c has one. It is safe for one reading
// and one writing goroutine at a time.
func Wrap(c net.Conn, opts Options) net.Conn {
	max := opts.MaxHeadBytes
	if max <= 0 {
		max = http.DefaultMaxHeaderBytes + 4096
	}
	fc := &conn{Conn: c, maxHold: max + headSlack, onRefuse: opts.OnRefuse, armAt: -1}
	fc.cond.L = &fc.mu
	if _, ok := c.(closeWriter); ok {
		cw := &closeWriteConn{fc}
		fc.self = cw
		return cw
	}
	fc.self = fc
	return fc
}

const (
	// headSlack is added to MaxHeadBytes before an unfinished head is let
	// through: net/http counts from its own read of the head, which may start
	// a few bytes in (one byte of background read, leading CRLF after a POST).
	headSlack      = 64
	minDirectRead  = 512  // smaller reads go through the hold buffer
	minFill        = 4096 // free space for a read into the hold buffer
	lingerTimeout  = 500 * time.Millisecond
	maxLingerBytes = 256 << 10
)

// cannedRequest is what the server reads in place of a refused head: a
// request line it cannot parse, so that it answers 400 Bad Request and closes
// the connection.
const cannedRequest = "BAD\r\n\r\n"

type closeWriteConn struct{ *conn }

// CloseWrite shuts down the writing side of the inner connection.
func (c *closeWriteConn) CloseWrite() error { return c.Conn.(closeWriter).CloseWrite() }

func (c *conn) waitDecision() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.dec.Load() == decNone && !c.closed {
		if !c.deadline.IsZero() {
			d := time.Until(c.deadline)
			if d <= 0 {
				return os.ErrDeadlineExceeded
			}
			if c.timer == nil {
				c.timer = time.AfterFunc(d, c.wake)
			} else {
				c.timer.Reset(d)
			}
		}
		c.cond.Wait()
	}
	if c.closed {
		return net.ErrClosed
	}
	return nil
}

func (c *conn) wake() {
	c.mu.Lock()
	c.cond.Broadcast()
	c.mu.Unlock()
}

func (c *conn) Write(b []byte) (int, error) {
	if c.armed.Load() {
		c.mu.Lock()
		if c.armed.Load() {
			if d := c.watch.feed(b); d != decNone {
				c.dec.Store(d)
				c.armed.Store(false)
				c.cond.Broadcast()
			}
		}
		c.mu.Unlock()
	}
	return c.Conn.Write(b)
}

func (c *conn) SetDeadline(t time.Time) error {
	c.setReadDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *conn) SetReadDeadline(t time.Time) error {
	c.setReadDeadline(t)
	return c.Conn.SetReadDeadline(t)
}

func (c *conn) setReadDeadline(t time.Time) {
	c.mu.Lock()
	c.deadline = t
	c.cond.Broadcast()
	c.mu.Unlock()
}

// Close closes the connection. After a refusal it first shuts down the
// writing side and reads what the client still sends for a moment, so that
// the client gets the 400 response rather than a reset.
func (c *conn) Close() error {
	c.mu.Lock()
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	cw, ok := c.Conn.(closeWriter)
	if !c.stopped.Load() || !ok {
		return c.Conn.Close()
	}
	var err error
	c.once.Do(func() {
		err = cw.CloseWrite()
		go func() {
			c.Conn.SetReadDeadline(time.Now().Add(lingerTimeout))
			io.CopyN(io.Discard, c.Conn, maxLingerBytes)
			c.Conn.Close()
		}()
	})
	return err
}
