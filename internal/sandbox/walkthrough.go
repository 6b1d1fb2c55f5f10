package sandbox

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// DemoNamespace is the namespace of the walkthrough.
const DemoNamespace = "canary-release-demo"

// Step is one step of the original canary walkthrough: kubectl commands, then
// 100 requests through the gateway with Host: error-page.
type Step struct {
	// Title says what the step shows.
	Title string
	// Kubectl holds the arguments of each kubectl command, as a user types them.
	Kubectl [][]string
	// Stable, Canary and Weight are the routing the step leads to.
	Stable, Canary string
	Weight         int32
	// Want is the expected number of answers per version out of 100.
	Want map[string]int
}

func annotate(kv ...string) []string {
	return append([]string{"annotate", "service", "-n", DemoNamespace}, kv...)
}

// Walkthrough returns the steps of the original design's walkthrough.
func Walkthrough() []Step {
	return []Step{
		{
			Title:   "publish error-page-v1 as application error-page",
			Kubectl: [][]string{annotate("error-page-v1", "api7.cloud/published-service=error-page")},
			Stable:  "error-page-v1", Want: map[string]int{"v1": 100},
		},
		{
			Title: "canary error-page-v2 at 10%",
			Kubectl: [][]string{
				annotate("error-page-v2", "api7.cloud/published-canary-service=true", "api7.cloud/published-service-canary-percentage=10"),
				annotate("error-page-v2", "api7.cloud/published-service=error-page"),
			},
			Stable: "error-page-v1", Canary: "error-page-v2", Weight: 10, Want: map[string]int{"v1": 90, "v2": 10},
		},
		{
			Title:   "roll back: 0%",
			Kubectl: [][]string{annotate("error-page-v2", "api7.cloud/published-service-canary-percentage=0", "--overwrite")},
			Stable:  "error-page-v1", Canary: "error-page-v2", Weight: 0, Want: map[string]int{"v1": 100},
		},
		{
			Title:   "release: 100%",
			Kubectl: [][]string{annotate("error-page-v2", "api7.cloud/published-service-canary-percentage=100", "--overwrite")},
			Stable:  "error-page-v1", Canary: "error-page-v2", Weight: 100, Want: map[string]int{"v2": 100},
		},
	}
}

// DeployErrorPage applies deploy/examples/error-page/manifest-<version>.yaml in
// the demo namespace, starts its "pod" and writes the Service's EndpointSlice.
func (s *Sandbox) DeployErrorPage(ctx context.Context, version string, extraArgs ...string) (*Pod, error) {
	file := "examples/error-page/manifest-" + version + ".yaml"
	if out, err := s.KubectlFile(ctx, file, "apply", "-n", DemoNamespace, "-f", "-"); err != nil {
		return nil, fmt.Errorf("kubectl apply %s: %w: %s", file, err, out)
	}
	pod, err := s.RunErrorPage(ctx, "error-page-"+version, version, extraArgs...)
	if err != nil {
		return nil, err
	}
	if err := s.SetEndpoints(ctx, DemoNamespace, "error-page-"+version, 9011, pod); err != nil {
		return nil, err
	}
	return pod, nil
}

// PrepareWalkthrough creates the demo namespace and deploys error-page v1 and v2.
func (s *Sandbox) PrepareWalkthrough(ctx context.Context) error {
	if out, err := s.Kubectl(ctx, "create", "namespace", DemoNamespace); err != nil {
		return fmt.Errorf("kubectl create namespace: %w: %s", err, out)
	}
	for _, v := range []string{"v1", "v2"} {
		if _, err := s.DeployErrorPage(ctx, v); err != nil {
			return err
		}
	}
	return nil
}

// RunStep runs a step's kubectl commands (echoing them to w when not nil),
// waits until the gateway serves the step's routing and sends 100 requests.
func (s *Sandbox) RunStep(ctx context.Context, step Step, w io.Writer) (Counts, error) {
	for _, args := range step.Kubectl {
		if w != nil {
			fmt.Fprintf(w, "$ kubectl %s\n", Quote(args))
		}
		out, err := s.Kubectl(ctx, args...)
		if err != nil {
			return Counts{}, fmt.Errorf("kubectl %s: %w: %s", Quote(args), err, out)
		}
		if w != nil {
			fmt.Fprint(w, indent(out))
		}
	}
	if err := s.WaitServed(ctx, "error-page", step.Stable, step.Canary, step.Weight); err != nil {
		return Counts{}, err
	}
	return s.Get(ctx, 100, "error-page", "/api/error_page", nil)
}

// Quote writes kubectl arguments as a user would type them in a shell.
func Quote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " =%") && !strings.HasPrefix(a, "-") {
			a = `"` + a + `"`
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ") + "\n"
}
