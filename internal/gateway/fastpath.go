package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
)

// The fast path forwards plain HTTP/1.1 request/response exchanges over the
// gateway's own backend connections: one connPool per endpoint address, the
// request head written by hand (writeRequestHead), the response read with
// http.ReadResponse on the connection's pooled bufio.Reader. It does what
// httputil.ReverseProxy (Rewrite + SetXForwarded) with the gateway's Transport
// does for these requests: same Host, path and query; hop-by-hop headers
// stripped both ways; X-Forwarded-For/Host/Proto replaced; no default
// User-Agent; response streamed, flushed at once when its length is unknown or
// it is text/event-stream; 502 on backend errors and 499 when the client went
// away. Requests it does not take (fastPathOK) go through ReverseProxy.
//
// A request body is written completely before the response is read (no
// concurrent writer goroutine), which is why only bodies of known, bounded
// length (fastPathMaxBody) take the fast path: they fit in the socket buffers
// even when the backend answers before reading them.

// fastPathMaxBody is the largest request body (Content-Length) the fast path
// forwards; larger and chunked bodies go through ReverseProxy.
const fastPathMaxBody = 64 << 10

// queryReencoded reports whether GODEBUG changes how ReverseProxy cleans query
// strings (urlmaxqueryparams): then every request with a query takes the slow
// path, so that both paths send the same query.
var queryReencoded = strings.Contains(os.Getenv("GODEBUG"), "urlmaxqueryparams")

// fastPathOK reports whether the fast path forwards r exactly as ReverseProxy
// would: HTTP/1.x or HTTP/2 from the client (to an HTTP/1.1 backend), not
// CONNECT, no protocol upgrade, no Expect, no TE (which
// may ask for trailers), no request trailers, a body of known length up to
// fastPathMaxBody, an ASCII Host, and a query ReverseProxy sends unchanged.
func fastPathOK(r *http.Request) bool {
	if (r.ProtoMajor != 1 && r.ProtoMajor != 2) || r.Method == http.MethodConnect || r.Trailer != nil ||
		r.ContentLength < 0 || r.ContentLength > fastPathMaxBody || r.URL == nil {
		return false
	}
	h := r.Header
	if _, ok := h["Upgrade"]; ok {
		return false
	}
	if _, ok := h["Expect"]; ok {
		return false
	}
	if _, ok := h["Te"]; ok {
		return false
	}
	for i := 0; i < len(r.Host); i++ {
		if c := r.Host[i]; c >= 0x80 || c == '%' {
			return false // punycode or zone handling in the Transport
		}
	}
	return queryUnchanged(r.URL.RawQuery)
}

// queryUnchanged reports whether ReverseProxy's cleanQueryParams returns q as
// it is: no ';', only valid %-escapes, at most 10000 parameters.
func queryUnchanged(q string) bool {
	if q == "" {
		return true
	}
	if queryReencoded || strings.Count(q, "&") >= 10000 {
		return false
	}
	for i := 0; i < len(q); {
		switch q[i] {
		case ';':
			return false
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return false
			}
			i += 3
		default:
			i++
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// errNoResponse marks a failure on a reused connection before any response
// byte arrived: the backend had closed it, the request may be retried.
var errNoResponse = errors.New("backend closed the connection before responding")

// errResponseTimeout: the backend sent no response head within
// ResponseHeaderTimeout.
var errResponseTimeout = timeoutError("timeout awaiting the backend's response headers")

type timeoutError string

func (e timeoutError) Error() string { return string(e) }
func (e timeoutError) Timeout() bool { return true }

// Temporary is part of net.Error.
func (e timeoutError) Temporary() bool { return false }

// forward proxies r to tg over a pooled connection, answering through w
// (which records the status code). Like ReverseProxy, it panics with
// http.ErrAbortHandler when the response body cannot be copied completely
// (under net/http's server), so that the client sees a broken response.
func (g *Gateway) forward(w *recorder, r *http.Request, tg *target) {
	ctx := r.Context()
	replayable := r.ContentLength == 0 && isIdempotent(r)
	for {
		bc, reused, err := tg.pool.get(ctx)
		if err != nil {
			if isDialError(err) && ctx.Err() == nil {
				w.dialErr = err // ServeHTTP tries elsewhere
				return
			}
			g.fastError(w, r, tg, err)
			return
		}
		err = g.exchange(w, r, tg, bc, false, true)
		if err == nil {
			return
		}
		if !(reused && replayable && errors.Is(err, errNoResponse)) || ctx.Err() != nil {
			g.fastError(w, r, tg, err)
			return
		}
	}
}

// exchange sends r on bc, unless sent (it is on its way already), and
// answers w with the response. It returns the error of an exchange that got
// no response head: bc is then closed and w not answered. After a
// response, bc goes back to tg's pool when keep and when it may be reused.
func (g *Gateway) exchange(w *recorder, r *http.Request, tg *target, bc *backendConn, sent, keep bool) error {
	// A client that goes away closes the backend connection, which ends
	// the exchange (waiting for the response or copying its body). The
	// connection loop tells it directly; under net/http's server, the
	// request's context does.
	gone := abortOnGone(r.Context(), w, bc)
	res, ph, conn, err := g.roundTrip(bc, w, r, sent)
	if err != nil {
		gone.release()
		bc.close()
		return err
	}
	var reusable, closing bool
	if hw := throughWriter(w, ph); hw != nil {
		if int64(bc.br.Buffered()-ph.n) < ph.length {
			bc.rdl.clear() // the body is read as it comes: a stream may idle
		}
		reusable, closing = g.writeThrough(w, hw, r, bc, ph, conn), ph.close
	} else {
		if ph != nil {
			res = ph.response(bc, r)
		}
		if res.ContentLength < 0 || int64(bc.br.Buffered()) < res.ContentLength {
			bc.rdl.clear()
		}
		reusable, closing = g.writeResponse(w, r, bc, res, conn), res.Close
	}
	if gone.release() && reusable && !closing && keep {
		tg.pool.put(bc)
	} else {
		bc.close()
	}
	return nil
}

// roundTrip writes r on bc and reads the response head, passing 1xx
// informational responses on to w as ReverseProxy does (not to HTTP/1.0
// clients, RFC 9110 §15.2). It returns the final head, as a plainHead not
// yet consumed when scanResponse accepts it, else as read by
// http.ReadResponse, and the values of its Connection header, which
// http.ReadResponse may have deleted.
func (g *Gateway) roundTrip(bc *backendConn, w *recorder, r *http.Request, sent bool) (*http.Response, *plainHead, []string, error) {
	bc.head.start(g.opts.MaxResponseHeaderBytes)
	defer bc.head.stop()
	if !sent {
		if err := g.writeRequest(bc, w, r); err != nil {
			return nil, nil, nil, err
		}
	}
	if hc := loopConn(w); hc != nil && r.ContentLength > 0 {
		hc.allowWatch() // the body is read: the connection loop may watch the client
	}
	bc.rdl.in(g.opts.ResponseHeaderTimeout)
	if bc.br.Buffered() == 0 && len(bc.io.pending) == 0 {
		runtime.Gosched()
	}
	if _, err := bc.br.Peek(1); err != nil {
		if isTimeout(err) {
			return nil, nil, nil, errResponseTimeout
		}
		return nil, nil, nil, fmt.Errorf("%w: %w", errNoResponse, err)
	}
	for n1xx := 0; ; n1xx++ {
		if ph, ok := scanResponse(bc, r); ok {
			conn, err := bc.head.scan.finalConnection()
			if err != nil {
				return nil, nil, nil, err
			}
			return nil, ph, conn, nil
		}
		res, err := http.ReadResponse(bc.br, r)
		if err != nil {
			if isTimeout(err) {
				return nil, nil, nil, errResponseTimeout
			}
			return nil, nil, nil, fmt.Errorf("read response: %w", err)
		}
		switch {
		case res.StatusCode == http.StatusSwitchingProtocols:
			return nil, nil, nil, errors.New("backend switched protocols, none was requested")
		case res.StatusCode >= 200:
			conn, err := bc.head.scan.finalConnection()
			if err != nil {
				return nil, nil, nil, err
			}
			return res, nil, conn, nil
		case n1xx >= max1xx:
			return nil, nil, nil, errors.New("too many 1xx informational responses")
		}
		return1xx(w, res) // the recorder drops it for HTTP/1.0 clients
	}
}

// goneHook closes a backend connection when the client goes away: the
// connection loop tells it directly, under net/http's server the request's
// context does.
type goneHook struct {
	hc   *h1Conn
	stop func() bool
}

func abortOnGone(ctx context.Context, w *recorder, bc *backendConn) goneHook {
	if hc := loopConn(w); hc != nil {
		hc.setBackend(bc)
		return goneHook{hc: hc}
	}
	return goneHook{stop: context.AfterFunc(ctx, bc.abort)}
}

// release ends the hook and reports whether the client is still there (the
// connection was not closed by it).
func (h goneHook) release() bool {
	if h.hc != nil {
		return h.hc.setBackend(nil)
	}
	return h.stop()
}

// loopConn returns the connection loop's client connection w answers, nil
// under net/http's server.
func loopConn(w *recorder) *h1Conn {
	if hw, ok := w.ResponseWriter.(*h1Writer); ok {
		return hw.hc
	}
	return nil
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// return1xx passes an informational response on, as ReverseProxy's
// Got1xxResponse hook does.
func return1xx(w http.ResponseWriter, res *http.Response) {
	h := w.Header()
	for k, vv := range res.Header {
		h[k] = append(h[k], vv...)
	}
	w.WriteHeader(res.StatusCode)
	clear(h)
}

// writeRequest writes r's head and body to bc. A failure to read the body
// from the client is a *clientError.
func (g *Gateway) writeRequest(bc *backendConn, w *recorder, r *http.Request) error {
	bw := bc.bw
	if r.ContentLength == 0 {
		// Sent by the read of the response (backendIO).
		bc.io.deferring = true
		defer func() { bc.io.deferring = false }()
	}
	writeRequestHead(bw, r)
	if n := r.ContentLength; n > 0 {
		buf := g.buffers.Get()
		defer g.buffers.Put(buf)
		body := clientBody{ReadCloser: r.Body, timeout: g.opts.ClientBodyTimeout}
		body.rc, _ = w.ResponseWriter.(readDeadlineSetter)
		defer body.disarm()
		for n > 0 {
			m, rerr := body.Read(buf[:min(int64(len(buf)), n)])
			if m > 0 {
				if _, err := bw.Write(buf[:m]); err != nil {
					return fmt.Errorf("write request body: %w", err)
				}
				n -= int64(m)
			}
			if n > 0 && rerr != nil {
				if rerr == io.EOF {
					rerr = io.ErrUnexpectedEOF
				}
				return &clientError{rerr}
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("%w: write request: %w", errNoResponse, err)
	}
	return nil
}

// writerOnly hides bufio.Writer's ReadFrom, which would bypass the pooled
// buffer (net.TCPConn's generic ReadFrom allocates its own).
type writerOnly struct{ io.Writer }

// writeRequestHead writes the request line and headers as http.Transport would
// write ReverseProxy's outbound request: Host as received, hop-by-hop and
// client-sent Forwarded/X-Forwarded-* headers left out, X-Forwarded-* set,
// User-Agent only when the client sent a non-empty one, Content-Length as the
// Transport decides it.
func writeRequestHead(bw *bufio.Writer, r *http.Request) {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(requestURI(r))
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")
	if ua := r.Header["User-Agent"]; len(ua) > 0 && ua[0] != "" {
		writeHeader(bw, "User-Agent", ua[0])
	}
	conn := r.Header["Connection"]
	for k, vv := range r.Header {
		if skipRequestHeader(k) || connectionListed(conn, k) {
			continue
		}
		for _, v := range vv {
			writeHeader(bw, k, v)
		}
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		writeHeader(bw, "X-Forwarded-For", ip)
	}
	writeHeader(bw, "X-Forwarded-Host", r.Host)
	if r.TLS == nil {
		writeHeader(bw, "X-Forwarded-Proto", "http")
	} else {
		writeHeader(bw, "X-Forwarded-Proto", "https")
	}
	switch {
	case r.ContentLength > 0:
		var num [20]byte
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(num[:0], r.ContentLength, 10))
		bw.WriteString("\r\n")
	case r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch:
		bw.WriteString("Content-Length: 0\r\n") // as the Transport: many servers expect one
	}
	bw.WriteString("\r\n")
}

// requestURI is the request target sent: r.URL.RequestURI(), as the Transport
// computes it, without allocating in the common case where it equals what the
// client sent.
func requestURI(r *http.Request) string {
	u := r.URL
	if u.Scheme == "" && u.Opaque == "" && !u.ForceQuery && u.RawPath == "" &&
		len(r.RequestURI) == len(u.Path)+len(u.RawQuery)+boolInt(u.RawQuery != "") &&
		strings.HasPrefix(r.RequestURI, u.Path) && asciiSafePath(u.Path) {
		return r.RequestURI
	}
	return u.RequestURI()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// asciiSafePath reports whether url.EscapedPath returns p unchanged: only
// unreserved and sub-delimiter characters, ':', '@' and '/'.
func asciiSafePath(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func writeHeader(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// skipRequestHeader reports whether the request header k (canonical) is not
// forwarded as received: hop-by-hop (ReverseProxy's list), replaced
// (Forwarded, X-Forwarded-*), or written by writeRequestHead itself.
func skipRequestHeader(k string) bool {
	switch k {
	case "Host", "User-Agent", "Content-Length",
		"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	}
	return isHopByHop(k)
}

// hopByHop are ReverseProxy's hop-by-hop headers, canonical.
var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// isHopByHop reports whether the canonical header name k is one of
// hopByHop.
func isHopByHop(k string) bool {
	return slices.Contains(hopByHop, k)
}

// connectionListed reports whether header k is named in a Connection header
// (values conn), which makes it hop-by-hop.
func connectionListed(conn []string, k string) bool {
	for _, v := range conn {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if tok = textproto.TrimString(tok); tok != "" && strings.EqualFold(tok, k) {
				return true
			}
		}
	}
	return false
}

// writeResponse sends res (read from bc) to the client as ReverseProxy does,
// leaving out the headers its Connection values (conn) name, and reports
// whether res was read completely (bc may be reused).
func (g *Gateway) writeResponse(w *recorder, r *http.Request, bc *backendConn, res *http.Response, conn []string) bool {
	h := w.Header()
	for k, vv := range res.Header {
		if isHopByHop(k) || connectionListed(conn, k) {
			continue
		}
		if old, ok := h[k]; ok {
			h[k] = append(old, vv...)
		} else {
			h[k] = vv // res.Header is not used after this
		}
	}
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		h.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(res.StatusCode)

	flush := res.ContentLength == -1 || isEventStream(res.Header)
	buf := g.buffers.Get()
	rerr, werr := copyBody(w, res.Body, buf, flush)
	g.buffers.Put(buf)
	if rerr != nil || werr != nil {
		bodyFailed(r, bc, rerr)
		return false
	}
	if len(res.Trailer) > 0 {
		// Force chunking (no Content-Length computed for a short body).
		_ = http.NewResponseController(w).Flush()
	}
	if len(res.Trailer) == announced {
		for k, vv := range res.Trailer {
			h[k] = append(h[k], vv...)
		}
		return true
	}
	for k, vv := range res.Trailer {
		for _, v := range vv {
			h.Add(http.TrailerPrefix+k, v)
		}
	}
	return true
}

// bodyFailed handles a response body that could not be copied to the
// client completely (a read error rerr, else a write error): under a
// server (net/http's or the connection loop), the handler panics with
// http.ErrAbortHandler, as ReverseProxy does, so that the client sees a
// broken response; bc is closed first.
func bodyFailed(r *http.Request, bc *backendConn, rerr error) {
	if rerr != nil {
		logr.FromContextOrDiscard(r.Context()).V(1).Info("backend response body failed",
			"host", r.Host, "error", rerr.Error())
	}
	if r.Context().Value(http.ServerContextKey) != nil {
		bc.close()
		panic(http.ErrAbortHandler)
	}
}

// isEventStream reports whether the Content-Type is text/event-stream
// (parameters and case ignored), which ReverseProxy flushes at once.
func isEventStream(h http.Header) bool {
	ct := h["Content-Type"]
	if len(ct) == 0 {
		return false
	}
	base, _, _ := strings.Cut(ct[0], ";")
	return strings.EqualFold(strings.TrimSpace(base), "text/event-stream")
}

// copyBody copies body to w until EOF; rerr is a read error other than EOF,
// werr a write error. With flush, every chunk is flushed to the client.
func copyBody(w http.ResponseWriter, body io.Reader, buf []byte, flush bool) (rerr, werr error) {
	var f http.Flusher
	if flush {
		f, _ = w.(http.Flusher)
		if f == nil {
			rc := http.NewResponseController(w)
			f = flusherFunc(func() { _ = rc.Flush() })
		}
	}
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr = w.Write(buf[:n]); werr != nil {
				return nil, werr
			}
			if f != nil {
				f.Flush()
			}
		}
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return err, nil
		}
	}
}

type flusherFunc func()

func (f flusherFunc) Flush() { f() }

// fastError answers a request the backend did not, as proxyError does for
// ReverseProxy: 400 or 408 when the client's request body broke (a client
// error, not the backend's), 499 (recorded only) when the client is gone, 504
// after a timeout, else 502.
func (g *Gateway) fastError(w *recorder, r *http.Request, tg *target, err error) {
	var ce *clientError
	if errors.As(err, &ce) {
		w.clientError = true
		badRequest(w, ce)
		return
	}
	if r.Context().Err() != nil {
		w.WriteHeader(statusClientClosedRequest)
		return
	}
	g.backendFailed(r, w.service, tg.addr, err)
	code := backendErrorStatus(err)
	http.Error(w, errorBody(code), code)
}

// isIdempotent reports whether r may be sent again after a failure that left
// its outcome unknown (http.Transport's rule).
func isIdempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, a := r.Header["Idempotency-Key"]
	_, b := r.Header["X-Idempotency-Key"]
	return a || b
}
