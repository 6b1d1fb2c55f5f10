// Package notify sends the decisions of automated releases (started, stepped
// up, paused, resumed, promoted, rolled back) to webhooks: a generic JSON
// payload or Slack's incoming-webhook format.
//
// Delivery never blocks the caller: Send queues the notification and returns;
// workers post it, retrying with exponential backoff, and report a delivery
// that failed every attempt to OnFailure (the controller turns it into a
// Warning Event). A full queue drops the notification and reports that too.
// A webhook's URL is a secret (Slack's carries its token in the path): it is
// never part of an error, a log line or an Event; a Target is named by where
// its URL came from instead.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"k8s.io/apimachinery/pkg/types"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Format is a webhook's payload format.
type Format string

const (
	// FormatJSON is the generic payload: a Notification as JSON.
	FormatJSON Format = "json"
	// FormatSlack is Slack's incoming-webhook payload ({"text": ..., "blocks": ...}).
	FormatSlack Format = "slack"
)

// ParseFormat parses a format name; "" is FormatJSON.
func ParseFormat(s string) (Format, error) {
	switch Format(strings.ToLower(strings.TrimSpace(s))) {
	case "", FormatJSON:
		return FormatJSON, nil
	case FormatSlack:
		return FormatSlack, nil
	}
	return "", fmt.Errorf("format %q: want json or slack", s)
}

// Target is one webhook.
type Target struct {
	// Name says where the URL came from ("Secret shop/notify"), for errors.
	Name string
	// Secret is the Secret the URL came from, if one did.
	Secret *types.NamespacedName
	// URL is the webhook's address; never printed.
	URL    string
	Format Format
}

// String names the target without its URL.
func (t Target) String() string { return t.Name }

// Counts are one version's requests and errors in the step judged.
type Counts struct {
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
}

// Notification is one decision, as the generic JSON payload carries it.
type Notification struct {
	App       string `json:"app"`
	Namespace string `json:"namespace"`
	// Decision is the Event reason: AnalysisStarted, StepUp, Paused, Resumed,
	// Promoted, RolledBack.
	Decision string `json:"decision"`
	// Warning is set for a rollback.
	Warning    bool  `json:"warning"`
	FromWeight int32 `json:"fromWeight"`
	ToWeight   int32 `json:"toWeight"`
	// Verdict and Reason are the last judgment's (Pass, Fail, Inconclusive).
	Verdict string `json:"verdict,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Message is the decision with its evidence, as in the Event.
	Message string `json:"message"`
	// Stable and Canary are the counts of the step judged, when there was one.
	Stable *Counts   `json:"stable,omitempty"`
	Canary *Counts   `json:"canary,omitempty"`
	Time   time.Time `json:"time"`
	// Ref is the caller's, given back to OnFailure; not sent.
	Ref any `json:"-"`
}

// Resolver returns the targets of a notification, read when it is
// delivered (so that reading them never blocks Send); the errors name the
// targets it could not read.
type Resolver func(ctx context.Context) ([]Target, []TargetError)

// TargetError is a target that could not be read.
type TargetError struct {
	Target Target
	Err    error
}

// Payload is the body posted to a webhook of format f.
func Payload(n Notification, f Format) ([]byte, error) {
	if f != FormatSlack {
		return json.Marshal(n)
	}
	icon := ":large_green_circle:"
	if n.Warning {
		icon = ":red_circle:"
	}
	title := fmt.Sprintf("%s fledge: %s %s/%s (%d%% → %d%%)", icon, n.Decision, n.Namespace, n.App, n.FromWeight, n.ToWeight)
	fields := []map[string]string{
		{"type": "mrkdwn", "text": "*Application*\n" + n.Namespace + "/" + n.App},
		{"type": "mrkdwn", "text": fmt.Sprintf("*Canary weight*\n%d%% → %d%%", n.FromWeight, n.ToWeight)},
	}
	if n.Verdict != "" {
		fields = append(fields, map[string]string{"type": "mrkdwn", "text": "*Verdict*\n" + n.Verdict + " (" + n.Reason + ")"})
	}
	if n.Canary != nil && n.Stable != nil {
		fields = append(fields, map[string]string{"type": "mrkdwn", "text": fmt.Sprintf("*Errors*\ncanary %d of %d, stable %d of %d",
			n.Canary.Errors, n.Canary.Requests, n.Stable.Errors, n.Stable.Requests)})
	}
	return json.Marshal(map[string]any{
		"text": title + ": " + n.Message,
		"blocks": []any{
			map[string]any{"type": "section", "text": map[string]string{"type": "mrkdwn", "text": "*" + title + "*\n" + n.Message}},
			map[string]any{"type": "section", "fields": fields},
			map[string]any{"type": "context", "elements": []map[string]string{{"type": "mrkdwn", "text": n.Time.UTC().Format(time.RFC3339)}}},
		},
	})
}

// Options configure a Notifier. Zero fields take the defaults documented.
type Options struct {
	// Attempts per delivery. Default 5.
	Attempts int
	// Backoff before the second attempt, doubled for each later one (with up
	// to 25% jitter). Default 1s.
	Backoff time.Duration
	// Timeout of one attempt. Default 5s.
	Timeout time.Duration
	// Queue is how many deliveries may wait. Default 1000.
	Queue int
	// Workers post in parallel. Default 4.
	Workers int
	// Transport sends the requests. Default http.DefaultTransport.
	Transport http.RoundTripper
	// OnFailure is told of a delivery that failed every attempt (or was
	// dropped); err never contains the URL.
	OnFailure func(n Notification, t Target, err error)
	// OnDelivered is told of a delivery that succeeded (tests, metrics).
	OnDelivered func(n Notification, t Target, attempts int)
}

// Notifier delivers notifications in the background.
type Notifier struct {
	opts   Options
	client *http.Client
	queue  chan delivery
}

type delivery struct {
	n       Notification
	t       Target
	resolve Resolver
}

// New returns a Notifier; Run starts its workers.
func New(opts Options) *Notifier {
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Queue <= 0 {
		opts.Queue = 1000
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport
	}
	return &Notifier{opts: opts, client: &http.Client{Transport: opts.Transport, Timeout: opts.Timeout,
		// A redirect would be followed to wherever; a webhook answers itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		queue: make(chan delivery, opts.Queue)}
}

// Send queues n for every target and returns at once.
func (s *Notifier) Send(n Notification, targets ...Target) {
	for _, t := range targets {
		select {
		case s.queue <- delivery{n: n, t: t}:
		default:
			s.failed(n, t, errors.New("dropped: the notification queue is full"))
		}
	}
}

// SendTo queues n for the targets resolve returns, and returns at once.
func (s *Notifier) SendTo(n Notification, resolve Resolver) {
	select {
	case s.queue <- delivery{n: n, resolve: resolve}:
	default:
		s.failed(n, Target{Name: "its webhooks"}, errors.New("dropped: the notification queue is full"))
	}
}

// Run posts queued notifications until ctx ends. It is a manager.Runnable.
func (s *Notifier) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range s.opts.Workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case d := <-s.queue:
					s.deliver(ctx, d)
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// Start is Run for controller-runtime's manager.
func (s *Notifier) Start(ctx context.Context) error { return s.Run(ctx) }

func (s *Notifier) failed(n Notification, t Target, err error) {
	if s.opts.OnFailure != nil {
		s.opts.OnFailure(n, t, err)
	}
}

func (s *Notifier) deliver(ctx context.Context, d delivery) {
	if d.resolve != nil {
		targets, errs := d.resolve(ctx)
		for _, e := range errs {
			s.failed(d.n, e.Target, e.Err)
		}
		for _, t := range targets {
			s.deliver(ctx, delivery{n: d.n, t: t})
		}
		return
	}
	body, err := Payload(d.n, d.t.Format)
	if err != nil {
		s.failed(d.n, d.t, err)
		return
	}
	wait := s.opts.Backoff
	for attempt := 1; ; attempt++ {
		permanent, err := s.post(ctx, d.t, body)
		if err == nil {
			if s.opts.OnDelivered != nil {
				s.opts.OnDelivered(d.n, d.t, attempt)
			}
			return
		}
		if permanent || attempt >= s.opts.Attempts {
			s.failed(d.n, d.t, fmt.Errorf("%d attempts: %w", attempt, err))
			return
		}
		jitter := time.Duration(time.Now().UnixNano() % int64(wait/4+1))
		select {
		case <-ctx.Done():
			s.failed(d.n, d.t, fmt.Errorf("%d attempts, then the controller stopped: %w", attempt, err))
			return
		case <-time.After(wait + jitter):
		}
		wait *= 2
	}
}

// post sends one attempt; permanent says a retry cannot help (a 4xx other
// than 408 and 429, a URL that is not http or https).
func (s *Notifier) post(ctx context.Context, t Target, body []byte) (permanent bool, err error) {
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return true, errors.New("the URL is not an http or https URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return true, errors.New("the URL is invalid")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "fledge-notify")
	resp, err := s.client.Do(req)
	if err != nil {
		return false, redact(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	permanent = resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests
	return permanent, fmt.Errorf("the webhook answered %s", resp.Status)
}

// redact returns err without the URL that net/http puts in its errors.
func redact(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return errors.New("request failed")
	}
	var ne net.Error
	switch {
	case errors.As(ue.Err, &ne) && ne.Timeout():
		return errors.New("no answer in time")
	case errors.Is(ue.Err, context.Canceled):
		return context.Canceled
	}
	var op *net.OpError
	if errors.As(ue.Err, &op) && op.Err != nil {
		return fmt.Errorf("%s: %v", op.Op, op.Err)
	}
	return errors.New("request failed")
}
