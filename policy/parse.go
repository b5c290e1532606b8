package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxPolicyBytes bounds a policy file: a policy is written by hand, and a
// huge one is more likely an attack on the loader than a real policy.
const maxPolicyBytes = 4 << 20

// file is one decoded policy file, before it is merged with others.
type file struct {
	name      string
	data      []byte
	def       *Verdict
	defNode   *yaml.Node
	unknown   *Verdict
	unkNode   *yaml.Node
	rules     []*Rule
	ruleNodes []*yaml.Node
	ruleKeys  []map[string]bool // which keys each rule set
	creds     []Credential
	credNodes []*yaml.Node
	tests     []inlineTest
	roWS      *bool // workspace: read-only (true) or writable (false)
	roNode    *yaml.Node
}

// Parse reads one policy file and runs its inline tests. name is used in
// error messages and as the policy's Source. A file that does not set
// default or unknown gets deny and ask.
func Parse(name string, data []byte) (*Policy, error) {
	f, err := decodeFile(name, data)
	if err != nil {
		return nil, err
	}
	p, err := build(name, []*file{f}, nil)
	if err != nil {
		return nil, err
	}
	if err := p.runTests(p.tests); err != nil {
		return nil, err
	}
	return p, nil
}

// build makes a Policy out of a base file and narrowing overlays.
func build(source string, base []*file, overlays []*file) (*Policy, error) {
	p := &Policy{source: source, def: Deny, unknown: Ask, credIdx: map[string]int{}}
	all := append(slices.Clone(base), overlays...)
	for _, f := range all {
		p.files = append(p.files, sourceFile{f.name, f.data})
	}
	p.digest = digestOf(p.files)
	for _, f := range base {
		if f.def != nil {
			p.def = *f.def
		}
		if f.unknown != nil {
			p.unknown = *f.unknown
		}
		if f.roWS != nil {
			p.roWorkspace = *f.roWS
		}
		ids := make(map[string]bool, len(p.rules)+len(f.rules))
		for _, r := range p.rules {
			ids[r.ID] = true
		}
		for i, r := range f.rules {
			if err := complete(f, i); err != nil {
				return nil, err
			}
			if ids[r.ID] {
				return nil, errAt(f.name, f.ruleNodes[i], "id", fmt.Sprintf("duplicate rule id %q", r.ID))
			}
			ids[r.ID] = true
			p.rules = append(p.rules, r)
		}
		for i, c := range f.creds {
			if _, dup := p.credIdx[c.Name]; dup {
				return nil, errAt(f.name, f.credNodes[i], "name", fmt.Sprintf("duplicate credential %q", c.Name))
			}
			p.credIdx[c.Name] = len(p.creds)
			p.creds = append(p.creds, c)
		}
		p.tests = append(p.tests, f.tests...)
	}
	if err := p.checkCredentialRefs(base); err != nil {
		return nil, err
	}
	for _, o := range overlays {
		if err := p.narrow(o); err != nil {
			return nil, err
		}
	}
	p.reindex()
	return p, nil
}

// complete checks that a rule that defines a new rule (rather than
// narrowing a base rule by id) has everything a rule needs.
func complete(f *file, i int) error {
	r, n, keys := f.rules[i], f.ruleNodes[i], f.ruleKeys[i]
	switch {
	case !keys["verdict"]:
		return errAt(f.name, n, "verdict", fmt.Sprintf("rule %q is missing verdict", r.ID))
	case len(r.Programs) == 0:
		return errAt(f.name, n, "program", fmt.Sprintf("rule %q is missing program", r.ID))
	case r.Reason == "":
		return errAt(f.name, n, "reason", fmt.Sprintf("rule %q is missing reason (it is what the agent reads)", r.ID))
	}
	return nil
}

func digestOf(files []sourceFile) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%d\x00", f.name, len(f.data))
		h.Write(f.data)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func (p *Policy) checkCredentialRefs(files []*file) error {
	for _, f := range files {
		for i, r := range f.rules {
			for _, c := range r.Grants.Credentials {
				if _, ok := p.credIdx[c]; !ok {
					return errAt(f.name, f.ruleNodes[i], "grants", fmt.Sprintf("rule %q grants undefined credential %q", r.ID, c))
				}
			}
		}
	}
	return nil
}

func errAt(file string, n *yaml.Node, key, msg string) *LoadError {
	e := &LoadError{File: file, Key: key, Msg: msg}
	if n != nil {
		e.Line, e.Col = n.Line, n.Column
	}
	return e
}

type decoder struct {
	file string
}

func (d *decoder) errf(n *yaml.Node, key, format string, args ...any) *LoadError {
	return errAt(d.file, n, key, fmt.Sprintf(format, args...))
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return "a scalar"
	case yaml.AliasNode:
		return "an alias"
	}
	return "a document"
}

// check rejects anchors and aliases anywhere below n: expanding them is how
// "billion laughs" files blow up loaders, and a policy has no need for them.
func (d *decoder) check(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return d.errf(n, "", "anchors and aliases are not supported in a policy")
	}
	for _, c := range n.Content {
		if err := d.check(c); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) mapping(n *yaml.Node, what string, fn func(key string, k, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return d.errf(n, "", "%s must be a mapping, got %s", what, kindName(n))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return d.errf(k, "", "keys must be plain strings")
		}
		if seen[k.Value] {
			return d.errf(k, k.Value, "duplicate key %q", k.Value)
		}
		seen[k.Value] = true
		if err := fn(k.Value, k, v); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) unknownKey(k *yaml.Node) error {
	return d.errf(k, k.Value, "unknown key %q", k.Value)
}

func (d *decoder) str(n *yaml.Node, key string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", d.errf(n, key, "%s must be a string, got %s", key, kindName(n))
	}
	if strings.ContainsRune(n.Value, 0) {
		return "", d.errf(n, key, "%s contains a NUL byte", key)
	}
	return n.Value, nil
}

// elem returns the node of the i-th string strs read from n, for errors
// that should point at the element rather than the list.
func elem(n *yaml.Node, i int) *yaml.Node {
	if n.Kind == yaml.SequenceNode && i < len(n.Content) {
		return n.Content[i]
	}
	return n
}

// strs accepts a string or a list of strings.
func (d *decoder) strs(n *yaml.Node, key string) ([]string, error) {
	if n.Kind == yaml.ScalarNode {
		s, err := d.str(n, key)
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, d.errf(n, key, "%s must be a string or a list of strings, got %s", key, kindName(n))
	}
	out := make([]string, 0, len(n.Content))
	for _, c := range n.Content {
		s, err := d.str(c, key)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (d *decoder) verdict(n *yaml.Node, key string) (Verdict, error) {
	s, err := d.str(n, key)
	if err != nil {
		return Deny, err
	}
	v, ok := parseVerdict(s)
	if !ok {
		return Deny, d.errf(n, key, "%s must be allow, ask or deny, got %q", key, s)
	}
	return v, nil
}

func (d *decoder) duration(n *yaml.Node, key string) (time.Duration, error) {
	s, err := d.str(n, key)
	if err != nil {
		return 0, err
	}
	t, err := time.ParseDuration(s)
	if err != nil || t <= 0 {
		return 0, d.errf(n, key, "%s must be a positive duration such as 30s or 10m, got %q", key, s)
	}
	return t, nil
}

func (d *decoder) boolean(n *yaml.Node, key string) (bool, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		switch n.Value {
		case "true", "True", "TRUE":
			return true, nil
		case "false", "False", "FALSE":
			return false, nil
		}
	}
	return false, d.errf(n, key, "%s must be true or false", key)
}

func decodeFile(name string, data []byte) (*file, error) {
	d := &decoder{file: name}
	f := &file{name: name, data: data}
	if len(data) > maxPolicyBytes {
		return nil, &LoadError{File: name, Msg: fmt.Sprintf("file is larger than %d bytes", maxPolicyBytes)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(name, err)
	}
	if doc.Kind == 0 {
		return nil, &LoadError{File: name, Msg: "empty policy (want at least version: 1)"}
	}
	if err := d.check(&doc); err != nil {
		return nil, err
	}
	root := doc.Content[0]
	version := false
	err := d.mapping(root, "a policy", func(key string, k, v *yaml.Node) error {
		switch key {
		case "version":
			if v.Kind != yaml.ScalarNode || v.Value != "1" {
				return d.errf(v, key, "unsupported version %q (want 1)", v.Value)
			}
			version = true
		case "workspace":
			s, err := d.str(v, key)
			if err != nil {
				return err
			}
			if s != "writable" && s != "read-only" {
				return d.errf(v, key, "workspace must be writable or read-only, got %q", s)
			}
			ro := s == "read-only"
			f.roWS, f.roNode = &ro, v
		case "default":
			vd, err := d.verdict(v, key)
			if err != nil {
				return err
			}
			f.def, f.defNode = &vd, v
		case "unknown":
			vd, err := d.verdict(v, key)
			if err != nil {
				return err
			}
			f.unknown, f.unkNode = &vd, v
		case "rules":
			if v.Kind != yaml.SequenceNode {
				return d.errf(v, key, "rules must be a list, got %s", kindName(v))
			}
			for _, rn := range v.Content {
				r, keys, err := d.rule(rn)
				if err != nil {
					return err
				}
				f.rules = append(f.rules, r)
				f.ruleNodes = append(f.ruleNodes, rn)
				f.ruleKeys = append(f.ruleKeys, keys)
			}
		case "credentials":
			if v.Kind != yaml.SequenceNode {
				return d.errf(v, key, "credentials must be a list, got %s", kindName(v))
			}
			for _, cn := range v.Content {
				c, err := d.credential(cn)
				if err != nil {
					return err
				}
				f.creds = append(f.creds, c)
				f.credNodes = append(f.credNodes, cn)
			}
		case "tests":
			if v.Kind != yaml.SequenceNode {
				return d.errf(v, key, "tests must be a list, got %s", kindName(v))
			}
			for _, tn := range v.Content {
				t, err := d.test(tn)
				if err != nil {
					return err
				}
				f.tests = append(f.tests, t)
			}
		default:
			return d.unknownKey(k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !version {
		return nil, d.errf(root, "version", "missing version: 1")
	}
	return f, nil
}

// yamlLineRE is compiled on the first malformed file, not at start-up.
var yamlLineRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^yaml: line (\d+): (.*)$`) })

// yamlError turns the YAML library's message into FILE:LINE: MSG.
func yamlError(name string, err error) *LoadError {
	msg := oneLine(err)
	e := &LoadError{File: name, Msg: "malformed YAML: " + strings.TrimPrefix(msg, "yaml: "), Err: err}
	if m := yamlLineRE().FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = "malformed YAML: " + m[2]
	}
	return e
}

// oneLine is the first line of the YAML library's message.
func oneLine(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		return strings.TrimSpace(te.Errors[0])
	}
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return msg
}

// builtinIDs are rule ids the decision itself uses; a policy may not reuse
// them, so a rule id in a denial always means one thing.
var builtinIDs = map[string]bool{
	"default": true, "unknown-program": true, "unparsable-line": true,
	"redirect-outside-workspace": true, "credential-scope": true,
	"credential-exposure": true, "credential-redirect": true, "env-injection": true,
}

func (d *decoder) rule(n *yaml.Node) (*Rule, map[string]bool, error) {
	r := &Rule{File: d.file, Line: n.Line}
	keys := map[string]bool{}
	err := d.mapping(n, "a rule", func(key string, k, v *yaml.Node) error {
		keys[key] = true
		var err error
		switch key {
		case "id":
			r.ID, err = d.str(v, key)
			if err == nil && !isID(r.ID) {
				err = d.errf(v, key, "rule id %q must be 1-64 letters, digits, '.', '_' or '-'", r.ID)
			}
			if err == nil && builtinIDs[r.ID] {
				err = d.errf(v, key, "rule id %q is reserved for a built-in rule", r.ID)
			}
		case "verdict":
			r.Verdict, err = d.verdict(v, key)
		case "reason":
			r.Reason, err = d.str(v, key)
		case "hint":
			r.Hints, err = d.strs(v, key)
		case "program":
			r.Programs, err = d.strs(v, key)
			if err == nil {
				r.progs, err = d.programs(v, r.Programs)
			}
		case "args":
			if v.Kind != yaml.SequenceNode {
				return d.errf(v, key, "args must be a list, got %s", kindName(v))
			}
			for _, an := range v.Content {
				alts, err := d.strs(an, key)
				if err != nil {
					return err
				}
				if len(alts) == 0 {
					return d.errf(an, key, "an args element must not be an empty list")
				}
				for _, a := range alts {
					if err := checkGlob(a); err != nil {
						return d.errf(an, key, "bad glob %q: %v", a, err)
					}
				}
				r.Args = append(r.Args, alts)
			}
		case "with_flags":
			r.WithFlags, err = d.flags(v, key)
		case "without_flags":
			r.WithoutFlags, err = d.flags(v, key)
		case "paths":
			r.Paths, err = d.str(v, key)
			if err == nil && r.Paths != "inside" && r.Paths != "outside" {
				err = d.errf(v, key, "paths must be inside or outside, got %q", r.Paths)
			}
		case "grants":
			r.Grants, err = d.grants(v)
		default:
			return d.unknownKey(k)
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if r.ID == "" {
		return nil, nil, d.errf(n, "id", "rule is missing id")
	}
	if keys["verdict"] && r.Verdict != Allow && !r.Grants.empty() {
		return nil, nil, d.errf(n, "grants", "rule %q has verdict %s; only allow rules carry grants", r.ID, r.Verdict)
	}
	finishRule(r)
	return r, keys, nil
}

// finishRule fills in what is derived from a rule's fields.
func finishRule(r *Rule) {
	if r.progs == nil {
		for _, s := range r.Programs {
			if pp, err := compileProgram(s); err == nil {
				r.progs = append(r.progs, pp)
			}
		}
	}
	r.specificity = specificity(r)
	for i := range r.Grants.Network {
		r.Grants.Network[i].Rule = r.ID
	}
}

func (d *decoder) flags(n *yaml.Node, key string) ([]string, error) {
	fl, err := d.strs(n, key)
	if err != nil {
		return nil, err
	}
	for i, f := range fl {
		if !validFlag(f) {
			return nil, d.errf(elem(n, i), key, "%s entry %q must be a flag such as -f, --force or -delete", key, f)
		}
	}
	return fl, nil
}

func validFlag(f string) bool {
	if strings.HasPrefix(f, "--") {
		return len(f) > 2 && !strings.ContainsAny(f, "= \t")
	}
	if len(f) < 2 || f[0] != '-' || f[1] == '-' {
		return false
	}
	return !strings.ContainsAny(f, "= \t")
}

func (d *decoder) programs(n *yaml.Node, pats []string) ([]progPattern, error) {
	out := make([]progPattern, 0, len(pats))
	for _, s := range pats {
		pp, err := compileProgram(s)
		if err != nil {
			return nil, d.errf(n, "program", "bad program pattern %q: %v", s, err)
		}
		out = append(out, pp)
	}
	return out, nil
}

func (g *Grants) empty() bool {
	return len(g.Write) == 0 && len(g.Network) == 0 && len(g.Credentials) == 0 &&
		g.Limits == (Limits{}) && g.Timeout == 0
}

func (d *decoder) grants(n *yaml.Node) (Grants, error) {
	var g Grants
	err := d.mapping(n, "grants", func(key string, k, v *yaml.Node) error {
		var err error
		switch key {
		case "write":
			g.Write, err = d.strs(v, key)
			for i, w := range g.Write {
				if err == nil {
					err = d.writePath(elem(v, i), w)
				}
			}
		case "network":
			if v.Kind != yaml.SequenceNode {
				return d.errf(v, key, "network must be a list, got %s", kindName(v))
			}
			for _, nn := range v.Content {
				ng, err := d.netGrant(nn)
				if err != nil {
					return err
				}
				g.Network = append(g.Network, ng)
			}
		case "credentials":
			g.Credentials, err = d.strs(v, key)
		case "limits":
			g.Limits, err = d.limits(v)
		case "timeout":
			g.Timeout, err = d.duration(v, key)
		default:
			return d.unknownKey(k)
		}
		return err
	})
	return g, err
}

// writePath accepts an absolute path, or one starting with ~/, $HOME/,
// $WORKSPACE or $TMPDIR (expanded at decision time). "/" and the home
// directory itself are refused: a grant that wide is no grant at all.
func (d *decoder) writePath(n *yaml.Node, w string) error {
	if !pathPatternOK(w) {
		return d.errf(n, "write", "write path %q must be absolute or start with ~/, $HOME/, $WORKSPACE or $TMPDIR", w)
	}
	switch strings.TrimRight(w, "/") {
	case "", "~", "$HOME":
		return d.errf(n, "write", "write path %q is too broad", w)
	}
	if strings.ContainsAny(w, "*?[") {
		return d.errf(n, "write", "write path %q must not contain glob characters", w)
	}
	return nil
}

func pathPatternOK(w string) bool {
	for _, p := range []string{"/", "~/", "$HOME/", "$WORKSPACE", "$TMPDIR"} {
		if strings.HasPrefix(w, p) {
			return !strings.Contains(w, "/../") && !strings.HasSuffix(w, "/..")
		}
	}
	return w == "~" || w == "$HOME"
}

func (d *decoder) limits(n *yaml.Node) (Limits, error) {
	var l Limits
	err := d.mapping(n, "limits", func(key string, k, v *yaml.Node) error {
		s, err := d.str(v, key)
		if err != nil {
			return err
		}
		switch key {
		case "memory":
			l.MemoryBytes, err = parseBytes(s)
			if err != nil || l.MemoryBytes <= 0 {
				return d.errf(v, key, "memory must be a positive size such as 512MiB or 2GiB, got %q", s)
			}
		case "pids":
			l.Pids, err = strconv.ParseInt(s, 10, 64)
			if err != nil || l.Pids <= 0 {
				return d.errf(v, key, "pids must be a positive integer, got %q", s)
			}
		case "cpus":
			l.CPUs, err = strconv.ParseFloat(s, 64)
			if err != nil || !(l.CPUs > 0) || math.IsInf(l.CPUs, 0) || l.CPUs > 4096 {
				return d.errf(v, key, "cpus must be a positive number such as 2 or 0.5, got %q", s)
			}
		default:
			return d.unknownKey(k)
		}
		return nil
	})
	return l, err
}

func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"K", 1000}, {"M", 1000 * 1000}, {"G", 1000 * 1000 * 1000}, {"T", 1000 * 1000 * 1000 * 1000},
		{"B", 1}, {"", 1},
	}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok && num != "" {
			f, err := strconv.ParseFloat(num, 64)
			if err != nil || f < 0 || f*float64(u.mult) > math.MaxInt64/2 {
				return 0, fmt.Errorf("bad size %q", s)
			}
			return int64(f * float64(u.mult)), nil
		}
	}
	return 0, fmt.Errorf("bad size %q", s)
}

func (d *decoder) test(n *yaml.Node) (inlineTest, error) {
	t := inlineTest{file: d.file, line: n.Line, col: n.Column}
	hasCmd, hasExpect := false, false
	err := d.mapping(n, "a test", func(key string, k, v *yaml.Node) error {
		var err error
		switch key {
		case "command":
			t.command, err = d.str(v, key)
			hasCmd = true
		case "expect":
			t.expect, err = d.verdict(v, key)
			hasExpect = true
		case "rule":
			t.rule, err = d.str(v, key)
		default:
			return d.unknownKey(k)
		}
		return err
	})
	if err == nil && (!hasCmd || !hasExpect) {
		err = d.errf(n, "", "a test needs command and expect")
	}
	return t, err
}
