package framing

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestMalformedChunkedBody(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		wantBody    string // what the handler read before the error
		netHTTPSees bool   // net/http's own error comes first
	}{
		{"chunk size not hex", "5\r\nhello\r\nzz\r\nxx\r\n0\r\n\r\n", "hello", false},
		{"empty chunk size", "5\r\nhello\r\n\r\n0\r\n\r\n", "hello", false},
		{"chunk size of 17 digits", "5\r\nhello\r\n00000000000000001\r\nx\r\n0\r\n\r\n", "hello", false},
		{"bare LF after chunk size", "5\r\nhello\r\n3\nabc\r\n0\r\n\r\n", "hello", false},
		{"space before extension", "5\r\nhello\r\n3 ;x\r\nabc\r\n0\r\n\r\n", "hello", false},
		{"control character in extension", "5\r\nhello\r\n3;a\x01\r\nabc\r\n0\r\n\r\n", "hello", false},
		{"chunk data longer than its size", "5\r\nhelloX\r\n0\r\n\r\n", "hello", false},
		{"bare LF after chunk data", "5\r\nhello\n0\r\n\r\n", "hello", false},
		{"chunk size line too long", "5\r\nhello\r\n1;" + strings.Repeat("e", maxChunkLine) + "\r\nx\r\n0\r\n\r\n", "hello", true},
		{"obs-fold in trailer", "5\r\nhello\r\n0\r\nX-A: 1\r\n 2\r\n\r\n", "hello", true},
		{"bare LF in trailer", "5\r\nhello\r\n0\r\nX-A: 1\n\r\n", "hello", true},
		{"trailer without colon", "5\r\nhello\r\n0\r\nX-A\r\n\r\n", "hello", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, serverConfig{})
			cl := dial(t, ts.addr)
			cl.send(req("POST", "/chunked", "", "Transfer-Encoding: chunked") + tt.body + req("GET", "/after", ""))
			if r := cl.readFinal(); r.status != http.StatusBadRequest || r.body != "bad body\n" {
				t.Fatalf("response = %d %q, want the handler's 400", r.status, r.body)
			}
			cl.expectClosed()
			reqs := ts.seen()
			if len(reqs) != 1 || reqs[0].path != "/chunked" {
				t.Fatalf("handler saw %q, want only /chunked", joinPaths(ts.paths()))
			}
			// net/http notices some of these itself once the wrapper stops
			// the stream (line too long, trailer cut short); the wrapper
			// tells which in its error otherwise.
			if err := reqs[0].bodyErr; err == nil || (!tt.netHTTPSees && !errors.Is(err, ErrMalformedBody)) {
				t.Fatalf("body read error = %v, want ErrMalformedBody", err)
			}
			if errs := ts.refusals(); len(errs) != 1 || !errors.Is(errs[0], ErrMalformedBody) {
				t.Fatalf("wrapper reasons = %v, want [ErrMalformedBody]", errs)
			}
			if reqs[0].body != tt.wantBody {
				t.Fatalf("body read = %q, want %q", reqs[0].body, tt.wantBody)
			}
		})
	}
}

func TestOversizeHead(t *testing.T) {
	const maxHeader = 1024 // net/http reads up to 1024+4096 bytes of head
	tests := []struct {
		name    string
		filler  int
		dribble bool
		want    int
	}{
		{"head under net/http's limit", 4900, false, http.StatusOK},
		{"head just over net/http's limit", 5150, false, http.StatusRequestHeaderFieldsTooLarge},
		{"head over the wrapper's hold limit", 5300, false, http.StatusRequestHeaderFieldsTooLarge},
		{"huge head", 200000, false, http.StatusRequestHeaderFieldsTooLarge},
		{"huge head dribbled", 30000, true, http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, serverConfig{maxHeaderBytes: maxHeader})
			cl := dial(t, ts.addr)
			head := req("GET", "/big", "", "X-Fill: "+strings.Repeat("f", tt.filler))
			if tt.dribble {
				go func() { // the server may close before all is sent
					for s := head; len(s) > 0; s = s[min(len(s), 1000):] {
						if _, err := io.WriteString(cl.c, s[:min(len(s), 1000)]); err != nil {
							return
						}
					}
				}()
			} else {
				go io.WriteString(cl.c, head)
			}
			r := cl.read()
			if r.status != tt.want {
				t.Fatalf("status = %d %q, want %d", r.status, r.body, tt.want)
			}
			if tt.want != http.StatusOK {
				cl.expectClosed()
				if got := ts.paths(); len(got) != 0 {
					t.Fatalf("handler saw %q", joinPaths(got))
				}
			}
		})
	}
}
