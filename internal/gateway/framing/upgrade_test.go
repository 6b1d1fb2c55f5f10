package framing

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// upgradeHandler hijacks requests to /up, writes the given preamble (ending
// with a 101 response) and then echoes what the client sends.
func upgradeHandler(preamble ...string) func(*testServer, http.ResponseWriter, *http.Request) bool {
	return func(ts *testServer, w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/up" {
			return false
		}
		ts.record(seen{path: r.URL.Path, remote: r.RemoteAddr})
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer c.Close()
		for _, p := range preamble {
			if _, err := io.WriteString(c, p); err != nil {
				return true
			}
		}
		buf := make([]byte, 512)
		for {
			n, err := brw.Read(buf)
			if _, werr := c.Write(buf[:n]); werr != nil || err != nil {
				return true
			}
		}
	}
}

const switching = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"

func TestUpgradeAccepted(t *testing.T) {
	upHead := req("GET", "/up", "", "Upgrade: echo", "Connection: Upgrade")
	// Bytes that would be refused, were they read as HTTP.
	payload := "GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n\x00\xff\n\n \r"
	tests := []struct {
		name     string
		preamble []string
		first    string // sent along with the upgrade request
	}{
		{"101 in one write, bytes pipelined", []string{switching}, payload},
		{"101 split across writes", []string{"HTTP/1.1 1", "01 Switching", switching[len("HTTP/1.1 101 Switching"):]}, payload},
		{"100 Continue then 101", []string{"HTTP/1.1 100 Continue\r\n\r\n", switching}, payload},
		{"103 and 101 in one write", []string{"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + switching}, payload},
		{"nothing pipelined", []string{switching}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, serverConfig{handler: upgradeHandler(tt.preamble...)})
			cl := dial(t, ts.addr)
			cl.send(upHead + tt.first)
			if r := cl.readFinal(); r.status != http.StatusSwitchingProtocols {
				t.Fatalf("status = %d, want 101", r.status)
			}
			echo := func(want string) {
				t.Helper()
				got := make([]byte, len(want))
				if _, err := io.ReadFull(cl.br, got); err != nil || string(got) != want {
					t.Fatalf("echo = %q, %v; want %q", got, err, want)
				}
			}
			echo(tt.first)
			for range 3 {
				cl.send(payload)
				echo(payload)
			}
			if errs := ts.refusals(); len(errs) != 0 {
				t.Fatalf("refused: %v", errs)
			}
		})
	}
}

func TestUpgradeRefused(t *testing.T) {
	tests := []struct {
		name    string
		respond func(w http.ResponseWriter)
		status  int
	}{
		{"handler answers 400", func(w http.ResponseWriter) { http.Error(w, "no", http.StatusBadRequest) }, http.StatusBadRequest},
		{"handler answers 200", func(w http.ResponseWriter) { io.WriteString(w, "plain") }, http.StatusOK},
		{"handler sends 103 then 200", func(w http.ResponseWriter) {
			w.Header().Set("Link", "</a>")
			w.WriteHeader(http.StatusEarlyHints)
			io.WriteString(w, "plain")
		}, http.StatusOK},
		{"handler answers with a large body", func(w http.ResponseWriter) {
			io.WriteString(w, strings.Repeat("HTTP/1.1 101 x\r\n", 1000))
		}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, serverConfig{handler: func(ts *testServer, w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path != "/up" {
					return false
				}
				ts.record(seen{path: r.URL.Path, remote: r.RemoteAddr})
				tt.respond(w)
				return true
			}})
			cl := dial(t, ts.addr)
			cl.send(req("GET", "/up", "", "Upgrade: echo", "Connection: Upgrade") +
				req("POST", "/next", "", "Content-Length: 2") + "ok" +
				req("POST", "/bad", "", "Content-Length: 5", "Transfer-Encoding: chunked") + "0\r\n\r\n" +
				req("GET", "/after", ""))
			if r := cl.readFinal(); r.status != tt.status {
				t.Fatalf("upgrade response = %d, want %d", r.status, tt.status)
			}
			if r := cl.readFinal(); r.status != http.StatusOK || r.body != quoteBody("POST", "/next", "ok") {
				t.Fatalf("second response = %d %q, want 200 for /next", r.status, r.body)
			}
			if r := cl.read(); r.status != http.StatusBadRequest {
				t.Fatalf("third response = %d %q, want 400", r.status, r.body)
			}
			cl.expectClosed()
			if got := joinPaths(ts.paths()); got != "/up,/next" {
				t.Fatalf("handler saw %q, want /up,/next", got)
			}
			if errs := ts.refusals(); len(errs) != 1 || !errors.Is(errs[0], ErrAmbiguousLength) {
				t.Fatalf("refusals = %v", errs)
			}
		})
	}
}

// TestUpgradeAfterPipelinedRequest checks that the response to a request
// before an upgrade request is not taken for the upgrade's answer.
func TestUpgradeAfterPipelinedRequest(t *testing.T) {
	ts := startServer(t, serverConfig{handler: upgradeHandler(switching)})
	cl := dial(t, ts.addr)
	cl.send(req("GET", "/first", "") + req("GET", "/up", "", "Upgrade: echo", "Connection: Upgrade") + "\x00raw\n\n")
	if r := cl.readFinal(); r.status != http.StatusOK || r.body != quoteBody("GET", "/first", "") {
		t.Fatalf("first response = %d %q", r.status, r.body)
	}
	if r := cl.readFinal(); r.status != http.StatusSwitchingProtocols {
		t.Fatalf("second response = %d %q, want 101", r.status, r.body)
	}
	got := make([]byte, len("\x00raw\n\n"))
	if _, err := io.ReadFull(cl.br, got); err != nil || string(got) != "\x00raw\n\n" {
		t.Fatalf("echo = %q, %v", got, err)
	}
}
