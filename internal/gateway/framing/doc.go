// Package framing refuses HTTP/1.x requests whose message framing is
// ambiguous, before net/http's server acts on them.
//
// net/http's server removes Transfer-Encoding (and, for a chunked request,
// Content-Length) from the request it hands to a handler, so a handler cannot
// tell that a request was ambiguous; for HTTP/1.0 it ignores Transfer-Encoding
// and frames the body by Content-Length, leaving the chunked remainder to be
// read as a further request. A connection wrapped by [Wrap] (or accepted from a
// [Listener]) follows the request framing on the client's byte stream as the
// server reads it, and holds each request head until it is complete and valid.
//
// # What is refused
//
// A request head is refused when it has
//   - both Content-Length and Transfer-Encoding (RFC 9112 §6.1: the server
//     MUST close the connection after such a request; §6.3 item 3);
//   - Transfer-Encoding on an HTTP/1.0 request (§6.1: faulty framing);
//   - Transfer-Encoding other than exactly one field whose value is chunked
//     (ASCII case ignored);
//   - more than one Content-Length field, or a value that is not all digits
//     (§6.3 item 5);
//   - obsolete line folding, a line starting with SP or HTAB (§5.2);
//   - a line not ended by CRLF: a bare LF or a bare CR anywhere in the head
//     (§2.2);
//   - a header field name that is empty or not a token (whitespace, control
//     characters, ...), a line without a colon, or a control character in a
//     field value;
//   - a malformed request line, or a version other than HTTP/1.x.
//
// A refused head is not passed on: the server reads instead a short malformed
// request line, answers it with its own "400 Bad Request" and closes the
// connection; no client byte after the refused head reaches it. Responses to
// the requests before it are written first, in order, since the server serves
// a connection's requests one after the other.
//
// A chunked body (RFC 9112 §7.1) is followed to its end: chunk-size lines
// (1 to 16 hex digits, optional whitespace or ;extension, at most 4096 bytes),
// data, CRLF, and after the last chunk the trailer lines (CRLF-ended
// name:value, at most 4096 bytes in all) to the empty line. Anything else
// makes every further Read fail with a *net.OpError (Op "read") wrapping
// [ErrMalformedBody]; the handler's body read fails with it (or with
// net/http's own error where it notices first: an over-long chunk line, a
// trailer cut short), and the server then closes the connection without a
// response of its own. A Content-Length body is passed on by count.
//
// [Options.OnRefuse] is told of each refusal and malformed body. After one,
// Close shuts down the writing side and drains what the client still sends
// for half a second before closing, so the client reads the 400 rather than
// a connection reset.
//
// # Limits
//
// A head not ended within [Options.MaxHeadBytes] (plus a little slack) is
// passed on as it is and the connection is no longer checked: the server,
// whose limit that is, answers "431 Request Header Fields Too Large" and closes
// the connection.
//
// After a request with an Upgrade header, the bytes that follow its body are
// held until the status line of its response is written on the connection:
// "101 Switching Protocols" passes everything through from then on; any other
// final status resumes the checks on the held bytes; other 1xx responses are
// skipped. So a hijacking handler must write its 101 before it reads client
// bytes. An upgrade head is never returned in one Read with earlier requests,
// so that the responses to those are not taken for its answer. A handler that
// writes 101 without hijacking the connection also ends the checks. The "PRI * HTTP/2.0" preface likewise ends them (HTTP/2
// with prior knowledge). CONNECT tunnels are not recognised: bytes after a
// CONNECT request are still checked as HTTP/1.
//
// The wrapped connection has no ReadFrom, so net/http's sendfile and splice
// shortcuts for response bodies are not taken. The wrapper must see plaintext: put it over a *tls.Conn, not under one (the
// server then does not see a *tls.Conn and serves HTTP/1 only).
package framing
