package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"sync"

	"github.com/fledge-dev/fledge/internal/gateway/framing"
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
	// length is the Content-Length of the head being read (-1: none or
	// unusable); chunked tells Transfer-Encoding chunked.
	length  int64
	chunked bool
	// err is set when a Connection line was too long to keep.
	err error
}

func (s *headScanner) reset() {
	s.line, s.long = s.line[:0], false
	s.status, s.code = true, 0
	s.conn, s.inConn = s.conn[:0], false
	s.done, s.final, s.err = false, nil, nil
	s.length, s.chunked = -1, false
}

// feed scans p, the next bytes read from the connection, and returns how
// many of them belong to the heads: all of p until the final head ends.
func (s *headScanner) feed(p []byte) int {
	n := len(p)
	for !s.done && len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.add(p)
			return n
		}
		s.add(p[:i])
		p = p[i+1:]
		s.endLine()
	}
	return n - len(p)
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
			s.length, s.chunked = -1, false
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
		if v, ok := fieldValue(l, "content-length:"); ok {
			s.length = parseLength(s.length, v)
		} else if v, ok := fieldValue(l, "transfer-encoding:"); ok {
			s.chunked = bytes.EqualFold(v, []byte("chunked"))
		}
		s.inConn = len(l) >= len("connection:") && bytes.EqualFold(l[:len("connection:")], []byte("connection:"))
		if s.inConn {
			s.conn = append(s.conn, textproto.TrimString(string(l[len("connection:"):])))
			if long {
				s.err = errHeadLine
			}
		}
	}
}

// fieldValue returns the trimmed value of header line l when its name is
// name (given lower case, with the colon).
func fieldValue(l []byte, name string) ([]byte, bool) {
	if len(l) < len(name) || !bytes.EqualFold(l[:len(name)], []byte(name)) {
		return nil, false
	}
	return bytes.TrimSpace(l[len(name):]), true
}

// parseLength parses a Content-Length value v (without allocating); a
// second field with another value, or a value that is not a number, makes it
// unusable (-2).
func parseLength[T string | []byte](prev int64, v T) int64 {
	if len(v) == 0 || len(v) > 18 {
		return -2
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return -2
		}
		n = n*10 + int64(c-'0')
	}
	if prev != -1 && prev != n {
		return -2
	}
	return n
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
	r io.Reader
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
		return h.r.Read(p)
	}
	if h.left == 0 {
		return 0, errHeadTooLarge(h.limit)
	}
	if int64(len(p)) > h.left {
		p = p[:h.left]
	}
	n, err := h.r.Read(p)
	h.left -= int64(n)
	h.scan.feed(p[:n])
	return n, err
}

// scanConn wraps the connections of the ReverseProxy path's Transport. It
// follows each exchange on the wire: a request written (its method told by
// the first write), then the response's heads (scanned for their Connection
// values, capped at limit bytes together, 1xx included, as the fast path
// does: http.Transport counts each 1xx head afresh when, as under
// ReverseProxy, they are passed on) and its body, by Content-Length or
// chunked framing. A byte that arrives past the end of a response, or while
// no request is waiting for one, poisons the connection: the Transport never
// reads it (the read is cut at the response's end) and the connection fails
// at its next read or write, so the Transport drops it. http.Transport checks
// for unsolicited bytes only once the connection is back in its idle pool,
// where a request taken from the pool in the meantime would read them as its
// response.
type scanConn struct {
	net.Conn
	limit int64

	mu sync.Mutex
	// busy: a request was written whose response has not ended; head: its
	// heads are being read; bodyless: the request was HEAD.
	busy, head, bodyless bool
	scan                 headScanner
	// read counts the head bytes read in this exchange.
	read int64
	// framing of the body being read: left bytes (bodyLength), chunked
	// (chunk follows it), or to the end of the connection (bodyStream).
	framing int
	left    int64
	chunk   framing.ChunkedBody
	// unfollowable: the body's chunked framing could not be followed, so the
	// end of the exchange is unknown; the connection is not to be reused.
	unfollowable bool
	// poisoned makes every later read and write fail.
	poisoned error
}

const (
	bodyLength = iota
	bodyChunked
	bodyStream
)

var errUnsolicited = errors.New("backend sent bytes past the end of its response")

func (c *scanConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.unfollowable && !c.head {
		c.poisoned = errors.New("backend's chunked response could not be followed")
	}
	if err := c.poisoned; err != nil {
		c.mu.Unlock()
		return 0, err
	}
	if !c.busy { // a new exchange
		c.busy, c.head, c.read = true, true, 0
		c.bodyless = bytes.HasPrefix(p, []byte("HEAD "))
		c.scan.reset()
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *scanConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if err := c.poisoned; err != nil {
		c.mu.Unlock()
		return 0, err
	}
	c.mu.Unlock()
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if n == 0 {
		return n, err
	}
	if !c.busy {
		c.poisoned = errUnsolicited
		return 0, c.poisoned
	}
	b := p[:n]
	if c.head {
		used := c.scan.feed(b)
		if c.read += int64(used); c.read > c.limit {
			c.poisoned = errHeadTooLarge(c.limit)
			return n, c.poisoned
		}
		if !c.scan.done {
			return n, err
		}
		c.head = false
		c.startBody()
		b = b[used:]
	}
	if extra := len(b) - c.followBody(b); extra > 0 {
		c.poisoned = errUnsolicited
		return n - extra, nil // the Transport never sees them
	}
	return n, err
}

// startBody sets the framing of the response body that follows the final
// head just scanned.
func (c *scanConn) startBody() {
	switch code := c.scan.code; {
	case code == http.StatusSwitchingProtocols:
		c.framing = bodyStream // no longer HTTP
	case c.bodyless || code == http.StatusNoContent || code == http.StatusNotModified:
		c.framing, c.left = bodyLength, 0
	case c.scan.chunked:
		c.framing, c.chunk = bodyChunked, framing.ChunkedBody{}
	case c.scan.length >= 0:
		c.framing, c.left = bodyLength, c.scan.length
	default: // to the end of the connection, or unusable: never reused
		c.framing = bodyStream
	}
	if c.framing == bodyLength && c.left == 0 {
		c.busy = false
	}
}

// followBody returns how many bytes of b belong to the response body, and
// ends the exchange with the body.
func (c *scanConn) followBody(b []byte) int {
	if !c.busy {
		return 0
	}
	switch c.framing {
	case bodyLength:
		take := int64(len(b))
		if take > c.left {
			take = c.left
		}
		if c.left -= take; c.left == 0 {
			c.busy = false
		}
		return int(take)
	case bodyChunked:
		k, done, err := c.chunk.Feed(b)
		if err != nil { // framing the scanner cannot follow: never reused
			c.framing, c.unfollowable = bodyStream, true
			return len(b)
		}
		if done {
			c.busy = false
		}
		return k
	}
	return len(b)
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
