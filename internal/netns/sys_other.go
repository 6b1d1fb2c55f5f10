//go:build !linux

package netns

import (
	"errors"
	"net/netip"
	"os"
	"syscall"
)

// Network namespaces exist only on Linux; Supported says so, and NewNetwork
// and Cleanup stop there. These stand-ins keep the package compiling.

const (
	sigTerm = syscall.SIGTERM
	sigKill = syscall.SIGKILL
)

var errNotLinux = errors.New("netns: network namespaces need Linux")

func procAttr() *syscall.SysProcAttr { return nil }

func signalGroup(p *os.Process, sig syscall.Signal) error { return p.Signal(sig) }

func killPid(string) error { return errNotLinux }

type blockLock struct{}

func tryLock(netip.Prefix) (*blockLock, error) { return nil, errNotLinux }

func (*blockLock) release() {}
