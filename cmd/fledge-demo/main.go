// Command fledge-demo runs fledge's canary walkthrough end to end on a local
// control plane: a real kube-apiserver and etcd, fledge's controller and gateway,
// and error-page v1 and v2 as processes in network namespaces (needs root).
//
// It is a binary of its own so that the fledge binary that the image ships links
// no test harness (controller-runtime's envtest creates a cache folder when it is
// loaded, which fails under a read-only root file system).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	fledgeBin := flag.String("fledge", "", "the fledge binary the demo's pods run (`fledge error-page ...`); default: fledge next to this binary, else on PATH")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), `Usage: fledge-demo [--fledge PATH]

Runs the canary walkthrough end to end on a local control plane: builds (once) and
starts a real kube-apiserver and etcd, runs fledge's controller and gateway, starts
error-page v1 and v2 as processes in network namespaces, runs the original
walkthrough with kubectl and counts which version answers 100 requests after each
step, then shows automated releases. It removes everything it started when it ends,
also on Ctrl-C. Needs root.

`)
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bin, err := findFledge(*fledgeBin)
	if err == nil {
		err = runDemo(ctx, bin, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fledge-demo:", err)
		os.Exit(1)
	}
}

// findFledge returns the fledge binary to run: flagValue if set, else fledge
// next to this executable, else fledge on PATH.
func findFledge(flagValue string) (string, error) {
	if flagValue != "" {
		abs, err := filepath.Abs(flagValue)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(abs); err != nil {
			return "", fmt.Errorf("--fledge: %w", err)
		}
		return abs, nil
	}
	if self, err := os.Executable(); err == nil {
		next := filepath.Join(filepath.Dir(self), "fledge")
		if st, err := os.Stat(next); err == nil && !st.IsDir() {
			return next, nil
		}
	}
	if p, err := exec.LookPath("fledge"); err == nil {
		return filepath.Abs(p)
	}
	return "", errors.New("no fledge binary: build it next to fledge-demo (go build -o bin/ ./cmd/fledge ./cmd/fledge-demo) or pass --fledge")
}
