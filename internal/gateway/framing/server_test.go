package framing

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// smuggle10 is the HTTP/1.0 request that net/http frames by Content-Length,
// leaving a chunked remainder that it reads as a second request.
const smuggle10 = "POST /outer HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 5\r\n" +
	"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"

func TestUnwrappedServerIsAmbiguous(t *testing.T) {
	// Control: without the wrapper, net/http serves what TestRefused expects
	// refused, so its assertions are able to fail.
	tests := []struct {
		name   string
		stream string
		want   string // paths served
	}{
		{"HTTP/1.0 smuggling", smuggle10, "/outer,/smuggled"},
		{"HTTP/1.1 with both lengths keeps the connection",
			req("POST", "/both", "", "Content-Length: 5", "Transfer-Encoding: chunked") + "0\r\n\r\n" + req("GET", "/next", ""),
			"/both,/next"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, serverConfig{raw: true})
			cl := dial(t, ts.addr)
			cl.send(tt.stream)
			cl.readFinal()
			cl.readFinal()
			if got := joinPaths(ts.paths()); got != tt.want {
				t.Fatalf("unwrapped server served %q, want %q", got, tt.want)
			}
		})
	}
}

func TestExpectContinueWaitingClient(t *testing.T) {
	ts := startServer(t, serverConfig{})
	cl := dial(t, ts.addr)
	cl.send(req("POST", "/a", "", "Expect: 100-continue", "Content-Length: 4"))
	if r := cl.read(); r.status != http.StatusContinue {
		t.Fatalf("first response = %d, want 100", r.status)
	}
	cl.send("data" + req("GET", "/b", ""))
	for _, want := range []string{quoteBody("POST", "/a", "data"), quoteBody("GET", "/b", "")} {
		if r := cl.read(); r.status != http.StatusOK || r.body != want {
			t.Fatalf("response = %d %q, want 200 %q", r.status, r.body, want)
		}
	}
}

func TestRefused(t *testing.T) {
	tests := []struct {
		name   string
		req    string
		reason error
	}{
		{"HTTP/1.0 with Transfer-Encoding, Content-Length and keep-alive", smuggle10, ErrAmbiguousLength},
		{"HTTP/1.1 with Content-Length and Transfer-Encoding",
			req("POST", "/bad", "", "Content-Length: 5", "Transfer-Encoding: chunked") + "0\r\n\r\n", ErrAmbiguousLength},
		{"Transfer-Encoding before Content-Length",
			req("POST", "/bad", "", "Transfer-Encoding: chunked", "content-length: 0"), ErrAmbiguousLength},
		{"HTTP/1.0 with Transfer-Encoding only",
			req("POST", "/bad", "HTTP/1.0", "Transfer-Encoding: chunked") + "0\r\n\r\n", ErrTransferEncoding10},
		{"Transfer-Encoding gzip", req("POST", "/bad", "", "Transfer-Encoding: gzip"), ErrBadTransferEncoding},
		{"Transfer-Encoding gzip, chunked", req("POST", "/bad", "", "Transfer-Encoding: gzip, chunked"), ErrBadTransferEncoding},
		{"Transfer-Encoding chunked twice in one field", req("POST", "/bad", "", "Transfer-Encoding: chunked, chunked"), ErrBadTransferEncoding},
		{"two Transfer-Encoding fields",
			req("POST", "/bad", "", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"), ErrBadTransferEncoding},
		{"empty Transfer-Encoding", req("POST", "/bad", "", "Transfer-Encoding:"), ErrBadTransferEncoding},
		{"two equal Content-Length fields",
			req("POST", "/bad", "", "Content-Length: 1", "Content-Length: 1") + "x", ErrBadContentLength},
		{"Content-Length list", req("POST", "/bad", "", "Content-Length: 1, 1") + "x", ErrBadContentLength},
		{"Content-Length with sign", req("POST", "/bad", "", "Content-Length: +1") + "x", ErrBadContentLength},
		{"Content-Length in hex", req("POST", "/bad", "", "Content-Length: 0x1") + "x", ErrBadContentLength},
		{"empty Content-Length", req("POST", "/bad", "", "Content-Length: "), ErrBadContentLength},
		{"huge Content-Length", req("POST", "/bad", "", "Content-Length: 99999999999999999999"), ErrBadContentLength},
		{"obs-fold with space", req("GET", "/bad", "", "X-A: a", " b"), ErrObsFold},
		{"obs-fold with tab", req("GET", "/bad", "", "X-A: a", "\tTransfer-Encoding: chunked"), ErrObsFold},
		{"bare LF ending the request line", "GET /bad HTTP/1.1\nHost: x\r\n\r\n", ErrBadLineEnding},
		{"bare LF ending a header line", "GET /bad HTTP/1.1\r\nHost: x\n\r\n", ErrBadLineEnding},
		{"bare LF ending the head", "GET /bad HTTP/1.1\r\nHost: x\r\n\n", ErrBadLineEnding},
		{"bare CR in a field value", "GET /bad HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", ErrBadLineEnding},
		{"space before colon", req("POST", "/bad", "", "Content-Length : 1") + "x", ErrBadFieldName},
		{"space inside a field name", req("GET", "/bad", "", "X A: 1"), ErrBadFieldName},
		{"empty field name", req("GET", "/bad", "", ": 1"), ErrBadFieldName},
		{"control character in a field name", req("GET", "/bad", "", "X\x01A: 1"), ErrBadFieldName},
		{"line without a colon", req("GET", "/bad", "", "NoColon"), ErrBadFieldName},
		{"NUL in a field value", req("GET", "/bad", "", "X-A: a\x00b"), ErrBadFieldValue},
		{"HTTP/2.0 request line", "GET /bad HTTP/2.0\r\nHost: x\r\n\r\n", ErrUnsupportedVersion},
		{"three-part request line missing", "GET /bad\r\nHost: x\r\n\r\n", ErrBadRequestLine},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, serverConfig{})
			cl := dial(t, ts.addr)
			cl.send(req("GET", "/first", ""), tt.req+req("GET", "/after", ""))
			if r := cl.readFinal(); r.status != http.StatusOK || r.body != quoteBody("GET", "/first", "") {
				t.Fatalf("first response = %d %q, want 200 for /first", r.status, r.body)
			}
			r := cl.read()
			if r.status != http.StatusBadRequest || !strings.HasPrefix(r.body, "400 Bad Request") {
				t.Fatalf("second response = %d %q, want net/http's 400 Bad Request", r.status, r.body)
			}
			cl.expectClosed()
			if got := joinPaths(ts.paths()); got != "/first" {
				t.Fatalf("handler saw %q, want only /first", got)
			}
			if errs := ts.refusals(); len(errs) != 1 || !errors.Is(errs[0], tt.reason) {
				t.Fatalf("refusal reasons %v, want [%v]", errs, tt.reason)
			}
		})
	}
}

func TestValidPipelines(t *testing.T) {
	tests := []struct {
		name string
		reqs []string // sent back to back on one connection
		want []string // response bodies
	}{
		{"GET without body", []string{req("GET", "/a", ""), req("GET", "/b", "")},
			[]string{quoteBody("GET", "/a", ""), quoteBody("GET", "/b", "")}},
		{"Content-Length bodies",
			[]string{req("POST", "/a", "", "Content-Length: 5") + "hello", req("PUT", "/b", "", "content-length:  3 ") + "abc",
				req("POST", "/c", "", "Content-Length: 0")},
			[]string{quoteBody("POST", "/a", "hello"), quoteBody("PUT", "/b", "abc"), quoteBody("POST", "/c", "")}},
		{"body that looks like a request",
			[]string{req("POST", "/a", "", "Content-Length: 42") + "GET /x HTTP/1.1\r\nTransfer-Encoding: xx\r\n\r\n", req("GET", "/b", "")},
			[]string{quoteBody("POST", "/a", "GET /x HTTP/1.1\r\nTransfer-Encoding: xx\r\n\r\n"), quoteBody("GET", "/b", "")}},
		{"chunked bodies with extensions and trailers",
			[]string{
				req("POST", "/a", "", "Transfer-Encoding: chunked") + "5\r\nhello\r\n6;ext=1;q=\"a b\"\r\n world\r\n0\r\n\r\n",
				req("POST", "/b", "", "Transfer-Encoding: Chunked", "Trailer: X-Sum") + "A  \r\n0123456789\r\n00;last\r\nX-Sum: 42\r\nX-Other: y\r\n\r\n",
				req("GET", "/c", ""),
			},
			[]string{quoteBody("POST", "/a", "hello world"), quoteBody("POST", "/b", "0123456789") + " sum=42", quoteBody("GET", "/c", "")}},
		{"HTTP/1.0 with Content-Length and keep-alive",
			[]string{req("POST", "/a", "HTTP/1.0", "Connection: keep-alive", "Content-Length: 2") + "hi",
				req("GET", "/b", "HTTP/1.0", "Connection: keep-alive")},
			[]string{quoteBody("POST", "/a", "hi"), quoteBody("GET", "/b", "")}},
		{"Expect 100-continue",
			[]string{req("POST", "/a", "", "Expect: 100-continue", "Content-Length: 4") + "data", req("GET", "/b", "")},
			[]string{quoteBody("POST", "/a", "data"), quoteBody("GET", "/b", "")}},
		{"empty line after a POST body",
			[]string{req("POST", "/a", "", "Content-Length: 1") + "x\r\n", req("GET", "/b", "")},
			[]string{quoteBody("POST", "/a", "x"), quoteBody("GET", "/b", "")}},
		{"large head and body",
			[]string{req("POST", "/a", "", "X-Big: "+strings.Repeat("b", 20000), "Content-Length: 70000") + strings.Repeat("z", 70000),
				req("GET", "/b", "")},
			[]string{quoteBody("POST", "/a", strings.Repeat("z", 70000)), quoteBody("GET", "/b", "")}},
	}
	for _, tt := range tests {
		for _, mode := range []string{"one write", "dribbled"} {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				ts := startServer(t, serverConfig{})
				cl := dial(t, ts.addr)
				all := strings.Join(tt.reqs, "")
				if mode == "one write" {
					cl.send(all)
				} else {
					cl.sendDribble(all, max(7, len(all)/300))
				}
				for i, want := range tt.want {
					if r := cl.readFinal(); r.status != http.StatusOK || r.body != want {
						t.Fatalf("response %d = %d %q, want 200 %q", i, r.status, abbrev(r.body), abbrev(want))
					}
				}
				// Still the same open connection.
				cl.send(req("GET", "/last", ""))
				if r := cl.readFinal(); r.body != quoteBody("GET", "/last", "") {
					t.Fatalf("last response = %d %q", r.status, r.body)
				}
				reqs := ts.seen()
				if len(reqs) != len(tt.want)+1 {
					t.Fatalf("handler saw %d requests, want %d", len(reqs), len(tt.want)+1)
				}
				for _, s := range reqs {
					if s.remote != reqs[0].remote {
						t.Fatalf("requests came from %s and %s, want one connection", reqs[0].remote, s.remote)
					}
				}
				if errs := ts.refusals(); len(errs) != 0 {
					t.Fatalf("refused: %v", errs)
				}
			})
		}
	}
}

func abbrev(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
