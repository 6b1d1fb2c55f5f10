package netns

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"syscall"
)

const (
	sigTerm = syscall.SIGTERM
	sigKill = syscall.SIGKILL
)

// procAttr puts a started process in its own process group, so that Stop
// reaches its children too, and has the kernel SIGKILL it when the current
// process dies (strictly: when the OS thread that started it exits, which Go
// does not do for threads that never called runtime.LockOSThread).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalGroup signals the process group led by p; a group that is already
// gone is not an error.
func signalGroup(p *os.Process, sig syscall.Signal) error {
	if err := syscall.Kill(-p.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// killPid SIGKILLs the process whose id is the decimal pid; one that is gone
// is not an error.
func killPid(pid string) error {
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 0 {
		return fmt.Errorf("bad pid %q", pid)
	}
	if err := syscall.Kill(n, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// blockLock is an exclusive flock on a block's lock file.
type blockLock struct{ f *os.File }

// tryLock takes block's lock without waiting; it returns nil, nil when
// another Network (in this process or another) holds it.
func tryLock(block netip.Prefix) (*blockLock, error) {
	path := lockPath(block)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("netns: lock %s: %w", block, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("netns: lock %s (%s): %w", block, path, err)
	}
	// For humans looking at a busy block: who holds it.
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "pid %d\n", os.Getpid())
	}
	return &blockLock{f: f}, nil
}

// release drops the lock (closing the file is enough).
func (l *blockLock) release() { l.f.Close() }
