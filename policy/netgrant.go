package policy

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"golang.org/x/net/publicsuffix"
)

var registries = []string{"go", "npm", "pip", "cargo"}

var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// netGrant reads one network destination: either the short form
// "host[:port]" or a mapping with host, ports, methods, registry, any, name.
func (d *decoder) netGrant(n *yaml.Node) (NetGrant, error) {
	var g NetGrant
	if n.Kind == yaml.ScalarNode {
		s, err := d.str(n, "network")
		if err != nil {
			return g, err
		}
		host, port, err := splitHostPort(s)
		if err != nil {
			return g, d.errf(n, "network", "network destination %q: %v", s, err)
		}
		g.Host = host
		if port != 0 {
			g.Ports = []int{port}
		}
		return g, d.checkHost(n, &g)
	}
	err := d.mapping(n, "a network grant", func(key string, k, v *yaml.Node) error {
		var err error
		switch key {
		case "host":
			var s string
			s, err = d.str(v, key)
			if err == nil {
				var port int
				g.Host, port, err = splitHostPort(s)
				if err != nil {
					return d.errf(v, key, "network destination %q: %v", s, err)
				}
				if port != 0 {
					g.Ports = append(g.Ports, port)
				}
			}
		case "ports":
			ps, err := d.strs(v, key)
			if err != nil {
				return err
			}
			for i, p := range ps {
				n, err := strconv.Atoi(p)
				if err != nil || n < 1 || n > 65535 {
					return d.errf(elem(v, i), key, "port %q must be 1-65535", p)
				}
				g.Ports = append(g.Ports, n)
			}
		case "methods":
			ms, err := d.strs(v, key)
			if err != nil {
				return err
			}
			for i, m := range ms {
				if !slices.Contains(httpMethods, m) {
					return d.errf(elem(v, i), key, "method %q must be one of %s", m, strings.Join(httpMethods, ", "))
				}
			}
			g.Methods = ms
		case "registry":
			g.Registry, err = d.str(v, key)
			if err == nil && !slices.Contains(registries, g.Registry) {
				err = d.errf(v, key, "registry %q must be one of %s", g.Registry, strings.Join(registries, ", "))
			}
		case "any":
			g.Any, err = d.boolean(v, key)
		case "name":
			g.Name, err = d.str(v, key)
		default:
			return d.unknownKey(k)
		}
		return err
	})
	if err != nil {
		return g, err
	}
	switch {
	case g.Any:
		if g.Name == "" {
			return g, d.errf(n, "name", "an any-destination grant needs a name saying why")
		}
		if g.Host != "" || g.Registry != "" {
			return g, d.errf(n, "any", "an any-destination grant takes no host or registry")
		}
		return g, nil
	case g.Name != "":
		return g, d.errf(n, "name", "name is only for any: true grants")
	case g.Registry != "":
		if g.Host != "" || len(g.Ports) > 0 {
			return g, d.errf(n, "registry", "a registry grant takes no host or ports: the address comes from the tool's own configuration")
		}
		return g, nil
	}
	return g, d.checkHost(n, &g)
}

func splitHostPort(s string) (string, int, error) {
	if s == "" {
		return "", 0, errString("empty host")
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return s, 0, nil
	}
	if _, err := netip.ParsePrefix(s); err == nil {
		return s, 0, nil
	}
	if strings.Contains(s, ":") {
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return "", 0, errString("want host or host:port")
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", 0, errString("port must be 1-65535")
		}
		return h, n, nil
	}
	return s, 0, nil
}

type errString string

func (e errString) Error() string { return string(e) }

// checkHost validates an exact name, a "*." wildcard, or an address or
// prefix. A wildcard must sit under a registrable domain: "*.example.com"
// is fine, "*", "*.com", "*.co.uk" and "*.github.io" are not (they cover
// other people's sites); write an explicit any: true grant instead.
func (d *decoder) checkHost(n *yaml.Node, g *NetGrant) error {
	h := strings.ToLower(strings.TrimSuffix(g.Host, "."))
	g.Host = h
	if h == "" {
		return d.errf(n, "host", "a network grant needs host, registry, or any: true")
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.IsUnspecified() {
			return d.errf(n, "host", "address %q is not a destination", h)
		}
		return nil
	}
	if p, err := netip.ParsePrefix(h); err == nil {
		if p.Bits() == 0 {
			return d.errf(n, "host", "prefix %q covers every address; use any: true with a name", h)
		}
		return nil
	}
	name := h
	wild := false
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		name, wild = rest, true
	}
	if h == "*" {
		return d.errf(n, "host", "host \"*\" is too broad; use any: true with a name")
	}
	if !validHostname(name) {
		return d.errf(n, "host", "host %q is not a valid DNS name (use punycode for international names)", g.Host)
	}
	if wild {
		etld1, err := publicsuffix.EffectiveTLDPlusOne(name)
		if err != nil || len(etld1) > len(name) {
			return d.errf(n, "host", "wildcard %q covers a public suffix; name a registrable domain such as *.example.com", h)
		}
	}
	return nil
}

func validHostname(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// String is the grant as a person reads it: "any (NAME)", "registry NAME",
// or the host with its ports and methods when the grant limits them
// ("127.0.0.1:8080", "api.example.com:443 GET,HEAD").
func (n NetGrant) String() string {
	switch {
	case n.Any:
		return "any (" + n.Name + ")"
	case n.Registry != "":
		return "registry " + n.Registry
	}
	s := n.Host
	if len(n.Ports) > 0 {
		ps := make([]string, len(n.Ports))
		for i, p := range n.Ports {
			ps[i] = strconv.Itoa(p)
		}
		s += ":" + strings.Join(ps, ",")
	}
	if len(n.Methods) > 0 {
		s += " " + strings.Join(n.Methods, ",")
	}
	return s
}
