package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"
)

// The connection loop and the fast path parse the request and response
// heads they serve into objects they reuse: one string per head (every
// method, path, header name and value is a substring of it), header values
// in one backing array, and the http.Request of a client connection and
// the http.Response of a backend connection kept from one exchange to the
// next. What they produce is what http.ReadRequest (plus the checks of
// net/http's server) and http.ReadResponse produce for the same bytes; a
// head with anything they do not handle is left to those functions (a
// response) or to net/http's server (a request).

// parseRequest parses head, a complete request head that handOffReason
// accepted, into hc's request and reports whether it did: false hands the
// connection to net/http's server (which answers what it refuses). The
// request's header values stay valid until the next request of the
// connection; its strings stay valid as long as they are referenced.
func (hc *h1Conn) parseRequest(head []byte) (*http.Request, bool) {
	r, ok := hc.parse(head)
	if !ok {
		return nil, false
	}
	hc.body.reset(hc.br, r.ContentLength)
	if r.ContentLength > 0 {
		r.Body = &hc.body
	}
	return r, true
}

// parse parses head as parseRequest does, the body left to the caller
// (r.Body is http.NoBody).
func (hc *requestParser) parse(head []byte) (*http.Request, bool) {
	return hc.parseString(string(head[:len(head)-2]))
}

// parseString parses s, a request head without its final empty line, as
// parse does. The request's strings are substrings of s (but for a header
// name that was not canonical, and a target url.ParseRequestURI copies).
func (hc *requestParser) parseString(s string) (*http.Request, bool) {
	line, rest := cutLine(s)
	method, line, _ := cutByte(line, ' ')
	target, _, _ := cutByte(line, ' ')
	if !httpguts.ValidHeaderFieldName(method) { // a token, as validMethod
		return nil, false
	}
	r := hc.req
	*r = *hc.reqBase // zero fields but the connection's context
	u := &hc.url
	*u = url.URL{}
	if p, q, hasQuery := cutByte(target, '?'); plainPath(p) && (!hasQuery || (q != "" && plainQuery(q))) {
		u.Path, u.RawQuery = p, q
	} else {
		pu, err := url.ParseRequestURI(target)
		if err != nil {
			return nil, false
		}
		u = pu
	}
	h := hc.header
	clear(h)
	vals := hc.vals[:0]
	var host string
	hosts := 0
	for rest != "" {
		var l string
		l, rest = cutLine(rest)
		k, v, ok := cutByte(l, ':')
		if !ok || !validFieldValue(v) {
			return nil, false
		}
		k, v = canonicalKey(k), textproto.TrimString(v)
		if k == "Host" {
			host, hosts = v, hosts+1
			continue // net/http's server removes it from the header
		}
		if old, ok := h[k]; ok {
			h[k] = append(old, v)
			continue
		}
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	hc.vals = vals
	if hosts != 1 || !httpguts.ValidHostHeader(host) {
		return nil, false
	}
	if p, ok := h["Pragma"]; ok && p[0] == "no-cache" {
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}
	r.Method, r.URL, r.RequestURI = method, u, target
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	r.Header, r.Host = h, host
	r.Close = httpguts.HeaderValuesContainsToken(h["Connection"], "close")
	r.RemoteAddr, r.TLS = hc.remote, hc.tls
	r.Body = http.NoBody
	if cl, ok := h["Content-Length"]; ok {
		if r.ContentLength = parseLength(-1, cl[0]); r.ContentLength < 0 {
			return nil, false // handOffReason refuses these
		}
	}
	return r, true
}

// plainPath reports whether url.ParseRequestURI sets Path to p and no
// RawPath: letters, digits and "-._~$&+,/:;=@" (what url.shouldEscape
// leaves alone in a path).
func plainPath(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '$', c == '&', c == '+', c == ',',
			c == '/', c == ':', c == ';', c == '=', c == '@':
		default:
			return false
		}
	}
	return true
}

// plainQuery reports whether url.ParseRequestURI keeps q as RawQuery
// unchanged: printable ASCII but '#' (whose handling differs), as
// queryUnchanged already checked ';' and the escapes.
func plainQuery(q string) bool {
	for i := 0; i < len(q); i++ {
		if c := q[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	return true
}

// validFieldValue reports whether v holds only bytes net/textproto accepts
// in a field value: no control character but HTAB.
func validFieldValue[T string | []byte](v T) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// canonicalKey returns textproto.CanonicalMIMEHeaderKey(k) without
// allocating when k is canonical already.
func canonicalKey(k string) string {
	if isCanonical(k) {
		return k
	}
	return textproto.CanonicalMIMEHeaderKey(k)
}

// isCanonical reports whether the field name k is in the form
// textproto.CanonicalMIMEHeaderKey gives: the first letter and those after
// a hyphen upper case, the others lower case, no space or non-ASCII byte.
func isCanonical[T string | []byte](k T) bool {
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case upper && 'a' <= c && c <= 'z', !upper && 'A' <= c && c <= 'Z', c == ' ', c >= 0x7f:
			return false
		}
		upper = c == '-'
	}
	return true
}

func cutLine[T string | []byte](s T) (line, rest T) {
	line, rest, _ = cutByte(s, '\n')
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

func cutByte[T string | []byte](s T, c byte) (before, after T, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return s[:i], s[i+1:], true
		}
	}
	return s, s[len(s):], false
}

// countedBody is the body of a request the loop serves (or of a response
// the fast path reads): the next left bytes of a connection's reader. mu
// is held by reads and by stop: a Transport may still read a request body
// after its RoundTrip returned.
type countedBody struct {
	mu     sync.Mutex
	br     *bufio.Reader
	left   int64
	closed bool
}

func (b *countedBody) reset(br *bufio.Reader, n int64) {
	b.br, b.left, b.closed = br, n, false
}

func (b *countedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	if err == io.EOF && b.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *countedBody) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// stop closes the body, waiting for a read in progress, and returns how
// many of its bytes are left unread.
func (b *countedBody) stop() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return b.left
}

// drain reads what is left of the body after stop.
func (b *countedBody) drain() error {
	for b.left > 0 {
		n, err := b.br.Discard(int(min(b.left, 1<<20)))
		b.left -= int64(n)
		if err != nil {
			return err
		}
	}
	return nil
}

// plainHead is a response head that scanResponse accepted, as it lies in
// the backend connection's read buffer: HTTP/1.1, a final status with a
// body (not 1xx, 204 or 304, not to HEAD), its length given by exactly one
// Content-Length, no Transfer-Encoding or Trailer, valid names and values,
// no obs-fold. The connection loop writes such a head through to its
// client (writeThrough); otherwise response parses it.
type plainHead struct {
	// head is the status line and the header lines through the CRLF of
	// the last one (not a copy: valid until n bytes are discarded).
	head []byte
	n    int
	code int
	// length is the body's Content-Length.
	length int64
	// What the header tells: Connection: close; Content-Type, Date and
	// Cache-Control present; the first Pragma is no-cache; a Grpc-Status
	// field; a text/event-stream body.
	close, hasType, hasDate, hasCacheControl, pragmaNoCache, grpc, eventStream bool
	// verbatim: the header lines are written through unchanged (canonical
	// names, no hop-by-hop field, values after exactly one space and not
	// ending in whitespace), so appendThroughHead copies them as one block.
	verbatim bool
}

// scanResponse checks the response head buffered in bc.br, without
// consuming or copying it, and reports whether it is a plainHead. Any
// other head, or one not completely buffered yet, is read by
// http.ReadResponse.
func scanResponse(bc *backendConn, r *http.Request) (*plainHead, bool) {
	if r.Method == http.MethodHead {
		return nil, false
	}
	buf, _ := bc.br.Peek(bc.br.Buffered())
	if !bc.plain.scan(buf) {
		return nil, false
	}
	return &bc.plain, true
}

// scan sets ph from the response head at the start of buf (the response
// to a request other than HEAD) and reports whether it is a plainHead;
// ph.head then points into buf.
func (ph *plainHead) scan(buf []byte) bool {
	end := bytes.Index(buf, crlfcrlf)
	if end < 0 || len(buf) < len("HTTP/1.1 200\r\n") || string(buf[:9]) != "HTTP/1.1 " {
		return false
	}
	code := statusCode(buf[:12])
	if code < 200 || code == http.StatusNoContent || code == http.StatusNotModified ||
		(buf[12] != ' ' && buf[12] != '\r') {
		return false
	}
	*ph = plainHead{head: buf[:end+2], n: end + 4, code: code, length: -1, verbatim: true}
	status, rest := cutLine(ph.head)
	if bytes.IndexByte(status, '\r') >= 0 {
		return false // a bare CR: net/http reads it into the code or reason
	}
	pragma := false
	for len(rest) > 0 {
		var l []byte
		l, rest = cutLine(rest)
		k, v, ok := bytes.Cut(l, colon)
		if !ok || !validFieldName(k) || !validFieldValue(v) || bytes.IndexByte(v, '\r') >= 0 {
			return false
		}
		if ph.verbatim && (!oneSpaceValue(v) || !isCanonical(k) || hopByHopName(k)) {
			ph.verbatim = false
		}
		v = textproto.TrimBytes(v)
		switch {
		case nameIs(k, "Transfer-Encoding"), nameIs(k, "Trailer"):
			return false
		case nameIs(k, "Content-Length"):
			if ph.length != -1 {
				return false
			}
			if ph.length = parseLength(-1, v); ph.length < 0 {
				return false
			}
		case nameIs(k, "Content-Type"):
			ph.hasType = true
			base, _, _ := bytes.Cut(v, []byte(";"))
			ph.eventStream = ph.eventStream || bytes.EqualFold(textproto.TrimBytes(base), []byte("text/event-stream"))
		case nameIs(k, "Date"):
			ph.hasDate = true
		case nameIs(k, "Cache-Control"):
			ph.hasCacheControl = true
		case nameIs(k, "Pragma"):
			if !pragma {
				pragma, ph.pragmaNoCache = true, string(v) == "no-cache"
			}
		case nameIs(k, "Grpc-Status"):
			ph.grpc = true
		case nameIs(k, "Connection"):
			ph.close = ph.close || hasToken(string(v), "close")
		}
	}
	if ph.length < 0 {
		return false
	}
	return true
}

// oneSpaceValue reports whether v, what follows a field's colon, is one
// space and a value that neither starts nor ends with whitespace.
func oneSpaceValue(v []byte) bool {
	if len(v) < 2 || v[0] != ' ' {
		return false
	}
	first, last := v[1], v[len(v)-1]
	return first != ' ' && first != '\t' && last != ' ' && last != '\t'
}

// nameIs reports whether the field name k is name, ASCII case ignored.
func nameIs(k []byte, name string) bool {
	return len(k) == len(name) && bytes.EqualFold(k, []byte(name))
}

// throughOK reports whether writing ph through gives the client what
// net/http's server would send for it: a Content-Type to keep (none is
// sniffed) or no body, nothing the metrics read (grpc-status), and no
// event stream (flushed as it comes).
func (ph *plainHead) throughOK() bool {
	return (ph.hasType || ph.length == 0) && !ph.grpc && !ph.eventStream
}

// response parses ph, as http.ReadResponse would, into bc's reused
// Response and consumes it; the header values are freshly allocated (they
// outlive the exchange in the client's response).
func (ph *plainHead) response(bc *backendConn, r *http.Request) *http.Response {
	s := string(ph.head)
	line, rest := cutLine(s)
	lines := strings.Count(rest, "\n")
	h := bc.header
	if h == nil {
		h = make(http.Header, lines)
		bc.header = h
	}
	clear(h)
	vals := make([]string, 0, lines)
	for rest != "" {
		var l string
		l, rest = cutLine(rest)
		k, v, _ := strings.Cut(l, ":")
		k, v = canonicalKey(k), textproto.TrimString(v)
		if old, ok := h[k]; ok {
			h[k] = append(old, v)
			continue
		}
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	if ph.pragmaNoCache && !ph.hasCacheControl {
		h["Cache-Control"] = []string{"no-cache"}
	}
	_, _ = bc.br.Discard(ph.n)
	res := &bc.res
	*res = http.Response{
		Status: line[9:], StatusCode: ph.code, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, ContentLength: ph.length, Request: r, Body: http.NoBody, Close: ph.close,
	}
	if ph.close {
		delete(h, "Connection") // as http.ReadResponse
	}
	if ph.length > 0 {
		bc.body.reset(bc.br, ph.length)
		res.Body = &bc.body
	}
	return res
}
