//go:build scale

package scale

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// apiCounter counts the requests a client configuration sends, by verb and
// resource ("get trafficroutes", "patch releases/status"). It is installed with
// rest.Config.Wrap, so it sees every client built from the configuration:
// the manager's cache and client, leader election and the event recorder.
type apiCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func newAPICounter() *apiCounter { return &apiCounter{n: map[string]int{}} }

// wrap is a rest.Config WrapTransport.
func (c *apiCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		key := requestKey(req)
		c.mu.Lock()
		c.n[key]++
		c.mu.Unlock()
		return rt.RoundTrip(req)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// snapshot returns the counts so far.
func (c *apiCounter) snapshot() requestCounts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

// requestCounts are request counts by "verb resource".
type requestCounts map[string]int

// since returns the counts of the requests made after before was taken.
func (c requestCounts) since(before requestCounts) requestCounts {
	d := requestCounts{}
	for k, v := range c {
		if n := v - before[k]; n > 0 {
			d[k] = n
		}
	}
	return d
}

func (c requestCounts) total() int {
	t := 0
	for _, v := range c {
		t += v
	}
	return t
}

// writes counts creates, updates, patches and deletes.
func (c requestCounts) writes() int {
	t := 0
	for k, v := range c {
		switch strings.Fields(k)[0] {
		case "create", "update", "patch", "delete":
			t += v
		}
	}
	return t
}

// of counts the requests of one verb on one resource.
func (c requestCounts) of(verb, resource string) int { return c[verb+" "+resource] }

// String lists the counts, largest first.
func (c requestCounts) String() string {
	keys := slices.Collect(maps.Keys(c))
	slices.SortFunc(keys, func(a, b string) int {
		if c[a] != c[b] {
			return c[b] - c[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, c[k])
	}
	return strings.Join(parts, ", ")
}

// requestKey names a request by its Kubernetes verb and resource, from the
// URL path: /api/v1/namespaces/ns/services/name,
// /apis/fledge.dev/v1alpha1/namespaces/ns/releases/name/status, ...
func requestKey(req *http.Request) string {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return strings.ToLower(req.Method) + " discovery"
	}
	if len(parts) == 0 {
		return strings.ToLower(req.Method) + " discovery"
	}
	if parts[0] == "namespaces" && len(parts) >= 3 {
		parts = parts[2:]
	}
	resource, named := parts[0], len(parts) >= 2
	if len(parts) >= 3 {
		resource += "/" + parts[2]
	}
	verb := strings.ToLower(req.Method)
	switch req.Method {
	case http.MethodGet:
		switch {
		case req.URL.Query().Get("watch") == "true" || req.URL.Query().Get("watch") == "1":
			verb = "watch"
		case named:
			verb = "get"
		default:
			verb = "list"
		}
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	}
	return verb + " " + resource
}
