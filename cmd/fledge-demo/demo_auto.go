package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/sandbox"
)

// autoDemoApp is the application of the demo's automated part.
const autoDemoApp = "error-page-auto"

// runAutoDemo shows automated releases: a v2 with 5% errors is rolled back by
// itself, then a healthy v2 is promoted by itself, under a steady load.
func runAutoDemo(ctx context.Context, sb *sandbox.Sandbox, w io.Writer) error {
	ns := sandbox.DemoNamespace
	fmt.Fprintf(w, "\n== automated releases: application %s under 200 requests/s\n", autoDemoApp)
	bad, err := sb.RunErrorPage(ctx, "auto-v2-bad", "v2", "--error-ratio", "0.05")
	if err != nil {
		return err
	}
	pods := map[string]*sandbox.Pod{"auto-v2-bad": bad}
	if pods["auto-v1"], err = sb.RunErrorPage(ctx, "auto-v1", "v1"); err != nil {
		return err
	}
	if pods["auto-v2"], err = sb.RunErrorPage(ctx, "auto-v2", "v2"); err != nil {
		return err
	}
	run := func(args ...string) error {
		fmt.Fprintf(w, "$ kubectl %s\n", sandbox.Quote(args))
		out, err := sb.Kubectl(ctx, args...)
		if err != nil {
			return fmt.Errorf("kubectl: %w: %s", err, out)
		}
		return nil
	}
	for _, svc := range []string{"auto-v1", "auto-v2-bad", "auto-v2"} {
		if err := run("create", "service", "clusterip", svc, "-n", ns, "--tcp=9011:9011"); err != nil {
			return err
		}
		if err := sb.SetEndpoints(ctx, ns, svc, 9011, pods[svc]); err != nil {
			return err
		}
	}
	if err := run("annotate", "service", "-n", ns, "auto-v1", "api7.cloud/published-service="+autoDemoApp); err != nil {
		return err
	}
	if err := sb.WaitServed(ctx, autoDemoApp, "auto-v1", "", 0); err != nil {
		return err
	}
	load := sb.StartLoad(ctx, 200, autoDemoApp, "/api/error_page")
	defer load.Stop()

	seen := map[string]bool{} // Events printed, by name: each once in all
	release := func(canary string) (*fledgev1.Release, error) {
		if err := run("annotate", "service", "-n", ns, canary, "api7.cloud/published-service="+autoDemoApp,
			"api7.cloud/published-canary-service=true", "fledge.dev/auto=true"); err != nil {
			return nil, err
		}
		// The default policy soaks the canary for 2 minutes under load
		// before it may promote (docs/decisions.md).
		return watchDecisions(ctx, sb, w, canary, 6*time.Minute, seen)
	}
	fmt.Fprintln(w, "\n-- a bad v2 (5% of its answers are HTTP 500), automation on with the default policy:")
	rel, err := release("auto-v2-bad")
	if err != nil {
		return err
	}
	if rel.Status.Auto.Result != fledgev1.AutoRolledBack {
		return fmt.Errorf("the bad v2 ended %q, want RolledBack", rel.Status.Auto.Result)
	}
	if err := run("annotate", "service", "-n", ns, "auto-v2-bad", "api7.cloud/published-service-"); err != nil {
		return err
	}
	fmt.Fprintln(w, "\n-- a healthy v2, automation on with the default policy (steps, then a 2-minute soak before it promotes):")
	if rel, err = release("auto-v2"); err != nil {
		return err
	}
	if rel.Status.Auto.Result != fledgev1.AutoPromoted {
		return fmt.Errorf("the healthy v2 ended %q, want Promoted", rel.Status.Auto.Result)
	}
	if out, err := sb.Kubectl(ctx, "get", "release", "-n", ns, autoDemoApp, "-o", "wide"); err == nil {
		fmt.Fprintf(w, "\n$ kubectl get release -n %s %s -o wide\n%s", ns, autoDemoApp, out)
	}
	return nil
}

// watchDecisions prints the Release's automation events as they happen until
// the release of canary ends.
// seen holds the Events already printed (by an earlier call too).
func watchDecisions(ctx context.Context, sb *sandbox.Sandbox, w io.Writer, canary string, timeout time.Duration, seen map[string]bool) (*fledgev1.Release, error) {
	start := time.Now()
	done := false
	for {
		var list eventsv1.EventList
		if err := sb.Client.List(ctx, &list, client.InNamespace(sandbox.DemoNamespace)); err != nil {
			return nil, err
		}
		slices.SortFunc(list.Items, func(a, b eventsv1.Event) int { return a.EventTime.Compare(b.EventTime.Time) })
		for _, e := range list.Items {
			if e.Regarding.Kind != "Release" || e.Regarding.Name != autoDemoApp || seen[e.Name] || e.EventTime.Time.Before(start.Add(-time.Second)) {
				continue
			}
			seen[e.Name] = true
			fmt.Fprintf(w, "  +%5.1fs %-8s %-15s %s\n", e.EventTime.Sub(start).Seconds(), e.Type, e.Reason, e.Note)
		}
		rel, err := sb.Release(ctx, sandbox.DemoNamespace, autoDemoApp)
		if err != nil {
			return nil, err
		}
		if a := rel.Status.Auto; a != nil && a.Canary == canary && a.Result != "" && rel.Status.EffectiveWeight == a.Weight {
			// One more pass for the last events.
			if done {
				return rel, nil
			}
			done = true
		}
		if time.Since(start) > timeout {
			return nil, fmt.Errorf("the automated release of %s did not end within %v", canary, timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
