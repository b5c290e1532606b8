package policy

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// narrow applies a workspace policy file to p. A workspace file may only
// make p stricter (docs/policy.md, Narrowing): anything else is a
// *LoadError wrapping ErrWiden that names the line and says why.
func (p *Policy) narrow(f *file) error {
	widen := func(n *yaml.Node, key, format string, args ...any) error {
		e := errAt(f.name, n, key, fmt.Sprintf(format, args...))
		e.Err = ErrWiden
		return e
	}
	if f.def != nil {
		if p.def.stricter(*f.def) {
			return widen(f.defNode, "default", "default: %s would widen the base policy's default (%s); a workspace policy may only narrow", *f.def, p.def)
		}
		p.def = *f.def
	}
	if f.unknown != nil {
		if p.unknown.stricter(*f.unknown) {
			return widen(f.unkNode, "unknown", "unknown: %s would widen the base policy's unknown (%s); a workspace policy may only narrow", *f.unknown, p.unknown)
		}
		p.unknown = *f.unknown
	}
	if f.roWS != nil {
		if p.roWorkspace && !*f.roWS {
			return widen(f.roNode, "workspace", "workspace: writable would widen the base policy's read-only workspace")
		}
		p.roWorkspace = *f.roWS
	}
	if len(f.creds) > 0 {
		return widen(f.credNodes[0], "credentials", "a workspace policy may not define credentials")
	}
	ids := map[string]int{}
	for i, r := range p.rules {
		ids[r.ID] = i
	}
	for i, r := range f.rules {
		n, keys := f.ruleNodes[i], f.ruleKeys[i]
		bi, exists := ids[r.ID]
		if !exists {
			if err := complete(f, i); err != nil {
				return err
			}
			if r.Verdict == Allow {
				return widen(n, "verdict", "rule %q: a workspace policy may not add allow rules, only deny and ask rules, or narrow a base rule by its id", r.ID)
			}
			ids[r.ID] = len(p.rules)
			p.rules = append(p.rules, r)
			continue
		}
		base := p.rules[bi]
		for _, k := range []string{"program", "args", "with_flags", "without_flags", "paths"} {
			if keys[k] {
				return widen(n, k, "rule %q narrows base rule %q and may not change what it matches (%s); add a new deny or ask rule instead", r.ID, r.ID, k)
			}
		}
		nr := *base
		nr.File, nr.Line = f.name, r.Line
		if keys["verdict"] {
			if base.Verdict.stricter(r.Verdict) {
				return widen(n, "verdict", "rule %q: verdict %s would widen the base rule's %s", r.ID, r.Verdict, base.Verdict)
			}
			nr.Verdict = r.Verdict
			if nr.Verdict != Allow {
				nr.Grants = Grants{}
			}
		}
		if keys["reason"] {
			nr.Reason = r.Reason
		}
		if keys["hint"] {
			nr.Hints = r.Hints
		}
		if keys["grants"] {
			if why := subsetGrants(&r.Grants, &base.Grants); why != "" {
				return widen(n, "grants", "rule %q: %s", r.ID, why)
			}
			nr.Grants = r.Grants
			for j := range nr.Grants.Network {
				nr.Grants.Network[j].Rule = r.ID
			}
		}
		p.rules[bi] = &nr
	}
	return nil
}

// subsetGrants explains why o is not within b, or returns "".
func subsetGrants(o, b *Grants) string {
	for _, w := range o.Write {
		if !slices.ContainsFunc(b.Write, func(bw string) bool { return under(path.Clean(w), path.Clean(bw)) }) {
			return fmt.Sprintf("write grant %q is not inside a write grant of the base rule", w)
		}
	}
	for _, n := range o.Network {
		if !slices.ContainsFunc(b.Network, func(bn NetGrant) bool { return netWithin(n, bn) }) {
			return fmt.Sprintf("network grant %s is not within a network grant of the base rule", netString(n))
		}
	}
	for _, c := range o.Credentials {
		if !slices.Contains(b.Credentials, c) {
			return fmt.Sprintf("credential %q is not granted by the base rule", c)
		}
	}
	if o.Limits.MemoryBytes > b.Limits.MemoryBytes || o.Limits.Pids > b.Limits.Pids || o.Limits.CPUs > b.Limits.CPUs {
		return "its limits exceed the base rule's"
	}
	if o.Timeout > b.Timeout {
		return "its timeout exceeds the base rule's"
	}
	return ""
}

func netString(n NetGrant) string { return n.String() }

func portsOf(n NetGrant) []int {
	if len(n.Ports) == 0 {
		return []int{80, 443}
	}
	return n.Ports
}

// netWithin reports whether every destination o allows, b allows too.
func netWithin(o, b NetGrant) bool {
	if b.Any {
		return true
	}
	if o.Any {
		return false
	}
	if o.Registry != "" || b.Registry != "" {
		return o.Registry == b.Registry
	}
	hostOK := o.Host == b.Host
	if suffix, ok := strings.CutPrefix(b.Host, "*."); ok && !hostOK {
		oh := strings.TrimPrefix(o.Host, "*.")
		hostOK = strings.HasSuffix(oh, "."+suffix)
	}
	if !hostOK {
		return false
	}
	for _, port := range portsOf(o) {
		if !slices.Contains(portsOf(b), port) {
			return false
		}
	}
	if len(b.Methods) > 0 {
		if len(o.Methods) == 0 {
			return false
		}
		for _, m := range o.Methods {
			if !slices.Contains(b.Methods, m) {
				return false
			}
		}
	}
	return true
}
