// Package errorpage is fledge's demo application: a tiny HTTP service whose
// answer names its version, with a configurable share of injected HTTP 500s and
// added latency, so a canary release has something to measure.
//
// It answers:
//
//	GET /api/error_page  200 {"error": "injected by error_page service", "version": "v1"}
//	                     or, for ErrorRatio of the requests,
//	                     500 {"error": "injected failure", "version": "v1"}
//	GET /api/unavailable 503 {"error": "dependency unavailable", "version": "v1"}
//	                     always, after the same latency: a request whose
//	                     dependency is down, on every version alike (to show
//	                     an outage that the canary shares with the stable)
//	GET /healthz         200 ok (never delayed, never failed)
//	anything else        404
//
// Injected failures are spread deterministically, not at random: the n-th
// request to /api/error_page (counting from 1, across all connections) fails
// exactly when floor(n*r) > floor((n-1)*r), where r is ErrorRatio rounded to
// a millionth. Any N consecutive requests from the start therefore contain
// exactly floor(N*r) failures (50 of the first 1000 at r=0.05), evenly spaced
// (Bresenham's line algorithm), so tests and demos see the configured rate
// without statistical noise.
package errorpage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
)

// DefaultAddr is the listen address used when Options.Addr is empty.
const DefaultAddr = ":9011"

// Path is the path of the application's API endpoint.
const Path = "/api/error_page"

// UnavailablePath always answers 503, as if a dependency were down.
const UnavailablePath = "/api/unavailable"

// ratioScale is the resolution of ErrorRatio: it is rounded to a millionth.
const ratioScale = 1_000_000

// shutdownGrace is how long Run waits for in-flight requests after its context
// ends, on top of the configured latency (which every in-flight request may
// still have to sit through).
const shutdownGrace = 5 * time.Second

// versionPattern is what a version may look like: a simple token that needs no
// escaping inside a JSON string, such as "v1", "v2" or "1.4.0-rc.1".
var versionPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Options configures the application.
type Options struct {
	// Version names this instance in every answer, e.g. "v1". Required: a
	// token of letters, digits, '.', '_' and '-', starting with a letter or
	// digit, at most 63 characters.
	Version string
	// Addr is the TCP address Run listens on; empty means DefaultAddr.
	Addr string
	// ErrorRatio is the fraction of /api/error_page requests answered with
	// HTTP 500, from 0 (none) to 1 (all), rounded to a millionth.
	ErrorRatio float64
	// Latency is added to every /api/error_page response, failed or not.
	// /healthz and 404s are not delayed so that probes stay fast.
	Latency time.Duration
	// LatencyJitter, when positive, adds a uniformly random extra delay in
	// [0, LatencyJitter) on top of Latency to every delayed response.
	LatencyJitter time.Duration
	// GRPCAddr, when set, also serves the gRPC health service there (see
	// grpc.go), with the same ErrorRatio (as UNAVAILABLE) and latency.
	GRPCAddr string
}

// Validate reports the first problem with o, naming the offending field.
func (o Options) Validate() error {
	switch {
	case o.Version == "":
		return errors.New("version must not be empty")
	case !versionPattern.MatchString(o.Version):
		return fmt.Errorf("version %q must be a simple token (letters, digits, '.', '_', '-'; at most 63 characters, starting with a letter or digit)", o.Version)
	case math.IsNaN(o.ErrorRatio) || o.ErrorRatio < 0 || o.ErrorRatio > 1:
		return fmt.Errorf("error ratio %v must be between 0 and 1", o.ErrorRatio)
	case o.Latency < 0:
		return fmt.Errorf("latency %v must not be negative", o.Latency)
	case o.LatencyJitter < 0:
		return fmt.Errorf("latency jitter %v must not be negative", o.LatencyJitter)
	}
	return nil
}

// addr returns the listen address, defaulting an empty Addr.
func (o Options) addr() string {
	if o.Addr == "" {
		return DefaultAddr
	}
	return o.Addr
}

// NewHandler returns the application's handler. o must be valid: NewHandler
// panics when o.Validate fails, as that is a programming error (Run validates
// before calling it).
func NewHandler(o Options) http.Handler {
	if err := o.Validate(); err != nil {
		panic("errorpage.NewHandler: invalid options: " + err.Error())
	}
	a := newApp(o)
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Path, a.serveErrorPage)
	mux.HandleFunc("GET "+UnavailablePath, a.serveUnavailable)
	mux.HandleFunc("GET /healthz", serveHealthz)
	return mux
}

func newApp(o Options) *app {
	return &app{
		ok:       body("injected by error_page service", o.Version),
		failed:   body("injected failure", o.Version),
		down:     body("dependency unavailable", o.Version),
		failPerM: uint64(math.Round(o.ErrorRatio * ratioScale)),
		latency:  o.Latency,
		jitter:   o.LatencyJitter,
	}
}

// body renders an answer exactly as clients have always seen it, spaces after
// the colons and the comma included. version needs no escaping (see Validate).
func body(msg, version string) []byte {
	return []byte(`{"error": "` + msg + `", "version": "` + version + `"}`)
}

// app holds the precomputed answers and the request counter. It is safe for
// concurrent use without locks.
type app struct {
	// ok, failed and down are the exact bodies of the 200, 500 and 503 answers.
	ok, failed, down []byte
	// failPerM is ErrorRatio in millionths.
	failPerM uint64
	// latency and jitter delay every /api/error_page answer.
	latency, jitter time.Duration
	// requests counts /api/error_page requests; it decides which ones fail.
	requests atomic.Uint64
}

// fails reports whether the n-th request (n ≥ 1) is one of the injected
// failures. Only n modulo the scale matters, so the counter may wrap freely.
func (a *app) fails(n uint64) bool {
	m := (n-1)%ratioScale + 1 // in [1, ratioScale]
	return m*a.failPerM/ratioScale > (m-1)*a.failPerM/ratioScale
}

func (a *app) serveErrorPage(w http.ResponseWriter, r *http.Request) {
	fail := a.fails(a.requests.Add(1))
	if !a.delay(r.Context()) {
		return // the client went away while we were sleeping
	}
	status, b := http.StatusOK, a.ok
	if fail {
		status, b = http.StatusInternalServerError, a.failed
	}
	answer(w, r, status, b)
}

func (a *app) serveUnavailable(w http.ResponseWriter, r *http.Request) {
	if !a.delay(r.Context()) {
		return
	}
	answer(w, r, http.StatusServiceUnavailable, a.down)
}

func answer(w http.ResponseWriter, r *http.Request, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

// delay sleeps for the configured latency plus jitter; it returns false when
// ctx ended first.
func (a *app) delay(ctx context.Context) bool {
	d := a.latency
	if a.jitter > 0 {
		d += rand.N(a.jitter)
	}
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func serveHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// Run listens on o.Addr and serves the application until ctx ends, then shuts
// down gracefully: it stops accepting connections and waits for in-flight
// requests (at most the configured latency plus a few seconds). It returns nil
// after a clean shutdown. Run logs its start and shutdown (never requests)
// through the logr.Logger in ctx, or slog's default logger when ctx has none.
func Run(ctx context.Context, o Options) error {
	if err := o.Validate(); err != nil {
		return fmt.Errorf("error-page: %w", err)
	}
	ln, err := net.Listen("tcp", o.addr())
	if err != nil {
		return fmt.Errorf("error-page %s: %w", o.Version, err)
	}
	if o.GRPCAddr == "" {
		return Serve(ctx, ln, o)
	}
	gln, err := net.Listen("tcp", o.GRPCAddr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("error-page %s: gRPC: %w", o.Version, err)
	}
	gs := newGRPCServer(o)
	gerr := make(chan error, 1)
	go serveGRPC(gs, gln, gerr)
	err = Serve(ctx, ln, o)
	gs.GracefulStop()
	if e := <-gerr; e != nil && err == nil {
		err = fmt.Errorf("error-page %s: gRPC on %s: %w", o.Version, gln.Addr(), e)
	}
	return err
}

// Serve is Run on a listener the caller opened (for instance on port 0 in a
// test); o.Addr is ignored. Serve closes ln.
func Serve(ctx context.Context, ln net.Listener, o Options) error {
	if err := o.Validate(); err != nil {
		ln.Close()
		return fmt.Errorf("error-page: %w", err)
	}
	log, err := logr.FromContext(ctx)
	if err != nil {
		log = logr.FromSlogHandler(slog.Default().Handler())
	}
	log = log.WithValues("version", o.Version)
	srv := &http.Server{
		Handler:           NewHandler(o),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "errorRatio", o.ErrorRatio,
		"latency", o.Latency.String(), "latencyJitter", o.LatencyJitter.String())

	select {
	case err := <-served:
		// Serve only returns early on a listener failure.
		return fmt.Errorf("error-page %s: serve on %s: %w", o.Version, ln.Addr(), err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.Latency+o.LatencyJitter+shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("error-page %s: shutdown: %w", o.Version, err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("error-page %s: serve on %s: %w", o.Version, ln.Addr(), err)
	}
	return nil
}
