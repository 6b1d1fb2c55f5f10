package netns

import (
	"net/netip"
	"strings"
	"testing"
)

// These tests need neither root nor ip.

func TestNamesRoundTrip(t *testing.T) {
	tests := map[string]struct {
		prefix   string
		block    string
		idx      int
		pod      string
		wantNS   string
		wantLink string
	}{
		"first pod": {
			prefix: "fltest", block: "10.213.7.0/24", idx: 0, pod: "web",
			wantNS: "fltest-10.213.7-web", wantLink: "fltest0ad50700",
		},
		"longest names": {
			prefix: "abcdefg", block: "192.168.255.0/24", idx: MaxPods - 1, pod: "x-y",
			wantNS: "abcdefg-192.168.255-x-y", wantLink: "abcdefgc0a8ff3f",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			block := netip.MustParsePrefix(tc.block)
			ns, link := netnsName(tc.prefix, block, tc.pod), linkName(tc.prefix, block, tc.idx)
			if ns != tc.wantNS || link != tc.wantLink {
				t.Fatalf("names = %q, %q; want %q, %q", ns, link, tc.wantNS, tc.wantLink)
			}
			if len(link) > 15 {
				t.Errorf("link name %q is %d characters, the kernel allows 15", link, len(link))
			}
			if b, ok := parseNetnsName(tc.prefix, ns); !ok || b != block {
				t.Errorf("parseNetnsName(%q) = %v, %v; want %v", ns, b, ok, block)
			}
			if b, ok := parseLinkName(tc.prefix, link); !ok || b != block {
				t.Errorf("parseLinkName(%q) = %v, %v; want %v", link, b, ok, block)
			}
		})
	}
}

func TestParseRejectsOtherNames(t *testing.T) {
	tests := map[string]struct {
		parse func(prefix, name string) (netip.Prefix, bool)
		name  string
	}{
		"namespace of a longer prefix": {parse: parseNetnsName, name: "fltest2-10.213.7-web"},
		"namespace of no block":        {parse: parseNetnsName, name: "fltest-probe-web"},
		"namespace with a full addr":   {parse: parseNetnsName, name: "fltest-10.213.7.0-web"},
		"namespace without pod":        {parse: parseNetnsName, name: "fltest-10.213.7"},
		"unrelated namespace":          {parse: parseNetnsName, name: "cni-1234"},
		"link of a longer prefix":      {parse: parseLinkName, name: "fltestx0ad50700"},
		"link too short":               {parse: parseLinkName, name: "fltest0ad507"},
		"link not hex":                 {parse: parseLinkName, name: "fltest0ad5070g"},
		"link upper-case hex":          {parse: parseLinkName, name: "fltest0AD50700"},
		"link pod index out of range":  {parse: parseLinkName, name: "fltest0ad50740"},
		"unrelated link":               {parse: parseLinkName, name: "eth0"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if b, ok := tc.parse("fltest", tc.name); ok {
				t.Errorf("parsed %q as block %v, want it ignored", tc.name, b)
			}
		})
	}
}

func TestCheckPrefix(t *testing.T) {
	tests := map[string]struct {
		prefix string
		valid  bool
	}{
		"short":           {prefix: "f", valid: true},
		"seven":           {prefix: "fle2e12", valid: true},
		"eight":           {prefix: "fledge12", valid: false},
		"empty":           {prefix: "", valid: false},
		"leading digit":   {prefix: "1fl", valid: false},
		"dash":            {prefix: "fl-t", valid: false},
		"upper case":      {prefix: "FL", valid: false},
		"dot (path-like)": {prefix: "fl.", valid: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := checkPrefix(tc.prefix)
			if (err == nil) != tc.valid {
				t.Errorf("checkPrefix(%q) = %v, want valid=%v", tc.prefix, err, tc.valid)
			}
		})
	}
}

func TestCheckPool(t *testing.T) {
	tests := map[string]struct {
		pool    string
		wantErr string // empty: valid
	}{
		"default":           {pool: "10.213.0.0/16"},
		"one block":         {pool: "10.213.7.0/24"},
		"all of 10/8":       {pool: "10.0.0.0/8"},
		"172.16/12":         {pool: "172.20.0.0/16"},
		"192.168/16":        {pool: "192.168.0.0/16"},
		"public range":      {pool: "8.8.0.0/16", wantErr: "must be inside a private range"},
		"straddles private": {pool: "172.0.0.0/8", wantErr: "must be inside a private range"},
		"host bits":         {pool: "10.213.7.1/16", wantErr: "did you mean 10.213.0.0/16"},
		"smaller than /24":  {pool: "10.213.7.0/25", wantErr: "between a /8 and a /24"},
		"IPv6":              {pool: "fd00::/64", wantErr: "must be an IPv4 prefix"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := checkPool(netip.MustParsePrefix(tc.pool))
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("checkPool(%s) = %v, want nil", tc.pool, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("checkPool(%s) = %v, want an error containing %q", tc.pool, err, tc.wantErr)
			}
		})
	}
}

func TestAddressing(t *testing.T) {
	tests := map[string]struct {
		pool, wantBlock  string
		block, pod       int
		wantHost, wantIP string
	}{
		"first pod of first block": {pool: "10.213.0.0/16", block: 0, pod: 0, wantBlock: "10.213.0.0/24", wantHost: "10.213.0.1", wantIP: "10.213.0.2"},
		"second pod":               {pool: "10.213.0.0/16", block: 7, pod: 1, wantBlock: "10.213.7.0/24", wantHost: "10.213.7.5", wantIP: "10.213.7.6"},
		"last pod of last block":   {pool: "10.213.0.0/16", block: 255, pod: MaxPods - 1, wantBlock: "10.213.255.0/24", wantHost: "10.213.255.253", wantIP: "10.213.255.254"},
		"carry into second octet":  {pool: "10.0.0.0/8", block: 256, pod: 0, wantBlock: "10.1.0.0/24", wantHost: "10.1.0.1", wantIP: "10.1.0.2"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			block := nthBlock(netip.MustParsePrefix(tc.pool), tc.block)
			host, ip := podAddrs(block, tc.pod)
			if block.String() != tc.wantBlock || host.String() != tc.wantHost || ip.String() != tc.wantIP {
				t.Errorf("block %s host %s pod %s; want %s %s %s", block, host, ip, tc.wantBlock, tc.wantHost, tc.wantIP)
			}
			// Both ends share one /30 that does not reach into the next pod's.
			link := netip.PrefixFrom(host, 30).Masked()
			if !link.Contains(ip) || link.Addr() != netip.PrefixFrom(ip, 30).Masked().Addr() {
				t.Errorf("host %s and pod %s are not on one /30", host, ip)
			}
		})
	}
}

func TestOverlappingRoutes(t *testing.T) {
	block := netip.MustParsePrefix("10.213.7.0/24")
	tests := map[string]struct {
		dst     string
		overlap bool
	}{
		"a pod link in the block":     {dst: "10.213.7.4/30", overlap: true},
		"a host address in the block": {dst: "10.213.7.9", overlap: true},
		"a route covering the pool":   {dst: "10.0.0.0/8", overlap: true},
		"the next block":              {dst: "10.213.8.0/24", overlap: false},
		"another network":             {dst: "192.0.2.0/24", overlap: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := parseDst(tc.dst)
			if err != nil {
				t.Fatal(err)
			}
			if _, got := overlapping(block, []netip.Prefix{p}); got != tc.overlap {
				t.Errorf("overlapping(%s, %s) = %v, want %v", block, tc.dst, got, tc.overlap)
			}
		})
	}
}

func TestLogBufferKeepsTheEnd(t *testing.T) {
	var b logBuffer
	b.Write([]byte(strings.Repeat("a", maxLogBytes)))
	b.Write([]byte(strings.Repeat("b", maxLogBytes+1)))
	b.Write([]byte("end"))
	s := b.String()
	if !strings.HasSuffix(s, "b"+"end") || !strings.HasPrefix(s, "[earlier output cut]...") {
		t.Errorf("kept %q...%q, want the cut marker then the end of the output", s[:30], s[len(s)-10:])
	}
	if n := len(s) - len("[earlier output cut]..."); n != maxLogBytes {
		t.Errorf("kept %d bytes, want %d", n, maxLogBytes)
	}
}
