// Package apiwait makes a long-running component's connections to the API
// server wait for it while it is down, instead of failing.
//
// client-go's reflectors back off after each failed list or watch, up to
// 30 s with a jitter factor of 1.0 (so up to a minute), and shared informers
// do not let a caller change that. A component whose reflectors keep failing
// through an API server outage therefore sees changes up to a minute after
// the API server is back. A restarted API server also refuses requests for a
// few seconds after it listens (its authorizer has not loaded RBAC yet: every
// list is "forbidden"), and each of those failures doubles the backoff.
//
// With Config, a dial to an API server that refused the last one waits: it is
// retried until the API server listens again and its /readyz answers 200, and
// only then connected. A reflector's list or watch therefore does not fail
// through the outage and needs no backoff after it. A request with a deadline
// (a leader election renewal, say) still fails at its deadline.
package apiwait

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/rest"
)

// Retry intervals of dials and readiness checks: the first after RetryMin,
// doubling up to RetryMax.
const (
	RetryMin = 50 * time.Millisecond
	RetryMax = 500 * time.Millisecond
)

// dialTimeout bounds one connection attempt, as client-go's own dialer does.
const dialTimeout = 30 * time.Second

// Config returns a copy of cfg whose dials to the API server wait for it to
// be reachable and ready.
func Config(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	dial := cfg.Dial
	if dial == nil {
		d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
		dial = d.DialContext
	}
	probeCfg := rest.CopyConfig(cfg)
	probeCfg.Timeout = time.Second
	var ready func(ctx context.Context) bool
	hc, err1 := rest.HTTPClientFor(probeCfg)
	base, _, err2 := rest.DefaultServerUrlFor(probeCfg)
	if err1 == nil && err2 == nil {
		readyz := base.JoinPath("readyz").String()
		ready = func(ctx context.Context) bool { return readyzOK(ctx, hc, readyz) }
	}
	cfg.Dial = Dialer(dial, ready)
	return cfg
}

// readyzOK reports whether GET url answered 200.
func readyzOK(ctx context.Context, hc *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// DialFunc dials a network address.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Dialer returns dial retried, after any error, until it succeeds or ctx
// ends (it then returns the last error). After a failed dial, the next
// connection is handed out only once ready reports true (nil: at once); one
// caller checks at a time, the others wait for its answer.
func Dialer(dial DialFunc, ready func(context.Context) bool) DialFunc {
	w := &waiter{dial: dial, ready: ready}
	return w.dialContext
}

type waiter struct {
	dial  DialFunc
	ready func(context.Context) bool

	mu   sync.Mutex
	down bool          // the last dial failed and readiness was not seen since
	seen chan struct{} // closed by the caller that saw readiness; nil when none checks
}

func (w *waiter) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	delay := RetryMin
	for {
		conn, err := w.dial(ctx, network, addr)
		if err != nil {
			w.mu.Lock()
			w.down = true
			w.mu.Unlock()
			if ctx.Err() != nil || !sleep(ctx, delay) {
				return nil, err
			}
			delay = min(2*delay, RetryMax)
			continue
		}
		if err := w.awaitReady(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	}
}

// awaitReady returns at once unless a dial failed since the last readiness
// seen; then it waits until ready says true or ctx ends.
func (w *waiter) awaitReady(ctx context.Context) error {
	if w.ready == nil {
		return nil
	}
	for delay := RetryMin; ; delay = min(2*delay, RetryMax) {
		w.mu.Lock()
		if !w.down {
			w.mu.Unlock()
			return nil
		}
		if w.seen != nil { // another caller checks: wait for its answer
			seen := w.seen
			w.mu.Unlock()
			select {
			case <-seen:
			case <-ctx.Done():
				return ctx.Err()
			}
			w.mu.Lock()
			down := w.down
			w.mu.Unlock()
			if down && !sleep(ctx, delay) {
				return ctx.Err()
			}
			continue
		}
		seen := make(chan struct{})
		w.seen = seen
		w.mu.Unlock()

		ok := w.ready(ctx)
		w.mu.Lock()
		if ok {
			w.down = false
		}
		w.seen = nil
		close(seen)
		w.mu.Unlock()
		if ok {
			return nil
		}
		if !sleep(ctx, delay) {
			return ctx.Err()
		}
	}
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
