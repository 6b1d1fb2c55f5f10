package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"

	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/fledge-dev/fledge/internal/sandbox"
)

// runDemo runs the walkthrough, then the automated releases; fledgeBin is the
// binary the error-page pods run.
func runDemo(ctx context.Context, fledgeBin string, w io.Writer) (err error) {
	logFile, err := os.CreateTemp("", "fledge-demo-*.log")
	if err != nil {
		return err
	}
	defer logFile.Close()
	logger := zap.New(zap.WriteTo(logFile))
	ctrl.SetLogger(logger)
	klog.SetLogger(logger)
	fmt.Fprintf(os.Stderr, "controller and gateway logs: %s\n", logFile.Name())
	sb, err := sandbox.Start(ctx, sandbox.Options{Binary: fledgeBin, NetPrefix: "fldemo", Progress: os.Stderr, Logger: logger})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(os.Stderr, "cleaning up: gateway, controller, pods, control plane")
		err = errors.Join(err, sb.Close())
	}()
	fmt.Fprintf(w, "== fledge demo: the canary walkthrough (namespace %s)\n", sandbox.DemoNamespace)
	if err := sb.PrepareWalkthrough(ctx); err != nil {
		return err
	}
	fmt.Fprintln(w, "error-page v1 and v2 are running; their Services are error-page-v1 and error-page-v2.")
	var failed []string
	for i, step := range sandbox.Walkthrough() {
		fmt.Fprintf(w, "\n== step %d: %s\n", i+1, step.Title)
		counts, err := sb.RunStep(ctx, step, w)
		if err != nil {
			return fmt.Errorf("step %d: %w", i+1, err)
		}
		fmt.Fprintf(w, "$ for i in $(seq 100); do curl -s $GATEWAY/api/error_page -H 'Host: error-page'; done\n")
		fmt.Fprintf(w, "  v1: %d  v2: %d  (expected v1: %d  v2: %d)\n",
			counts.ByVersion["v1"], counts.ByVersion["v2"], step.Want["v1"], step.Want["v2"])
		if !maps.Equal(counts.ByVersion, nonZero(step.Want)) {
			failed = append(failed, fmt.Sprintf("step %d: got %v, want %v (statuses %v)", i+1, counts.ByVersion, step.Want, counts.Status))
		}
	}
	if out, err := sb.Kubectl(ctx, "get", "releases.fledge.dev", "-n", sandbox.DemoNamespace); err == nil {
		fmt.Fprintf(w, "\n$ kubectl get releases -n %s\n%s", sandbox.DemoNamespace, out)
	}
	if len(failed) > 0 {
		slices.Sort(failed)
		return fmt.Errorf("the walkthrough did not give the expected counts:\n%s", joinLines(failed))
	}
	fmt.Fprintln(w, "\nwalkthrough complete: 100/0, 90/10, 100/0, 0/100")
	if err := runAutoDemo(ctx, sb, w); err != nil {
		return fmt.Errorf("automated releases: %w", err)
	}
	fmt.Fprintln(w, "\ndemo complete: the bad v2 was rolled back and the healthy v2 promoted, by fledge itself")
	return nil
}

func nonZero(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

func joinLines(s []string) string {
	out := ""
	for _, l := range s {
		out += "  " + l + "\n"
	}
	return out
}
