package notify

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var decision = Notification{App: "cart", Namespace: "shop", Decision: "RolledBack", Warning: true, FromWeight: 10, ToWeight: 0,
	Verdict: "Fail", Reason: "ErrorRateHigher", Message: "rolled back cart-v2 from 10% to 0%: canary failed 3 of 61 requests",
	Stable: &Counts{Requests: 549}, Canary: &Counts{Requests: 61, Errors: 3}, Time: time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)}

// receiver is a local webhook: it answers the first fail requests with
// status, then 204, and records the bodies it accepted.
type receiver struct {
	srv    *httptest.Server
	calls  atomic.Int32
	mu     sync.Mutex
	bodies [][]byte
}

func newReceiver(t *testing.T, fail int32, status int) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := r.calls.Add(1)
		b, _ := io.ReadAll(req.Body)
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "want a JSON POST", http.StatusBadRequest)
			return
		}
		if n <= fail {
			w.WriteHeader(status)
			return
		}
		r.mu.Lock()
		r.bodies = append(r.bodies, b)
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// result collects what a Notifier reports.
type result struct {
	delivered chan int
	failed    chan error
}

func start(t *testing.T, opts Options) (*Notifier, result) {
	t.Helper()
	res := result{delivered: make(chan int, 10), failed: make(chan error, 10)}
	opts.OnDelivered = func(_ Notification, _ Target, attempts int) { res.delivered <- attempts }
	opts.OnFailure = func(_ Notification, _ Target, err error) { res.failed <- err }
	if opts.Backoff == 0 {
		opts.Backoff = 10 * time.Millisecond
	}
	n := New(opts)
	done := make(chan struct{})
	ctx := t.Context()
	go func() { _ = n.Run(ctx); close(done) }()
	t.Cleanup(func() { <-done })
	return n, res
}

func wait[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
		panic("unreachable")
	}
}

func TestJSONPayload(t *testing.T) {
	r := newReceiver(t, 0, 0)
	n, res := start(t, Options{})
	n.Send(decision, Target{Name: "Secret shop/notify", URL: r.srv.URL + "/hook", Format: FormatJSON})
	if a := wait(t, res.delivered, "delivery"); a != 1 {
		t.Errorf("delivered after %d attempts, want 1", a)
	}
	var got Notification
	if err := json.Unmarshal(r.bodies[0], &got); err != nil {
		t.Fatal(err)
	}
	if got.App != "cart" || got.Namespace != "shop" || got.Decision != "RolledBack" || got.FromWeight != 10 || got.ToWeight != 0 ||
		got.Verdict != "Fail" || got.Canary.Errors != 3 || got.Canary.Requests != 61 || got.Stable.Requests != 549 ||
		!got.Time.Equal(decision.Time) || !strings.Contains(got.Message, "canary failed 3 of 61") {
		t.Errorf("payload = %s", r.bodies[0])
	}
}

func TestSlackPayload(t *testing.T) {
	r := newReceiver(t, 0, 0)
	n, res := start(t, Options{})
	n.Send(decision, Target{Name: "Secret shop/slack", URL: r.srv.URL, Format: FormatSlack})
	wait(t, res.delivered, "delivery")
	var got struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type   string                  `json:"type"`
			Fields []struct{ Text string } `json:"fields"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(r.bodies[0], &got); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got.Text, "RolledBack shop/cart (10% → 0%)") || !strings.Contains(got.Text, "canary failed 3 of 61") ||
		len(got.Blocks) != 3 || got.Blocks[0].Type != "section" {
		t.Errorf("slack payload = %s", r.bodies[0])
	}
	if f := got.Blocks[1].Fields; len(f) != 4 || !strings.Contains(f[3].Text, "canary 3 of 61, stable 0 of 549") {
		t.Errorf("slack fields = %+v", f)
	}
}

func TestRetriesUntilDelivered(t *testing.T) {
	r := newReceiver(t, 2, http.StatusServiceUnavailable)
	n, res := start(t, Options{Attempts: 5})
	n.Send(decision, Target{Name: "Secret shop/notify", URL: r.srv.URL})
	if a := wait(t, res.delivered, "delivery"); a != 3 {
		t.Errorf("delivered after %d attempts, want 3 (two 503s first)", a)
	}
	if len(r.bodies) != 1 {
		t.Errorf("accepted %d bodies, want 1", len(r.bodies))
	}
}

func TestReceiverDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/services/T000/B000/secret-token"
	ln.Close() // nothing listens there now
	n, res := start(t, Options{Attempts: 3})
	begin := time.Now()
	n.Send(decision, Target{Name: "Secret shop/notify", URL: down})
	if took := time.Since(begin); took > 50*time.Millisecond {
		t.Errorf("Send blocked %v on a receiver that is down", took)
	}
	err = wait(t, res.failed, "failure")
	if !strings.Contains(err.Error(), "3 attempts") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("failure = %v, want 3 attempts and why", err)
	}
	if strings.Contains(err.Error(), "secret-token") || strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("the failure reveals the URL: %v", err)
	}
	// Backoff 10ms then 20ms (+ jitter): the three attempts were spaced out.
	if took := time.Since(begin); took < 30*time.Millisecond {
		t.Errorf("3 attempts took %v, want the backoff between them (≥ 30ms)", took)
	}
}

func TestPermanentRefusalIsNotRetried(t *testing.T) {
	r := newReceiver(t, 100, http.StatusNotFound)
	n, res := start(t, Options{Attempts: 5})
	n.Send(decision, Target{Name: "Secret shop/notify", URL: r.srv.URL})
	err := wait(t, res.failed, "failure")
	if got := r.calls.Load(); got != 1 || !strings.Contains(err.Error(), "404") {
		t.Errorf("%d attempts, failure %v; want 1 attempt and the 404", got, err)
	}
}

func TestSlowReceiverNeverBlocksSend(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { <-release }))
	t.Cleanup(func() { close(release); slow.Close() })
	n, res := start(t, Options{Workers: 1, Queue: 2, Timeout: 200 * time.Millisecond, Attempts: 1})
	begin := time.Now()
	for range 10 {
		n.Send(decision, Target{Name: "Secret shop/slow", URL: slow.URL})
	}
	if took := time.Since(begin); took > 50*time.Millisecond {
		t.Errorf("10 Sends to a hanging receiver took %v", took)
	}
	if err := wait(t, res.failed, "a dropped notification"); !strings.Contains(err.Error(), "queue is full") {
		t.Errorf("first failure = %v, want a dropped notification", err)
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"": FormatJSON, "json": FormatJSON, "Slack": FormatSlack} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseFormat("teams"); err == nil {
		t.Error("ParseFormat(teams) accepted")
	}
}
