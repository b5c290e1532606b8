package policy

import (
	"mvdan.cc/sh/v3/syntax"
	"path"
	"slices"
	"strings"
)

// systemDirs are where a program given by absolute path is treated like the
// same program found on PATH: a wrapper there is unwrapped, and a basename
// rule may allow it. Anything elsewhere (./git, /tmp/x/git) is matched only
// by path patterns and by deny and ask rules.
var systemDirs = []string{"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"}

func inSystemDir(p string) bool {
	return slices.Contains(systemDirs, path.Dir(p))
}

var shells = map[string]bool{"sh": true, "bash": true, "dash": true, "zsh": true, "ksh": true, "mksh": true, "ash": true, "rbash": true}

var interpreters = map[string]bool{
	"python": true, "python2": true, "python3": true, "node": true, "nodejs": true, "perl": true,
	"ruby": true, "php": true, "lua": true, "deno": true, "bun": true, "tclsh": true, "Rscript": true,
}

// nameTakers are builtins that take variable names, whose array
// subscripts bash evaluates as arithmetic: unset 'a[$(cmd)]' runs cmd.
var nameTakers = map[string]bool{
	"test": true, "[": true, "printf": true, "read": true, "mapfile": true, "readarray": true, "unset": true,
	"declare": true, "local": true, "export": true, "readonly": true, "typeset": true, "getopts": true, "wait": true,
}

func subscriptCode(w word) bool {
	i := strings.IndexByte(w.s, '[')
	return i >= 0 && strings.ContainsAny(w.s[i:], "$`")
}

// simple analyses one simple command: ws[0] is the program.
func (a *analyser) simple(ws []word, text string, st *state, in stdin, inj string) {
	if len(ws) == 0 {
		return
	}
	if !a.budget(st, text) {
		return
	}
	w0 := ws[0]
	if w0.dyn {
		a.emit(ws, text, st, "unknown-program", "the program "+w0.s+" is not known before it runs")
		return
	}
	if w0.glob {
		a.emit(ws, text, st, "unknown-program", "the program "+w0.s+" is a glob pattern")
		return
	}
	if inj != "" {
		a.emit(ws, text, st, "env-injection", inj)
		// Keep going: the payload is judged too, and the stricter wins.
	}
	name := w0.s
	if nameTakers[name] && slices.ContainsFunc(ws[1:], subscriptCode) &&
		(name != "printf" || slices.ContainsFunc(ws[1:], func(w word) bool { return w.s == "-v" })) {
		a.emit(ws, text, st, "unknown-program", name+" evaluates an array subscript in a variable name, which can run commands")
		return
	}
	if !strings.Contains(name, "/") && a.funcs[name] {
		return // a function defined earlier in the line: its body was analysed
	}
	base := name
	if strings.Contains(name, "/") {
		if !path.IsAbs(name) || !inSystemDir(path.Clean(name)) {
			a.emit(ws, text, st, "", "")
			return
		}
		base = path.Base(name)
	}
	switch {
	case base == "env":
		a.env(ws, text, st, in)
	case base == "command":
		if len(ws) > 1 && !ws[1].dyn && (strings.HasPrefix(ws[1].s, "-v") || strings.HasPrefix(ws[1].s, "-V")) {
			a.emit(ws, text, st, "", "") // a lookup, nothing runs
			return
		}
		a.wrapper(ws, text, st, in, "command", map[string]int{"-p": 0})
	case base == "builtin":
		a.wrapper(ws, text, st, in, "builtin", nil)
	case base == "exec":
		a.wrapper(ws, text, st, in, "exec", map[string]int{"-c": 0, "-l": 0, "-cl": 0, "-lc": 0, "-a": 1})
	case base == "nice":
		a.nice(ws, text, st, in)
	case base == "nohup":
		a.wrapper(ws, text, st, in, "nohup", nil)
	case base == "setsid":
		a.wrapper(ws, text, st, in, "setsid", map[string]int{"-c": 0, "-f": 0, "-w": 0, "--ctty": 0, "--fork": 0, "--wait": 0})
	case base == "stdbuf":
		a.wrapper(ws, text, st, in, "stdbuf", map[string]int{"-i": 1, "-o": 1, "-e": 1, "-i*": 0, "-o*": 0, "-e*": 0, "--input=*": 0, "--output=*": 0, "--error=*": 0})
	case base == "ionice":
		a.wrapper(ws, text, st, in, "ionice", map[string]int{"-c": 1, "-n": 1, "-t": 0, "-c*": 0, "-n*": 0, "--class": 1, "--classdata": 1, "--ignore": 0})
	case base == "timeout":
		a.timeout(ws, text, st, in)
	case base == "time":
		a.time(ws, text, st, in)
	case base == "xargs":
		a.xargs(ws, text, st)
	case base == "sudo" || base == "doas":
		a.emit(ws, text, st, "", "")
		a.sudo(ws, text, st, in, base)
	case base == "su":
		a.emit(ws, text, st, "", "")
		a.su(ws, st, in)
	case base == "find":
		a.find(ws, text, st)
	case base == "eval":
		a.eval(ws[1:], text, st, in, "eval")
	case base == "trap":
		a.trap(ws, text, st)
	case shells[base]:
		a.shell(ws, text, st, in, base)
	case base == "busybox":
		if len(ws) > 1 {
			a.simple(ws[1:], text, st.withVia("busybox"), in, "")
			return
		}
		a.emit(ws, text, st, "", "")
	case base == "agentexec":
		a.agentexec(ws, text, st, in)
	case base == "cd" || base == "pushd":
		a.emit(ws, text, st, "", "")
		a.cd(ws, st)
	case base == "popd":
		a.emit(ws, text, st, "", "")
		st.cwd = cwdSet{unknown: true}
	case base == "shopt" && slices.ContainsFunc(ws, func(w word) bool { return w.dyn || w.s == "expand_aliases" }):
		a.emit(ws, text, st, "unknown-program", "it enables aliases, which change what later words run")
	case base == "hash" && slices.ContainsFunc(ws, func(w word) bool { return w.dyn || strings.HasPrefix(w.s, "-p") }):
		a.emit(ws, text, st, "unknown-program", "hash -p changes which file a program name runs")
	case base == "enable" && slices.ContainsFunc(ws, func(w word) bool { return w.dyn || strings.HasPrefix(w.s, "-f") }):
		a.emit(ws, text, st, "unknown-program", "enable -f loads code from a shared object")
	case base == "fc":
		a.emit(ws, text, st, "unknown-program", "fc re-runs commands from the history")
	case (base == "mapfile" || base == "readarray") && slices.ContainsFunc(ws, func(w word) bool { return w.dyn || strings.HasPrefix(w.s, "-C") }):
		a.emit(ws, text, st, "unknown-program", "mapfile -C runs a callback")
	case interpreters[base] || strings.HasPrefix(base, "python3."):
		a.interpreter(ws, text, st, in)
	default:
		a.emit(ws, text, st, "", "")
	}
}

// wrapper strips the options of a transparent wrapper and analyses the
// program it runs. opts maps an option to the number of values it takes;
// a key ending in * matches options with an attached value. An option it
// does not know makes the command unknown: the wrapper may treat the next
// word differently than we would.
func (a *analyser) wrapper(ws []word, text string, st *state, in stdin, name string, opts map[string]int) {
	i := 1
	for i < len(ws) {
		w := ws[i]
		if w.couldBeFlag() && w.dyn {
			a.emit(ws, text, st, "unknown-program", "cannot tell which program "+name+" runs: "+w.s+" is not known before it runs")
			return
		}
		if w.s == "--" {
			i++
			break
		}
		if !strings.HasPrefix(w.s, "-") || w.s == "-" {
			break
		}
		n, ok := lookupOpt(opts, w.s)
		if !ok {
			a.emit(ws, text, st, "unknown-program", "cannot tell which program "+name+" runs with option "+w.s)
			return
		}
		i += 1 + n
	}
	if i >= len(ws) {
		if name == "exec" || name == "command" || name == "builtin" {
			return // exec with only redirections, or a bare builtin
		}
		a.emit(ws, text, st, "", "")
		return
	}
	a.simple(ws[i:], text, st.withVia(name), in, "")
}

func lookupOpt(opts map[string]int, s string) (int, bool) {
	if n, ok := opts[s]; ok {
		return n, true
	}
	for k, n := range opts {
		if p, ok := strings.CutSuffix(k, "*"); ok && strings.HasPrefix(s, p) && len(s) > len(p) {
			return n, true
		}
	}
	if strings.HasPrefix(s, "--") {
		if k, _, ok := strings.Cut(s, "="); ok {
			if _, ok := opts[k+"=*"]; ok {
				return 0, true
			}
		}
	}
	return 0, false
}

func (a *analyser) env(ws []word, text string, st *state, in stdin) {
	st = st.copy()
	inj := ""
	i := 1
	for i < len(ws) {
		w := ws[i]
		if w.dyn {
			a.emit(ws, text, st, "unknown-program", "cannot tell which program env runs: "+w.s+" is not known before it runs")
			return
		}
		s := w.s
		switch {
		case s == "--":
			i++
			continue
		case s == "-" || s == "-i" || s == "--ignore-environment" || s == "-0" || s == "--null" || s == "-v" || s == "--debug":
			i++
			continue
		case s == "-u" || s == "--unset" || s == "-a" || s == "--argv0":
			i += 2
			continue
		case strings.HasPrefix(s, "--unset=") || strings.HasPrefix(s, "--argv0=") ||
			strings.HasPrefix(s, "--block-signal") || strings.HasPrefix(s, "--default-signal") || strings.HasPrefix(s, "--ignore-signal") ||
			(strings.HasPrefix(s, "-u") && len(s) > 2):
			i++
			continue
		case s == "-C" || s == "--chdir" || strings.HasPrefix(s, "--chdir=") || (strings.HasPrefix(s, "-C") && len(s) > 2):
			dir, n := optValue(ws, i, "-C", "--chdir")
			if dir.dyn {
				st.cwd = cwdSet{unknown: true}
			} else {
				st.cwd = cwdSet{dirs: []string{resolve(st.cwd.dirs[0:min(1, len(st.cwd.dirs))], dir.s)}, unknown: st.cwd.unknown && !path.IsAbs(dir.s)}
			}
			i += n
			continue
		case s == "-S" || s == "--split-string" || strings.HasPrefix(s, "--split-string=") || (strings.HasPrefix(s, "-S") && len(s) > 2):
			str, n := optValue(ws, i, "-S", "--split-string")
			split, ok := a.splitString(str)
			if !ok {
				a.emit(ws, text, st, "unknown-program", "cannot tell which program env -S runs from "+str.s)
				return
			}
			ws = slices.Concat(ws[:i], split, ws[min(i+n, len(ws)):])
			continue
		case strings.HasPrefix(s, "-") && len(s) > 1:
			a.emit(ws, text, st, "unknown-program", "cannot tell which program env runs with option "+s)
			return
		}
		// env takes any word with "=" before the program as an
		// assignment, even one bash could not write (BASH_FUNC_f%%=...).
		if name, _, ok := strings.Cut(s, "="); ok {
			if (dangerousVar(name) || !isName(name)) && inj == "" {
				inj = injection(name)
			}
			if name == "HOME" {
				st.homeOK = false
			}
			if name == "TMPDIR" {
				st.tmpOK = false
			}
			i++
			continue
		}
		break
	}
	if i >= len(ws) {
		if inj != "" {
			a.emit(ws, text, st, "env-injection", inj)
			return
		}
		a.emit(ws, text, st, "", "") // env alone prints the environment
		return
	}
	a.simple(ws[i:], text, st.withVia("env"), in, inj)
}

// optValue returns the value of option ws[i] (attached or the next word)
// and how many words it used.
func optValue(ws []word, i int, short, long string) (word, int) {
	s := ws[i].s
	if v, ok := strings.CutPrefix(s, long+"="); ok {
		return word{s: v}, 1
	}
	if s != short && s != long && strings.HasPrefix(s, short) {
		return word{s: s[len(short):]}, 1
	}
	if i+1 < len(ws) {
		return ws[i+1], 2
	}
	return word{s: "", dyn: true}, 1
}

// splitString splits env -S's argument the way env does, which for literal
// text agrees with the shell's quoting; anything that would expand makes
// it unknown.
func (a *analyser) splitString(w word) ([]word, bool) {
	if w.dyn || strings.Contains(w.s, "$") || strings.Contains(w.s, "`") || strings.Contains(w.s, "\\c") {
		return nil, false
	}
	if a.parser == nil {
		return nil, false
	}
	f, err := a.parser.Parse(strings.NewReader(w.s), "")
	if err != nil || len(f.Stmts) != 1 {
		return nil, false
	}
	ce, ok := f.Stmts[0].Cmd.(*syntax.CallExpr)
	if !ok || len(ce.Assigns) > 0 || len(f.Stmts[0].Redirs) > 0 || f.Stmts[0].Background || f.Stmts[0].Negated {
		return nil, false
	}
	sub := newAnalyser(a.in)
	st := sub.initialState()
	st.src = w.s
	var out []word
	for _, x := range ce.Args {
		ws := sub.words(x, st)
		for _, y := range ws {
			if y.dyn || y.glob {
				return nil, false
			}
		}
		out = append(out, ws...)
	}
	return out, len(sub.cmds) == 0
}

// options walks the options of wrapper name after ws[0] and returns the
// index of its first operand. span says how many words the option at ws[i]
// takes, or 0 for an option it does not know. A word not known before it
// runs, or an unknown option, makes the command unknown (the wrapper may
// read the next word differently than we would): options then emits it and
// returns -1.
func (a *analyser) options(ws []word, text string, st *state, name string, span func(s string, i int) int) int {
	i := 1
	for i < len(ws) {
		s := ws[i].s
		if ws[i].dyn {
			a.emit(ws, text, st, "unknown-program", "cannot tell which program "+name+" runs: "+s+" is not known before it runs")
			return -1
		}
		if s == "--" {
			return i + 1
		}
		if !strings.HasPrefix(s, "-") || s == "-" {
			return i
		}
		n := span(s, i)
		if n == 0 {
			a.emit(ws, text, st, "unknown-program", "cannot tell which program "+name+" runs with option "+s)
			return -1
		}
		i += n
	}
	return i
}

// runs analyses the program a wrapper runs, ws[i:]; with none, the
// wrapper line is judged as it is.
func (a *analyser) runs(ws []word, i int, text string, st *state, in stdin, name string) {
	if i >= len(ws) {
		a.emit(ws, text, st, "", "")
		return
	}
	a.simple(ws[i:], text, st.withVia(name), in, "")
}

func (a *analyser) nice(ws []word, text string, st *state, in stdin) {
	i := a.options(ws, text, st, "nice", func(s string, _ int) int {
		switch {
		case s == "-n" || s == "--adjustment":
			return 2
		case strings.HasPrefix(s, "--adjustment=") || (strings.HasPrefix(s, "-n") && len(s) > 2) || (len(s) > 1 && s[0] == '-' && isInt(s[1:])):
			return 1
		}
		return 0
	})
	if i >= 0 {
		a.runs(ws, i, text, st, in, "nice")
	}
}

func (a *analyser) timeout(ws []word, text string, st *state, in stdin) {
	i := a.options(ws, text, st, "timeout", func(s string, _ int) int {
		switch {
		case s == "-s" || s == "--signal" || s == "-k" || s == "--kill-after":
			return 2
		case s == "--foreground" || s == "--preserve-status" || s == "-v" || s == "--verbose" || s == "-f" || s == "-p" ||
			strings.HasPrefix(s, "--signal=") || strings.HasPrefix(s, "--kill-after=") ||
			(strings.HasPrefix(s, "-s") && len(s) > 2) || (strings.HasPrefix(s, "-k") && len(s) > 2):
			return 1
		}
		return 0
	})
	if i >= 0 {
		a.runs(ws, i+1, text, st, in, "timeout") // i is the duration
	}
}

func (a *analyser) time(ws []word, text string, st *state, in stdin) {
	i := a.options(ws, text, st, "time", func(s string, i int) int {
		switch {
		case s == "-o" || s == "--output" || strings.HasPrefix(s, "--output=") || (strings.HasPrefix(s, "-o") && len(s) > 2):
			v, n := optValue(ws, i, "-o", "--output")
			a.writes = append(a.writes, writeRef{target: v, text: text, cwd: st.cwd})
			return n
		case s == "-f" || s == "--format":
			return 2
		case s == "-p" || s == "-v" || s == "-q" || s == "-a" || s == "--portability" || s == "--verbose" || s == "--quiet" || s == "--append" || strings.HasPrefix(s, "--format="):
			return 1
		}
		return 0
	})
	if i >= 0 {
		a.runs(ws, i, text, st, in, "time")
	}
}

func (a *analyser) xargs(ws []word, text string, st *state) {
	withVal := map[string]bool{"-a": true, "-d": true, "-E": true, "-I": true, "-L": true, "-n": true, "-P": true, "-s": true,
		"--arg-file": true, "--delimiter": true, "--max-args": true, "--max-procs": true, "--max-chars": true, "--max-lines": true, "--process-slot-var": true}
	flags := map[string]bool{"-0": true, "--null": true, "-o": true, "--open-tty": true, "-p": true, "--interactive": true, "-r": true,
		"--no-run-if-empty": true, "-t": true, "--verbose": true, "-x": true, "--exit": true, "--show-limits": true}
	repl := ""
	i := 1
	for i < len(ws) {
		w := ws[i]
		if w.dyn {
			a.emit(ws, text, st, "unknown-program", "cannot tell which program xargs runs: "+w.s+" is not known before it runs")
			return
		}
		s := w.s
		if s == "--" {
			i++
			break
		}
		if !strings.HasPrefix(s, "-") || s == "-" {
			break
		}
		switch {
		case s == "-I" || s == "--replace":
			if s == "--replace" {
				repl = "{}"
				i++
				continue
			}
			if i+1 < len(ws) {
				repl = ws[i+1].s
			}
			i += 2
		case withVal[s]:
			i += 2
		case flags[s]:
			i++
		case strings.HasPrefix(s, "-I"):
			repl = s[2:]
			i++
		case s == "-i" || strings.HasPrefix(s, "--replace="):
			repl = "{}"
			if v, ok := strings.CutPrefix(s, "--replace="); ok {
				repl = v
			}
			i++
		case strings.HasPrefix(s, "-i"):
			repl = s[2:]
			i++
		case len(s) > 2 && s[1] != '-' && withVal[s[:2]], strings.HasPrefix(s, "-e"), strings.HasPrefix(s, "-l"),
			strings.HasPrefix(s, "--") && strings.Contains(s, "=") && withVal[s[:strings.IndexByte(s, '=')]]:
			i++
		default:
			a.emit(ws, text, st, "unknown-program", "cannot tell which program xargs runs with option "+s)
			return
		}
	}
	payload := []word{{s: "echo"}}
	if i < len(ws) {
		payload = slices.Clone(ws[i:])
	}
	for j := range payload {
		if repl != "" && strings.Contains(payload[j].s, repl) {
			payload[j] = word{s: payload[j].s, dyn: true}
		}
	}
	if repl == "" {
		payload = append(payload, word{s: "<stdin words>", dyn: true, split: true})
	}
	a.simple(payload, text, st.withVia("xargs"), stdin{kind: stdinPipe}, "")
}

func (a *analyser) sudo(ws []word, text string, st *state, in stdin, name string) {
	withVal := map[string]bool{"-u": true, "-g": true, "-p": true, "-U": true, "-C": true, "-D": true, "-r": true, "-t": true, "-T": true, "-R": true, "-h": true,
		"--user": true, "--group": true, "--prompt": true, "--other-user": true, "--close-from": true, "--chdir": true, "--role": true, "--type": true,
		"--command-timeout": true, "--chroot": true, "--host": true}
	if name == "doas" {
		withVal = map[string]bool{"-u": true, "-C": true}
	}
	i := 1
	inj := ""
	for i < len(ws) {
		w := ws[i]
		if w.dyn {
			a.emit(ws, text, st, "unknown-program", "cannot tell which program "+name+" runs: "+w.s+" is not known before it runs")
			return
		}
		s := w.s
		if s == "--" {
			i++
			break
		}
		if strings.HasPrefix(s, "-") && s != "-" {
			if withVal[s] {
				i += 2
			} else {
				i++
			}
			continue
		}
		if n, _, ok := strings.Cut(s, "="); ok && isName(n) {
			if dangerousVar(n) && inj == "" {
				inj = injection(n)
			}
			i++
			continue
		}
		break
	}
	if i >= len(ws) {
		return // sudo -s, sudo -l and the like: judged as sudo itself
	}
	a.simple(ws[i:], text, st.withVia(name), in, inj)
}

func (a *analyser) su(ws []word, st *state, in stdin) {
	for i := 1; i < len(ws); i++ {
		s := ws[i].s
		var cmd word
		switch {
		case s == "-c" || s == "--command" || s == "--session-command":
			if i+1 < len(ws) {
				cmd = ws[i+1]
			} else {
				continue
			}
		case strings.HasPrefix(s, "--command="):
			cmd = word{s: s[len("--command="):], dyn: ws[i].dyn}
		case strings.HasPrefix(s, "-c") && len(s) > 2:
			cmd = word{s: s[2:], dyn: ws[i].dyn}
		default:
			continue
		}
		a.script(cmd, st.withVia("su -c"), in)
		return
	}
}

func (a *analyser) find(ws []word, text string, st *state) {
	a.emit(ws, text, st, "", "")
	// {} is a path under one of the starting points: with one literal
	// starting point it is as inside (or outside) as that point is.
	var starts []word
	for _, w := range ws[1:] {
		if w.dyn || strings.HasPrefix(w.s, "-") || w.s == "(" || w.s == "!" {
			break
		}
		starts = append(starts, w)
	}
	found := word{s: "{}", dyn: true}
	if len(starts) == 1 && !starts[0].glob {
		found = word{s: starts[0].s}
	} else if len(starts) == 0 {
		found = word{s: "."}
	}
	for i := 1; i < len(ws); i++ {
		s := ws[i].s
		if s != "-exec" && s != "-execdir" && s != "-ok" && s != "-okdir" {
			continue
		}
		j := i + 1
		for j < len(ws) && ws[j].s != ";" && ws[j].s != "+" {
			j++
		}
		payload := slices.Clone(ws[i+1 : j])
		for k := range payload {
			switch {
			case payload[k].s == "{}":
				payload[k] = found
			case strings.Contains(payload[k].s, "{}"):
				payload[k] = word{s: payload[k].s, dyn: true}
			}
		}
		a.simple(payload, text, st.withVia("find "+s), stdin{}, "")
		i = j
	}
}

// eval joins its arguments with spaces and runs the result as a line.
func (a *analyser) eval(args []word, text string, st *state, in stdin, via string) {
	parts := make([]string, 0, len(args))
	for _, w := range args {
		if w.dyn {
			a.emit(args, text, st, "unknown-program", via+" runs "+w.s+", which is not known before it runs")
			return
		}
		parts = append(parts, w.s)
	}
	a.line(strings.Join(parts, " "), st.withVia(via), in)
}

func (a *analyser) trap(ws []word, text string, st *state) {
	a.emit(ws, text, st, "", "")
	if len(ws) < 3 {
		return
	}
	first := ws[1]
	if !first.dyn && (first.s == "-l" || first.s == "-p" || first.s == "-" || first.s == "--") {
		return
	}
	a.eval([]word{first}, text, st, stdin{}, "trap")
}

// script analyses a shell string given with -c.
func (a *analyser) script(w word, st *state, in stdin) {
	if w.dyn {
		a.emit([]word{w}, w.s, st, "unknown-program", "it runs the shell string "+w.s+", which is not known before it runs")
		return
	}
	a.line(w.s, st, in)
}

func (a *analyser) shell(ws []word, text string, st *state, in stdin, name string) {
	cflag, sflag, interactive := false, false, false
	i := 1
loop:
	for i < len(ws) {
		w := ws[i]
		if w.dyn {
			a.emit(ws, text, st, "unknown-program", "cannot tell what "+name+" runs: "+w.s+" is not known before it runs")
			return
		}
		s := w.s
		switch {
		case s == "--" || s == "-":
			i++
			break loop
		case s == "-o" || s == "+o" || s == "-O" || s == "+O":
			i += 2
		case s == "--rcfile" || s == "--init-file":
			a.emit(ws, text, st, "unknown-program", name+" "+s+" runs a startup file")
			return
		case strings.HasPrefix(s, "--"):
			switch s {
			case "--login", "--norc", "--noprofile", "--posix", "--restricted", "--verbose", "--noediting", "--version", "--help", "--debugger", "--pretty-print":
				i++
			default:
				a.emit(ws, text, st, "unknown-program", "cannot tell what "+name+" runs with option "+s)
				return
			}
		case len(s) > 1 && (s[0] == '-' || s[0] == '+'):
			extra := 0
			for _, c := range s[1:] {
				switch c {
				case 'c':
					cflag = true
				case 's':
					sflag = true
				case 'i':
					interactive = true
				case 'o', 'O':
					extra++
				}
			}
			i += 1 + extra
		default:
			break loop
		}
	}
	rest := ws[min(i, len(ws)):]
	switch {
	case interactive:
		a.emit(ws, text, st, "unknown-program", name+" -i starts an interactive shell")
	case cflag:
		if len(rest) == 0 {
			a.emit(ws, text, st, "unknown-program", name+" -c without a string")
			return
		}
		a.script(rest[0], st.withVia(name+" -c"), in)
	case len(rest) > 0 && !sflag:
		a.emit(ws, text, st, "", "") // runs a script file: the rules decide
	default:
		a.fromStdin(ws, text, st, in, name)
	}
}

// fromStdin is a shell reading its commands from standard input: a literal
// here-document or here-string is analysed like a -c string; a pipe, a file
// or a terminal is not known before it runs.
func (a *analyser) fromStdin(ws []word, text string, st *state, in stdin, name string) {
	switch {
	case in.kind == stdinDoc && in.static:
		a.line(in.doc, st.withVia(name+" <<"), stdin{})
	case in.kind == stdinPipe:
		a.emit(ws, text, st, "unknown-program", name+" runs commands read from a pipe")
	case in.kind == stdinFile:
		a.emit(ws, text, st, "unknown-program", name+" runs commands read from a file")
	case in.kind == stdinDoc:
		a.emit(ws, text, st, "unknown-program", name+" runs a here-document that expands at run time")
	default:
		a.emit(ws, text, st, "unknown-program", name+" reads its commands from standard input")
	}
}

// interpreter is python, node, perl and the like. Its program text is not
// shell, so rules judge the interpreter itself; but a program piped in from
// another command is not known before it runs.
func (a *analyser) interpreter(ws []word, text string, st *state, in stdin) {
	reads := len(ws) == 1 || slices.ContainsFunc(ws[1:], func(w word) bool { return w.s == "-" })
	if reads && (in.kind == stdinPipe || in.kind == stdinFile || (in.kind == stdinDoc && !in.static)) {
		a.emit(ws, text, st, "unknown-program", ws[0].s+" runs a program read from standard input")
		return
	}
	a.emit(ws, text, st, "", "")
}

func (a *analyser) agentexec(ws []word, text string, st *state, in stdin) {
	valued := map[string]bool{"--intent": true, "--agent": true, "--session": true, "--policy": true, "--workspace": true, "-o": true, "+o": true}
	i := 1
	for i < len(ws) {
		w := ws[i]
		if w.dyn {
			a.emit(ws, text, st, "unknown-program", "cannot tell what agentexec runs: "+w.s+" is not known before it runs")
			return
		}
		s := w.s
		switch {
		case s == "--":
			if i+1 < len(ws) {
				a.simple(ws[i+1:], text, st.withVia("agentexec --"), in, "")
			}
			return
		case valued[s]:
			i += 2
		case strings.HasPrefix(s, "--") && strings.Contains(s, "="):
			i++
		case len(s) > 1 && s[0] == '-' && s[1] != '-' && strings.ContainsRune(s, 'c'):
			a.shell(append([]word{{s: "agentexec"}}, ws[i:]...), text, st, in, "agentexec")
			return
		case strings.HasPrefix(s, "-"):
			i++
		default:
			switch s {
			case "policy", "audit", "cred", "doctor", "version", "help":
				a.emit(ws, text, st, "", "")
				return
			}
			if i == len(ws)-1 {
				a.line(s, st.withVia("agentexec"), in) // the one-string form
				return
			}
			a.emit(ws, text, st, "", "")
			return
		}
	}
	a.fromStdin(ws, text, st, in, "agentexec")
}

// cd updates the set of directories later commands may run in.
func (a *analyser) cd(ws []word, st *state) {
	var dir word
	for _, w := range ws[1:] {
		if !w.dyn && (w.s == "-L" || w.s == "-P" || w.s == "-e" || w.s == "-@" || w.s == "--") {
			continue
		}
		dir = w
		break
	}
	if dir.s == "" && !dir.dyn {
		if st.homeOK {
			dir = word{s: a.in.Home}
		} else {
			dir.dyn = true
		}
	}
	if dir.dyn || dir.glob || dir.s == "-" || (!path.IsAbs(dir.s) && st.cwd.unknown) {
		st.cwd = cwdSet{unknown: true}
		return
	}
	next := slices.Clone(st.cwd.dirs)
	for _, d := range st.cwd.dirs {
		r := resolve([]string{d}, dir.s)
		if !slices.Contains(next, r) {
			next = append(next, r)
		}
	}
	if path.IsAbs(dir.s) && !slices.Contains(next, path.Clean(dir.s)) {
		next = append(next, path.Clean(dir.s))
	}
	if len(next) > 8 {
		st.cwd = cwdSet{unknown: true}
		return
	}
	st.cwd.dirs = next
}

func resolve(cwd []string, p string) string {
	if path.IsAbs(p) || len(cwd) == 0 {
		return path.Clean(p)
	}
	return path.Join(cwd[0], p)
}
