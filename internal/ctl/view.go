package ctl

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/strategy"
)

// The live view is pure: a Frame (a Release, its Events, the Tracker's
// rates, the time) becomes lines of text. It reads the counts the controller
// wrote into status.auto.current, which it measured from its metric source
// and judged: what a person sees is what fledge judged.

// DefaultRateWindow is the window of the live view's rates.
const DefaultRateWindow = 10 * time.Second

// Tracker turns successive readings of a Release's current-step counts into
// rates over a trailing window.
type Tracker struct {
	// Window is how far back the rates reach. Default DefaultRateWindow.
	Window  time.Duration
	samples []sample
	// seen is when Observe was last called.
	seen time.Time
}

// staleAfter is how long a reading may stay unchanged before the rates are
// unknown: a running automation's counts are measured every second, so a
// reading that stopped changing is of a release concluded or paused.
const staleAfter = 3 * time.Second

type sample struct {
	at             time.Time
	step, weight   int32
	stable, canary fledgev1.SampleCounts
}

// Observe records rel's current-step counts read at time at. A new step (or
// counts that went down: the step started over) starts the rates afresh.
func (t *Tracker) Observe(rel *fledgev1.Release, at time.Time) {
	t.seen = at
	a := rel.Status.Auto
	if a == nil || a.Current == nil {
		t.samples = nil
		return
	}
	s := sample{at: at, step: a.Step, weight: a.Current.Weight, stable: a.Current.Stable, canary: a.Current.Canary}
	if n := len(t.samples); n > 0 {
		last := t.samples[n-1]
		if last.step != s.step || last.weight != s.weight || s.stable.Requests < last.stable.Requests || s.canary.Requests < last.canary.Requests {
			t.samples = nil
		} else if last.stable.Requests == s.stable.Requests && last.canary.Requests == s.canary.Requests {
			// The same measurement read again: keep the time it was first seen.
			return
		}
	}
	t.samples = append(t.samples, s)
	window := t.Window
	if window <= 0 {
		window = DefaultRateWindow
	}
	// Keep the newest sample older than the window: it is the window's start.
	i := 0
	for i+1 < len(t.samples) && at.Sub(t.samples[i+1].at) >= window {
		i++
	}
	t.samples = t.samples[i:]
}

// Rate is one version's traffic over the tracker's window.
type Rate struct {
	// Seconds is the window's length; 0 when there are not two readings yet.
	Seconds          float64
	Requests, Errors int64
	// P50 and P99 are latency quantiles in seconds, NaN when unknown.
	P50, P99 float64
}

// PerSecond is the request rate; NaN without a window.
func (r Rate) PerSecond() float64 {
	if r.Seconds <= 0 {
		return math.NaN()
	}
	return float64(r.Requests) / r.Seconds
}

// Rates returns the stable's and canary's rates over the window, given the
// histogram's bucket bounds (status.auto.latencyBounds).
func (t *Tracker) Rates(bounds []string) (stable, canary Rate) {
	if len(t.samples) < 2 || t.seen.Sub(t.samples[len(t.samples)-1].at) > staleAfter {
		return Rate{P50: math.NaN(), P99: math.NaN()}, Rate{P50: math.NaN(), P99: math.NaN()}
	}
	first, last := t.samples[0], t.samples[len(t.samples)-1]
	secs := last.at.Sub(first.at).Seconds()
	b := parseBounds(bounds)
	rate := func(a, z fledgev1.SampleCounts) Rate {
		r := Rate{Seconds: secs, Requests: z.Requests - a.Requests, Errors: z.Errors - a.Errors}
		hist := deltaHistogram(a.Latency, z.Latency)
		r.P50, r.P99 = Quantile(b, hist, 0.5), Quantile(b, hist, 0.99)
		return r
	}
	return rate(first.stable, last.stable), rate(first.canary, last.canary)
}

func deltaHistogram(a, z []int64) []int64 {
	if len(z) == 0 {
		return nil
	}
	out := make([]int64, len(z))
	for i := range z {
		out[i] = z[i]
		if i < len(a) {
			out[i] -= a[i]
		}
	}
	return out
}

func parseBounds(s []string) []float64 {
	out := make([]float64, 0, len(s))
	for _, x := range s {
		f, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return nil
		}
		out = append(out, f)
	}
	return out
}

// Quantile estimates quantile q (0..1) of a cumulative histogram (counts[i]
// requests took at most bounds[i] seconds), interpolating linearly inside a
// bucket as Prometheus' histogram_quantile does. NaN without data; when the
// quantile falls in the last, unbounded bucket, the last finite bound.
func Quantile(bounds []float64, counts []int64, q float64) float64 {
	if len(bounds) == 0 || len(counts) != len(bounds) || counts[len(counts)-1] <= 0 {
		return math.NaN()
	}
	total := float64(counts[len(counts)-1])
	rank := q * total
	i, _ := slices.BinarySearchFunc(counts, rank, func(c int64, r float64) int {
		if float64(c) < r {
			return -1
		}
		return 1
	})
	if i >= len(bounds) {
		i = len(bounds) - 1
	}
	if math.IsInf(bounds[i], 1) {
		if i == 0 {
			return math.NaN()
		}
		return bounds[i-1]
	}
	lo, below := 0.0, 0.0
	if i > 0 {
		lo, below = bounds[i-1], float64(counts[i-1])
	}
	in := float64(counts[i]) - below
	if in <= 0 {
		return bounds[i]
	}
	return lo + (bounds[i]-lo)*(rank-below)/in
}

// Frame is what one redraw of the live view shows.
type Frame struct {
	Release *fledgev1.Release
	// Events are the recent Events about the application, oldest first.
	Events []eventsv1.Event
	// EventsErr says why the Events could not be read, if so.
	EventsErr      error
	Stable, Canary Rate
	Now            time.Time
	// Width is the terminal's width in columns. Default 80.
	Width int
}

// Characters of the weight bar.
const (
	barStable = "█"
	barCanary = "░"
)

// Bar is a bar of width cells, the stable's share in barStable then the
// canary's in barCanary.
func Bar(width int, canaryWeight int32) string {
	width = max(width, 1)
	canary := int(math.Round(float64(width) * float64(min(max(canaryWeight, 0), 100)) / 100))
	return strings.Repeat(barStable, width-canary) + strings.Repeat(barCanary, canary)
}

// progressBar is a bar of width cells filled in proportion done/of (at most full).
func progressBar(width int, done, of float64) string {
	f := 1.0
	if of > 0 {
		f = min(max(done/of, 0), 1)
	}
	n := int(math.Round(float64(width) * f))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

// Render returns the live view's lines.
func Render(f Frame) []string {
	width := f.Width
	if width <= 0 {
		width = 80
	}
	rel := f.Release
	st := &rel.Status
	var lines []string
	add := func(format string, args ...any) {
		lines = append(lines, clip(fmt.Sprintf(format, args...), width))
	}
	add("%s  namespace %s  host %s  provider %s  phase %s   %s", rel.Name, rel.Namespace, dash(st.Host), dash(string(st.Provider)),
		dash(string(st.Phase)), f.Now.Format("15:04:05"))
	stableLabel := fmt.Sprintf("stable %s %d%% ", dash(st.Stable), 100-st.EffectiveWeight)
	canaryLabel := fmt.Sprintf(" %d%% canary %s", st.EffectiveWeight, dash(st.Canary))
	barWidth := max(width-runeLen(stableLabel)-runeLen(canaryLabel)-2, 10)
	add("%s[%s]%s", stableLabel, Bar(barWidth, st.EffectiveWeight), canaryLabel)
	if st.DesiredWeight != st.EffectiveWeight {
		add("desired %d%%: the gateway does not serve it yet", st.DesiredWeight)
	}
	lines = append(lines, "")
	a := st.Auto
	window := f.Stable.Seconds
	var step *fledgev1.StepCounts
	stepName := "this step"
	if a != nil {
		step = a.Current
		if step == nil && len(a.Steps) > 0 {
			step = &a.Steps[len(a.Steps)-1]
			stepName = fmt.Sprintf("step at %d%%", step.Weight)
		}
	}
	if step != nil {
		over := "last window"
		if window > 0 {
			over = fmt.Sprintf("last %.0fs", window)
		}
		add("%-11s %9s %18s %9s %9s   %19s  %6s", over, "req/s", "errors", "p50", "p99", stepName+": requests", "errors")
		row := func(name string, r Rate, step fledgev1.SampleCounts) {
			add("%-11s %9s %18s %9s %9s   %19d  %6d", name, perSecond(r), errorRate(r), latency(r.P50), latency(r.P99), step.Requests, step.Errors)
		}
		row("stable", f.Stable, step.Stable)
		row("canary", f.Canary, step.Canary)
	} else {
		add("no measurement of the current step yet")
	}
	lines = append(lines, "")
	lines = append(lines, autoLines(rel, f.Now, width)...)
	for _, ct := range []string{fledgev1.ConditionAccepted, fledgev1.ConditionRouted} {
		if c := meta.FindStatusCondition(st.Conditions, ct); c != nil && c.Status != "True" {
			add("%s=%s %s: %s", c.Type, c.Status, c.Reason, c.Message)
		}
	}
	lines = append(lines, "")
	if f.EventsErr != nil {
		add("events: %v", f.EventsErr)
	} else {
		add("recent events:")
		evs := f.Events
		if len(evs) > 6 {
			evs = evs[len(evs)-6:]
		}
		for _, e := range evs {
			add("  %s  %-7s %-15s %s", EventTime(e).Local().Format("15:04:05"), e.Type, e.Reason, oneLine(e.Note))
		}
		if len(evs) == 0 {
			add("  (none)")
		}
	}
	return lines
}

// autoLines are the automation's step, its progress toward the step's minimums
// and the last decision with its evidence.
func autoLines(rel *fledgev1.Release, now time.Time, width int) []string {
	var lines []string
	add := func(format string, args ...any) { lines = append(lines, clip(fmt.Sprintf(format, args...), width)) }
	a := rel.Status.Auto
	if rel.Spec.Auto == nil {
		add("automation: off (manual weight %d%%)", rel.Spec.CanaryWeight)
		return lines
	}
	if a == nil {
		add("automation: starting")
		return lines
	}
	p, perr := strategy.PolicyFrom(rel.Spec.Auto)
	switch {
	case a.Result != "":
		at := "-"
		if a.ConcludedAt != nil {
			at = a.ConcludedAt.Local().Format("15:04:05")
		}
		add("automation: %s at %d%% (concluded %s)", a.Result, a.Weight, at)
	case perr != nil:
		add("automation: step %d at %d%%; policy invalid: %v", a.Step+1, a.Weight, perr)
	default:
		state := ""
		if a.Paused {
			state = " (paused)"
		}
		elapsed := now.Sub(a.StepStartedAt.Time)
		var reqs int64
		if a.Current != nil {
			reqs = a.Current.Canary.Requests
		}
		add("step %d of %d at %d%%%s  time %s of %s %s  canary requests %d of %.0f %s", a.Step+1, len(p.Steps), a.Weight, state,
			elapsed.Round(time.Second), p.StepDuration, progressBar(10, elapsed.Seconds(), p.StepDuration.Seconds()),
			reqs, p.Criteria.MinRequests, progressBar(10, float64(reqs), p.Criteria.MinRequests))
	}
	if a.Verdict != "" {
		for i, l := range wrap(fmt.Sprintf("last verdict: %s (%s): %s", a.Verdict, a.Reason, oneLine(a.Evidence)), width) {
			if i == 4 {
				break
			}
			lines = append(lines, l)
		}
	}
	return lines
}

// Summary is a Release's state on one line (the view without a terminal):
// it changes when the phase, weights, step, pause, result or verdict do.
func Summary(rel *fledgev1.Release) string {
	st := &rel.Status
	s := fmt.Sprintf("%s phase %s weight %d%% (desired %d%%) step %s", rel.Name, dash(string(st.Phase)), st.EffectiveWeight, st.DesiredWeight, Step(rel))
	if a := st.Auto; a != nil && a.Verdict != "" {
		s += fmt.Sprintf(" verdict %s (%s)", a.Verdict, a.Reason)
	}
	return s
}

// EventTime is when an Event last happened.
func EventTime(e eventsv1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.DeprecatedLastTimestamp.IsZero():
		return e.DeprecatedLastTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

func perSecond(r Rate) string {
	v := r.PerSecond()
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.1f", v)
}

func errorRate(r Rate) string {
	if r.Seconds <= 0 {
		return "-"
	}
	if r.Requests <= 0 {
		return fmt.Sprintf("- (%d/%d)", r.Errors, r.Requests)
	}
	return fmt.Sprintf("%.2f%% (%d/%d)", 100*float64(r.Errors)/float64(r.Requests), r.Errors, r.Requests)
}

func latency(s float64) string {
	switch {
	case math.IsNaN(s):
		return "-"
	case s < 1e-3:
		return fmt.Sprintf("%.0fµs", s*1e6)
	case s < 1:
		return fmt.Sprintf("%.1fms", s*1e3)
	}
	return fmt.Sprintf("%.2fs", s)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func runeLen(s string) int { return len([]rune(s)) }

// clip cuts s to width runes.
func clip(s string, width int) string {
	r := []rune(s)
	if len(r) <= width {
		return s
	}
	return string(r[:max(width-1, 0)]) + "…"
}

// wrap breaks s into lines of at most width runes at spaces.
func wrap(s string, width int) []string {
	var lines []string
	cur := ""
	for _, w := range strings.Fields(s) {
		switch {
		case cur == "":
			cur = w
		case runeLen(cur)+1+runeLen(w) <= width:
			cur += " " + w
		default:
			lines = append(lines, clip(cur, width))
			cur = "  " + w
		}
	}
	if cur != "" {
		lines = append(lines, clip(cur, width))
	}
	return lines
}
