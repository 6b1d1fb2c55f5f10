package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Cleanup removes namespaces and host-side links named with prefix that a
// killed earlier run left behind: those whose block lock no live Network
// holds, in this process or any other. Processes still running in such a
// namespace are killed. Tests call it first, with their own prefix.
func Cleanup(ctx context.Context, prefix string) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	if err := Supported(); err != nil {
		return err
	}
	blocks, err := namedBlocks(ctx, prefix)
	if err != nil {
		return err
	}
	var errs []error
	for _, block := range blocks {
		lock, err := tryLock(block)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if lock == nil {
			continue // a live network owns it
		}
		if err := removeStale(ctx, prefix, block); err != nil {
			errs = append(errs, err)
		}
		lock.release()
	}
	return errors.Join(errs...)
}

// namedBlocks returns the blocks that namespaces and links named with prefix
// belong to.
func namedBlocks(ctx context.Context, prefix string) ([]netip.Prefix, error) {
	names, links, err := listNames(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[netip.Prefix]bool{}
	var blocks []netip.Prefix
	add := func(b netip.Prefix, ok bool) {
		if ok && !seen[b] {
			seen[b] = true
			blocks = append(blocks, b)
		}
	}
	for _, ns := range names {
		add(parseNetnsName(prefix, ns))
	}
	for _, l := range links {
		add(parseLinkName(prefix, l))
	}
	return blocks, nil
}

// removeStale deletes the namespaces and links named with prefix in block,
// killing the processes in those namespaces. The caller holds block's lock.
func removeStale(ctx context.Context, prefix string, block netip.Prefix) error {
	names, links, err := listNames(ctx)
	if err != nil {
		return err
	}
	var errs []error
	var stale []string
	for _, ns := range names {
		if b, ok := parseNetnsName(prefix, ns); ok && b == block {
			stale = append(stale, ns)
			if err := killAll(ctx, ns); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, l := range links {
		if b, ok := parseLinkName(prefix, l); ok && b == block {
			if err := deleteLink(ctx, l); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, ns := range stale {
		if err := deleteNetns(ctx, ns); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("netns: remove stale %s* in %s: %w", prefix, block, err)
	}
	return nil
}

// listNames returns the names of all network namespaces (as ip netns knows
// them) and of all links in the current namespace.
func listNames(ctx context.Context) (netnss, links []string, err error) {
	var list []struct {
		Name string `json:"name"`
	}
	if err := ipJSON(ctx, &list, "-j", "netns", "list"); err != nil {
		return nil, nil, err
	}
	for _, e := range list {
		netnss = append(netnss, e.Name)
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, nil, fmt.Errorf("netns: list links: %w", err)
	}
	for _, i := range ifs {
		links = append(links, i.Name)
	}
	return netnss, links, nil
}

// killAll SIGKILLs every process in namespace ns.
func killAll(ctx context.Context, ns string) error {
	out, err := ip(ctx, "netns", "pids", ns)
	if err != nil {
		if !netnsExists(ctx, ns) {
			return nil
		}
		return err
	}
	var errs []error
	for _, f := range strings.Fields(string(out)) {
		if err := killPid(f); err != nil {
			errs = append(errs, fmt.Errorf("kill process %s in %s: %w", f, ns, err))
		}
	}
	return errors.Join(errs...)
}

// deleteLink deletes a link of the host namespace (and so its veth peer); a
// link that is already gone is not an error.
func deleteLink(ctx context.Context, name string) error {
	if _, err := ip(ctx, "link", "del", name); err != nil {
		if _, lerr := net.InterfaceByName(name); lerr != nil {
			return nil // gone
		}
		return err
	}
	return nil
}

// deleteNetns deletes a network namespace; one that is already gone is not an
// error.
func deleteNetns(ctx context.Context, name string) error {
	if _, err := ip(ctx, "netns", "del", name); err != nil {
		if !netnsExists(ctx, name) {
			return nil
		}
		return err
	}
	return nil
}

func netnsExists(ctx context.Context, name string) bool {
	names, _, err := listNames(ctx)
	if err != nil {
		return true // cannot tell: report the original error
	}
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// usedPrefixes returns the destination of every IPv4 route of the host, in
// all tables (the local table holds the host's own addresses), except default
// routes.
func usedPrefixes(ctx context.Context) ([]netip.Prefix, error) {
	var routes []struct {
		Dst string `json:"dst"`
	}
	if err := ipJSON(ctx, &routes, "-4", "-j", "route", "show", "table", "all"); err != nil {
		return nil, err
	}
	var used []netip.Prefix
	for _, r := range routes {
		p, err := parseDst(r.Dst)
		if err != nil || p.Bits() == 0 {
			continue // "default", or something we do not understand
		}
		used = append(used, p)
	}
	return used, nil
}

// parseDst parses a route destination: "10.1.2.0/24" or "10.1.2.3".
func parseDst(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
