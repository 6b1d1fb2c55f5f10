package netns

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"sync"
)

// Supported reports why this machine cannot run pods, or nil when it can:
// Linux, root, iproute2's ip in PATH, and permission to create a network
// namespace with a veth pair in it (checked once, with a throwaway namespace
// that changes nothing in the host namespace). Callers skip with its message:
//
//	if err := netns.Supported(); err != nil {
//		t.Skipf("requires root and ip netns: %v", err)
//	}
func Supported() error { return supported() }

var supported = sync.OnceValue(func() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("netns: network namespaces need Linux, not %s", runtime.GOOS)
	}
	if uid := os.Geteuid(); uid != 0 {
		return fmt.Errorf("netns: needs root to create network namespaces (running as uid %d)", uid)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("netns: the ip command (iproute2) is not in PATH")
	}
	ctx := context.Background()
	name := fmt.Sprintf("netns-probe-%d-%06x", os.Getpid(), rand.N(1<<24))
	if _, err := ip(ctx, "netns", "add", name); err != nil {
		return fmt.Errorf("netns: creating a network namespace is not permitted here: %w", err)
	}
	defer ip(ctx, "netns", "del", name)
	if _, err := ip(ctx, "-n", name, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1"); err != nil {
		return fmt.Errorf("netns: creating a veth pair is not permitted here: %w", err)
	}
	return nil
})
