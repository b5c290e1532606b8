package egress

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// Grant is one destination a command may reach through the proxy.
type Grant struct {
	// Host is an exact host name ("proxy.golang.org"), a wildcard for the
	// subdomains of a name ("*.example.com": a.example.com and
	// a.b.example.com, never example.com itself nor evilexample.com), or an
	// IP address or CIDR prefix ("203.0.113.7", "2001:db8::/48"). A name
	// grant never reaches an internal address (loopback, private, metadata,
	// ...) unless an address grant covers that address too. Empty only with
	// Any.
	Host string
	// Ports are the TCP ports allowed; empty means 80 and 443.
	Ports []int
	// Methods limits plain-HTTP requests to these methods; empty means any.
	// A CONNECT tunnel hides the method inside TLS, so a method-limited
	// grant allows CONNECT only when Methods itself lists "CONNECT".
	Methods []string
	// Any grants every public destination on Ports. It must be asked for
	// explicitly and carry a Name; internal addresses still need an
	// address grant.
	Any bool
	// Name names an Any grant in messages and records. Required with Any.
	Name string
	// Rule is the id of the policy rule that made this grant; it is quoted
	// in records and messages.
	Rule string
}

// defaultPorts apply when a grant names no port.
var defaultPorts = []int{80, 443}

// Minimum CIDR prefix lengths: a shorter prefix is "any address", which
// must be asked for as an explicit Any grant instead.
const (
	minPrefix4 = 8
	minPrefix6 = 16
)

type hostKind int

const (
	kindExact hostKind = iota
	kindWildcard
	kindPrefix
	kindAny
)

// compiled is a validated grant in the form the proxy matches against.
type compiled struct {
	g       Grant
	kind    hostKind
	name    string       // kindExact: normalised name
	suffix  string       // kindWildcard: ".example.com"
	prefix  netip.Prefix // kindPrefix
	ports   []int
	methods []string // upper case; nil means any
}

// ValidatePattern checks one Grant.Host pattern. It rejects what cannot be
// matched exactly and what is too broad to be a deliberate grant: "*",
// wildcards anywhere but the first label, wildcards over a public suffix
// ("*.com", "*.co.uk", "*.github.io": any registrant could sit under them),
// and CIDR prefixes shorter than /8 (IPv4) or /16 (IPv6). The public-suffix
// check uses the Public Suffix List embedded in golang.org/x/net/publicsuffix,
// so it is as current as that module. An "any destination" grant is written
// as Grant{Any: true, Name: ...}, never as a pattern.
func ValidatePattern(host string) error {
	_, err := compileHost(host)
	return err
}

func compileHost(host string) (compiled, error) {
	bad := func(format string, args ...any) (compiled, error) {
		return compiled{}, &PatternError{Pattern: host, Reason: fmt.Sprintf(format, args...)}
	}
	h := strings.TrimSpace(host)
	if h == "" {
		return bad("empty host")
	}
	if h == "*" || h == "*." {
		return bad("matches every host; write an explicit, named any-destination grant instead")
	}
	if strings.Contains(h, "/") {
		p, err := netip.ParsePrefix(strings.Trim(h, "[]"))
		if err != nil {
			return bad("not a CIDR prefix: %v", err)
		}
		if p.Addr().Zone() != "" {
			return bad("zoned addresses cannot be granted")
		}
		p = p.Masked()
		if p.Addr().Is4() && p.Bits() < minPrefix4 || p.Addr().Is6() && p.Bits() < minPrefix6 {
			return bad("prefix /%d is too broad; write an explicit, named any-destination grant instead", p.Bits())
		}
		return compiled{kind: kindPrefix, prefix: p}, nil
	}
	if a, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		if a.Zone() != "" {
			return bad("zoned addresses cannot be granted")
		}
		a = a.Unmap()
		return compiled{kind: kindPrefix, prefix: netip.PrefixFrom(a, a.BitLen())}, nil
	}
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		base, err := normalizeName(rest)
		if err != nil {
			return bad("%v", err)
		}
		if !strings.Contains(base, ".") {
			return bad("wildcard over a top-level domain")
		}
		if ps, _ := publicsuffix.PublicSuffix(base); ps == base {
			return bad("wildcard over the public suffix %q, under which anyone can register a name", base)
		}
		return compiled{kind: kindWildcard, suffix: "." + base}, nil
	}
	if strings.Contains(h, "*") {
		return bad("a wildcard may only be the whole first label, as in *.example.com")
	}
	name, err := normalizeName(h)
	if err != nil {
		return bad("%v", err)
	}
	return compiled{kind: kindExact, name: name}, nil
}

// normalizeName lower-cases a host name, drops one trailing dot and checks
// the label syntax, so that a grant and a request spell the same host the
// same way. Internationalised names must be written in their ASCII
// ("xn--") form, which is also what clients send to a proxy; accepting
// Unicode here would need a second, lossy mapping that could make two
// spellings match different hosts.
func normalizeName(h string) (string, error) {
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return "", fmt.Errorf("empty host name")
	}
	a := strings.ToLower(h)
	if len(a) > 253 {
		return "", fmt.Errorf("host name longer than 253 bytes")
	}
	for _, label := range strings.Split(a, ".") {
		if label == "" || len(label) > 63 {
			return "", fmt.Errorf("invalid label in host name %q", a)
		}
		for _, r := range label {
			ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_'
			if r > 0x7f {
				return "", fmt.Errorf("non-ASCII host name %q: write it in its xn-- form", h)
			}
			if !ok {
				return "", fmt.Errorf("invalid character %q in host name", r)
			}
		}
	}
	return a, nil
}

// compileGrant validates a whole grant.
func compileGrant(g Grant) (compiled, error) {
	var c compiled
	if g.Any {
		if g.Host != "" {
			return c, &PatternError{Pattern: g.Host, Reason: "an any-destination grant names no host"}
		}
		if strings.TrimSpace(g.Name) == "" {
			return c, &PatternError{Pattern: "*", Reason: "an any-destination grant needs a name"}
		}
		c.kind = kindAny
	} else {
		var err error
		if c, err = compileHost(g.Host); err != nil {
			return c, err
		}
	}
	c.g = g
	c.ports = defaultPorts
	if len(g.Ports) > 0 {
		for _, p := range g.Ports {
			if p < 1 || p > 65535 {
				return c, &PatternError{Pattern: g.Host, Reason: fmt.Sprintf("port %d out of range", p)}
			}
		}
		c.ports = slices.Clone(g.Ports)
	}
	for _, m := range g.Methods {
		if m == "" || strings.ContainsFunc(m, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
			return c, &PatternError{Pattern: g.Host, Reason: fmt.Sprintf("invalid method %q", m)}
		}
		c.methods = append(c.methods, strings.ToUpper(m))
	}
	return c, nil
}

// label is how a grant is named in messages.
func (c compiled) label() string {
	switch {
	case c.g.Rule != "" && c.kind == kindAny:
		return fmt.Sprintf("rule %q (any destination %q)", c.g.Rule, c.g.Name)
	case c.kind == kindAny:
		return fmt.Sprintf("any-destination grant %q", c.g.Name)
	case c.g.Rule != "":
		return fmt.Sprintf("rule %q (%s)", c.g.Rule, c.g.Host)
	}
	return fmt.Sprintf("grant %s", c.g.Host)
}

// ruleID is the id recorded for an allowed connection.
func (c compiled) ruleID() string {
	if c.g.Rule != "" {
		return c.g.Rule
	}
	if c.kind == kindAny {
		return c.g.Name
	}
	return c.g.Host
}

// matchHost reports whether the grant names this destination. host is
// normalised; addr is valid when the request named an IP literal.
func (c compiled) matchHost(host string, addr netip.Addr) bool {
	switch c.kind {
	case kindAny:
		return true
	case kindPrefix:
		return addr.IsValid() && c.prefix.Contains(addr)
	case kindExact:
		return !addr.IsValid() && host == c.name
	case kindWildcard:
		return !addr.IsValid() && len(host) > len(c.suffix) && strings.HasSuffix(host, c.suffix)
	}
	return false
}

func (c compiled) matchPort(port int) bool { return slices.Contains(c.ports, port) }

// matchMethod reports whether the grant allows the method. For CONNECT a
// method-limited grant must list CONNECT itself: the real method travels
// inside TLS where the proxy cannot see it.
func (c compiled) matchMethod(method string) bool {
	return c.methods == nil || slices.Contains(c.methods, method)
}

// coversAddr reports whether an address grant lets a connection reach addr
// on port, even though addr is internal.
func (c compiled) coversAddr(addr netip.Addr, port int) bool {
	return c.kind == kindPrefix && c.prefix.Contains(addr) && c.matchPort(port)
}

func portsString(ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ", ")
}
