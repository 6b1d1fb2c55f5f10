// Package netns gives tests and the demo real "pods": processes running in
// their own Linux network namespace, each reachable from the host at its own
// IPv4 address in a private test range, like Pod IPs in a cluster.
//
// A Network owns one /24 block (by default out of DefaultPool, 10.213.0.0/16);
// each Pod in it gets the next /30 of that block: the host side of a veth pair
// holds the first address (10.213.7.1), the pod side, named eth0 inside the
// namespace, the second (10.213.7.2), and the pod's default route points at the
// host side. The host reaches every pod over the directly connected /30 link
// route, so no forwarding, NAT or sysctl change is needed; a pod reaches the
// host at Pod.HostIP (or any host address, through its default route).
//
// # Running concurrently
//
// Several tests and processes may create networks at the same time:
//
//   - A Network holds an exclusive flock(2) on a lock file named after its block
//     (LockDir/10.213.7.0-24.lock) for as long as it is open. The kernel drops
//     the lock when the holder exits, even on SIGKILL.
//   - NewNetwork starts at a random block of the pool and takes the first one
//     that it can lock and that no address or route of the host overlaps (the
//     check runs after locking, so a stale leftover of a killed run, or anything
//     else using the range, is skipped).
//   - Names are derived from the prefix and the block, so they cannot clash
//     either: namespaces are "<prefix>-<a.b.c>-<pod>" (fltest-10.213.7-web) and
//     host-side links "<prefix><block hex><pod index hex>" (fltest0ad50700, at
//     most 15 characters, hence prefixes of at most 7 characters).
//
// Cleanup removes what a killed run left behind: namespaces and links with the
// prefix whose block lock is free. It never touches a live Network, whichever
// process owns it.
//
// Everything here needs root and iproute2; see Supported.
package netns

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultPool is the range NewNetwork takes blocks from when given none.
var DefaultPool = netip.MustParsePrefix("10.213.0.0/16")

// LockDir holds one lock file per block in use (see the package comment). The
// files are tiny and never removed: removing a lock file that another process
// may be about to lock would break the locking.
var LockDir = "/run/fledge-netns"

// MaxPods is how many pods one Network holds: the /30s of its /24 block.
const MaxPods = 64

// opTimeout bounds each ip command that Close and Cleanup run, which get no
// context from their caller.
const opTimeout = 30 * time.Second

var (
	prefixPattern  = regexp.MustCompile(`^[a-z][a-z0-9]{0,6}$`)
	podNamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)
	privateRanges  = []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
	}
)

// Network is a set of pods sharing one /24 block. It is safe for concurrent
// use. Close it when done, also after a failure: it removes everything it
// created.
type Network struct {
	prefix string
	block  netip.Prefix

	mu     sync.Mutex
	lock   *blockLock // nil once released
	pods   []*Pod
	next   int      // index of the next pod's /30 in the block
	netnss []string // namespaces created and not yet deleted
	links  []string // host-side links created and not yet deleted
	closed bool
}

// NewNetwork takes a free /24 block out of pool (DefaultPool when pool is the
// zero Prefix) for a new, empty network. prefix starts every name the network
// creates: 1 to 7 lowercase letters or digits, starting with a letter, and
// should say who created it ("fltest", "fle2e", "fldemo"), as Cleanup works by
// prefix. pool must be an IPv4 prefix of length 8 to 24 inside 10.0.0.0/8,
// 172.16.0.0/12 or 192.168.0.0/16; pass a /24 to ask for exactly that block.
func NewNetwork(ctx context.Context, prefix string, pool netip.Prefix) (*Network, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	if pool == (netip.Prefix{}) {
		pool = DefaultPool
	}
	if err := checkPool(pool); err != nil {
		return nil, err
	}
	if err := Supported(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(LockDir, 0o755); err != nil {
		return nil, fmt.Errorf("netns: lock directory: %w", err)
	}
	used, err := usedPrefixes(ctx)
	if err != nil {
		return nil, err
	}
	count := 1 << (24 - pool.Bits())
	start := rand.N(count)
	var overlapped []string
	for i := range count {
		block := nthBlock(pool, (start+i)%count)
		if r, ok := overlapping(block, used); ok {
			overlapped = append(overlapped, fmt.Sprintf("%s (route or address %s)", block, r))
			continue
		}
		lock, err := tryLock(block)
		if err != nil {
			return nil, err
		}
		if lock == nil {
			continue // another Network has it
		}
		// Check again now that the block is ours: a run that held it until just
		// now may have left links behind.
		if used, err = usedPrefixes(ctx); err != nil {
			lock.release()
			return nil, err
		}
		if r, ok := overlapping(block, used); ok {
			lock.release()
			overlapped = append(overlapped, fmt.Sprintf("%s (route or address %s)", block, r))
			continue
		}
		// Anything still named after this block with our prefix is stale: its
		// owner no longer holds the lock.
		if err := removeStale(ctx, prefix, block); err != nil {
			lock.release()
			return nil, err
		}
		return &Network{prefix: prefix, block: block, lock: lock}, nil
	}
	if len(overlapped) > 0 {
		return nil, fmt.Errorf("netns: no free /24 block in %s: the others are locked by live networks and these are in use on the host: %s", pool, strings.Join(overlapped, ", "))
	}
	return nil, fmt.Errorf("netns: no free /24 block in %s: all are locked by live networks", pool)
}

// Block is the /24 the network's pods get their addresses from.
func (n *Network) Block() netip.Prefix { return n.block }

// Prefix is the prefix of every name the network creates.
func (n *Network) Prefix() string { return n.prefix }

// AddPod creates a pod: a network namespace with a veth link to the host, the
// next /30 of the block on it, loopback up and a default route via the host.
// name is a DNS-label-like name, unique in the network (1 to 40 lowercase
// letters, digits and '-'). When AddPod fails it removes what it created; what
// it could not remove is left for Close.
func (n *Network) AddPod(ctx context.Context, name string) (*Pod, error) {
	if !podNamePattern.MatchString(name) {
		return nil, fmt.Errorf("netns: pod name %q must be 1 to 40 lowercase letters, digits and '-', starting and ending with a letter or digit", name)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, fmt.Errorf("netns: add pod %s: network %s is closed", name, n.block)
	}
	for _, p := range n.pods {
		if p.name == name {
			return nil, fmt.Errorf("netns: add pod %s: a pod with that name already exists in network %s", name, n.block)
		}
	}
	if n.next >= MaxPods {
		return nil, fmt.Errorf("netns: add pod %s: network %s is full (%d pods)", name, n.block, MaxPods)
	}
	idx := n.next
	n.next++ // never reused, even if this pod fails: its leftovers may remain
	hostIP, podIP := podAddrs(n.block, idx)
	p := &Pod{
		name:     name,
		netns:    netnsName(n.prefix, n.block, name),
		hostLink: linkName(n.prefix, n.block, idx),
		ip:       podIP,
		hostIP:   hostIP,
	}

	var links, netnss []string // created so far
	fail := func(err error) (*Pod, error) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
		defer cancel()
		err = fmt.Errorf("netns: add pod %s (%s): %w", name, podIP, err)
		if rerr := n.removeLocked(cctx, links, netnss); rerr != nil {
			err = fmt.Errorf("%w; and cleaning up: %w", err, rerr)
		}
		return nil, err
	}

	if _, err := ip(ctx, "netns", "add", p.netns); err != nil {
		return fail(err)
	}
	netnss = append(netnss, p.netns)
	n.netnss = append(n.netnss, p.netns)
	// Create the pod end directly inside the namespace, so that its name
	// (eth0) never exists in the host namespace.
	if _, err := ip(ctx, "link", "add", p.hostLink, "type", "veth", "peer", "name", "eth0", "netns", p.netns); err != nil {
		return fail(err)
	}
	links = append(links, p.hostLink)
	n.links = append(n.links, p.hostLink)
	steps := [][]string{
		{"addr", "add", netip.PrefixFrom(hostIP, 30).String(), "dev", p.hostLink},
		{"link", "set", p.hostLink, "up"},
		{"-n", p.netns, "link", "set", "lo", "up"},
		{"-n", p.netns, "addr", "add", netip.PrefixFrom(podIP, 30).String(), "dev", "eth0"},
		{"-n", p.netns, "link", "set", "eth0", "up"},
		{"-n", p.netns, "route", "add", "default", "via", hostIP.String()},
	}
	for _, args := range steps {
		if _, err := ip(ctx, args...); err != nil {
			return fail(err)
		}
	}
	n.pods = append(n.pods, p)
	return p, nil
}

// removeLocked deletes the given host-side links, then the given namespaces,
// and forgets those that are gone; what it cannot delete stays listed for
// Close. n.mu must be held.
func (n *Network) removeLocked(ctx context.Context, links, netnss []string) error {
	var errs []error
	for _, l := range links {
		if err := deleteLink(ctx, l); err != nil {
			errs = append(errs, err)
			continue
		}
		n.links = slices.DeleteFunc(n.links, func(s string) bool { return s == l })
	}
	for _, ns := range netnss {
		if err := deleteNetns(ctx, ns); err != nil {
			errs = append(errs, err)
			continue
		}
		n.netnss = slices.DeleteFunc(n.netnss, func(s string) bool { return s == ns })
	}
	return errors.Join(errs...)
}

// Close stops every process started in the network's pods (SIGTERM, then
// SIGKILL after their stop timeout), kills anything else left running in the
// namespaces, deletes the host-side links and the namespaces, and releases the
// block. It is idempotent and safe after any failure: a second call retries
// whatever the first could not delete, and returns nil once all is gone.
func (n *Network) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true

	var procs []*Process
	for _, p := range n.pods {
		procs = append(procs, p.close()...)
	}
	var wg sync.WaitGroup
	for _, pr := range procs {
		wg.Go(func() { pr.Stop() })
	}
	wg.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var errs []error
	for _, ns := range n.netnss {
		if err := killAll(ctx, ns); err != nil {
			errs = append(errs, err)
		}
	}
	if err := n.removeLocked(ctx, slices.Clone(n.links), slices.Clone(n.netnss)); err != nil {
		errs = append(errs, err)
	}
	if n.lock != nil {
		n.lock.release()
		n.lock = nil
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("netns: close network %s: %w", n.block, err)
	}
	return nil
}
