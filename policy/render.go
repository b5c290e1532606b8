package policy

import (
	"bytes"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Render writes the effective policy (base and workspace files merged) as
// a policy file that Parse accepts, so `agentexec policy show` prints what
// is really in force.
func (p *Policy) Render() []byte {
	doc := &yaml.Node{Kind: yaml.MappingNode}
	add := func(m *yaml.Node, k string, v *yaml.Node) {
		m.Content = append(m.Content, str(k), v)
	}
	add(doc, "version", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: "1"})
	add(doc, "default", str(p.def.String()))
	add(doc, "unknown", str(p.unknown.String()))
	if p.roWorkspace {
		add(doc, "workspace", str("read-only"))
	}
	if len(p.creds) > 0 {
		cs := &yaml.Node{Kind: yaml.SequenceNode}
		for _, c := range p.creds {
			m := &yaml.Node{Kind: yaml.MappingNode}
			add(m, "name", str(c.Name))
			add(m, "provider", str(c.Provider))
			if len(c.Command) > 0 {
				add(m, "command", list(c.Command))
			}
			for _, kv := range [][2]string{{"host", c.Host}, {"protocol", c.Protocol}, {"path", c.Path}, {"helper", c.Helper}, {"var", c.Var}, {"file", c.File}} {
				if kv[1] != "" {
					add(m, kv[0], str(kv[1]))
				}
			}
			add(m, "timeout", str(c.Timeout.String()))
			if len(c.Env) > 0 {
				add(m, "env", list(c.Env))
			}
			if c.FileEnv != "" {
				add(m, "file_env", str(c.FileEnv))
			}
			add(m, "ttl", str(c.TTL.String()))
			if len(c.Scope) > 0 {
				var sn yaml.Node
				if err := sn.Encode(c.Scope); err == nil {
					sn.Style = yaml.FlowStyle
					add(m, "scope", &sn)
				}
			}
			add(m, "short_lived", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(c.ShortLived)})
			cs.Content = append(cs.Content, m)
		}
		add(doc, "credentials", cs)
	}
	rs := &yaml.Node{Kind: yaml.SequenceNode}
	for _, r := range p.rules {
		m := &yaml.Node{Kind: yaml.MappingNode}
		add(m, "id", str(r.ID))
		add(m, "verdict", str(r.Verdict.String()))
		add(m, "program", list(r.Programs))
		if len(r.Args) > 0 {
			a := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
			for _, alts := range r.Args {
				if len(alts) == 1 {
					a.Content = append(a.Content, str(alts[0]))
				} else {
					a.Content = append(a.Content, list(alts))
				}
			}
			add(m, "args", a)
		}
		if len(r.WithFlags) > 0 {
			add(m, "with_flags", list(r.WithFlags))
		}
		if len(r.WithoutFlags) > 0 {
			add(m, "without_flags", list(r.WithoutFlags))
		}
		if r.Paths != "" {
			add(m, "paths", str(r.Paths))
		}
		add(m, "reason", str(r.Reason))
		if len(r.Hints) > 0 {
			add(m, "hint", list(r.Hints))
		}
		if !r.Grants.empty() {
			add(m, "grants", renderGrants(&r.Grants))
		}
		rs.Content = append(rs.Content, m)
	}
	add(doc, "rules", rs)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		// Encoding a tree of plain scalars cannot fail; keep the output
		// honest if it ever does.
		return []byte("# cannot render the policy: " + err.Error() + "\n")
	}
	return b.Bytes()
}

func renderGrants(g *Grants) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode}
	add := func(k string, v *yaml.Node) { m.Content = append(m.Content, str(k), v) }
	if len(g.Write) > 0 {
		add("write", list(g.Write))
	}
	if len(g.Network) > 0 {
		ns := &yaml.Node{Kind: yaml.SequenceNode}
		for _, n := range g.Network {
			e := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
			kv := func(k string, v *yaml.Node) { e.Content = append(e.Content, str(k), v) }
			switch {
			case n.Any:
				kv("any", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
				kv("name", str(n.Name))
			case n.Registry != "":
				kv("registry", str(n.Registry))
			default:
				kv("host", str(n.Host))
			}
			if len(n.Ports) > 0 {
				ps := make([]string, len(n.Ports))
				for i, p := range n.Ports {
					ps[i] = strconv.Itoa(p)
				}
				kv("ports", list(ps))
			}
			if len(n.Methods) > 0 {
				kv("methods", list(n.Methods))
			}
			ns.Content = append(ns.Content, e)
		}
		add("network", ns)
	}
	if len(g.Credentials) > 0 {
		add("credentials", list(g.Credentials))
	}
	if g.Limits != (Limits{}) {
		l := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		if g.Limits.MemoryBytes > 0 {
			l.Content = append(l.Content, str("memory"), str(strconv.FormatInt(g.Limits.MemoryBytes, 10)))
		}
		if g.Limits.Pids > 0 {
			l.Content = append(l.Content, str("pids"), str(strconv.FormatInt(g.Limits.Pids, 10)))
		}
		if g.Limits.CPUs > 0 {
			l.Content = append(l.Content, str("cpus"), str(strconv.FormatFloat(g.Limits.CPUs, 'g', -1, 64)))
		}
		add("limits", l)
	}
	if g.Timeout > 0 {
		add("timeout", str(g.Timeout.String()))
	}
	return m
}

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func list(ss []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, s := range ss {
		n.Content = append(n.Content, str(s))
	}
	return n
}
