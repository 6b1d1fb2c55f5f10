package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/metricsource"
)

// Defaults of gatewayReplicas.
const (
	// replicaTimeout bounds the fetch of one replica's /routes.
	replicaTimeout = 2 * time.Second
	// replicaMaxAge is how long one fetch of every replica's /routes may be
	// reused by later reconciles whose route it confirms; a reconcile that
	// sees a replica disagree always fetches again before deciding.
	replicaMaxAge = time.Second
	// replicaMaxBytes bounds one /routes answer.
	replicaMaxBytes = 64 << 20
)

// replicaAnswer is what one gateway replica answered on /routes: the routes it
// serves and the problems of its last table build, or why it did not answer.
type replicaAnswer struct {
	// URL identifies the replica.
	URL      string
	Routes   []servedRoute
	Problems []string
	Err      error
}

// servedRoute and servedBackend are the fields of the gateway's RouteInfo and
// BackendInfo (package gateway, the /routes answer) that say what is served.
type servedRoute struct {
	Namespace    string               `json:"namespace"`
	Name         string               `json:"name"`
	Host         string               `json:"host"`
	Stable       servedBackend        `json:"stable"`
	Canary       *servedBackend       `json:"canary,omitempty"`
	CanaryWeight int32                `json:"canaryWeight"`
	Match        []fledgev1.Predicate `json:"match,omitempty"`
	TLSSecret    string               `json:"tlsSecret,omitempty"`
}

type servedBackend struct {
	Service string `json:"service"`
	Port    int32  `json:"port"`
}

// gatewayReplicas reads /routes of every ready gateway replica, concurrently,
// and keeps the last answers for replicaMaxAge. Safe for concurrent use.
type gatewayReplicas struct {
	targets metricsource.Targets
	client  *http.Client
	now     func() time.Time

	// mu serialises fetches (concurrent reconciles share one) and guards last,
	// the last fetch's answers, started at lastStart and done at lastEnd.
	mu                 sync.Mutex
	last               []replicaAnswer
	lastStart, lastEnd time.Time
}

func newGatewayReplicas(targets metricsource.Targets) *gatewayReplicas {
	return &gatewayReplicas{
		targets: targets,
		client: &http.Client{Timeout: replicaTimeout, Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: replicaTimeout}).DialContext,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
		}},
		now: time.Now,
	}
}

// answers returns every ready replica's answer: a fetch done less than
// replicaMaxAge ago when fresh is false (so that a replica that makes every
// fetch wait for its timeout does not make every reconcile wait), else one
// started after the call. No ready replica is an empty list; an error only
// when the replicas cannot be listed.
func (g *gatewayReplicas) answers(ctx context.Context, fresh bool) ([]replicaAnswer, error) {
	start := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	// A fetch that started after this call began (by a concurrent reconcile)
	// is as fresh as one of our own.
	if g.last != nil && (g.lastStart.After(start) || (!fresh && g.now().Sub(g.lastEnd) < replicaMaxAge)) {
		return g.last, nil
	}
	at := g.now()
	urls, err := g.targets.URLs(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the gateway replicas: %w", err)
	}
	out := make([]replicaAnswer, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Go(func() { out[i] = g.fetch(ctx, u) })
	}
	wg.Wait()
	g.last, g.lastStart, g.lastEnd = out, at, g.now()
	return out, nil
}

func (g *gatewayReplicas) fetch(ctx context.Context, url string) replicaAnswer {
	a := replicaAnswer{URL: url}
	ctx, cancel := context.WithTimeout(ctx, replicaTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		a.Err = err
		return a
	}
	resp, err := g.client.Do(req)
	if err != nil {
		a.Err = err
		return a
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		a.Err = fmt.Errorf("GET %s: %s", url, resp.Status)
		return a
	}
	var body struct {
		Routes   []servedRoute `json:"routes"`
		Problems []string      `json:"problems"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, replicaMaxBytes)).Decode(&body); err != nil {
		a.Err = fmt.Errorf("GET %s: decoding: %w", url, err)
		return a
	}
	a.Routes, a.Problems = body.Routes, body.Problems
	return a
}
