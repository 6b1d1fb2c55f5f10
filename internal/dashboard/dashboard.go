// Package dashboard serves fledge's web dashboard: the applications, and per
// application live charts of the traffic share, request rate, error rate and
// latency of each version, with the automation's decisions marked on the
// time axis, and buttons for the manual decisions.
//
// It reads with the credentials it is given (the user's kubeconfig), so a
// person sees and may do exactly what their RBAC allows. The numbers are the
// ones the live terminal view shows (package ctl): the controller's counts
// of the current step, which it measured from its metric source and judged,
// turned into rates by a ctl.Tracker per application, sampled every second
// while the dashboard runs. The page and its charting library (uPlot, pinned
// and embedded) come from the binary: no CDN.
package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/ctl"
)

//go:embed index.html assets
var files embed.FS

// Options configure a Server.
type Options struct {
	// Client reads and acts with the user's credentials.
	Client client.Client
	// ReadOnly hides the buttons and refuses the actions.
	ReadOnly bool
	// Interval between samples. Default 1s.
	Interval time.Duration
	// Points kept per application. Default 3600 (an hour at 1s).
	Points int
}

// Server is the dashboard: an http.Handler, and Run samples the Releases.
type Server struct {
	opts Options
	mux  *http.ServeMux

	mu   sync.Mutex
	apps map[string]*history
	// listErr is the last sampling error, shown on the page.
	listErr error
}

// history is one application's samples.
type history struct {
	tracker ctl.Tracker
	points  []Point
	last    *fledgev1.Release
}

// Point is one sample of an application. Rates are per second over the
// tracker's window; nil (null in JSON) when unknown.
type Point struct {
	Time         int64    `json:"t"` // Unix seconds
	CanaryWeight int32    `json:"weight"`
	StableRate   *float64 `json:"stableRate"`
	CanaryRate   *float64 `json:"canaryRate"`
	StableErrors *float64 `json:"stableErrorRatio"`
	CanaryErrors *float64 `json:"canaryErrorRatio"`
	StableP50    *float64 `json:"stableP50"`
	StableP99    *float64 `json:"stableP99"`
	CanaryP50    *float64 `json:"canaryP50"`
	CanaryP99    *float64 `json:"canaryP99"`
	// StableRequests and CanaryRequests are the step's counts so far, as
	// the controller measured them (the gateway's counters).
	StableRequests int64 `json:"stableRequests"`
	CanaryRequests int64 `json:"canaryRequests"`
	CanaryFailed   int64 `json:"canaryErrors"`
}

// New returns a dashboard server.
func New(opts Options) *Server {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Points <= 0 {
		opts.Points = 3600
	}
	s := &Server{opts: opts, mux: http.NewServeMux(), apps: map[string]*history{}}
	s.mux.Handle("GET /assets/", http.FileServerFS(files))
	s.mux.HandleFunc("GET /{$}", s.index)
	s.mux.HandleFunc("GET /api/apps", s.listApps)
	s.mux.HandleFunc("GET /api/apps/{ns}/{name}", s.app)
	s.mux.HandleFunc("POST /api/apps/{ns}/{name}/{action}", s.act)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	s.mux.ServeHTTP(w, r)
}

// Run samples every application each interval until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		s.sample(ctx, time.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (s *Server) sample(ctx context.Context, now time.Time) {
	var list fledgev1.ReleaseList
	err := s.opts.Client.List(ctx, &list)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listErr = err
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for i := range list.Items {
		rel := &list.Items[i]
		key := rel.Namespace + "/" + rel.Name
		seen[key] = true
		h := s.apps[key]
		if h == nil {
			h = &history{}
			s.apps[key] = h
		}
		h.last = rel
		h.tracker.Observe(rel, now)
		var bounds []string
		if rel.Status.Auto != nil {
			bounds = rel.Status.Auto.LatencyBounds
		}
		st, ca := h.tracker.Rates(bounds)
		p := Point{Time: now.Unix(), CanaryWeight: rel.Status.EffectiveWeight,
			StableRate: num(st.PerSecond()), CanaryRate: num(ca.PerSecond()),
			StableErrors: ratio(st), CanaryErrors: ratio(ca),
			StableP50: num(st.P50), StableP99: num(st.P99), CanaryP50: num(ca.P50), CanaryP99: num(ca.P99)}
		if a := rel.Status.Auto; a != nil && a.Current != nil {
			p.StableRequests, p.CanaryRequests, p.CanaryFailed = a.Current.Stable.Requests, a.Current.Canary.Requests, a.Current.Canary.Errors
		}
		h.points = append(h.points, p)
		if len(h.points) > s.opts.Points {
			h.points = slices.Delete(h.points, 0, len(h.points)-s.opts.Points)
		}
	}
	for key := range s.apps {
		if !seen[key] {
			delete(s.apps, key)
		}
	}
}

func num(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func ratio(r ctl.Rate) *float64 {
	if r.Seconds <= 0 || r.Requests <= 0 {
		return nil
	}
	v := float64(r.Errors) / float64(r.Requests)
	return &v
}

func (s *Server) index(w http.ResponseWriter, _ *http.Request) {
	b, err := files.ReadFile("index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	html := strings.Replace(string(b), "{{READONLY}}", fmt.Sprint(s.opts.ReadOnly), 1)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(html))
}

// AppSummary is one application in the list.
type AppSummary struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Host      string `json:"host"`
	Stable    string `json:"stable"`
	Canary    string `json:"canary"`
	Desired   int32  `json:"desiredWeight"`
	Effective int32  `json:"effectiveWeight"`
	Phase     string `json:"phase"`
	Step      string `json:"step"`
	Verdict   string `json:"verdict"`
	Evidence  string `json:"evidence"`
	Automated bool   `json:"automated"`
}

func summary(rel *fledgev1.Release) AppSummary {
	st := &rel.Status
	a := AppSummary{Namespace: rel.Namespace, Name: rel.Name, Host: st.Host, Stable: st.Stable, Canary: st.Canary,
		Desired: st.DesiredWeight, Effective: st.EffectiveWeight, Phase: string(st.Phase), Step: ctl.Step(rel), Automated: rel.Spec.Auto != nil}
	if st.Auto != nil {
		a.Verdict, a.Evidence = st.Auto.Verdict+" ("+st.Auto.Reason+")", st.Auto.Evidence
	}
	return a
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch ctl.ExitCode(err) {
	case ctl.ExitNotFound:
		code = http.StatusNotFound
	case ctl.ExitForbidden:
		code = http.StatusForbidden
	case ctl.ExitUnreachable:
		code = http.StatusBadGateway
	case ctl.ExitRefused, ctl.ExitUsage:
		code = http.StatusConflict
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func (s *Server) listApps(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listErr != nil {
		writeError(w, s.listErr)
		return
	}
	out := []AppSummary{}
	for _, h := range s.apps {
		out = append(out, summary(h.last))
	}
	slices.SortFunc(out, func(a, b AppSummary) int { return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name) })
	writeJSON(w, http.StatusOK, out)
}

// Decision is a decision of the automation, marked on the time axis.
type Decision struct {
	Time   int64  `json:"t"`
	Reason string `json:"reason"`
	Type   string `json:"type"`
	Note   string `json:"note"`
}

// decisionReasons are the Events marked on the charts.
var decisionReasons = map[string]bool{"AnalysisStarted": true, "StepUp": true, "Paused": true, "Resumed": true,
	"Promoted": true, "RolledBack": true}

func (s *Server) app(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("ns"), r.PathValue("name")
	s.mu.Lock()
	h := s.apps[ns+"/"+name]
	var points []Point
	var sum AppSummary
	if h != nil {
		points, sum = slices.Clone(h.points), summary(h.last)
	}
	s.mu.Unlock()
	if h == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no application %s in namespace %s", name, ns)})
		return
	}
	decisions := []Decision{}
	var events eventsv1.EventList
	eventsErr := ""
	if err := s.opts.Client.List(r.Context(), &events, client.InNamespace(ns)); err != nil {
		eventsErr = "events: " + err.Error()
	}
	for _, e := range events.Items {
		if e.Regarding.Kind == "Release" && e.Regarding.Name == name && decisionReasons[e.Reason] {
			decisions = append(decisions, Decision{Time: ctl.EventTime(e).Unix(), Reason: e.Reason, Type: e.Type, Note: e.Note})
		}
	}
	slices.SortFunc(decisions, func(a, b Decision) int { return int(a.Time - b.Time) })
	writeJSON(w, http.StatusOK, map[string]any{"app": sum, "points": points, "decisions": decisions,
		"eventsError": eventsErr, "readOnly": s.opts.ReadOnly})
}

// ConfirmHeader must name the action of a POST: a page of another origin
// cannot send it without a CORS preflight, which the dashboard never grants.
const ConfirmHeader = "X-Fledge-Confirm"

func (s *Server) act(w http.ResponseWriter, r *http.Request) {
	ns, name, action := r.PathValue("ns"), r.PathValue("name"), ctl.Action(r.PathValue("action"))
	if s.opts.ReadOnly {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "the dashboard is read-only (--read-only)"})
		return
	}
	switch action {
	case ctl.Promote, ctl.Abort, ctl.Pause, ctl.Resume:
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("unknown action %q: want promote, abort, pause or resume", action)})
		return
	}
	if r.Header.Get(ConfirmHeader) != string(action) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unconfirmed: the request must carry " + ConfirmHeader + ": " + string(action)})
		return
	}
	if err := ctl.Do(r.Context(), s.opts.Client, ns, name, action, time.Now()); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"result": fmt.Sprintf("%s: %s requested", name, action)})
}
