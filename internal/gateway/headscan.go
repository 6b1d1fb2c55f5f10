package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"sync"
)

// http.ReadResponse deletes a response's Connection header when it lists
// "close" (RFC 9110 §7.6.1), and with it the names of the other headers it
// makes hop-by-hop ("Connection: close, X-Internal"): a proxy reading only
// the parsed response would forward them. headScanner reads the raw response
// heads as they come off the backend connection and keeps the Connection
// values of the final head, so that both proxy paths strip what it lists.

// maxScanLine is the longest header line the scanner keeps whole; a longer
// Connection line makes the response unusable (errHeadLine).
const maxScanLine = 8 << 10

var errHeadLine = errors.New("backend sent a Connection header line too long to check")

// headScanner follows the bytes of one exchange's response heads: any number
// of 1xx informational heads, then the final head; the bytes after it (the
// body) are ignored. Reset it before each exchange; it keeps its buffers.
type headScanner struct {
	// line is the current line, incomplete; long tells that bytes past
	// maxScanLine were dropped from it.
	line []byte
	long bool
	// status: the next complete line is a status line.
	status bool
	// code is the status code of the head being read.
	code int
	// conn are the Connection values of the head being read; inConn tells
	// that the last header line was one of them (an obs-fold line continues
	// it).
	conn   []string
	inConn bool
	// done: the final head ended. final are its Connection values.
	done  bool
	final []string
	// err is set when a Connection line was too long to keep.
	err error
}

func (s *headScanner) reset() {
	s.line, s.long = s.line[:0], false
	s.status, s.code = true, 0
	s.conn, s.inConn = s.conn[:0], false
	s.done, s.final, s.err = false, nil, nil
}

// feed scans p, the next bytes read from the connection.
func (s *headScanner) feed(p []byte) {
	for !s.done && len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.add(p)
			return
		}
		s.add(p[:i])
		p = p[i+1:]
		s.endLine()
	}
}

func (s *headScanner) add(b []byte) {
	if room := maxScanLine - len(s.line); len(b) > room {
		b, s.long = b[:room], true
	}
	s.line = append(s.line, b...)
}

func (s *headScanner) endLine() {
	l := bytes.TrimSuffix(s.line, []byte{'\r'})
	long := s.long
	s.line, s.long = s.line[:0], false
	switch {
	case s.status:
		s.status, s.code = false, statusCode(l)
	case len(l) == 0: // the end of a head
		if s.code >= 100 && s.code < 200 && s.code != 101 {
			s.status, s.conn, s.inConn = true, s.conn[:0], false // another head follows
			return
		}
		s.done, s.final = true, s.conn
	case l[0] == ' ' || l[0] == '\t': // obs-fold: continues the previous field
		if s.inConn {
			s.conn[len(s.conn)-1] += " " + textproto.TrimString(string(l))
			if long {
				s.err = errHeadLine
			}
		}
	default:
		s.inConn = len(l) >= len("connection:") && bytes.EqualFold(l[:len("connection:")], []byte("connection:"))
		if s.inConn {
			s.conn = append(s.conn, textproto.TrimString(string(l[len("connection:"):])))
			if long {
				s.err = errHeadLine
			}
		}
	}
}

// statusCode parses the code of a status line "HTTP/1.1 200 OK", 0 when it
// has none (http.ReadResponse then refuses the head).
func statusCode(l []byte) int {
	_, rest, ok := bytes.Cut(l, []byte{' '})
	if !ok || len(rest) < 3 {
		return 0
	}
	code := 0
	for _, c := range rest[:3] {
		if c < '0' || c > '9' {
			return 0
		}
		code = code*10 + int(c-'0')
	}
	return code
}

// finalConnection returns the Connection values of the final head, or an
// error when the heads read so far do not end in one the scanner could
// follow (the response must then not be forwarded).
func (s *headScanner) finalConnection() ([]string, error) {
	if s.err != nil {
		return nil, s.err
	}
	if !s.done {
		return nil, errors.New("backend response head could not be followed")
	}
	return s.final, nil
}

// errHeadTooLarge is returned once a response's heads exceed the limit.
type errHeadTooLarge int64

func (e errHeadTooLarge) Error() string {
	return fmt.Sprintf("backend response headers exceeded %d bytes", int64(e))
}

// headReader sits between a fast-path backend connection and its
// bufio.Reader. While response heads are read (between start and stop) it
// counts their bytes against the limit, as http.Transport's
// MaxResponseHeaderBytes does (the bufio.Reader may read a little of the body
// along, which counts too), and scans them.
type headReader struct {
	c net.Conn
	// left is how many bytes may still be read before the heads end; -1
	// outside heads.
	left  int64
	limit int64
	scan  headScanner
}

func (h *headReader) start(limit int64) {
	h.left, h.limit = limit, limit
	h.scan.reset()
}

func (h *headReader) stop() { h.left = -1 }

func (h *headReader) Read(p []byte) (int, error) {
	if h.left < 0 {
		return h.c.Read(p)
	}
	if h.left == 0 {
		return 0, errHeadTooLarge(h.limit)
	}
	if int64(len(p)) > h.left {
		p = p[:h.left]
	}
	n, err := h.c.Read(p)
	h.left -= int64(n)
	h.scan.feed(p[:n])
	return n, err
}

// scanConn wraps the connections of the ReverseProxy path's Transport: it
// scans the response head that follows each request (the first read after a
// write starts one; a 100-continue exchange restarts at its final head), so
// that the proxy can strip what its Connection header lists (stripListed).
// The Transport reads and writes from different goroutines, hence the mutex.
//
// It also caps the bytes of all response heads of one exchange together
// (1xx and final) at limit, as the fast path does: http.Transport counts each
// 1xx head afresh when, as under ReverseProxy, they are passed on.
type scanConn struct {
	net.Conn
	limit int64

	mu    sync.Mutex
	wrote bool
	scan  headScanner
	// read counts the bytes read since the exchange began, while in heads.
	read int64
}

func (c *scanConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.wrote = true
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *scanConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wrote {
		c.wrote, c.read = false, 0
		c.scan.reset()
	}
	if !c.scan.done {
		c.scan.feed(p[:n])
		if c.read += int64(n); c.read > c.limit && err == nil {
			err = errHeadTooLarge(c.limit)
		}
	}
	return n, err
}

// finalConnection returns the Connection values of the response head read
// last.
func (c *scanConn) finalConnection() ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, err := c.scan.finalConnection()
	return append([]string(nil), v...), err
}

// CloseWrite lets the Transport half-close, as on the connection it wraps.
func (c *scanConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
