// Command fledge is automated canary releases for Kubernetes: the controller,
// the embedded gateway and the error-page demo application. The local demo is
// cmd/fledge-demo, a binary of its own: this one links no test harness.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand(os.Args[0]).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "fledge:", err)
		stop()
		os.Exit(exitCode(err))
	}
}
