package policy

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Input is one command to decide on, with the context path rules need.
type Input struct {
	Line string   // a shell line (bash syntax); or
	Argv []string // argv form (no shell)

	Cwd       string // absolute; "" = unknown, so relative paths count as outside
	Workspace string // absolute; "" = no workspace is writable
	Home      string // for ~ and $HOME; "" = unknown
	TmpDir    string // the sandbox's private temporary directory, writable
}

// Match is one rule that fired.
type Match struct {
	Command int      `json:"command"` // index into Decision.Commands; -1 for a redirection
	Text    string   `json:"text"`    // the command or redirection, as written
	Rule    string   `json:"rule"`
	Verdict Verdict  `json:"verdict"`
	Reason  string   `json:"reason"`
	Hints   []string `json:"hints,omitempty"`
}

// Decision is the policy's answer for one line.
type Decision struct {
	Verdict  Verdict   `json:"verdict"`
	Commands []Command `json:"commands"`
	Matches  []Match   `json:"matches"`
	Grants   Grants    `json:"grants"`
	Policy   string    `json:"policy"`
	Digest   string    `json:"digest"`
	// WorkspaceReadOnly: the policy says `workspace: read-only`, so the
	// sandbox must mount the workspace read-only; the decision already
	// counts it as outside the writable set.
	WorkspaceReadOnly bool `json:"workspace_read_only,omitempty"`
}

// Err is nil when the line may run, a *DenyError (errors.Is(err,
// ErrDenied)) when it is denied, and an *AskError (errors.Is(err, ErrAsk))
// when a human must approve it.
func (d *Decision) Err() error {
	var ask *AskError
	for _, m := range d.Matches {
		switch m.Verdict {
		case Deny:
			return &DenyError{Rule: m.Rule, Command: m.Text, Reason: m.Reason, Hints: m.Hints}
		case Ask:
			if ask == nil {
				ask = &AskError{Rule: m.Rule, Command: m.Text, Reason: m.Reason, Hints: m.Hints}
			}
			ask.Matches = append(ask.Matches, m)
		}
	}
	if d.Verdict == Deny {
		// Unreachable with a consistent decision; fail closed anyway.
		return &DenyError{Rule: "default", Reason: "the line is denied"}
	}
	if ask != nil {
		return ask
	}
	if d.Verdict == Ask {
		return &AskError{Rule: "default", Reason: "the line needs approval"}
	}
	return nil
}

// Rule names the rule that decided the line: the first match carrying the
// line's verdict ("" for an empty line).
func (d *Decision) Rule() string {
	for _, m := range d.Matches {
		if m.Verdict == d.Verdict {
			return m.Rule
		}
	}
	return ""
}

// Decide analyses the line and judges every simple command in it. It never
// fails: anything it cannot judge gets the policy's unknown verdict.
func (p *Policy) Decide(in Input) *Decision {
	a := newAnalyser(&in)
	st := a.initialState()
	if in.Argv != nil {
		ws := make([]word, len(in.Argv))
		for i, s := range in.Argv {
			ws[i] = word{s: s}
		}
		st.src = strings.Join(in.Argv, " ")
		a.simple(ws, st.src, st, stdin{}, "")
	} else {
		st.depth = -1
		a.line(in.Line, st, stdin{})
	}
	a.release()
	d := &Decision{Verdict: Allow, Commands: a.cmds, Policy: p.source, Digest: p.digest}
	if d.Commands == nil {
		d.Commands = []Command{}
	}
	readOnly := p.roWorkspace
	d.WorkspaceReadOnly = readOnly
	allowing := make([]*Rule, len(a.cmds))
	for i := range a.cmds {
		c := &a.cmds[i]
		if c.builtin != "" {
			d.add(Match{Command: i, Text: c.Text, Rule: c.builtin, Verdict: p.unknown, Reason: c.Unknown, Hints: builtinHints(c)})
			continue
		}
		r := p.match(c, &in, readOnly)
		if r == nil {
			d.add(Match{Command: i, Text: c.Text, Rule: "default", Verdict: p.def,
				Reason: fmt.Sprintf("no rule matches %q", programOf(c)),
				Hints:  []string{"a human can allow it by adding a rule to the policy (agentexec policy show prints the policy in effect)"}})
			continue
		}
		d.add(Match{Command: i, Text: c.Text, Rule: r.ID, Verdict: r.Verdict, Reason: r.Reason, Hints: r.Hints})
		if r.Verdict == Allow {
			allowing[i] = r
			d.Grants.merge(&r.Grants, &in)
		}
	}
	p.checkWrites(d, a, &in, readOnly)
	p.checkCredentials(d, a, allowing)
	if len(d.Matches) == 0 {
		d.Matches = []Match{}
	}
	return d
}

func (d *Decision) add(m Match) {
	d.Matches = append(d.Matches, m)
	if m.Verdict.stricter(d.Verdict) {
		d.Verdict = m.Verdict
	}
}

func programOf(c *Command) string {
	if len(c.Argv) == 0 {
		return c.Text
	}
	return c.Argv[0]
}

func builtinHints(c *Command) []string {
	switch c.builtin {
	case "env-injection":
		return []string{"drop the variable assignment, or ask a human to approve the line"}
	case "unparsable-line":
		return []string{"fix the shell syntax of the line"}
	}
	return []string{"write the program and its arguments out literally (no $VAR, $(...), eval of variables, or scripts piped into a shell) so the policy can judge it"}
}

func (g *Grants) merge(o *Grants, in *Input) {
	for _, w := range o.Write {
		if x, ok := expandVars(w, in); ok && !slices.Contains(g.Write, x) {
			g.Write = append(g.Write, path.Clean(x))
		}
	}
	for _, n := range o.Network {
		if !slices.ContainsFunc(g.Network, func(m NetGrant) bool { return netEqual(m, n) }) {
			g.Network = append(g.Network, n)
		}
	}
	for _, c := range o.Credentials {
		if !slices.Contains(g.Credentials, c) {
			g.Credentials = append(g.Credentials, c)
		}
	}
	g.Limits.MemoryBytes = max(g.Limits.MemoryBytes, o.Limits.MemoryBytes)
	g.Limits.Pids = max(g.Limits.Pids, o.Limits.Pids)
	g.Limits.CPUs = max(g.Limits.CPUs, o.Limits.CPUs)
	g.Timeout = max(g.Timeout, o.Timeout)
}

func netEqual(a, b NetGrant) bool {
	return a.Host == b.Host && slices.Equal(a.Ports, b.Ports) && slices.Equal(a.Methods, b.Methods) &&
		a.Any == b.Any && a.Name == b.Name && a.Registry == b.Registry && a.Rule == b.Rule
}

// under reports whether p is root or inside it (both clean and absolute).
func under(p, root string) bool {
	if root == "/" {
		return true
	}
	return p == root || strings.HasPrefix(p, root+"/")
}

func isDevice(p string) bool {
	switch p {
	case "/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty":
		return true
	}
	return strings.HasPrefix(p, "/dev/fd/") && isInt(p[len("/dev/fd/"):])
}

// writableRoots is the workspace, /tmp, the sandbox's TmpDir and the write
// grants of the line's allowing rules.
func writableRoots(in *Input, readOnly bool, extra []string) []string {
	var roots []string
	if !readOnly && in.Workspace != "" && path.IsAbs(in.Workspace) && path.Clean(in.Workspace) != "/" {
		roots = append(roots, path.Clean(in.Workspace))
	}
	roots = append(roots, "/tmp")
	if in.TmpDir != "" && path.IsAbs(in.TmpDir) && path.Clean(in.TmpDir) != "/" {
		roots = append(roots, path.Clean(in.TmpDir))
	}
	return append(roots, extra...)
}

type place uint8

const (
	placeIn place = iota
	placeOut
	placeUnknown
)

// classify says whether the path word w, resolved against every directory
// the command may run in, is inside roots.
func classify(w word, cwd cwdSet, roots []string, in *Input) (place, string) {
	if w.dyn {
		return placeUnknown, w.s
	}
	s := w.s
	if w.glob {
		// Only the directories before the first glob character are known;
		// a last component such as .* may match "..".
		dir, last := s, ""
		if i := strings.IndexAny(s, "*?["); i >= 0 {
			j := strings.LastIndexByte(s[:i], '/')
			dir, last = s[:j+1], s[j+1:]
			if k := strings.IndexByte(last, '/'); k >= 0 {
				last = last[:k]
			}
		}
		if globMatch(last, "..", true) {
			dir += ".."
		}
		if dir == "" {
			dir = "."
		}
		s = dir
	}
	var res []string
	if path.IsAbs(s) {
		res = []string{path.Clean(s)}
	} else {
		if cwd.unknown || len(cwd.dirs) == 0 {
			return placeUnknown, s
		}
		for _, d := range cwd.dirs {
			res = append(res, path.Join(d, s))
		}
	}
	for _, r := range res {
		if !slices.ContainsFunc(roots, func(root string) bool { return under(r, root) }) {
			return placeOut, r
		}
	}
	return placeIn, res[0]
}

func (p *Policy) checkWrites(d *Decision, a *analyser, in *Input, readOnly bool) {
	roots := writableRoots(in, readOnly, d.Grants.Write)
	for _, w := range a.writes {
		pl, resolved := classify(w.target, w.cwd, roots, in)
		if pl == placeIn || (pl == placeOut && isDevice(resolved)) {
			continue
		}
		why := fmt.Sprintf("the redirection writes to %s, outside the workspace and the writable paths", resolved)
		if pl == placeUnknown {
			why = fmt.Sprintf("the redirection writes to %s, which is not known before it runs", w.target.s)
		}
		d.add(Match{Command: -1, Text: w.text, Rule: "redirect-outside-workspace", Verdict: Deny, Reason: why,
			Hints: []string{"write inside the workspace or $TMPDIR instead"}})
	}
}

// checkCredentials enforces that a credential granted to one command of a
// line cannot be read by anything else in it (docs/policy.md, Credentials).
func (p *Policy) checkCredentials(d *Decision, a *analyser, allowing []*Rule) {
	if len(d.Grants.Credentials) == 0 {
		return
	}
	for _, name := range d.Grants.Credentials {
		var granter string
		for i, r := range allowing {
			if r != nil && slices.Contains(r.Grants.Credentials, name) {
				granter = a.cmds[i].Text
				break
			}
		}
		for i := range a.cmds {
			if r := allowing[i]; r != nil && slices.Contains(r.Grants.Credentials, name) {
				continue
			}
			d.add(Match{Command: i, Text: a.cmds[i].Text, Rule: "credential-scope", Verdict: Deny,
				Reason: fmt.Sprintf("the line receives credential %q (for %q) and %q is not allowed to see it", name, granter, a.cmds[i].Text),
				Hints:  []string{fmt.Sprintf("run %q on its own line, without other commands", granter)}})
		}
		c := p.creds[p.credIdx[name]]
		for _, v := range c.vars() {
			if a.params[v] || a.indirect {
				d.add(Match{Command: -1, Text: "$" + v, Rule: "credential-exposure", Verdict: Deny,
					Reason: fmt.Sprintf("the line expands $%s, which holds credential %q", v, name),
					Hints:  []string{fmt.Sprintf("do not expand $%s in the line; the program reads it from its environment", v)}})
				break
			}
		}
		var ws []string
		if a.in.Workspace != "" && path.IsAbs(a.in.Workspace) && path.Clean(a.in.Workspace) != "/" {
			ws = append(ws, path.Clean(a.in.Workspace))
		}
		for _, w := range a.writes {
			pl, resolved := classify(w.target, w.cwd, ws, a.in)
			if pl == placeIn || (pl == placeOut && isDevice(resolved)) {
				continue
			}
			d.add(Match{Command: -1, Text: w.text, Rule: "credential-redirect", Verdict: Deny,
				Reason: fmt.Sprintf("the line holds credential %q and writes to %s, outside the workspace", name, resolved),
				Hints:  []string{"write the output inside the workspace, or run the credentialed command on its own"}})
		}
	}
}
