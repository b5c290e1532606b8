package egress

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestValidatePattern(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		reason  string // substring of the rejection; "" means valid
	}{
		{name: "exact name", pattern: "proxy.golang.org"},
		{name: "exact name with trailing dot", pattern: "Example.COM."},
		{name: "wildcard", pattern: "*.example.com"},
		{name: "wildcard under a two-level suffix", pattern: "*.example.co.uk"},
		{name: "ipv4", pattern: "203.0.113.7"},
		{name: "ipv6 bracketed", pattern: "[2001:db8::1]"},
		{name: "cidr", pattern: "10.0.0.0/8"},
		{name: "ipv6 cidr", pattern: "2001:db8::/32"},
		{name: "underscore label", pattern: "_acme.example.com"},
		{name: "punycode", pattern: "xn--bcher-kva.example"},
		{name: "empty", pattern: "", reason: "empty host"},
		{name: "star", pattern: "*", reason: "matches every host"},
		{name: "star dot", pattern: "*.", reason: "matches every host"},
		{name: "wildcard tld", pattern: "*.com", reason: "top-level domain"},
		{name: "wildcard public suffix", pattern: "*.co.uk", reason: "public suffix"},
		{name: "wildcard private public suffix", pattern: "*.github.io", reason: "public suffix"},
		{name: "wildcard unknown tld", pattern: "*.test", reason: "top-level domain"},
		{name: "wildcard in the middle", pattern: "api.*.example.com", reason: "whole first label"},
		{name: "partial wildcard", pattern: "*api.example.com", reason: "whole first label"},
		{name: "double wildcard", pattern: "*.*.example.com", reason: "invalid character"},
		{name: "unicode", pattern: "bücher.example", reason: "xn-- form"},
		{name: "space", pattern: "exa mple.com", reason: "invalid character"},
		{name: "port in host", pattern: "example.com:443", reason: "invalid character"},
		{name: "empty label", pattern: "a..example.com", reason: "invalid label"},
		{name: "too broad cidr", pattern: "0.0.0.0/0", reason: "too broad"},
		{name: "too broad ipv6 cidr", pattern: "::/8", reason: "too broad"},
		{name: "bad cidr", pattern: "10.0.0.0/33", reason: "not a CIDR"},
		{name: "zoned address", pattern: "fe80::1%eth0", reason: "zoned addresses"},
		{name: "long label", pattern: strings.Repeat("a", 64) + ".example", reason: "invalid label"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidatePattern(tc.pattern)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			var pe *PatternError
			if !errors.As(err, &pe) || !errors.Is(err, ErrPattern) {
				t.Fatalf("got %v, want a *PatternError wrapping ErrPattern", err)
			}
			if pe.Pattern != tc.pattern || !strings.Contains(pe.Reason, tc.reason) {
				t.Errorf("got pattern %q reason %q, want %q and a reason containing %q", pe.Pattern, pe.Reason, tc.pattern, tc.reason)
			}
		})
	}
}

func TestCompileGrant(t *testing.T) {
	tests := []struct {
		name   string
		grant  Grant
		reason string
	}{
		{name: "any with name", grant: Grant{Any: true, Name: "open web"}},
		{name: "any without name", grant: Grant{Any: true}, reason: "needs a name"},
		{name: "any with host", grant: Grant{Any: true, Name: "x", Host: "example.com"}, reason: "names no host"},
		{name: "port zero", grant: Grant{Host: "example.com", Ports: []int{0}}, reason: "port 0 out of range"},
		{name: "port too big", grant: Grant{Host: "example.com", Ports: []int{65536}}, reason: "out of range"},
		{name: "bad method", grant: Grant{Host: "example.com", Methods: []string{"GE T"}}, reason: "invalid method"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compileGrant(tc.grant)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			var pe *PatternError
			if !errors.As(err, &pe) || !strings.Contains(pe.Reason, tc.reason) {
				t.Errorf("got %v, want a *PatternError containing %q", err, tc.reason)
			}
		})
	}
}

func TestGrantMatch(t *testing.T) {
	tests := []struct {
		name   string
		grant  Grant
		target string // host:port as a client would send it
		method string
		want   bool
	}{
		{"exact", Grant{Host: "example.com"}, "example.com:443", "CONNECT", true},
		{"exact case and dot", Grant{Host: "example.com"}, "EXAMPLE.com.:443", "CONNECT", true},
		{"exact other port", Grant{Host: "example.com"}, "example.com:8443", "CONNECT", false},
		{"exact default port 80", Grant{Host: "example.com"}, "example.com:80", "GET", true},
		{"exact not subdomain", Grant{Host: "example.com"}, "www.example.com:443", "CONNECT", false},
		{"wildcard subdomain", Grant{Host: "*.example.com"}, "a.example.com:443", "CONNECT", true},
		{"wildcard deep", Grant{Host: "*.example.com"}, "a.b.example.com:443", "CONNECT", true},
		{"wildcard not bare", Grant{Host: "*.example.com"}, "example.com:443", "CONNECT", false},
		{"wildcard not look-alike", Grant{Host: "*.example.com"}, "evilexample.com:443", "CONNECT", false},
		{"wildcard not suffix trick", Grant{Host: "*.example.com"}, "example.com.evil.test:443", "CONNECT", false},
		{"explicit port", Grant{Host: "example.com", Ports: []int{8443}}, "example.com:8443", "CONNECT", true},
		{"explicit port replaces defaults", Grant{Host: "example.com", Ports: []int{8443}}, "example.com:443", "CONNECT", false},
		{"method", Grant{Host: "example.com", Methods: []string{"GET", "HEAD"}}, "example.com:80", "HEAD", true},
		{"method refused", Grant{Host: "example.com", Methods: []string{"GET"}}, "example.com:80", "PUT", false},
		{"method limit refuses connect", Grant{Host: "example.com", Methods: []string{"GET"}}, "example.com:443", "CONNECT", false},
		{"address", Grant{Host: "203.0.113.7"}, "203.0.113.7:443", "CONNECT", true},
		{"address not name", Grant{Host: "203.0.113.7"}, "example.com:443", "CONNECT", false},
		{"name not address", Grant{Host: "example.com"}, "203.0.113.7:443", "CONNECT", false},
		{"cidr", Grant{Host: "203.0.113.0/24"}, "203.0.113.99:80", "GET", true},
		{"ipv4-mapped literal", Grant{Host: "203.0.113.7"}, "[::ffff:203.0.113.7]:443", "CONNECT", true},
		{"ipv6", Grant{Host: "2001:db8::/48"}, "[2001:db8::5]:443", "CONNECT", true},
		{"any", Grant{Any: true, Name: "web"}, "anything.example:443", "CONNECT", true},
		{"any keeps default ports", Grant{Any: true, Name: "web"}, "anything.example:22", "CONNECT", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := compileGrant(tc.grant)
			if err != nil {
				t.Fatal(err)
			}
			host, port, err := target(tc.target, 0)
			if err != nil {
				t.Fatal(err)
			}
			addr, _ := netip.ParseAddr(host)
			got := c.matchHost(host, addr) && c.matchPort(port) && c.matchMethod(tc.method)
			if got != tc.want {
				t.Errorf("got %v, want %v (host %q port %d)", got, tc.want, host, port)
			}
		})
	}
}

func TestInternalKind(t *testing.T) {
	tests := []struct {
		addr, want string
	}{
		{"127.0.0.1", "loopback"},
		{"127.8.9.10", "loopback"},
		{"10.0.0.1", "private"},
		{"172.16.5.4", "private"},
		{"172.32.0.1", ""},
		{"192.168.1.1", "private"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"100.100.100.200", "cloud metadata"},
		{"169.254.169.254", "cloud metadata"},
		{"169.254.1.1", "link-local"},
		{"168.63.129.16", "cloud metadata"},
		{"0.0.0.0", "unspecified (this-network)"},
		{"224.0.0.1", "multicast"},
		{"255.255.255.255", "reserved"},
		{"198.18.0.1", "benchmarking"},
		{"8.8.8.8", ""},
		{"203.0.113.80", ""},
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:8.8.8.8", ""},
		{"::127.0.0.1", "IPv4-compatible"},
		{"64:ff9b::a9fe:a9fe", "cloud metadata (through NAT64)"},
		{"64:ff9b::808:808", ""},
		{"2002:7f00:1::", "loopback (through 6to4)"},
		{"2001::1", "Teredo tunnel"},
		{"fd00:ec2::254", "cloud metadata"},
		{"fd12::1", "private (unique local)"},
		{"fe80::1", "link-local"},
		{"ff02::1", "multicast"},
		{"2606:4700::1111", ""},
		{"2001:db8::1", ""},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			if got := internalKind(netip.MustParseAddr(tc.addr)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTarget(t *testing.T) {
	tests := []struct {
		in, host string
		port     int
		bad      bool
	}{
		{in: "example.com:443", host: "example.com", port: 443},
		{in: "[::1]:80", host: "::1", port: 80},
		{in: "example.com:0", bad: true},
		{in: "example.com:99999", bad: true},
		{in: "example.com", bad: true},
		{in: "exa_mple.com:1", host: "exa_mple.com", port: 1},
		{in: "[fe80::1%25eth0]:443", bad: true},
		{in: "ex ample.com:443", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			host, port, err := target(tc.in, 0)
			if tc.bad {
				if err == nil {
					t.Fatalf("got %q %d, want an error", host, port)
				}
				return
			}
			if err != nil || host != tc.host || port != tc.port {
				t.Errorf("got %q %d %v, want %q %d", host, port, err, tc.host, tc.port)
			}
		})
	}
}

// FuzzValidatePattern: any input either compiles or fails with the
// package's own error; a compiled wildcard never matches its own base.
func FuzzValidatePattern(f *testing.F) {
	for _, s := range []string{"example.com", "*.example.com", "*", "*.com", "10.0.0.0/8", "[::1]", "*.co.uk", "a..b", "xn--x.y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := compileHost(s)
		if err != nil {
			if !errors.Is(err, ErrPattern) {
				t.Fatalf("got %v, want an ErrPattern error", err)
			}
			return
		}
		if c.kind == kindWildcard && c.matchHost(strings.TrimPrefix(c.suffix, "."), netip.Addr{}) {
			t.Fatalf("wildcard %q matches its own base", s)
		}
	})
}

// FuzzPeekClientHello: arbitrary client bytes never panic the parser, and
// a reported server name always came from a ClientHello that was read.
func FuzzPeekClientHello(f *testing.F) {
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00})
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sni, raw, err := peekClientHello(strings.NewReader(string(b)))
		if err != nil && (sni != "" || raw != nil) {
			t.Fatalf("got sni %q and %d bytes with error %v", sni, len(raw), err)
		}
		if err == nil && len(raw) > len(b) {
			t.Fatalf("recorded %d bytes from %d", len(raw), len(b))
		}
	})
}
