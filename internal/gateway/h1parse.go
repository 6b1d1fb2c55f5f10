package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
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
	s := string(head[:len(head)-2]) // without the final empty line
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
	hc.body.reset(hc.br, r.ContentLength)
	if r.ContentLength > 0 {
		r.Body = &hc.body
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
func validFieldValue(v string) bool {
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
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case upper && 'a' <= c && c <= 'z', !upper && 'A' <= c && c <= 'Z', c == ' ', c >= 0x7f:
			return textproto.CanonicalMIMEHeaderKey(k)
		}
		upper = c == '-'
	}
	return k
}

func cutLine(s string) (line, rest string) {
	line, rest, _ = cutByte(s, '\n')
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

func cutByte(s string, c byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// countedBody is the body of a request the loop serves (or of a response
// the fast path reads): the next left bytes of a connection's reader. mu
// is held by reads and by end: a Transport may still read a request body
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

// readResponse reads the next response head from bc as
// http.ReadResponse(bc.br, r) does, into bc's reused Response when the
// whole head is buffered already and is a plain one: HTTP/1.1, a final
// status with a body (not 1xx, 204 or 304, not to HEAD), its length given
// by exactly one Content-Length, no Transfer-Encoding or Trailer, CRLF
// lines without obs-fold. Any other head is read by http.ReadResponse.
// The returned response is valid until bc's next exchange, its header
// values (freshly allocated) as long as they are referenced.
func readResponse(bc *backendConn, r *http.Request) (*http.Response, error) {
	if res, ok := parseResponse(bc, r); ok {
		return res, nil
	}
	return http.ReadResponse(bc.br, r)
}

func parseResponse(bc *backendConn, r *http.Request) (*http.Response, bool) {
	if r.Method == http.MethodHead {
		return nil, false
	}
	buf, _ := bc.br.Peek(bc.br.Buffered())
	end := bytes.Index(buf, crlfcrlf)
	if end < 0 || len(buf) < len("HTTP/1.1 200\r\n") || string(buf[:9]) != "HTTP/1.1 " {
		return nil, false
	}
	code := statusCode(buf[:12])
	if code < 200 || code == http.StatusNoContent || code == http.StatusNotModified || code > 999 ||
		(buf[12] != ' ' && buf[12] != '\r') {
		return nil, false
	}
	s := string(buf[:end+2])
	line, rest := cutLine(s)
	lines := 0
	for i := 0; i < len(rest); i++ {
		if rest[i] == '\n' {
			lines++
		}
	}
	h := bc.header
	if h == nil {
		h = make(http.Header, lines)
		bc.header = h
	}
	clear(h)
	vals := make([]string, 0, lines)
	length := int64(-1)
	for rest != "" {
		var l string
		l, rest = cutLine(rest)
		k, v, ok := cutByte(l, ':')
		if !ok || !httpguts.ValidHeaderFieldName(k) || !validFieldValue(v) || containsByte(l, '\r') {
			return nil, false
		}
		k, v = canonicalKey(k), textproto.TrimString(v)
		switch k {
		case "Transfer-Encoding", "Trailer":
			return nil, false
		case "Content-Length":
			if length != -1 {
				return nil, false
			}
			if length = parseLength(-1, v); length < 0 {
				return nil, false
			}
		}
		if old, ok := h[k]; ok {
			h[k] = append(old, v)
			continue
		}
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	if length < 0 {
		return nil, false
	}
	if p, ok := h["Pragma"]; ok && p[0] == "no-cache" {
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}
	_, _ = bc.br.Discard(end + 4)
	res := &bc.res
	*res = http.Response{
		Status: line[9:], StatusCode: code, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, ContentLength: length, Request: r, Body: http.NoBody,
	}
	if httpguts.HeaderValuesContainsToken(h["Connection"], "close") {
		res.Close = true
		delete(h, "Connection") // as http.ReadResponse
	}
	if length > 0 {
		bc.body.reset(bc.br, length)
		res.Body = &bc.body
	}
	return res, true
}

func containsByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}
