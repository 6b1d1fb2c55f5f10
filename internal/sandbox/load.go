package sandbox

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"
)

// Load sends requests through the gateway at a fixed rate until stopped.
type Load struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu sync.Mutex
	// counts by version of 2xx answers, and by status
	byVersion map[string]int
	status    map[int]int
	// first is when each version first answered
	first map[string]time.Time
}

// StartLoad sends rate requests per second for host and path through the
// first gateway, spread evenly, each from its own goroutine so a slow answer
// does not slow the rate. Stop it with Stop.
func (s *Sandbox) StartLoad(ctx context.Context, rate int, host, path string) *Load {
	ctx, cancel := context.WithCancel(ctx)
	l := &Load{cancel: cancel, done: make(chan struct{}), byVersion: map[string]int{}, status: map[int]int{}, first: map[string]time.Time{}}
	go func() {
		defer close(l.done)
		var wg sync.WaitGroup
		defer wg.Wait()
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				l.one(ctx, s, host, path)
			}()
		}
	}()
	return l
}

func (l *Load) one(ctx context.Context, s *Sandbox, host, path string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.GatewayURL+path, nil)
	if err != nil {
		return
	}
	req.Host = host
	resp, err := s.http.Do(req)
	if err != nil {
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var answer struct {
		Version string `json:"version"`
	}
	_ = json.Unmarshal(body, &answer)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.status[resp.StatusCode]++
	if answer.Version != "" {
		if _, ok := l.first[answer.Version]; !ok {
			l.first[answer.Version] = time.Now()
		}
		if resp.StatusCode/100 == 2 {
			l.byVersion[answer.Version]++
		}
	}
}

// FirstAnswer returns when version first answered (2xx or not), if it has.
func (l *Load) FirstAnswer(version string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.first[version]
	return t, ok
}

// Counts returns the answers so far.
func (l *Load) Counts() Counts {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := Counts{ByVersion: map[string]int{}, Status: map[int]int{}}
	for k, v := range l.byVersion {
		c.ByVersion[k] = v
	}
	for k, v := range l.status {
		c.Status[k] = v
	}
	return c
}

// Stop stops sending and waits for the requests in flight.
func (l *Load) Stop() {
	l.cancel()
	<-l.done
}
