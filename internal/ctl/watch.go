package ctl

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// WatchOptions configure Watch.
type WatchOptions struct {
	Namespace, App string
	// TTY redraws the view in place; without it, one line per change.
	TTY bool
	// Width returns the terminal's width; nil is 80 columns.
	Width func() int
	// Interval between readings. Default 1s.
	Interval time.Duration
	// Timeout ends the watch with ExitTimeout; 0 waits for the release's end.
	Timeout time.Duration
	// Window of the rates. Default DefaultRateWindow.
	Window time.Duration
}

// ANSI sequences of the redraw.
const (
	clearScreen = "\x1b[2J"
	home        = "\x1b[H"
	clearLine   = "\x1b[K"
	clearBelow  = "\x1b[J"
	hideCursor  = "\x1b[?25l"
	showCursor  = "\x1b[?25h"
)

// Watch shows Release namespace/app live until it ends: nil when Released,
// ExitRolledBack or ExitFailed errors when it ends so, ExitTimeout after
// opts.Timeout, the context's error when cancelled.
func Watch(ctx context.Context, c client.Client, opts WatchOptions, w io.Writer) error {
	interval := opts.Interval
	if interval <= 0 {
		interval = time.Second
	}
	var deadline <-chan time.Time
	if opts.Timeout > 0 {
		t := time.NewTimer(opts.Timeout)
		defer t.Stop()
		deadline = t.C
	}
	tracker := Tracker{Window: opts.Window}
	if opts.TTY {
		fmt.Fprint(w, hideCursor+clearScreen)
		defer fmt.Fprint(w, showCursor)
	}
	var lastLine string
	seen := map[types.UID]string{}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-deadline:
				return Exit(ExitTimeout, fmt.Errorf("application %s in namespace %s: not concluded within %v", opts.App, opts.Namespace, opts.Timeout))
			case <-tick.C:
			}
		}
		rel, err := getRelease(ctx, c, opts.Namespace, opts.App)
		if err != nil {
			return err
		}
		now := time.Now()
		tracker.Observe(rel, now)
		events, eventsErr := recentEvents(ctx, c, rel)
		if opts.TTY {
			width := 80
			if opts.Width != nil {
				width = max(opts.Width(), 40)
			}
			f := Frame{Release: rel, Events: events, EventsErr: eventsErr, Now: now, Width: width}
			f.Stable, f.Canary = tracker.Rates(latencyBounds(rel))
			var b strings.Builder
			b.WriteString(home)
			for _, l := range Render(f) {
				b.WriteString(l + clearLine + "\n")
			}
			b.WriteString(clearBelow)
			fmt.Fprint(w, b.String())
		} else {
			if line := Summary(rel); line != lastLine {
				fmt.Fprintf(w, "%s %s\n", now.Format("15:04:05"), line)
				lastLine = line
			}
			for _, e := range events {
				key := e.Note + e.Reason
				if seen[e.UID] == key {
					continue
				}
				seen[e.UID] = key
				fmt.Fprintf(w, "%s event %s %s: %s\n", EventTime(e).Format("15:04:05"), e.Type, e.Reason, oneLine(e.Note))
			}
		}
		if err := ended(rel); err != nil || rel.Status.Phase == fledgev1.PhaseReleased {
			if opts.TTY {
				fmt.Fprintf(w, "%s: %s\n", rel.Name, rel.Status.Phase)
			}
			return err
		}
	}
}

// ended is the error a watch of rel ends with, nil while it goes on (and when
// Released: Watch checks that).
func ended(rel *fledgev1.Release) error {
	switch rel.Status.Phase {
	case fledgev1.PhaseRolledBack:
		return Exit(ExitRolledBack, fmt.Errorf("application %s in namespace %s was rolled back%s", rel.Name, rel.Namespace, because(rel)))
	case fledgev1.PhaseFailed:
		return Exit(ExitFailed, fmt.Errorf("application %s in namespace %s failed%s", rel.Name, rel.Namespace, because(rel)))
	}
	return nil
}

func because(rel *fledgev1.Release) string {
	if a := rel.Status.Auto; a != nil && a.Evidence != "" {
		return ": " + oneLine(a.Evidence)
	}
	return ""
}

func latencyBounds(rel *fledgev1.Release) []string {
	if rel.Status.Auto == nil {
		return nil
	}
	return rel.Status.Auto.LatencyBounds
}

// recentEvents lists the Events about the Release and its Services, oldest
// first.
func recentEvents(ctx context.Context, c client.Client, rel *fledgev1.Release) ([]eventsv1.Event, error) {
	var list eventsv1.EventList
	if err := c.List(ctx, &list, client.InNamespace(rel.Namespace)); err != nil {
		return nil, apiError(err, "list", "events.events.k8s.io", rel.Namespace, "events")
	}
	services := map[string]bool{}
	for _, r := range []*fledgev1.ServiceRef{rel.Spec.Stable, rel.Spec.Canary} {
		if r != nil {
			services[r.Name] = true
		}
	}
	// A decision is recorded about the Release and about its canary Service:
	// show it once.
	var out []eventsv1.Event
	seen := map[string]bool{}
	for _, e := range list.Items {
		if (e.Regarding.Kind == "Release" && e.Regarding.Name == rel.Name) || (e.Regarding.Kind == "Service" && services[e.Regarding.Name]) {
			if key := e.Type + e.Reason + e.Note; !seen[key] {
				seen[key] = true
				out = append(out, e)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b eventsv1.Event) int { return EventTime(a).Compare(EventTime(b)) })
	return out, nil
}
