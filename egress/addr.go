package egress

import "net/netip"

// internalRange is an address block the proxy will not connect to unless a
// grant names the address itself: reaching it from the sandbox would be a
// way into the host, its network or its cloud control plane (SSRF).
type internalRange struct {
	prefix netip.Prefix
	kind   string
}

// internalRanges is checked in order; the first match names the kind in
// messages, so the specific metadata addresses come before their enclosing
// blocks. The list follows the IANA special-purpose address registries.
// Documentation prefixes (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
// 2001:db8::/32) are deliberately absent: they lead to no internal service
// and the proxy treats them as ordinary addresses.
var internalRanges = func() []internalRange {
	list := []struct{ p, kind string }{
		{"169.254.169.254/32", "cloud metadata"},
		{"fd00:ec2::254/128", "cloud metadata"},
		{"168.63.129.16/32", "cloud metadata"}, // Azure WireServer, a public-looking address
		{"100.100.100.200/32", "cloud metadata"},

		{"0.0.0.0/8", "unspecified (this-network)"},
		{"10.0.0.0/8", "private"},
		{"100.64.0.0/10", "carrier-grade NAT"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.0.0/16", "link-local"},
		{"172.16.0.0/12", "private"},
		{"192.0.0.0/24", "IETF protocol assignment"},
		{"192.88.99.0/24", "6to4 relay"},
		{"192.168.0.0/16", "private"},
		{"198.18.0.0/15", "benchmarking"},
		{"224.0.0.0/4", "multicast"},
		{"240.0.0.0/4", "reserved"}, // includes 255.255.255.255 broadcast

		{"::/128", "unspecified"},
		{"::1/128", "loopback"},
		{"::/96", "IPv4-compatible"},
		{"64:ff9b:1::/48", "local NAT64"},
		{"100::/64", "discard-only"},
		{"2001::/32", "Teredo tunnel"},
		{"2001:2::/48", "benchmarking"},
		{"fc00::/7", "private (unique local)"},
		{"fe80::/10", "link-local"},
		{"fec0::/10", "site-local"},
		{"ff00::/8", "multicast"},
	}
	out := make([]internalRange, len(list))
	for i, e := range list {
		out[i] = internalRange{netip.MustParsePrefix(e.p), e.kind}
	}
	return out
}()

var (
	nat64   = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4  = netip.MustParsePrefix("2002::/16")
	mapped4 = netip.MustParsePrefix("::ffff:0:0/96")
)

// internalKind returns what kind of internal address a is, or "" when it is
// an ordinary public address. Addresses that embed an IPv4 address
// (IPv4-mapped, NAT64, 6to4) are judged by the embedded address, since a
// translator on the path would deliver them there.
func internalKind(a netip.Addr) string {
	a = a.WithZone("")
	if mapped4.Contains(a) {
		a = a.Unmap()
	}
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64.Contains(a):
			if k := internalKind(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})); k != "" {
				return k + " (through NAT64)"
			}
			return ""
		case sixTo4.Contains(a):
			if k := internalKind(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})); k != "" {
				return k + " (through 6to4)"
			}
			return ""
		}
	}
	for _, r := range internalRanges {
		if r.prefix.Contains(a) {
			return r.kind
		}
	}
	return ""
}
