package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// requestHeads are request heads for the parser tests: the loop parses
// some, hands the others to net/http's server.
var requestHeads = []string{
	"GET / HTTP/1.1\r\nHost: web.example\r\n\r\n",
	"GET /api/error_page?a=1&b=%2F HTTP/1.1\r\nHost: web.example:8080\r\nUser-Agent: curl/8.5\r\nAccept: */*\r\n\r\n",
	"POST /submit HTTP/1.1\r\nHost: web.example\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n",
	"PUT /x HTTP/1.1\r\nHost: web.example\r\nContent-Length: 0\r\n\r\n",
	"GET /p HTTP/1.1\r\nhost: web.example\r\nx-debug: on\r\nX-DEBUG: twice\r\nconnection: keep-alive, Close\r\n\r\n",
	"GET /p HTTP/1.1\r\nHost: web.example\r\nPragma: no-cache\r\n\r\n",
	"GET /p HTTP/1.1\r\nHost: web.example\r\nPragma: no-cache\r\nCache-Control: max-age=0\r\n\r\n",
	"GET /p HTTP/1.1\r\nHost: web.example\r\nX-Spaces:   padded value \t\r\nX-Empty:\r\n\r\n",
	"GET /a!b(c)*'d HTTP/1.1\r\nHost: web.example\r\n\r\n",
	"GET /%7Euser/a%20b HTTP/1.1\r\nHost: web.example\r\n\r\n",
	"GET /p? HTTP/1.1\r\nHost: web.example\r\n\r\n",
	"GET /p?a?b HTTP/1.1\r\nHost: web.example\r\n\r\n",
	"GET /p?a#b HTTP/1.1\r\nHost: web.example\r\n\r\n",
	"GET //double/slash HTTP/1.1\r\nHost: web.example\r\n\r\n",
	"GET /p HTTP/1.1\r\nHost: web.example\r\nX_Under_score: 1\r\nx-wEIRD-case: 2\r\n\r\n",
	"GET /p HTTP/1.1\r\nHost: web.example\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
	"GET /p HTTP/1.1\r\nHost: web example\r\n\r\n",
	"GET /p HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
	"GET /p HTTP/1.1\r\nHost: web.example\r\nX-Obs: caf\xc3\xa9\r\n\r\n",
	"G@T /p HTTP/1.1\r\nHost: web.example\r\n\r\n",
	"GET /p HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET /p HTTP/1.1\r\n\r\n",
}

// TestParseRequestSameAsNetHTTP: every head the loop parses gives the
// request http.ReadRequest gives (which net/http's server accepts); a head it does not parse is one the
// loop hands off.
func TestParseRequestSameAsNetHTTP(t *testing.T) {
	parsed := 0
	for _, head := range requestHeads {
		if checkParseRequest(t, head) {
			parsed++
		}
	}
	if parsed < 15 {
		t.Errorf("the loop parsed %d of %d heads; the table is meant to exercise its parser", parsed, len(requestHeads))
	}
}

// checkParseRequest compares the loop's parse of head with net/http's and
// reports whether the loop parsed it.
func checkParseRequest(t *testing.T, head string) bool {
	t.Helper()
	if handOffReason([]byte(head)) != "" {
		return false
	}
	hc := &h1Conn{requestParser: requestParser{remote: "192.0.2.1:1234", header: http.Header{}}}
	hc.br = bufio.NewReader(strings.NewReader(head))
	hc.req, hc.reqBase = new(http.Request), new(http.Request).WithContext(t.Context())
	got, ok := hc.parseRequest([]byte(head))
	want, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
	if !ok {
		if err == nil && validHost(head, want) {
			t.Logf("not parsed by the loop (handed off): %q", head)
		}
		return false
	}
	if err != nil {
		t.Errorf("%q: the loop parsed a head net/http refuses (%v)", head, err)
		return true
	}
	if !validHost(head, want) {
		t.Errorf("%q: the loop parsed a head net/http's server answers with 400", head)
		return true
	}
	if got.Method != want.Method || got.RequestURI != want.RequestURI || got.Host != want.Host ||
		got.Proto != want.Proto || got.ProtoMajor != 1 || got.ProtoMinor != 1 ||
		got.Close != want.Close || got.ContentLength != want.ContentLength ||
		!reflect.DeepEqual(urlFields(got.URL), urlFields(want.URL)) ||
		!reflect.DeepEqual(got.Header, want.Header) ||
		(got.Body == http.NoBody) != (want.Body == http.NoBody) {
		t.Errorf("%q:\nloop     %s %q %q host %q close %v length %d url %+v\nheader %v\nnet/http %s %q %q host %q close %v length %d url %+v\nheader %v",
			head, got.Method, got.RequestURI, got.Proto, got.Host, got.Close, got.ContentLength, urlFields(got.URL), got.Header,
			want.Method, want.RequestURI, want.Proto, want.Host, want.Close, want.ContentLength, urlFields(want.URL), want.Header)
	}
	if got.Context() != t.Context() || got.RemoteAddr != hc.remote {
		t.Errorf("%q: the request lost the connection's context or address", head)
	}
	return true
}

// validHost reports whether net/http's server accepts the Host of r, read
// by http.ReadRequest from head (it answers 400 otherwise): one Host field,
// with a valid value (empty is valid).
func validHost(head string, r *http.Request) bool {
	n := 0
	for _, l := range strings.Split(head, "\r\n")[1:] {
		if k, _, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "Host") {
			n++
		}
	}
	return n == 1 && httpguts.ValidHostHeader(r.Host)
}

func urlFields(u *url.URL) url.URL {
	if u == nil {
		return url.URL{}
	}
	return *u
}

// TestParseRequestReuse: a connection's second request does not see the
// first one's headers, and values handed out for the first are not
// overwritten by the second.
func TestParseRequestReuse(t *testing.T) {
	hc := &h1Conn{requestParser: requestParser{header: http.Header{}}}
	hc.req, hc.reqBase = new(http.Request), new(http.Request).WithContext(t.Context())
	first := "GET /one?x=1 HTTP/1.1\r\nHost: web.example\r\nX-A: 1\r\nX-B: 2\r\n\r\n"
	r, ok := hc.parseRequest([]byte(first))
	if !ok {
		t.Fatal("first head not parsed")
	}
	a := r.Header["X-A"]
	r.Header.Set("X-Set-By-Handler", "v") // what a handler may do
	second := "POST /two HTTP/1.1\r\nHost: other.example\r\nX-C: 3\r\nContent-Length: 2\r\n\r\n"
	hc.br = bufio.NewReader(strings.NewReader("hi"))
	r, ok = hc.parseRequest([]byte(second))
	if !ok {
		t.Fatal("second head not parsed")
	}
	if len(r.Header) != 2 || r.Header.Get("X-C") != "3" || r.Header.Get("Content-Length") != "2" {
		t.Errorf("second request's header %v", r.Header)
	}
	if r.URL.Path != "/two" || r.URL.RawQuery != "" || r.Host != "other.example" || r.ContentLength != 2 {
		t.Errorf("second request %s %+v host %q length %d", r.Method, *r.URL, r.Host, r.ContentLength)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil || string(body) != "hi" {
		t.Errorf("body %q, %v", body, err)
	}
	if _, err := r.Body.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read past the body: %v, want EOF", err)
	}
	_ = a // a is the first request's: the test checks it was not changed under it
	if a[0] != "1" {
		t.Errorf("the first request's X-A became %q", a[0])
	}
}

// responseHeads are backend responses (head and body) for the parser tests.
var responseHeads = []string{
	"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 3\r\nx-lower: a\r\nX-LOWER: b\r\n\r\nbad",
	"HTTP/1.1 200 OK\r\nConnection: close, X-Internal\r\nX-Internal: 1\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Pad:  spaced  \r\n\r\nabcEXTRA",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	"HTTP/1.1 204 No Content\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
	"HTTP/1.1 200 OK\r\n\r\nuntil close",
	"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nX-Fold: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\nX-Bare: lf\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nBad Name: 1\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok",
	"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
}

// TestParseResponseSameAsNetHTTP: readResponse gives, for every response,
// what http.ReadResponse gives (status, header, framing, body, the bytes
// left after it), whether it parsed the head itself or passed it on.
func TestParseResponseSameAsNetHTTP(t *testing.T) {
	parsed := 0
	for _, raw := range responseHeads {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			if checkParseResponse(t, raw, method) {
				parsed++
			}
		}
	}
	if parsed < 8 {
		t.Errorf("the fast path parsed %d responses itself; the table is meant to exercise its parser", parsed)
	}
}

// checkParseResponse compares readResponse on raw with http.ReadResponse
// and reports whether scanResponse accepted it.
func checkParseResponse(t *testing.T, raw, method string) bool {
	t.Helper()
	req := &http.Request{Method: method}
	bc := &backendConn{br: bufio.NewReader(strings.NewReader(raw))}
	_, _ = bc.br.Peek(1) // what roundTrip does before reading a response
	_, parsed := scanResponse(bc, req)
	bc = &backendConn{br: bufio.NewReader(strings.NewReader(raw))}
	_, _ = bc.br.Peek(1)
	got, gerr := readResponse(bc, req)
	wbr := bufio.NewReader(strings.NewReader(raw))
	want, werr := http.ReadResponse(wbr, req)
	if (gerr == nil) != (werr == nil) {
		t.Errorf("%q %s: error %v, net/http %v", raw, method, gerr, werr)
		return parsed
	}
	if werr != nil {
		return parsed
	}
	gbody, gberr := io.ReadAll(got.Body)
	wbody, wberr := io.ReadAll(want.Body)
	grest, _ := io.ReadAll(bc.br)
	wrest, _ := io.ReadAll(wbr)
	if got.StatusCode != want.StatusCode || got.Status != want.Status || got.Proto != want.Proto ||
		got.ProtoMajor != want.ProtoMajor || got.ProtoMinor != want.ProtoMinor ||
		got.Close != want.Close || got.ContentLength != want.ContentLength ||
		!reflect.DeepEqual(got.Header, want.Header) || !reflect.DeepEqual(got.Trailer, want.Trailer) ||
		!bytes.Equal(gbody, wbody) || (gberr == nil) != (wberr == nil) || !bytes.Equal(grest, wrest) ||
		got.Request != req {
		t.Errorf("%q %s (parsed by the fast path: %v):\ngot  %q %q close %v length %d header %v body %q (%v) rest %q\nwant %q %q close %v length %d header %v body %q (%v) rest %q",
			raw, method, parsed,
			got.Status, got.Proto, got.Close, got.ContentLength, got.Header, gbody, gberr, grest,
			want.Status, want.Proto, want.Close, want.ContentLength, want.Header, wbody, wberr, wrest)
	}
	return parsed
}

// readResponse reads a response head as roundTrip does: a plainHead
// parsed by response, any other by http.ReadResponse.
func readResponse(bc *backendConn, r *http.Request) (*http.Response, error) {
	if ph, ok := scanResponse(bc, r); ok {
		return ph.response(bc, r), nil
	}
	return http.ReadResponse(bc.br, r)
}

// FuzzParseHeads checks both parsers against net/http on arbitrary heads.
//
//	go test -run '^$' -fuzz FuzzParseHeads -fuzztime 30s ./internal/gateway
func FuzzParseHeads(f *testing.F) {
	for _, h := range requestHeads {
		f.Add(h)
	}
	for _, h := range responseHeads {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if i := strings.Index(raw, "\r\n\r\n"); i >= 0 && framingAccepts(raw[:i+4]) {
			checkParseRequest(t, raw[:i+4])
		}
		checkParseResponse(t, raw, http.MethodGet)
	})
}

// framingAccepts reports whether package framing lets head through to the
// loop (the request parser's input is always such a head): CRLF lines, no
// obs-fold, token names, no control characters in values.
func framingAccepts(head string) bool {
	lines := strings.Split(strings.TrimSuffix(head, "\r\n\r\n"), "\r\n")
	for i, l := range lines {
		if strings.ContainsAny(l, "\r\n") {
			return false
		}
		if i == 0 {
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok || k == "" || strings.ContainsAny(k, " \t") || !validFieldValue(v) {
			return false
		}
		for _, c := range []byte(k) {
			if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
				return false
			}
		}
	}
	return true
}

// cannedBackend is a keep-alive backend that answers a request for
// /<name> with responses[name] as raw bytes, and closes the connection
// after the responses whose name starts with "cut".
func cannedBackend(t *testing.T, responses map[string]string) string {
	t.Helper()
	return serveConns(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			res, ok := responses[strings.TrimPrefix(req.URL.Path, "/")]
			if !ok {
				res = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
			}
			if _, err := io.WriteString(c, res); err != nil || strings.HasPrefix(req.URL.Path, "/cut") {
				return
			}
		}
	})
}

// TestWriteThroughSameAsNetHTTP sends requests for backend responses of
// unusual but valid shapes through the connection loop, which writes
// plain heads through, and through net/http's server, which gets them
// parsed and sorted, and compares what clients read. It also checks that
// the loop wrote a head through (the backend's field order kept).
func TestWriteThroughSameAsNetHTTP(t *testing.T) {
	const date = "Date: Mon, 02 Jan 2006 15:04:05 GMT\r\n"
	responses := map[string]string{
		"order":     "HTTP/1.1 200 OK\r\nZ-Last: z\r\nContent-Type: text/plain\r\nA-First: a\r\n" + date + "Content-Length: 2\r\n\r\nok",
		"lower":     "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-lower-case: v\r\nX-LOWER-CASE: w\r\ncontent-length: 3\r\n\r\nabc",
		"nodate":    "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
		"listed":    "HTTP/1.1 200 OK\r\nConnection: X-Internal, keep-alive\r\nX-Internal: secret\r\nKeep-Alive: timeout=5\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nx",
		"close":     "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nbye",
		"pragma":    "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\np",
		"pragma-cc": "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nCache-Control: max-age=5\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\np",
		"spaces":    "HTTP/1.1 200 OK\r\nX-Pad:   padded \t\r\nX-Empty:\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\ns",
		"reason":    "HTTP/1.1 200 Fine Thanks\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nr",
		"nophrase":  "HTTP/1.1 418\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nt",
		"odd":       "HTTP/1.1 599 Whatever\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\no",
		"empty":     "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"untyped":   "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n<html>",
		"grpc":      "HTTP/1.1 200 OK\r\nContent-Type: application/grpc\r\nGrpc-Status: 14\r\nContent-Length: 0\r\n\r\n",
		"events":    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 7\r\n\r\ndata: x",
		"big":       "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("b", 100000),
		"cut":       "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nabc",
	}
	backend := cannedBackend(t, responses)
	loop := singleRoute(t, Options{}, backend)
	loopAddr := serveGateway(t, loop)
	std := singleRoute(t, Options{}, backend)
	stdFront, _ := frontend(t, std)
	stdAddr := hostOf(t, stdFront.URL)
	for name := range responses {
		t.Run(name, func(t *testing.T) {
			raw := "GET /" + name + " HTTP/1.1\r\nHost: web.example\r\n\r\n"
			if name == "cut" {
				// The backend's body ends early: both end the client's
				// connection without a complete response.
				got := rawBytes(t, loopAddr, raw)
				want := rawBytes(t, stdAddr, raw)
				if got != want || strings.Contains(got, "abc") {
					t.Errorf("cut response: loop %q, net/http %q", got, want)
				}
				return
			}
			got := rawResponses(t, loopAddr, raw, "GET")
			want := rawResponses(t, stdAddr, raw, "GET")
			if got[0].String() != want[0].String() {
				t.Errorf("connection loop:\n%v\nnet/http:\n%v", got[0], want[0])
			}
		})
	}
	head := rawBytes(t, loopAddr, "GET /order HTTP/1.1\r\nHost: web.example\r\nConnection: close\r\n\r\n")
	if z, a := strings.Index(head, "Z-Last"), strings.Index(head, "A-First"); z < 0 || a < 0 || z > a {
		t.Errorf("the loop did not write the head through (backend order Z-Last, A-First):\n%s", head)
	}
	if head := rawBytes(t, loopAddr, "GET /nodate HTTP/1.1\r\nHost: web.example\r\nConnection: close\r\n\r\n"); !strings.Contains(head, "\r\nDate: ") {
		t.Errorf("no Date added to a response without one:\n%s", head)
	}
}

// rawBytes sends raw on a new connection and returns everything read
// until the connection ends.
func rawBytes(t *testing.T, addr, raw string) string {
	t.Helper()
	b, _ := io.ReadAll(dialRaw(t, addr, raw))
	return string(b)
}

// TestHopByHopName: the names hopByHopName finds are exactly hopByHop's,
// ASCII case ignored.
func TestHopByHopName(t *testing.T) {
	for _, h := range hopByHop {
		for _, k := range []string{h, strings.ToLower(h), strings.ToUpper(h)} {
			if !hopByHopName([]byte(k)) {
				t.Errorf("hopByHopName(%q) = false", k)
			}
		}
	}
	for _, k := range []string{"", "T", "Tee", "X-Te", "Connections", "Content-Type", "Keep-Alivf", "Proxy-Authorizatio", "Upgrades"} {
		if hopByHopName([]byte(k)) {
			t.Errorf("hopByHopName(%q) = true", k)
		}
	}
}

// TestThroughHeadVerbatim: a head whose lines can be copied as one block is
// written exactly as line by line, and a head that needs rewriting is not
// copied.
func TestThroughHeadVerbatim(t *testing.T) {
	for _, tc := range []struct {
		head     string
		verbatim bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\nok", true},
		{"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
		{"HTTP/1.1 404 Nope\r\nX-A: 1\r\nX-A: 2\r\nContent-Length: 0\r\n\r\n", true},
		{"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nContent-Length: 0\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\nContent-Type:text/plain\r\nContent-Length: 0\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\nContent-Type:  text/plain\r\nContent-Length: 0\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\nContent-Type: text/plain \r\nContent-Length: 0\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\nX-Empty: \r\nContent-Length: 0\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n", true},
	} {
		var ph plainHead
		if !ph.scan([]byte(tc.head)) {
			t.Fatalf("scan(%q) = false", tc.head)
		}
		if ph.verbatim != tc.verbatim {
			t.Errorf("scan(%q): verbatim %v, want %v", tc.head, ph.verbatim, tc.verbatim)
		}
		lineByLine := ph
		lineByLine.verbatim = false
		for _, closeAfter := range []bool{false, true} {
			got := string(appendThroughHead(nil, &ph, nil, closeAfter))
			want := string(appendThroughHead(nil, &lineByLine, nil, closeAfter))
			if got != want {
				t.Errorf("head %q (close %v):\ngot  %q\nwant %q", tc.head, closeAfter, got, want)
			}
		}
	}
}
