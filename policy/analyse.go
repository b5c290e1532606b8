package policy

import (
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// Command is one simple command the line would run, after the analyser has
// seen through quoting, wrappers and nested shells.
type Command struct {
	// Argv is the command as it would be executed. A word whose value is not
	// known before it runs holds its source text (e.g. "$X").
	Argv []string `json:"argv"`
	// Text is the source text it came from.
	Text string `json:"text"`
	// Via lists the wrappers and shells it was found through, outermost
	// first, e.g. ["bash -c", "xargs"].
	Via []string `json:"via,omitempty"`
	// Unknown says why the program cannot be known statically; "" when it can.
	Unknown string `json:"unknown,omitempty"`

	builtin string // built-in rule id for Unknown: unknown-program, unparsable-line, env-injection
	words   []word
	cwd     cwdSet

	// Set by match: the program's basename, whether it was given with a
	// "/", and whether it lives in one of the systemDirs.
	base          string
	slash, system bool
}

// word is one argument after quote removal.
type word struct {
	s     string
	dyn   bool // the value is not known before it runs
	split bool // an unquoted expansion: may become zero or many words
	glob  bool // unquoted glob characters: may become other words
}

// couldBeFlag reports whether the word may be (or expand to) an option.
func (w word) couldBeFlag() bool {
	if w.dyn {
		return true
	}
	if w.glob && w.s != "" && strings.ContainsRune("*?[", rune(w.s[0])) {
		return true
	}
	return strings.HasPrefix(w.s, "-")
}

// cwdSet is the set of directories a command may run in (a failed cd leaves
// the old one), or unknown.
type cwdSet struct {
	dirs    []string
	unknown bool
}

type writeRef struct {
	target word
	text   string
	cwd    cwdSet
}

type stdinKind uint8

const (
	stdinNone stdinKind = iota // inherited: a terminal or the caller's stdin
	stdinPipe
	stdinFile
	stdinDoc // a here-document or here-string
)

type stdin struct {
	kind   stdinKind
	doc    string
	static bool
}

type state struct {
	cwd    cwdSet
	via    []string
	depth  int
	homeOK bool // $HOME and ~ may be expanded from Input.Home
	tmpOK  bool
	src    string
	safe   map[string]bool // variables safe in arithmetic
}

func (st *state) withVia(v string) *state {
	c := *st
	c.via = append(slices.Clone(st.via), v)
	return &c
}

func (st *state) copy() *state {
	c := *st
	c.cwd = cwdSet{dirs: slices.Clone(st.cwd.dirs), unknown: st.cwd.unknown}
	return &c
}

const (
	maxDepth = 24    // nesting of bash -c, eval and friends
	maxSteps = 20000 // statements and words analysed per line
)

type analyser struct {
	in       *Input
	cmds     []Command
	writes   []writeRef
	params   map[string]bool
	indirect bool // ${!x} or ${!prefix*}: may read any variable
	funcs    map[string]bool
	steps    int
	parser   *syntax.Parser
}

// parserPool reuses parsers: a new one costs a few kilobytes of buffers,
// and Decide runs for every line.
var parserPool = sync.Pool{New: func() any { return syntax.NewParser(syntax.Variant(syntax.LangBash)) }}

// release returns the parser; the analyser must not parse after it.
func (a *analyser) release() {
	if a.parser != nil {
		parserPool.Put(a.parser)
		a.parser = nil
	}
}

func newAnalyser(in *Input) *analyser {
	return &analyser{in: in, params: map[string]bool{}, funcs: map[string]bool{}}
}

func (a *analyser) initialState() *state {
	st := &state{homeOK: a.in.Home != "" && strings.HasPrefix(a.in.Home, "/"), tmpOK: a.in.TmpDir != "" && strings.HasPrefix(a.in.TmpDir, "/")}
	if a.in.Cwd != "" && path.IsAbs(a.in.Cwd) {
		st.cwd.dirs = []string{path.Clean(a.in.Cwd)}
	} else {
		st.cwd.unknown = true
	}
	return st
}

func (a *analyser) emit(ws []word, text string, st *state, builtin, unknown string) {
	c := Command{Text: text, Via: slices.Clone(st.via), Unknown: unknown, builtin: builtin, words: ws, cwd: st.cwd}
	c.Argv = make([]string, len(ws))
	for i, w := range ws {
		c.Argv[i] = w.s
	}
	if unknown != "" && builtin == "" {
		c.builtin = "unknown-program"
	}
	a.cmds = append(a.cmds, c)
}

func (a *analyser) unknown(text string, st *state, why string) {
	a.emit(nil, text, st, "unknown-program", why)
}

// line parses src as bash and analyses every statement.
func (a *analyser) line(src string, st *state, in stdin) {
	if st.depth > maxDepth {
		a.unknown(src, st, "shell strings are nested too deeply to analyse")
		return
	}
	if a.parser == nil {
		a.parser = parserPool.Get().(*syntax.Parser)
	}
	f, err := a.parser.Parse(strings.NewReader(src), "")
	if err != nil {
		a.emit(nil, src, st, "unparsable-line", "the line cannot be parsed: "+err.Error())
		return
	}
	inner := st.copy()
	inner.depth++
	inner.src = src
	a.prescan(f, inner)
	a.stmts(f.Stmts, inner, in)
}

// prescan finds variables the line assigns: $HOME assigned in the line is
// no longer the Input's Home, and a variable used in arithmetic is only
// safe when every assignment in the line gives it a plain integer.
func (a *analyser) prescan(f *syntax.File, st *state) {
	safe := map[string]bool{}
	unsafe := map[string]bool{}
	mark := func(name string, ok bool) {
		if name == "HOME" {
			st.homeOK = false
		}
		if name == "TMPDIR" {
			st.tmpOK = false
		}
		if ok {
			safe[name] = true
		} else {
			unsafe[name] = true
		}
	}
	syntax.Walk(f, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.Assign:
			if n.Name != nil {
				ok := n.Value != nil && n.Array == nil && isInt(n.Value.Lit())
				mark(n.Name.Value, ok)
			}
		case *syntax.CallExpr:
			// read, mapfile, printf -v, getopts, unset and friends name
			// variables as plain words.
			for _, w := range n.Args[min(1, len(n.Args)):] {
				l := w.Lit()
				if name, _, _ := strings.Cut(l, "="); name == "HOME" || name == "TMPDIR" {
					mark(name, false)
				}
			}
		case *syntax.WordIter:
			mark(n.Name.Value, false)
		case *syntax.BinaryArithm:
			if w, ok := n.X.(*syntax.Word); ok && n.Op >= syntax.Assgn && n.Op <= syntax.ShrAssgn {
				mark(w.Lit(), true)
			}
		case *syntax.UnaryArithm:
			if w, ok := n.X.(*syntax.Word); ok {
				mark(w.Lit(), true)
			}
		}
		return true
	})
	st.safe = map[string]bool{}
	for k := range safe {
		if !unsafe[k] {
			st.safe[k] = true
		}
	}
}

func isInt(s string) bool {
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

func (a *analyser) budget(st *state, text string) bool {
	a.steps++
	if a.steps == maxSteps {
		a.unknown(text, st, "the line is too large to analyse")
	}
	return a.steps < maxSteps
}

func (a *analyser) stmts(ss []*syntax.Stmt, st *state, in stdin) {
	for _, s := range ss {
		a.stmt(s, st, in)
	}
}

func (a *analyser) text(n syntax.Node, st *state) string {
	if n == nil || !n.Pos().IsValid() || !n.End().IsValid() {
		return ""
	}
	b, e := int(n.Pos().Offset()), int(n.End().Offset())
	if b < 0 || e > len(st.src) || b > e {
		return ""
	}
	return st.src[b:e]
}

func isWrite(op syntax.RedirOperator) bool {
	switch op {
	case syntax.RdrOut, syntax.AppOut, syntax.RdrInOut, syntax.RdrClob, syntax.AppClob,
		syntax.RdrAll, syntax.RdrAllClob, syntax.AppAll, syntax.AppAllClob, syntax.DplOut:
		return true
	}
	return false
}

func (a *analyser) stmt(s *syntax.Stmt, st *state, in stdin) {
	if !a.budget(st, a.text(s, st)) {
		return
	}
	for _, r := range s.Redirs {
		if r.Word != nil && r.Op != syntax.Hdoc && r.Op != syntax.DashHdoc {
			ws := a.words(r.Word, st)
			if isWrite(r.Op) {
				for _, w := range ws {
					if r.Op == syntax.DplOut && !w.dyn && (w.s == "-" || isInt(w.s)) {
						continue // >&2, >&- : a descriptor, not a file
					}
					a.writes = append(a.writes, writeRef{target: w, text: a.text(r, st), cwd: st.cwd})
				}
				if len(ws) != 1 {
					a.writes = append(a.writes, writeRef{target: word{s: a.text(r.Word, st), dyn: true}, text: a.text(r, st), cwd: st.cwd})
				}
			}
			switch r.Op {
			case syntax.RdrIn, syntax.DplIn, syntax.RdrInOut:
				in = stdin{kind: stdinFile}
			case syntax.WordHdoc:
				in = stdin{kind: stdinDoc}
				if len(ws) == 1 && !ws[0].dyn && !ws[0].glob {
					in.doc, in.static = ws[0].s+"\n", true
				}
			}
		}
		if r.Hdoc != nil {
			in = a.heredoc(r, st)
		}
	}
	switch c := s.Cmd.(type) {
	case nil:
	case *syntax.CallExpr:
		a.call(c, st, in)
	case *syntax.Block:
		a.stmts(c.Stmts, st, in)
	case *syntax.Subshell:
		a.stmts(c.Stmts, st.copy(), in)
	case *syntax.BinaryCmd:
		switch c.Op {
		case syntax.Pipe, syntax.PipeAll:
			// Each side of a pipeline runs in its own subshell.
			a.stmt(c.X, st.copy(), in)
			a.stmt(c.Y, st.copy(), stdin{kind: stdinPipe})
		default:
			a.stmt(c.X, st, in)
			a.stmt(c.Y, st, in)
		}
	case *syntax.IfClause:
		for cl := c; cl != nil; cl = cl.Else {
			a.stmts(cl.Cond, st, in)
			a.stmts(cl.Then, st, in)
		}
	case *syntax.WhileClause:
		a.stmts(c.Cond, st, in)
		a.stmts(c.Do, st, in)
	case *syntax.ForClause:
		switch l := c.Loop.(type) {
		case *syntax.WordIter:
			for _, w := range l.Items {
				a.words(w, st)
			}
		case *syntax.CStyleLoop:
			for _, x := range []syntax.ArithmExpr{l.Init, l.Cond, l.Post} {
				if x != nil {
					a.arith(x, st)
				}
			}
		}
		a.stmts(c.Do, st, in)
	case *syntax.CaseClause:
		a.words(c.Word, st)
		for _, it := range c.Items {
			for _, p := range it.Patterns {
				a.words(p, st)
			}
			a.stmts(it.Stmts, st, in)
		}
	case *syntax.FuncDecl:
		// The body is analysed where it is defined, as if it ran there;
		// calls to it later in the line are then not programs.
		if c.Name != nil {
			a.funcs[c.Name.Value] = true
		}
		a.stmt(c.Body, st.copy(), in)
	case *syntax.ArithmCmd:
		a.arith(c.X, st)
	case *syntax.LetClause:
		for _, x := range c.Exprs {
			a.arith(x, st)
		}
	case *syntax.TestClause:
		a.test(c.X, st)
	case *syntax.DeclClause:
		a.decl(c, s, st)
	case *syntax.TimeClause:
		if c.Stmt != nil {
			a.stmt(c.Stmt, st, in)
		}
	case *syntax.CoprocClause:
		if c.Stmt != nil {
			a.stmt(c.Stmt, st.copy(), in)
		}
	default:
		a.unknown(a.text(s, st), st, "the construct is not supported by the analyser")
	}
}

func (a *analyser) heredoc(r *syntax.Redirect, st *state) stdin {
	in := stdin{kind: stdinDoc}
	quoted := false
	if r.Word != nil {
		for _, p := range r.Word.Parts {
			switch p := p.(type) {
			case *syntax.SglQuoted, *syntax.DblQuoted:
				quoted = true
			case *syntax.Lit:
				if strings.Contains(p.Value, "\\") {
					quoted = true
				}
			}
		}
	}
	// An unquoted here-document expands $(...) when it is read: analyse it.
	a.scan(r.Hdoc, st)
	var b strings.Builder
	for _, p := range r.Hdoc.Parts {
		l, ok := p.(*syntax.Lit)
		if !ok || (!quoted && strings.Contains(l.Value, "\\")) {
			return in
		}
		b.WriteString(l.Value)
	}
	in.doc, in.static = b.String(), true
	return in
}

// dangerousVar reports variables whose assignment changes which program
// runs or makes the shell run code: they turn a known command into an
// unknown one.
func dangerousVar(name string) bool {
	switch name {
	case "PATH", "BASH_ENV", "ENV", "PROMPT_COMMAND", "PS1", "PS2", "PS4", "SHELLOPTS", "BASHOPTS",
		"CDPATH", "GLOBIGNORE", "IFS", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "NODE_OPTIONS", "NODE_PATH",
		"PERL5OPT", "PERL5LIB", "PERLLIB", "RUBYOPT", "RUBYLIB", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_EXEC_PATH",
		"GIT_PAGER", "PAGER", "EDITOR", "VISUAL", "GIT_EDITOR", "GIT_ASKPASS", "SSH_ASKPASS", "GIT_CONFIG",
		"GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "GIT_TEMPLATE_DIR",
		"GIT_PROXY_COMMAND", "GIT_EXTERNAL_DIFF", "LESSOPEN", "LESSCLOSE", "MAKEFLAGS", "GOFLAGS", "CC", "CXX", "LD":
		return true
	}
	return strings.HasPrefix(name, "LD_") || strings.HasPrefix(name, "DYLD_") ||
		strings.HasPrefix(name, "BASH_FUNC_") || strings.HasPrefix(name, "GIT_CONFIG_KEY_") ||
		strings.HasPrefix(name, "GIT_CONFIG_VALUE_")
}

func injection(name string) string {
	return "it sets " + name + ", which changes which program runs or what it runs"
}

func (a *analyser) call(ce *syntax.CallExpr, st *state, in stdin) {
	inj := ""
	for _, as := range ce.Assigns {
		a.assign(as, st)
		if as.Name != nil && dangerousVar(as.Name.Value) && inj == "" {
			inj = injection(as.Name.Value)
		}
		if as.Name != nil && len(ce.Args) == 0 && as.Name.Value == "CDPATH" {
			st.cwd = cwdSet{unknown: true}
		}
	}
	text := a.text(ce, st)
	if len(ce.Args) == 0 {
		if inj != "" {
			a.emit(nil, text, st, "env-injection", inj)
		}
		return
	}
	var ws []word
	for _, w := range ce.Args {
		ws = append(ws, a.words(w, st)...)
	}
	a.simple(ws, text, st, in, inj)
}

func (a *analyser) assign(as *syntax.Assign, st *state) {
	if as.Value != nil {
		a.words(as.Value, st)
	}
	if as.Array != nil {
		for _, e := range as.Array.Elems {
			if e.Value != nil {
				a.words(e.Value, st)
			}
			if e.Index != nil {
				a.arith(e.Index, st)
			}
		}
	}
	if as.Index != nil {
		a.arith(as.Index, st)
	}
}

func (a *analyser) decl(d *syntax.DeclClause, s *syntax.Stmt, st *state) {
	ws := []word{{s: d.Variant.Value}}
	inj := ""
	for _, as := range d.Args {
		a.assign(as, st)
		switch {
		case as.Name != nil:
			if dangerousVar(as.Name.Value) && !as.Naked && inj == "" {
				inj = injection(as.Name.Value)
			}
			ws = append(ws, word{s: a.text(as, st)})
		case as.Value != nil:
			// A naked, expanded argument (declare "$x") may be any
			// assignment or option.
			vw := a.words(as.Value, st)
			for _, w := range vw {
				if w.dyn && inj == "" {
					inj = "it declares a variable whose name is not known before it runs"
				}
				if !w.dyn {
					name, _, _ := strings.Cut(w.s, "=")
					if dangerousVar(name) && strings.Contains(w.s, "=") && inj == "" {
						inj = injection(name)
					}
				}
			}
			ws = append(ws, vw...)
		}
	}
	text := a.text(d, st)
	if inj != "" {
		a.emit(ws, text, st, "env-injection", inj)
		return
	}
	a.emit(ws, text, st, "", "")
}

// scan analyses the command and process substitutions inside a node and
// records the parameters it expands. It reports whether the node expands
// anything at run time.
func (a *analyser) scan(n syntax.Node, st *state) (dynamic bool) {
	if nilNode(n) {
		return false
	}
	syntax.Walk(n, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.CmdSubst:
			dynamic = true
			a.stmts(n.Stmts, st.copy(), stdin{})
			return false
		case *syntax.ProcSubst:
			dynamic = true
			a.stmts(n.Stmts, st.copy(), stdin{kind: stdinPipe})
			return false
		case *syntax.ParamExp:
			dynamic = true
			if n.Excl || n.Names != 0 || n.NestedParam != nil {
				a.indirect = true
			}
			if n.Param != nil {
				a.params[n.Param.Value] = true
			}
			if n.Index != nil {
				a.arith(n.Index, st)
			}
			if n.Slice != nil {
				if n.Slice.Offset != nil {
					a.arith(n.Slice.Offset, st)
				}
				if n.Slice.Length != nil {
					a.arith(n.Slice.Length, st)
				}
			}
			if n.Repl != nil {
				a.scan(n.Repl.Orig, st)
				a.scan(n.Repl.With, st)
			}
			if n.Exp != nil {
				a.scan(n.Exp.Word, st)
			}
			return false
		case *syntax.ArithmExp:
			dynamic = true
			a.arith(n.X, st)
			return false
		}
		return true
	})
	return dynamic
}

// arith checks an arithmetic expression. Bash evaluates the value of a
// variable used in arithmetic as an expression, and an array subscript in
// that value runs command substitutions: (( x )) with x='a[$(cmd)]' runs
// cmd. So a variable the line does not itself set to an integer makes the
// line unknown.
func (a *analyser) arith(x syntax.ArithmExpr, st *state) {
	if nilNode(x) {
		return
	}
	a.scan(x, st)
	var bad string
	syntax.Walk(x, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.ParamExp:
			if n.Param != nil && !st.safe[n.Param.Value] && !specialParam(n.Param.Value) && bad == "" {
				bad = n.Param.Value
			}
			return false
		case *syntax.Word:
			if l := n.Lit(); isName(l) && !st.safe[l] && bad == "" {
				bad = l
			}
		}
		return true
	})
	if bad != "" {
		a.unknown(a.text(x, st), st, "arithmetic on $"+bad+" can run commands hidden in its value")
	}
}

// nilNode catches the typed nils the syntax tree holds in optional fields.
func nilNode(n syntax.Node) bool {
	switch n := n.(type) {
	case nil:
		return true
	case *syntax.Word:
		return n == nil
	case *syntax.Stmt:
		return n == nil
	}
	return false
}

func specialParam(s string) bool {
	return s == "#" || s == "?" || s == "$" || s == "!" || s == "-" || (len(s) > 0 && s[0] >= '0' && s[0] <= '9')
}

func isName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func (a *analyser) test(x syntax.TestExpr, st *state) {
	switch x := x.(type) {
	case *syntax.BinaryTest:
		switch x.Op {
		case syntax.TsEql, syntax.TsNeq, syntax.TsLss, syntax.TsGtr, syntax.TsLeq, syntax.TsGeq:
			for _, side := range []syntax.TestExpr{x.X, x.Y} {
				if w, ok := side.(*syntax.Word); ok && !isInt(w.Lit()) {
					a.arith(w, st)
				}
			}
		}
		a.test(x.X, st)
		a.test(x.Y, st)
	case *syntax.UnaryTest:
		if w, ok := x.X.(*syntax.Word); ok && (x.Op == syntax.TsVarSet || x.Op == syntax.TsRefVar) {
			if l := w.Lit(); l == "" || subscriptCode(word{s: l}) || strings.Contains(a.text(w, st), "[") {
				a.unknown(a.text(x, st), st, "-v evaluates an array subscript, which can run commands")
			}
		}
		a.test(x.X, st)
	case *syntax.ParenTest:
		a.test(x.X, st)
	case *syntax.Word:
		a.scan(x, st)
	}
}

// words expands one shell word into the arguments it becomes.
func (a *analyser) words(w *syntax.Word, st *state) []word {
	if w == nil || len(w.Parts) == 0 {
		return nil
	}
	a.steps++
	// Fast path: one plain literal with nothing to expand.
	if len(w.Parts) == 1 {
		if l, ok := w.Parts[0].(*syntax.Lit); ok && !strings.ContainsAny(l.Value, "\\~{*?[") {
			return []word{{s: l.Value}}
		}
	}
	dyn := a.scan(w, st)
	glob := false
	split := false
	known := true
	for _, p := range w.Parts {
		switch p := p.(type) {
		case *syntax.Lit:
			if unescapedMeta(p.Value) {
				glob = true
			}
		case *syntax.ExtGlob:
			glob = true
		case *syntax.ParamExp, *syntax.CmdSubst, *syntax.ArithmExp, *syntax.ProcSubst:
			split = true
		}
	}
	syntax.Walk(w, func(n syntax.Node) bool {
		if pe, ok := n.(*syntax.ParamExp); ok {
			if !a.knownParam(pe, st) {
				known = false
			}
			if pe.Param != nil && (pe.Param.Value == "@" || pe.Param.Value == "*") {
				split = true
			}
			if pe.Index != nil {
				split = true
			}
			return false
		}
		switch n.(type) {
		case *syntax.CmdSubst, *syntax.ProcSubst, *syntax.ArithmExp:
			known = false
			return false
		}
		return true
	})
	if dyn && !known {
		return []word{{s: a.text(w, st), dyn: true, split: split, glob: glob}}
	}
	env := []string{}
	if st.homeOK {
		env = append(env, "HOME="+a.in.Home)
	}
	if st.tmpOK {
		env = append(env, "TMPDIR="+a.in.TmpDir)
	}
	fields, err := expand.Fields(&expand.Config{Env: expand.ListEnviron(env...)}, w)
	if err != nil {
		return []word{{s: a.text(w, st), dyn: true, split: true, glob: glob}}
	}
	if l, ok := w.Parts[0].(*syntax.Lit); ok && strings.HasPrefix(l.Value, "~") {
		// ~ and ~/ are Input.Home; ~user, ~+ and ~- are not known here.
		user, _, _ := strings.Cut(l.Value, "/")
		if user != "~" || !st.homeOK {
			return []word{{s: a.text(w, st), dyn: true}}
		}
	}
	out := make([]word, len(fields))
	for i, f := range fields {
		out[i] = word{s: f, glob: glob}
	}
	return out
}

func (a *analyser) knownParam(pe *syntax.ParamExp, st *state) bool {
	if pe.Param == nil || pe.Excl || pe.Length || pe.Index != nil || pe.Slice != nil || pe.Repl != nil || pe.Exp != nil || pe.Names != 0 {
		return false
	}
	switch pe.Param.Value {
	case "HOME":
		return st.homeOK
	case "TMPDIR":
		return st.tmpOK
	}
	return false
}

func unescapedMeta(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '*', '?', '[':
			return true
		}
	}
	return false
}
