package e2e

import (
	"bufio"
	"bytes"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// startDashboard runs `fledge dashboard` with the control plane's kubeconfig
// (a user's credentials) and returns its URL.
func startDashboard(t *testing.T, extra ...string) string {
	t.Helper()
	cmd := exec.Command(fledgeBinary, append([]string{"dashboard", "--kubeconfig", sb.CP.Kubeconfig, "--addr", "127.0.0.1:0"}, extra...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("fledge dashboard printed no address: %v", err)
	}
	m := regexp.MustCompile(`http://[0-9.:]+`).FindString(line)
	if m == "" {
		t.Fatalf("fledge dashboard printed %q", line)
	}
	return m
}

// chromium runs Debian's headless Chromium on url with args (--dump-dom,
// --screenshot=...) and returns its standard output.
func chromium(t *testing.T, url string, args ...string) string {
	t.Helper()
	return chromiumSized(t, url, "1280,1100", args...)
}

// chromiumSized is chromium with a window of size "WIDTH,HEIGHT".
func chromiumSized(t *testing.T, url, size string, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed (hack/setup.sh installs Debian's package):", err)
	}
	flags := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir=" + chromiumProfile(t),
		"--window-size=" + size, "--virtual-time-budget=6000"}
	cmd := exec.CommandContext(t.Context(), bin, append(append(flags, args...), url)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// gatewayRequests sums fledge_gateway_requests_total of one backend over
// every gateway replica: requests and 5xx.
func gatewayRequests(t *testing.T, ns, app, svc string) (requests, errors float64) {
	t.Helper()
	for _, g := range sb.Gateways {
		resp, err := http.Get(g.AdminURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		tp := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := tp.TextToMetricFamilies(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range fams["fledge_gateway_requests_total"].GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["namespace"] == ns && l["app"] == app && l["service"] == svc && l["code"] != "499" {
				requests += m.GetCounter().GetValue()
				if strings.HasPrefix(l["code"], "5") {
					errors += m.GetCounter().GetValue()
				}
			}
		}
	}
	return requests, errors
}

func attr(t *testing.T, dom, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("the page lacks %s", re)
	}
	return m[1]
}

// TestDashboardInChromium: `fledge dashboard` follows a real release that
// fledge rolls back: in headless Chromium the page lists the application, its
// charts have data points whose counts match the gateways' counters, the
// rollback is a marked decision, a screenshot is taken; the buttons' actions
// reach the API server, and are refused by a --read-only dashboard.
func TestDashboardInChromium(t *testing.T) {
	a := newApp(t, "dash")
	a.service(t, "v1", "v1", map[string]string{published: a.name})
	a.served(t, "v1", "", 0)
	load := sb.StartLoad(t.Context(), rate, a.name, "/api/error_page")
	t.Cleanup(load.Stop)
	url := startDashboard(t)
	a.service(t, "v2", "v2bad", map[string]string{published: a.name, canaryKey: "true", autoPolicy: "steps=10,50"})
	rel := a.waitAuto(t, 60*time.Second, "rollback", func(s *fledgev1.AutoStatus) bool { return s.Result != "" })
	if rel.Status.Auto.Result != fledgev1.AutoRolledBack {
		t.Fatalf("result %s, want RolledBack", rel.Status.Auto.Result)
	}
	time.Sleep(2 * time.Second) // the dashboard's sample of the concluded release

	page := url + "/#" + a.ns + "/" + a.name
	dom := chromium(t, page, "--dump-dom")
	if !strings.Contains(dom, `data-app="`+a.ns+`/`+a.name+`"`) {
		t.Fatalf("the page does not list %s/%s:\n%s", a.ns, a.name, dom)
	}
	points, _ := strconv.Atoi(attr(t, dom, `data-points="(\d+)"`))
	if points < 5 {
		t.Errorf("the charts have %d data points, want one a second of the release (5 or more)", points)
	}
	if n := strings.Count(dom, `class="u-over"`); n != 4 {
		t.Errorf("%d charts drawn, want 4", n)
	}
	canary, _ := strconv.ParseFloat(attr(t, dom, `data-canary-requests="(\d+)"`), 64)
	canaryErrs, _ := strconv.ParseFloat(attr(t, dom, `data-canary-errors="(\d+)"`), 64)
	gwReqs, gwErrs := gatewayRequests(t, a.ns, a.name, "v2")
	judged := a.release(t).Status.Auto.Current
	t.Logf("canary requests: page %v (errors %v), judged %d (%d), gateways %v (%v); %d points",
		canary, canaryErrs, judged.Canary.Requests, judged.Canary.Errors, gwReqs, gwErrs, points)
	// The page shows exactly what fledge judged last; the gateways counted
	// those and the few more the canary answered while the rollback spread
	// (at most 2.5 s of its 10 requests/s).
	if int64(canary) != judged.Canary.Requests || int64(canaryErrs) != judged.Canary.Errors {
		t.Errorf("the page's canary counts (%v requests, %v errors) are not the judged ones (%d, %d)", canary, canaryErrs, judged.Canary.Requests, judged.Canary.Errors)
	}
	if gwReqs < canary || gwReqs > canary+25 || gwErrs < canaryErrs || canaryErrs < 1 {
		t.Errorf("the page's canary counts (%v requests, %v errors) do not match the gateways' counters (%v, %v)", canary, canaryErrs, gwReqs, gwErrs)
	}
	if !regexp.MustCompile(`<li class="decision Warning" data-reason="RolledBack" title="rolled back v2 from 10% to 0%[^"]*error`).MatchString(dom) {
		t.Errorf("the rollback is not a marked decision with its evidence:\n%s", dom)
	}
	for _, action := range []string{"promote", "abort", "pause", "resume"} {
		if !strings.Contains(dom, `data-action="`+action+`"`) {
			t.Errorf("no %s button", action)
		}
	}

	shot := filepath.Join(t.TempDir(), "dashboard.png")
	chromium(t, page, "--screenshot="+shot)
	checkScreenshot(t, shot, 1280)
	if dir := os.Getenv("FLEDGE_SCREENSHOT_DIR"); dir != "" {
		if b, err := os.ReadFile(shot); err == nil {
			_ = os.WriteFile(filepath.Join(dir, "dashboard.png"), b, 0o644)
		}
	}

	post := func(base, action, confirm string) int {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/api/apps/"+a.ns+"/"+a.name+"/"+action, nil)
		if confirm != "" {
			req.Header.Set("X-Fledge-Confirm", confirm)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	override := func() string {
		t.Helper()
		var svc corev1.Service
		if err := sb.Client.Get(t.Context(), client.ObjectKey{Namespace: a.ns, Name: "v2"}, &svc); err != nil {
			t.Fatal(err)
		}
		return svc.Annotations[autoOverride]
	}
	if code := post(url, "pause", ""); code != http.StatusBadRequest || override() != "" {
		t.Errorf("an unconfirmed pause: %d, override %q; want 400 and nothing changed", code, override())
	}
	if code := post(url, "pause", "pause"); code != http.StatusOK || override() != "pause" {
		t.Errorf("a confirmed pause: %d, override %q; want 200 and the canary Service annotated", code, override())
	}

	ro := startDashboard(t, "--read-only")
	time.Sleep(1500 * time.Millisecond)
	roDOM := chromium(t, ro+"/#"+a.ns+"/"+a.name, "--dump-dom")
	if !strings.Contains(roDOM, `data-app="`+a.ns+`/`+a.name+`"`) || strings.Contains(roDOM, "data-action=") {
		t.Errorf("the read-only page does not list the app, or shows buttons")
	}
	if code := post(ro, "abort", "abort"); code != http.StatusForbidden || override() != "pause" {
		t.Errorf("abort on a read-only dashboard: %d, override %q; want 403 and nothing changed", code, override())
	}

	// The buttons as a person uses them, in Chromium (driven over the
	// DevTools protocol): a click asks for confirmation; dismissed, nothing
	// changes; accepted, the action reaches the API server with the user's
	// credentials and the page says what it did.
	b := openBrowser(t, url+"/#"+a.ns+"/"+a.name)
	b.click(t, "resume")
	time.Sleep(time.Second)
	if seen := b.dialogsSeen(); !containsDialog(seen, "confirm", "resume "+a.name) || override() != "pause" {
		t.Errorf("a dismissed resume: dialogs %q, override %q; want a confirmation asked and the pause kept", seen, override())
	}
	b.accept.Store(true)
	b.click(t, "resume")
	for deadline := time.Now().Add(10 * time.Second); override() != ""; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a confirmed resume clicked in Chromium: override still %q; dialogs %q", override(), b.dialogsSeen())
		}
	}
	for deadline := time.Now().Add(5 * time.Second); !containsDialog(b.dialogsSeen(), "alert", ""); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("the page did not say what the resume did; dialogs %q", b.dialogsSeen())
			break
		}
	}
	t.Logf("clicked in Chromium: dialogs %q", b.dialogsSeen())
}

// checkScreenshot checks that a screenshot is a PNG of the window's width and
// not blank (a real page compresses to tens of kilobytes).
func checkScreenshot(t *testing.T, path string, width int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if img.Bounds().Dx() != width || len(b) < 20<<10 {
		t.Errorf("screenshot %dx%d, %d bytes; want %d wide and at least 20 KiB", img.Bounds().Dx(), img.Bounds().Dy(), len(b), width)
	}
	t.Logf("screenshot %dx%d, %d bytes", img.Bounds().Dx(), img.Bounds().Dy(), len(b))
}
