package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
)

// Writing a response through: when the connection loop serves the client
// and the backend's head is a plainHead, the fast path copies the head's
// header lines to the client as they are, leaving out the hop-by-hop ones,
// instead of parsing them into a header map and writing that sorted. The
// client gets the same fields, values and framing as from net/http's
// server (h1Writer), in the backend's order: names canonicalised and
// values trimmed as http.ReadResponse and Header.Write would, Date added
// when the backend sent none, Cache-Control: no-cache for a Pragma:
// no-cache without one (http.ReadResponse's rule), Connection: close when
// the connection ends after it.

// throughWriter returns the loop's writer of w when the head ph may be
// written through to it: nothing written or set on the response yet, and
// a head throughOK accepts. Else nil.
func throughWriter(w *recorder, ph *plainHead) *h1Writer {
	if ph == nil || !ph.throughOK() {
		return nil
	}
	hw, ok := w.ResponseWriter.(*h1Writer)
	if !ok || hw.wroteHeader || len(hw.header) > 0 {
		return nil
	}
	return hw
}

// writeThrough sends the response whose head is ph, and its body, from bc
// to hw's client, and reports whether it was read completely (bc may be
// reused). A body that breaks ends the client's connection as in
// writeResponse.
func (g *Gateway) writeThrough(w *recorder, hw *h1Writer, r *http.Request, bc *backendConn, ph *plainHead, conn []string) bool {
	w.code = ph.code
	w.send.extend()
	hw.writeThroughHead(ph, conn)
	_, _ = bc.br.Discard(ph.n)
	rerr, werr := hw.copyThrough(bc.br, ph.length, w.send)
	if rerr != nil || werr != nil {
		bodyFailed(r, bc, rerr)
		return false
	}
	return true
}

// writeThroughHead writes ph's status line and header lines (but the
// hop-by-hop ones and those conn names) to the client's buffer.
func (w *h1Writer) writeThroughHead(ph *plainHead, conn []string) {
	hc := w.hc
	w.wroteHeader, w.headDone = true, true
	w.status, w.contentLength = ph.code, ph.length
	if w.close || hc.s.shutting.Load() {
		w.closeAfter = true
	}
	bw := hc.bw
	bw.Write(appendThroughHead(bw.AvailableBuffer(), ph, conn, w.closeAfter))
}

// appendThroughHead appends the head written through for ph (see
// writeThroughHead) to dst, with Connection: close when closeAfter.
func appendThroughHead(dst []byte, ph *plainHead, conn []string, closeAfter bool) []byte {
	dst = appendStatusLine(dst, ph.code)
	_, rest := cutLine(ph.head)
	if ph.verbatim {
		dst = append(dst, rest...) // conn is empty: a Connection field is hop-by-hop
		rest = nil
	}
	for len(rest) > 0 {
		var l []byte
		l, rest = cutLine(rest)
		k, v, _ := bytes.Cut(l, colon)
		if hopByHopName(k) || connectionListed(conn, string(k)) {
			continue
		}
		if isCanonical(k) {
			dst = append(dst, k...)
		} else {
			dst = append(dst, textproto.CanonicalMIMEHeaderKey(string(k))...)
		}
		dst = append(dst, ": "...)
		dst = append(dst, textproto.TrimBytes(v)...)
		dst = append(dst, "\r\n"...)
	}
	if ph.pragmaNoCache && !ph.hasCacheControl {
		dst = append(dst, "Cache-Control: no-cache\r\n"...)
	}
	if closeAfter {
		dst = append(dst, "Connection: close\r\n"...)
	}
	if !ph.hasDate {
		dst = append(dst, "Date: "...)
		dst = append(dst, httpDate()...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// copyThrough copies the n bytes of a body from src to the client's
// buffer, extending the send deadline before each write that may reach
// the connection. rerr is a read error (io.ErrUnexpectedEOF for a body cut
// short), werr a write error.
func (w *h1Writer) copyThrough(src *bufio.Reader, n int64, send sendDeadline) (rerr, werr error) {
	bw := w.hc.bw
	for n > 0 {
		if src.Buffered() == 0 {
			if _, err := src.Peek(1); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return err, nil
			}
		}
		p, _ := src.Peek(int(min(int64(src.Buffered()), n)))
		if len(p) > bw.Available() {
			send.extend()
		}
		if _, err := bw.Write(p); err != nil {
			return nil, err
		}
		_, _ = src.Discard(len(p))
		n -= int64(len(p))
		w.written += int64(len(p))
	}
	return nil, nil
}

// hopByHopName reports whether the field name k is one of isHopByHop's
// (ASCII case ignored), by length first.
func hopByHopName(k []byte) bool {
	switch len(k) {
	case 2:
		return nameIs(k, "Te")
	case 7:
		return nameIs(k, "Trailer") || nameIs(k, "Upgrade")
	case 10:
		return nameIs(k, "Connection") || nameIs(k, "Keep-Alive")
	case 16:
		return nameIs(k, "Proxy-Connection")
	case 17:
		return nameIs(k, "Transfer-Encoding")
	case 18:
		return nameIs(k, "Proxy-Authenticate")
	case 19:
		return nameIs(k, "Proxy-Authorization")
	}
	return false
}
