package framing

import (
	"bytes"
	"errors"
)

// Reasons a request head is refused. They are passed to [Options.OnRefuse].
var (
	ErrAmbiguousLength     = errors.New("framing: request has both Content-Length and Transfer-Encoding")
	ErrTransferEncoding10  = errors.New("framing: HTTP/1.0 request has Transfer-Encoding")
	ErrBadTransferEncoding = errors.New("framing: Transfer-Encoding is not exactly one chunked field")
	ErrBadContentLength    = errors.New("framing: Content-Length is repeated or not a decimal number")
	ErrObsFold             = errors.New("framing: obsolete line folding in request head")
	ErrBadLineEnding       = errors.New("framing: request head line does not end with CRLF")
	ErrBadFieldName        = errors.New("framing: invalid header field name")
	ErrBadFieldValue       = errors.New("framing: control character in header field value")
	ErrBadRequestLine      = errors.New("framing: malformed request line")
	ErrUnsupportedVersion  = errors.New("framing: request is not HTTP/1.x")
	errHeadIncomplete      = errors.New("framing: head incomplete")
)

const (
	maxContentLengthDigits  = 18 // fits an int64 whatever the digits
	http2Preface            = "PRI * HTTP/2.0"
	headerContentLength     = "content-length"
	headerTransferEncoding  = "transfer-encoding"
	headerUpgrade           = "upgrade"
	transferCodingChunked   = "chunked"
	maxLeadingEmptyLineByte = 4 // net/http skips up to 4 CR/LF bytes after a POST
)

// tchar reports the token characters of RFC 9110 §5.6.2.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// headState is what is known of the request head being scanned. off is the
// number of its bytes already scanned (complete lines), counted from the head's
// first byte, so scanning resumes where it stopped when more bytes arrive.
type headState struct {
	off     int
	part    int // bytes of the unfinished line at off already checked
	lines   int
	skipped bool // leading CR/LF after a POST dealt with

	http10   bool
	post     bool
	upgrade  bool
	h2       bool
	clFields int
	teFields int
	length   int64
}

// headResult is the outcome of a complete head.
type headResult struct {
	n       int   // bytes of the head, empty line included
	body    int   // bodyNone, bodyLength or bodyChunked
	length  int64 // for bodyLength
	upgrade bool  // Upgrade header present
	post    bool  // method POST
	h2      bool  // HTTP/2 prior-knowledge preface: stop checking
}

const (
	bodyNone = iota
	bodyLength
	bodyChunked
)

// scanHead scans b, which starts with the head's first byte. It returns
// errHeadIncomplete when b holds no complete head and no error was found yet,
// a refusal reason, or nil and the head's framing.
func (h *headState) scan(b []byte, afterPost bool) (headResult, error) {
	if !h.skipped {
		if afterPost {
			n := 0
			for n < len(b) && n < maxLeadingEmptyLineByte && (b[n] == '\r' || b[n] == '\n') {
				n++
			}
			if n == len(b) && n < maxLeadingEmptyLineByte {
				return headResult{}, errHeadIncomplete
			}
			h.off = n
		}
		h.skipped = true
	}
	for {
		rest := b[h.off:]
		i := bytes.IndexByte(rest[h.part:], '\n')
		if i < 0 {
			seg := rest[h.part:]
			if j := bytes.IndexByte(seg, '\r'); j >= 0 && j < len(seg)-1 {
				return headResult{}, ErrBadLineEnding // CR not followed by LF
			}
			// Resume after what is checked, the last CR excepted: a long
			// line read in small pieces is scanned once, not once a piece.
			h.part = len(rest)
			if len(seg) > 0 && seg[len(seg)-1] == '\r' {
				h.part--
			}
			return headResult{}, errHeadIncomplete
		}
		i += h.part
		h.part = 0
		if i == 0 || rest[i-1] != '\r' {
			return headResult{}, ErrBadLineEnding
		}
		line := rest[:i-1] // a CR in it is refused by requestLine or field
		h.off += i + 1
		h.lines++
		if h.lines == 1 {
			if err := h.requestLine(line); err != nil {
				return headResult{}, err
			}
			continue
		}
		if len(line) == 0 {
			return h.finish()
		}
		if err := h.field(line); err != nil {
			return headResult{}, err
		}
	}
}

func (h *headState) requestLine(line []byte) error {
	if string(line) == http2Preface {
		h.h2 = true
		return nil
	}
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return ErrBadRequestLine
	}
	method := line[:sp1]
	for _, c := range method {
		if !tchar[c] {
			return ErrBadRequestLine
		}
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return ErrBadRequestLine
	}
	for _, c := range rest[:sp2] {
		if c <= ' ' || c == 0x7f {
			return ErrBadRequestLine
		}
	}
	v := rest[sp2+1:]
	if len(v) != len("HTTP/1.1") || string(v[:5]) != "HTTP/" || v[6] != '.' ||
		v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9' {
		return ErrBadRequestLine
	}
	if v[5] != '1' {
		return ErrUnsupportedVersion
	}
	h.http10 = v[7] == '0'
	h.post = string(method) == "POST"
	return nil
}

func (h *headState) field(line []byte) error {
	if line[0] == ' ' || line[0] == '\t' {
		return ErrObsFold
	}
	colon := 0
	for colon < len(line) && tchar[line[colon]] {
		colon++
	}
	if colon == 0 || colon == len(line) || line[colon] != ':' {
		return ErrBadFieldName
	}
	name, value := line[:colon], line[colon+1:]
	for _, c := range value {
		if (c < ' ' && c != '\t') || c == 0x7f {
			if c == '\r' {
				return ErrBadLineEnding
			}
			return ErrBadFieldValue
		}
	}
	value = trimOWS(value)
	switch {
	case equalFold(name, headerContentLength):
		h.clFields++
		if h.clFields > 1 || len(value) == 0 || len(value) > maxContentLengthDigits {
			return ErrBadContentLength
		}
		var n int64
		for _, c := range value {
			if c < '0' || c > '9' {
				return ErrBadContentLength
			}
			n = n*10 + int64(c-'0')
		}
		h.length = n
	case equalFold(name, headerTransferEncoding):
		h.teFields++
		if h.teFields > 1 || !equalFold(value, transferCodingChunked) {
			return ErrBadTransferEncoding
		}
	case equalFold(name, headerUpgrade):
		h.upgrade = true
	}
	return nil
}

func (h *headState) finish() (headResult, error) {
	r := headResult{n: h.off, upgrade: h.upgrade, post: h.post, h2: h.h2}
	switch {
	case h.h2:
		if h.lines != 2 {
			return headResult{}, ErrUnsupportedVersion
		}
	case h.teFields > 0 && h.clFields > 0:
		return headResult{}, ErrAmbiguousLength
	case h.teFields > 0 && h.http10:
		return headResult{}, ErrTransferEncoding10
	case h.teFields > 0:
		r.body = bodyChunked
	case h.length > 0:
		r.body, r.length = bodyLength, h.length
	}
	return r, nil
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold reports whether b equals the lower-case ASCII string s, ignoring
// ASCII case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// CheckHead checks the request head at the start of b as a wrapped
// connection would, for a server that reads requests from b itself (an event
// loop over raw descriptors). It returns the length of the head, empty line
// included, and whether more than the head is part of the request: a body
// (Content-Length above 0 or chunked), an Upgrade header or an HTTP/2
// preface, which the caller must leave to a wrapped connection. n is 0 and
// err nil while b holds no complete head; err is a refusal reason (one of the
// Err values of this package) for a head that is refused.
func CheckHead(b []byte) (n int, more bool, err error) {
	var h headState
	res, err := h.scan(b, false)
	if err == errHeadIncomplete {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return res.n, res.body != bodyNone || res.upgrade || res.h2, nil
}
