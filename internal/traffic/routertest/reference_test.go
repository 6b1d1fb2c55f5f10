package routertest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/traffic"
	"github.com/fledge-dev/fledge/internal/traffic/routertest"
)

// memRouter is a minimal correct provider: it checks that the suite passes a
// provider that does the right thing, and shows how a Harness is written.
type memRouter struct {
	mu       sync.Mutex
	broken   bool
	noCookie bool // reject cookie predicates, as Gateway API must
	rev      int
	routes   map[traffic.Key]stored
}

type stored struct {
	route traffic.Route
	rev   int
}

var errBroken = errors.New("backing store unavailable")

func (m *memRouter) Ensure(_ context.Context, r traffic.Route) error {
	if r.CanaryWeight < 0 || r.CanaryWeight > 100 {
		return fmt.Errorf("canary weight %d outside 0..100", r.CanaryWeight)
	}
	for _, p := range r.Match {
		if m.noCookie && p.Type == fledgev1.PredicateCookie {
			return fmt.Errorf("cookie %q: %w", p.Name, errors.ErrUnsupported)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.broken {
		return errBroken
	}
	if cur, ok := m.routes[r.Key]; ok && routertest.Equal(cur.route, r) == "" {
		return nil
	}
	m.rev++
	r.Match = slices.Clone(r.Match)
	if r.Canary != nil {
		c := *r.Canary
		r.Canary = &c
	}
	m.routes[r.Key] = stored{route: r, rev: m.rev}
	return nil
}

func (m *memRouter) Observe(_ context.Context, key traffic.Key) (traffic.Route, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.broken {
		return traffic.Route{}, errBroken
	}
	s, ok := m.routes[key]
	if !ok {
		return traffic.Route{}, fmt.Errorf("%s: %w", key, traffic.ErrNotFound)
	}
	return s.route, nil
}

func (m *memRouter) Remove(_ context.Context, key traffic.Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.broken {
		return errBroken
	}
	delete(m.routes, key)
	return nil
}

func memHarness(noCookie bool) routertest.Harness {
	h := routertest.Harness{New: func(t *testing.T) *routertest.Instance {
		m := &memRouter{routes: map[traffic.Key]stored{}, noCookie: noCookie}
		return &routertest.Instance{
			Router:    m,
			Namespace: "default",
			Objects: func(context.Context) ([]string, error) {
				m.mu.Lock()
				defer m.mu.Unlock()
				var out []string
				for k := range m.routes {
					out = append(out, k.String())
				}
				sort.Strings(out)
				return out, nil
			},
			Snapshot: func(_ context.Context, key traffic.Key) (string, error) {
				m.mu.Lock()
				defer m.mu.Unlock()
				s, ok := m.routes[key]
				if !ok {
					return "", nil
				}
				return fmt.Sprintf("rev=%d %+v", s.rev, routertest.Normalize(s.route)), nil
			},
			Break:  func() { m.mu.Lock(); m.broken = true; m.mu.Unlock() },
			Repair: func() { m.mu.Lock(); m.broken = false; m.mu.Unlock() },
		}
	}}
	if noCookie {
		h.Unsupported = []routertest.PredicateKind{{Type: fledgev1.PredicateCookie}}
	}
	return h
}

func TestReferenceProvider(t *testing.T) {
	routertest.Run(t, memHarness(false))
}

func TestReferenceProviderWithoutCookies(t *testing.T) {
	routertest.Run(t, memHarness(true))
}

func TestBackendsAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, b := range routertest.Backends() {
		s := fmt.Sprintf("%s:%d", b.Service, b.Port)
		if seen[s] || strings.TrimSpace(b.Service) == "" {
			t.Errorf("backend %s repeated or empty", s)
		}
		seen[s] = true
	}
}
