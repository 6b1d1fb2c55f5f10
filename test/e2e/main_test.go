// Package e2e runs fledge end to end: a real kube-apiserver and etcd, the real
// controller and gateway, error-page processes in network namespaces, kubectl,
// and real HTTP requests through the gateway.
package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/fledge-dev/fledge/internal/controller"
	"github.com/fledge-dev/fledge/internal/netns"
	"github.com/fledge-dev/fledge/internal/notify"
	"github.com/fledge-dev/fledge/internal/sandbox"
)

var sb *sandbox.Sandbox

// pods are error-page v1 and v2, shared by every test: each test publishes
// them under its own Services and application name.
var pods = map[string]*sandbox.Pod{}

// fledgeBinary is the fledge binary the pods run.
var fledgeBinary string

func TestMain(m *testing.M) {
	if err := netns.Supported(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: requires root and ip netns:", err)
		os.Exit(1)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "fledge-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin, err := sandbox.BuildBinary(ctx, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fledgeBinary = bin
	logger := testLogger()
	ctrl.SetLogger(logger)
	klog.SetLogger(logger)
	sb, err = sandbox.Start(ctx, sandbox.Options{Binary: bin, NetPrefix: "fle2e", Progress: os.Stderr, Logger: logger, GatewayReplicas: 2, Prometheus: true,
		// Notifications give up sooner than by default (5 attempts from 1s), so that
		// a receiver that is down is a Warning Event within seconds.
		Controller: controller.Options{Notify: notify.Options{Attempts: 3, Backoff: 200 * time.Millisecond}}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: starting the sandbox:", err)
		return 1
	}
	defer func() {
		if err := sb.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: closing the sandbox:", err)
		}
	}()
	for _, v := range []string{"v1", "v2"} {
		pods[v], err = sb.RunErrorPage(ctx, "shared-"+v, v)
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
	}
	// A bad v2: 5% of its answers are HTTP 500.
	if pods["v2bad"], err = sb.RunErrorPage(ctx, "shared-v2bad", "v2", "--error-ratio", "0.05"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// testLogger writes the controller's and gateway's logs to stderr only when
// FLEDGE_E2E_LOGS is set; they are noise otherwise.
func testLogger() logr.Logger {
	if os.Getenv("FLEDGE_E2E_LOGS") == "" {
		return logr.Discard()
	}
	return funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{})
}
