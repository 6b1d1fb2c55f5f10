// Command fledge is automated canary releases for Kubernetes: the controller,
// the embedded gateway, the error-page demo application and the local demo.
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
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "fledge:", err)
		os.Exit(1)
	}
}
