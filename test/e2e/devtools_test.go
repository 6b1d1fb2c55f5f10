package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// browser is Debian's headless Chromium driven over the DevTools protocol
// (its JSON messages on a WebSocket), for what a page does when a person
// clicks: the page's own confirm() and alert() dialogs are answered as
// accept says.
type browser struct {
	ws      *websocket.Conn
	writeMu sync.Mutex
	nextID  atomic.Int64
	accept  atomic.Bool
	mu      sync.Mutex
	waiting map[int64]chan cdpMessage
	seen    []string // "confirm: <message>" of every dialog, in order
}

type cdpMessage struct {
	ID     int64           `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// chromiumProfile returns a new, empty Chromium user data directory,
// removed after the test. Chromium's helper processes may still write to it
// for a moment after the browser exits, so removal is retried for a few
// seconds (t.TempDir's single attempt fails the test then).
func chromiumProfile(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fledge-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := os.RemoveAll(dir)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("removing Chromium's profile: %v", err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return dir
}

// openBrowser starts Chromium on url and connects to its page.
func openBrowser(t *testing.T, url string) *browser {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed (hack/setup.sh installs Debian's package):", err)
	}
	cmd := exec.CommandContext(t.Context(), bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+chromiumProfile(t),
		"--window-size=1280,1100", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--remote-allow-origins=*", url)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its helper processes die with it
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	listening := regexp.MustCompile(`DevTools listening on ws://([0-9.:]+)/`)
	var hostPort string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if m := listening.FindStringSubmatch(sc.Text()); m != nil {
			hostPort = m[1]
			break
		}
	}
	if hostPort == "" {
		t.Fatal("chromium did not say where DevTools listen")
	}
	go func() { // keep reading, so that Chromium never blocks on its stderr
		for sc.Scan() {
		}
	}()
	var targets []struct {
		Type, URL            string
		WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get("http://" + hostPort + "/json/list")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&targets)
			resp.Body.Close()
		}
		if err == nil && len(targets) > 0 && targets[0].Type == "page" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no page target in Chromium: %v %+v", err, targets)
		}
	}
	ws, err := websocket.Dial(targets[0].WebSocketDebuggerURL, "", "http://127.0.0.1/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	b := &browser{ws: ws, waiting: map[int64]chan cdpMessage{}}
	go b.read()
	b.call(t, "Page.enable", nil)
	return b
}

// read dispatches Chromium's answers and answers its dialogs.
func (b *browser) read() {
	for {
		var m cdpMessage
		if err := websocket.JSON.Receive(b.ws, &m); err != nil {
			return
		}
		if m.Method == "Page.javascriptDialogOpening" {
			var d struct{ Type, Message string }
			_ = json.Unmarshal(m.Params, &d)
			b.mu.Lock()
			b.seen = append(b.seen, d.Type+": "+d.Message)
			b.mu.Unlock()
			accept := d.Type != "confirm" || b.accept.Load()
			b.send(b.nextID.Add(1), "Page.handleJavaScriptDialog", map[string]any{"accept": accept})
			continue
		}
		b.mu.Lock()
		ch := b.waiting[m.ID]
		delete(b.waiting, m.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

func (b *browser) send(id int64, method string, params any) error {
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	return websocket.JSON.Send(b.ws, map[string]any{"id": id, "method": method, "params": params})
}

// call sends one command and returns its result.
func (b *browser) call(t *testing.T, method string, params any) json.RawMessage {
	t.Helper()
	id := b.nextID.Add(1)
	ch := make(chan cdpMessage, 1)
	b.mu.Lock()
	b.waiting[id] = ch
	b.mu.Unlock()
	if err := b.send(id, method, params); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			t.Fatalf("%s: %s", method, m.Error.Message)
		}
		return m.Result
	case <-time.After(15 * time.Second):
		t.Fatalf("%s: no answer from Chromium", method)
		return nil
	}
}

// eval evaluates a JavaScript expression in the page (no waiting for the
// promises it starts) and returns its value as JSON.
func (b *browser) eval(t *testing.T, expr string) json.RawMessage {
	t.Helper()
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct{ Text string } `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(b.call(t, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}), &r); err != nil {
		t.Fatal(err)
	}
	if r.ExceptionDetails != nil {
		t.Fatalf("%s: %s", expr, r.ExceptionDetails.Text)
	}
	return r.Result.Value
}

// waitTrue waits until expr is true in the page.
func (b *browser) waitTrue(t *testing.T, timeout time.Duration, expr string) {
	t.Helper()
	for deadline := time.Now().Add(timeout); string(b.eval(t, expr)) != "true"; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, expr)
		}
	}
}

// dialogsSeen returns the dialogs the page opened so far.
func (b *browser) dialogsSeen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.seen...)
}

// click clicks the page's button of action, as a person does.
func (b *browser) click(t *testing.T, action string) {
	t.Helper()
	sel := fmt.Sprintf(`document.querySelector('button[data-action=%q]')`, action)
	b.waitTrue(t, 15*time.Second, sel+" !== null")
	b.eval(t, sel+".click(), true")
}

// containsDialog reports whether a dialog of kind with text was seen.
func containsDialog(seen []string, kind, text string) bool {
	for _, d := range seen {
		if strings.HasPrefix(d, kind+": ") && strings.Contains(d, text) {
			return true
		}
	}
	return false
}
