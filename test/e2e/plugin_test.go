package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// plugin is the fledge binary installed as the kubectl plugin kubectl-fledge
// in a directory of its own, beside kubectl.
type plugin struct {
	dir string
	// env runs `kubectl fledge` as a user does: the plugin on the PATH, the
	// control plane's kubeconfig in KUBECONFIG.
	env []string
}

func kubectlPlugin(t *testing.T) plugin {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(fledgeBinary, filepath.Join(dir, "kubectl-fledge")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(sb.CP.Kubectl, filepath.Join(dir, "kubectl")); err != nil {
		t.Fatal(err)
	}
	return plugin{dir: dir, env: append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "KUBECONFIG="+sb.CP.Kubeconfig)}
}

// kubectlFledge runs `kubectl fledge args...` and returns its output and exit code.
func (p plugin) kubectlFledge(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), filepath.Join(p.dir, "kubectl"), append([]string{"fledge"}, args...)...)
	cmd.Env = p.env
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("kubectl fledge %s: %v", strings.Join(args, " "), err)
	}
	return string(out), code
}

// tmux is a tmux server of the test's own (its own socket), 120x40.
type tmux struct {
	socket string
}

func newTmux(t *testing.T) *tmux {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("tmux is not installed (hack/setup.sh installs it):", err)
	}
	m := &tmux{socket: fmt.Sprintf("fledge-e2e-%d-%d", os.Getpid(), time.Now().UnixNano())}
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", m.socket, "kill-server").Run() })
	return m
}

// run starts script in a new session's pane; the pane stays after it ends.
func (m *tmux) run(t *testing.T, session, script string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), session+".sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script+"\necho EXIT=$?\nsleep 3600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tmux", "-u", "-L", m.socket, "new-session", "-d", "-s", session, "-x", "120", "-y", "40", path)
	cmd.Env = append(os.Environ(), "LANG=C.UTF-8", "TERM=xterm-256color")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
}

// capture returns what the session's pane shows.
func (m *tmux) capture(ctx context.Context, session string) (string, error) {
	out, err := exec.CommandContext(ctx, "tmux", "-u", "-L", m.socket, "capture-pane", "-p", "-t", session).Output()
	return string(out), err
}

var (
	barRE     = regexp.MustCompile(`stable v1 (\d+)% \[([█░]+)\] (\d+)% canary v2`)
	rateRE    = regexp.MustCompile(`(?m)^(stable|canary) +([0-9.]+) +([0-9.]+)% \(`)
	verdictRE = regexp.MustCompile(`last verdict: (\w+) \((\w+)\)`)
	exitRE    = regexp.MustCompile(`EXIT=(\d+)`)
)

// TestLiveViewInTmux: `kubectl fledge status APP --watch` in a terminal
// (tmux) follows a real automated release under 100 requests/s: its weight
// bar, per-version rates and verdict change as fledge steps the canary up, and
// it ends, exit 0, when the release is Released.
func TestLiveViewInTmux(t *testing.T) {
	p := kubectlPlugin(t)
	a := newApp(t, "live-view")
	a.service(t, "v1", "v1", map[string]string{published: a.name})
	a.served(t, "v1", "", 0)
	load := sb.StartLoad(t.Context(), rate, a.name, "/api/error_page")
	t.Cleanup(load.Stop)
	m := newTmux(t)
	var exports []string
	for _, kv := range p.env {
		if strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "KUBECONFIG=") {
			exports = append(exports, "export "+strconv.Quote(kv))
		}
	}
	m.run(t, "view", strings.Join(exports, "\n")+"\nkubectl fledge status "+a.name+" -n "+a.ns+" --watch")
	a.service(t, "v2", "v2", map[string]string{published: a.name, canaryKey: "true",
		autoPolicy: "steps=10,50; step-duration=3s; acceptable-error-rate=5%; soak=10s"})

	weights := map[int]bool{}
	// canaryRate is the highest canary request rate shown at each weight.
	canaryRate := map[int]float64{}
	var midScreen string
	verdicts := map[string]bool{}
	var maxRate float64
	var last string
	deadline := time.Now().Add(2 * time.Minute)
	for {
		screen, err := m.capture(t.Context(), "view")
		if err != nil {
			t.Fatal(err)
		}
		last = screen
		if b := barRE.FindStringSubmatch(screen); b != nil {
			canary, _ := strconv.Atoi(b[3])
			stable, _ := strconv.Atoi(b[1])
			cells := []rune(b[2])
			filled := strings.Count(b[2], "░")
			if stable+canary != 100 || abs(float64(filled)/float64(len(cells))*100-float64(canary)) > 100/float64(len(cells))+0.01 {
				t.Errorf("bar %q does not show %d%%/%d%%", b[0], stable, canary)
			}
			weights[canary] = true
		}
		total := 0.0
		for _, r := range rateRE.FindAllStringSubmatch(screen, -1) {
			v, _ := strconv.ParseFloat(r[2], 64)
			total += v
			if b := barRE.FindStringSubmatch(screen); b != nil && r[1] == "canary" {
				w, _ := strconv.Atoi(b[3])
				canaryRate[w] = max(canaryRate[w], v)
				if w == 50 && v > 0 {
					midScreen = screen
				}
			}
		}
		maxRate = max(maxRate, total)
		if v := verdictRE.FindStringSubmatch(screen); v != nil {
			verdicts[v[1]+" "+v[2]] = true
		}
		if exitRE.MatchString(screen) || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("a screen at 50%%:\n%s", midScreen)
	if dir := os.Getenv("FLEDGE_SCREENSHOT_DIR"); dir != "" && midScreen != "" {
		screenshotText(t, midScreen, filepath.Join(dir, "live-view.png"))
	}
	t.Logf("last screen:\n%s", last)
	t.Logf("weights seen %v, verdicts seen %v, highest total rate %.1f/s", weights, verdicts, maxRate)
	if e := exitRE.FindStringSubmatch(last); e == nil || e[1] != "0" {
		t.Fatalf("the live view did not end with exit 0 when the release was Released (release %+v)", a.release(t).Status)
	}
	for _, w := range []int{10, 50, 100} {
		if !weights[w] {
			t.Errorf("the bar never showed the canary at %d%% (saw %v)", w, weights)
		}
	}
	if len(verdicts) < 2 {
		t.Errorf("the verdict never changed: saw %v", verdicts)
	}
	// The load is 100 requests/s, all of which the view should account for.
	if maxRate < 60 || maxRate > 140 {
		t.Errorf("the highest total request rate shown was %.1f/s, want about %d/s", maxRate, rate)
	}
	// At 10% the canary takes about 10 of the 100 requests/s, at 50% about 50.
	if canaryRate[10] < 3 || canaryRate[10] > 25 || canaryRate[50] < 30 || canaryRate[50] > 70 {
		t.Errorf("canary rates shown: %.1f/s at 10%%, %.1f/s at 50%%; want about 10 and 50", canaryRate[10], canaryRate[50])
	}
	for _, want := range []string{"automation: Promoted at 100%", "Promoted", "StepUp"} {
		if !strings.Contains(last, want) {
			t.Errorf("the final screen lacks %q", want)
		}
	}
	if rel := a.release(t); rel.Status.Phase != fledgev1.PhaseReleased {
		t.Errorf("phase %s, want Released", rel.Status.Phase)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestKubectlPluginGatesPipeline: without a terminal, `kubectl fledge get
// --watch` prints one line per change and exits 10 when fledge rolls a bad
// canary back; get, set-weight and the error cases answer as documented.
func TestKubectlPluginGatesPipeline(t *testing.T) {
	p := kubectlPlugin(t)
	a, _ := autoApp(t, "plugin-gate", "v2bad", "steps=10,50")
	out, code := p.kubectlFledge(t, "get", a.name, "-n", a.ns, "--watch", "--timeout", "90s")
	t.Logf("kubectl fledge get --watch:\n%s", out)
	if code != 10 {
		t.Fatalf("exit code %d, want 10 (RolledBack)", code)
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("without a terminal the view still wrote escape sequences")
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	summaries := 0
	for _, l := range lines {
		if strings.Contains(l, " phase ") {
			summaries++
		}
	}
	if summaries < 2 || summaries > 60 {
		t.Errorf("%d state lines, want one per change (2 or more, not one per second)", summaries)
	}
	for _, want := range []string{"phase RolledBack", "event Warning RolledBack: rolled back v2 from 10% to 0%", "was rolled back"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	table, code := p.kubectlFledge(t, "get", "-n", a.ns)
	if code != 0 || !regexp.MustCompile(`(?m)^plugin-gate +plugin-gate +v1 +v2 +0% +0% +RolledBack +RolledBack +Fail`).MatchString(table) {
		t.Errorf("kubectl fledge get (exit %d):\n%s", code, table)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"set-weight", a.name, "30", "-n", a.ns}, 6, "the release is automated (automation concluded RolledBack at 0%)"},
		{[]string{"get", "nope", "-n", a.ns}, 3, "no application nope in namespace " + a.ns},
		{[]string{"get", a.name, "-n", "no-such-namespace"}, 3, "namespace no-such-namespace not found"},
		{[]string{"set-weight", a.name, "ten", "-n", a.ns}, 2, `weight "ten"`},
		{[]string{"get", "--kubeconfig", unreachableKubeconfig(t), "-n", a.ns}, 5, "cannot reach the API server"},
	} {
		out, code := p.kubectlFledge(t, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("kubectl fledge %s: exit %d %q, want exit %d and %q", strings.Join(tc.args, " "), code, out, tc.code, tc.want)
		}
	}
	if help, _ := p.kubectlFledge(t, "get", "--help"); strings.Contains(help, "zap") || !strings.Contains(help, "kubectl fledge get") {
		t.Errorf("the plugin's help shows logging flags or not its kubectl name:\n%s", help)
	}
	out, code = p.kubectlFledge(t, "set-weight", a.name, "30", "-n", a.ns, "--force")
	if code != 0 || !strings.Contains(out, "automation turned off") {
		t.Fatalf("set-weight --force: exit %d: %s", code, out)
	}
	a.served(t, "v1", "v2", 30)
}

// unreachableKubeconfig is a kubeconfig whose server nothing listens on.
func unreachableKubeconfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// screenshotText renders a terminal's text as a PNG with headless Chromium,
// for the README (FLEDGE_SCREENSHOT_DIR).
func screenshotText(t *testing.T, text, out string) {
	t.Helper()
	page := filepath.Join(t.TempDir(), "screen.html")
	html := `<!doctype html><meta charset="utf-8"><body style="margin:0;background:#1d2330">` +
		`<pre style="margin:0;padding:8px;color:#e6e6e6;font:13px/1.25 'DejaVu Sans Mono',monospace">` +
		strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(strings.TrimRight(text, "\n ")) + `</pre>`
	if err := os.WriteFile(page, []byte(html), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.TempDir(), "screen.png")
	chromiumSized(t, "file://"+page, "1000,330", "--screenshot="+shot)
	checkScreenshot(t, shot, 1000)
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
