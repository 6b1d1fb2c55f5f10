package netns

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
)

// overlapping returns the first of used that overlaps block.
func overlapping(block netip.Prefix, used []netip.Prefix) (netip.Prefix, bool) {
	for _, u := range used {
		if u.Overlaps(block) {
			return u, true
		}
	}
	return netip.Prefix{}, false
}

func checkPrefix(prefix string) error {
	if !prefixPattern.MatchString(prefix) {
		return fmt.Errorf("netns: prefix %q must be 1 to 7 lowercase letters or digits, starting with a letter (link names are limited to 15 characters)", prefix)
	}
	return nil
}

func checkPool(pool netip.Prefix) error {
	switch {
	case !pool.IsValid() || !pool.Addr().Is4():
		return fmt.Errorf("netns: pool %s must be an IPv4 prefix", pool)
	case pool != pool.Masked():
		return fmt.Errorf("netns: pool %s has host bits set; did you mean %s?", pool, pool.Masked())
	case pool.Bits() < 8 || pool.Bits() > 24:
		return fmt.Errorf("netns: pool %s must be between a /8 and a /24", pool)
	}
	for _, r := range privateRanges {
		if r.Bits() <= pool.Bits() && r.Contains(pool.Addr()) {
			return nil
		}
	}
	return fmt.Errorf("netns: pool %s must be inside a private range (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)", pool)
}

// nthBlock returns the i-th /24 of pool.
func nthBlock(pool netip.Prefix, i int) netip.Prefix {
	a := pool.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8
	v += uint32(i) << 8
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), 0}), 24)
}

// podAddrs returns the host-side and pod-side addresses of the idx-th /30 of
// block: .4i+1 and .4i+2.
func podAddrs(block netip.Prefix, idx int) (host, pod netip.Addr) {
	a := block.Addr().As4()
	a[3] = byte(4*idx + 1)
	host = netip.AddrFrom4(a)
	a[3]++
	return host, netip.AddrFrom4(a)
}

// netnsName is "<prefix>-<a.b.c>-<pod>", e.g. "fltest-10.213.7-web".
func netnsName(prefix string, block netip.Prefix, pod string) string {
	a := block.Addr().As4()
	return fmt.Sprintf("%s-%d.%d.%d-%s", prefix, a[0], a[1], a[2], pod)
}

// linkName is "<prefix><a b c as hex><idx as hex>", e.g. "fltest0ad50700".
func linkName(prefix string, block netip.Prefix, idx int) string {
	a := block.Addr().As4()
	return fmt.Sprintf("%s%02x%02x%02x%02x", prefix, a[0], a[1], a[2], idx)
}

// parseNetnsName returns the block of a namespace name made by netnsName with
// prefix.
func parseNetnsName(prefix, name string) (netip.Prefix, bool) {
	rest, ok := strings.CutPrefix(name, prefix+"-")
	if !ok {
		return netip.Prefix{}, false
	}
	abc, pod, ok := strings.Cut(rest, "-")
	if !ok || !podNamePattern.MatchString(pod) {
		return netip.Prefix{}, false
	}
	a, err := netip.ParseAddr(abc + ".0")
	if err != nil || !a.Is4() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, 24), true
}

// parseLinkName returns the block of a link name made by linkName with prefix.
func parseLinkName(prefix, name string) (netip.Prefix, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok || len(rest) != 8 {
		return netip.Prefix{}, false
	}
	var b [4]byte
	for i := range 4 {
		var v byte
		for _, c := range rest[2*i : 2*i+2] {
			switch {
			case c >= '0' && c <= '9':
				v = v<<4 | byte(c-'0')
			case c >= 'a' && c <= 'f':
				v = v<<4 | byte(c-'a'+10)
			default:
				return netip.Prefix{}, false
			}
		}
		b[i] = v
	}
	if b[3] >= MaxPods {
		return netip.Prefix{}, false
	}
	b[3] = 0
	return netip.PrefixFrom(netip.AddrFrom4(b), 24), true
}

// lockPath is the lock file of block.
func lockPath(block netip.Prefix) string {
	return filepath.Join(LockDir, strings.ReplaceAll(block.String(), "/", "-")+".lock")
}
