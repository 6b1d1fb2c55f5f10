package gateway

import (
	"bufio"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// h1Writer is the http.ResponseWriter of the connection loop. It frames a
// response as net/http's server does for an HTTP/1.1 request (server.go's
// chunkWriter.writeHeader): the status line with Go's status text, the
// handler's headers sorted by name (invalid names dropped, CR and LF in
// values turned into spaces), then Content-Type sniffed when none was set,
// Connection: close, Transfer-Encoding: chunked, Date and Content-Length as
// net/http adds them; a body of unknown length chunked, unless the handler
// ends within the first 2048 bytes (then its length is sent); trailers
// declared by a Trailer header or set with http.TrailerPrefix after the last
// chunk; no body for HEAD, 1xx, 204 and 304. 1xx responses are written at
// once. The head and a short body go out in one write.
type h1Writer struct {
	hc     *h1Conn
	header http.Header
	method string
	close  bool // the request asked for Connection: close

	status        int
	wroteHeader   bool // a final status was set
	headDone      bool // the head is in the connection's buffer
	done          bool // the handler returned
	chunking      bool
	closeAfter    bool
	contentLength int64 // -1: unknown
	written       int64
	pending       []byte   // body bytes held before the head (at most bufferBeforeChunking)
	trailers      []string // declared by the Trailer header
	keys          []string // scratch for sorting header names
	num           [20]byte
}

// bufferBeforeChunking is how much body net/http holds before it commits to
// the response's framing.
const bufferBeforeChunking = 2048

func (w *h1Writer) reset(r *http.Request) {
	if w.header == nil {
		w.header = make(http.Header, 8)
	} else {
		clear(w.header)
	}
	*w = h1Writer{
		hc: w.hc, header: w.header, method: r.Method, close: r.Close, contentLength: -1,
		pending: w.pending[:0], trailers: w.trailers[:0], keys: w.keys[:0],
	}
}

func (w *h1Writer) Header() http.Header { return w.header }

// SetReadDeadline and SetWriteDeadline are found by http.ResponseController
// and by the gateway's client body and send deadlines. A write deadline
// later than the one set by less than ClientSendTimeout/16 (and a second)
// leaves that one (coarseDeadline): the send deadline is extended before
// every write.
func (w *h1Writer) SetReadDeadline(t time.Time) error {
	return w.hc.rdl.set(t)
}

func (w *h1Writer) SetWriteDeadline(t time.Time) error {
	hc := w.hc
	if !t.IsZero() && coarseDeadline(hc.wdl, t, hc.s.g.opts.ClientSendTimeout) {
		return nil
	}
	hc.wdl = t
	return hc.c.SetWriteDeadline(t)
}

func (w *h1Writer) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	bw := w.hc.bw
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.writeStatusLine(code)
		w.writeHeaders(maskNoBody)
		bw.WriteString("\r\n")
		_ = bw.Flush()
		return
	}
	w.wroteHeader = true
	w.status = code
	if cl := headerGet(w.header, "Content-Length"); cl != "" {
		if v, err := strconv.ParseInt(cl, 10, 64); err == nil && v >= 0 {
			w.contentLength = v
		} else {
			delete(w.header, "Content-Length")
		}
	}
	// The framing no longer depends on the body: write the head now.
	_, haveType := w.header["Content-Type"]
	if w.contentLength >= 0 && (w.contentLength == 0 || haveType || !bodyAllowedForStatus(code)) {
		w.writeHead(nil)
	}
}

func (w *h1Writer) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowedForStatus(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.contentLength != -1 && w.written > w.contentLength {
		return 0, http.ErrContentLength
	}
	if !w.headDone {
		if len(w.pending)+len(p) <= bufferBeforeChunking {
			w.pending = append(w.pending, p...)
			return len(p), nil
		}
		sniff := w.pending
		if len(sniff) < sniffLen {
			sniff = append(sniff, p[:min(len(p), sniffLen-len(sniff))]...)
		}
		w.writeHead(sniff)
		_ = w.writeBody(w.pending)
		w.pending = w.pending[:0]
	}
	if err := w.writeBody(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// sniffLen is how many bytes http.DetectContentType considers.
const sniffLen = 512

// Flush commits the head (chunked when the length is unknown) and sends
// what is buffered.
func (w *h1Writer) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headDone {
		w.writeHead(w.pending)
		_ = w.writeBody(w.pending)
		w.pending = w.pending[:0]
	}
	_ = w.hc.bw.Flush()
}

// finish ends the response after the handler returned and reports whether
// it was sent completely.
func (w *h1Writer) finish() bool {
	w.done = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headDone {
		w.writeHead(w.pending)
		_ = w.writeBody(w.pending)
		w.pending = w.pending[:0]
	}
	bw := w.hc.bw
	if w.chunking {
		bw.WriteString("0\r\n")
		w.writeTrailers()
		bw.WriteString("\r\n")
	}
	if err := bw.Flush(); err != nil {
		return false
	}
	if w.contentLength != -1 && bodyAllowedForStatus(w.status) && w.method != http.MethodHead && w.written != w.contentLength {
		w.closeAfter = true // the client cannot frame another response
	}
	return true
}

func (w *h1Writer) writeBody(p []byte) error {
	if len(p) == 0 || w.method == http.MethodHead {
		return nil
	}
	bw := w.hc.bw
	if w.chunking {
		bw.Write(strconv.AppendInt(w.num[:0], int64(len(p)), 16))
		bw.WriteString("\r\n")
		bw.Write(p)
		_, err := bw.WriteString("\r\n")
		return err
	}
	_, err := bw.Write(p)
	return err
}

// Header names net/http leaves out of a head, as a set.
const (
	maskContentLength = 1 << iota
	maskTransferEncoding
	maskContentType
	maskConnection
	maskNoBody = maskContentLength | maskTransferEncoding
)

// writeHead writes the status line and headers, as net/http's
// chunkWriter.writeHeader does for an HTTP/1.1 request; p is the start of
// the body (for Content-Type sniffing and, when the handler is done, its
// length).
func (w *h1Writer) writeHead(p []byte) {
	w.headDone = true
	h := w.header
	isHEAD := w.method == http.MethodHead
	var exclude int
	trailers := false
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			trailers = true
		}
	}
	for _, v := range h["Trailer"] {
		trailers = true
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				w.trailers = append(w.trailers, http.CanonicalHeaderKey(f))
			}
		}
	}
	te := headerGet(h, "Transfer-Encoding")
	hasTE := te != ""
	var setLength bool
	if w.done && !trailers && !hasTE && bodyAllowedForStatus(w.status) && headerGet(h, "Content-Length") == "" && (!isHEAD || len(p) > 0) {
		w.contentLength = int64(len(p))
		setLength = true
	}
	hasCL := w.contentLength != -1
	if w.close || w.hc.s.shutting.Load() || headerGet(h, "Connection") == "close" {
		w.closeAfter = true
	}
	var contentType string
	code := w.status
	if bodyAllowedForStatus(code) {
		_, haveType := h["Content-Type"]
		if headerGet(h, "Content-Encoding") == "" && !haveType && !hasTE && len(p) > 0 {
			contentType = http.DetectContentType(p)
		}
	} else {
		exclude |= maskNoBody
		if code == http.StatusNotModified {
			exclude |= maskContentType
		}
	}
	_, haveDate := h["Date"]
	if hasCL && hasTE && te != "identity" {
		exclude |= maskContentLength
		hasCL = false
	}
	var chunked bool
	switch {
	case isHEAD || !bodyAllowedForStatus(code) || code == http.StatusNoContent:
		exclude |= maskTransferEncoding
	case hasCL:
		exclude |= maskTransferEncoding
	case hasTE && te == "identity":
		w.closeAfter = true
		exclude |= maskTransferEncoding
	default:
		w.chunking, chunked = true, true
		if hasTE && te == "chunked" {
			exclude |= maskTransferEncoding
		}
	}
	if w.chunking {
		exclude |= maskContentLength
	}
	var connClose bool
	if w.closeAfter && !hasToken(headerGet(h, "Connection"), "close") && code != http.StatusSwitchingProtocols {
		exclude |= maskConnection
		connClose = true
	}

	bw := w.hc.bw
	w.writeStatusLine(code)
	w.writeHeaders(exclude)
	if contentType != "" {
		bw.WriteString("Content-Type: ")
		bw.WriteString(contentType)
		bw.WriteString("\r\n")
	}
	if connClose {
		bw.WriteString("Connection: close\r\n")
	}
	if chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if !haveDate {
		bw.WriteString("Date: ")
		bw.Write(httpDate())
		bw.WriteString("\r\n")
	}
	if setLength {
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(w.num[:0], w.contentLength, 10))
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
}

func (w *h1Writer) writeStatusLine(code int) {
	bw := w.hc.bw
	bw.Write(appendStatusLine(bw.AvailableBuffer(), code))
}

// appendStatusLine appends the status line of code, as net/http's server
// writes it, to dst.
func appendStatusLine(dst []byte, code int) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	if text := http.StatusText(code); text != "" {
		dst = append(dst, ' ')
		dst = append(dst, text...)
	} else {
		dst = append(dst, " status code "...)
		dst = strconv.AppendInt(dst, int64(code), 10)
	}
	return append(dst, "\r\n"...)
}

// writeHeaders writes the handler's headers, sorted by name, without the
// excluded ones and the trailers.
func (w *h1Writer) writeHeaders(exclude int) {
	keys := w.keys[:0]
	for k := range w.header {
		if excluded(k, exclude) || strings.HasPrefix(k, http.TrailerPrefix) || !validFieldName(k) {
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	bw := w.hc.bw
	for _, k := range keys {
		for _, v := range w.header[k] {
			writeField(bw, k, v)
		}
	}
	w.keys = keys[:0]
}

// writeTrailers writes the trailers after the last chunk, as net/http's
// finalTrailers: the TrailerPrefix ones, then the declared ones.
func (w *h1Writer) writeTrailers() {
	bw := w.hc.bw
	keys := w.keys[:0]
	for k := range w.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		name := k[len(http.TrailerPrefix):]
		if !validFieldName(name) {
			continue
		}
		for _, v := range w.header[k] {
			writeField(bw, name, v)
		}
	}
	w.keys = keys[:0]
	for _, k := range w.trailers {
		if !validFieldName(k) {
			continue
		}
		for _, v := range w.header[k] {
			writeField(bw, k, v)
		}
	}
}

func excluded(k string, mask int) bool {
	switch k {
	case "Content-Length":
		return mask&maskContentLength != 0
	case "Transfer-Encoding":
		return mask&maskTransferEncoding != 0
	case "Content-Type":
		return mask&maskContentType != 0
	case "Connection":
		return mask&maskConnection != 0
	}
	return false
}

// writeField writes "k: v" with CR and LF in v turned into spaces and v
// trimmed, as net/http's Header.Write.
func writeField(bw *bufio.Writer, k, v string) {
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(v)
	}
	v = strings.Trim(v, " \t\r\n")
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// validFieldName reports whether k is a token (RFC 9110 §5.1).
func validFieldName[T string | []byte](k T) bool {
	if len(k) == 0 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !tokenChar[k[i]] {
			return false
		}
	}
	return true
}

// tokenChar tells the bytes validFieldName accepts: above ' ', below 0x7f,
// not one of separators.
var tokenChar = func() (t [256]bool) {
	for c := '!'; c < 0x7f; c++ {
		t[c] = !strings.ContainsRune(separators, c)
	}
	return t
}()

// separators are the printable ASCII characters that are not token
// characters.
const separators = "\"(),/:;<=>?@[\\]{}"

// headerGet is h.Get for a canonical key, without canonicalising.
func headerGet(h http.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// hasToken reports whether the comma-separated list v holds token (case
// ignored).
func hasToken(v, token string) bool {
	for v != "" {
		var f string
		f, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(strings.TrimSpace(f), token) {
			return true
		}
	}
	return false
}

// bodyAllowedForStatus reports whether a response with this status may
// have a body.
func bodyAllowedForStatus(status int) bool {
	switch {
	case status >= 100 && status <= 199, status == http.StatusNoContent, status == http.StatusNotModified:
		return false
	}
	return true
}

// httpDate returns the Date header value of now, formatted once a second.
func httpDate() []byte {
	now := time.Now()
	if d := dateCache.Load(); d != nil && d.sec == now.Unix() {
		return d.b
	}
	d := &cachedDate{sec: now.Unix(), b: now.UTC().AppendFormat(nil, http.TimeFormat)}
	dateCache.Store(d)
	return d.b
}

type cachedDate struct {
	sec int64
	b   []byte
}

var dateCache atomic.Pointer[cachedDate]
