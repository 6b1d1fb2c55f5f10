package errorpage_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fledge-dev/fledge/internal/errorpage"
	"github.com/fledge-dev/fledge/internal/netns"
)

// versionEnv switches the test binary into the application, as
// "fledge error-page VERSION" would run (the re-exec pattern).
const versionEnv = "ERRORPAGE_TEST_VERSION"

func TestMain(m *testing.M) {
	if v := os.Getenv(versionEnv); v != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		ratio, _ := strconv.ParseFloat(os.Getenv("ERRORPAGE_TEST_RATIO"), 64)
		if err := errorpage.Run(ctx, errorpage.Options{Version: v, ErrorRatio: ratio}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestVersionsInPods runs v1 and v2 the way the demo does, each in its own
// network namespace on the default port, and talks to them by pod address.
func TestVersionsInPods(t *testing.T) {
	if err := netns.Supported(); err != nil {
		t.Skipf("requires root and ip netns: %v", err)
	}
	// Only a guard against hanging forever; nothing asserts on time.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const prefix = "flerrp"
	if err := netns.Cleanup(ctx, prefix); err != nil {
		t.Fatal(err)
	}
	n, err := netns.NewNetwork(ctx, prefix, netip.Prefix{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}

	tests := map[string]struct {
		version, ratio string
		wantStatus     int
		wantBody       string
	}{
		"v1 serves": {
			version: "v1", ratio: "0", wantStatus: http.StatusOK,
			wantBody: `{"error": "injected by error_page service", "version": "v1"}`,
		},
		"v2 fails": {
			version: "v2", ratio: "1", wantStatus: http.StatusInternalServerError,
			wantBody: `{"error": "injected failure", "version": "v2"}`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pod, err := n.AddPod(ctx, tc.version)
			if err != nil {
				t.Fatal(err)
			}
			proc, err := pod.StartWith(ctx, netns.StartOptions{
				Env: []string{versionEnv + "=" + tc.version, "ERRORPAGE_TEST_RATIO=" + tc.ratio},
			}, exe)
			if err != nil {
				t.Fatal(err)
			}
			if err := pod.WaitHTTP(ctx, 9011, "/healthz"); err != nil {
				t.Fatal(err)
			}
			resp, err := client.Get(pod.URL(9011, errorpage.Path))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || string(b) != tc.wantBody {
				t.Errorf("pod %s answered %d %q, want %d %q", pod.IP(), resp.StatusCode, b, tc.wantStatus, tc.wantBody)
			}
			// SIGTERM makes Run shut down gracefully and the program exit 0.
			if err := proc.Stop(); err != nil {
				t.Fatal(err)
			}
			if err := proc.Wait(); err != nil {
				t.Errorf("error-page %s after SIGTERM: %v, want a clean exit; output:\n%s", tc.version, err, proc.Logs())
			}
			for _, want := range []string{"INFO serving version=" + tc.version, "INFO shutting down version=" + tc.version} {
				if !strings.Contains(proc.Logs(), want) {
					t.Errorf("error-page %s output lacks %s:\n%s", tc.version, want, proc.Logs())
				}
			}
		})
	}
}
