package policy

import (
	"path"
	"strings"
)

// specificity orders rules of the same verdict for naming the one that
// decided: a literal program beats a glob, an absolute path beats a
// basename, every argument pattern and condition adds to it, and file
// order breaks ties.
func specificity(r *Rule) int {
	best := 0
	for _, pp := range r.progs {
		s := 50
		if pp.literal {
			s = 100
		}
		if pp.abs {
			s += 50
		}
		best = max(best, s)
	}
	for _, alts := range r.Args {
		lit := true
		for _, a := range alts {
			if hasMeta(a) {
				lit = false
			}
		}
		if lit {
			best += 10
		} else {
			best += 5
		}
	}
	for _, c := range []bool{len(r.WithFlags) > 0, len(r.WithoutFlags) > 0, r.Paths != ""} {
		if c {
			best += 3
		}
	}
	return best
}

// match returns the rule that decides c: among the rules that match, the
// strictest verdict wins, then the most specific rule, then the first.
func (p *Policy) match(c *Command, in *Input, readOnly bool) *Rule {
	var best *Rule
	name := c.words[0].s
	c.base, c.slash = name, strings.Contains(name, "/")
	if c.slash {
		clean := path.Clean(name)
		c.base = path.Base(clean)
		c.system = path.IsAbs(name) && inSystemDir(clean)
	}
	name = c.base
	// Merge the rules indexed under the basename with the ones every
	// command checks, keeping file order.
	named, scan := p.byName[name], p.scan
	for len(named) > 0 || len(scan) > 0 {
		var idx int
		if len(scan) == 0 || (len(named) > 0 && named[0] < scan[0]) {
			idx, named = named[0], named[1:]
		} else {
			if len(named) > 0 && named[0] == scan[0] {
				named = named[1:]
			}
			idx, scan = scan[0], scan[1:]
		}
		r := p.rules[idx]
		if best != nil && r.Verdict != best.Verdict && !r.Verdict.stricter(best.Verdict) {
			continue
		}
		if !r.matches(c, in, readOnly) {
			continue
		}
		if best == nil || r.Verdict.stricter(best.Verdict) || r.specificity > best.specificity {
			best = r
		}
	}
	return best
}

// matches reports whether r matches c. Allow rules match only what is
// certain; deny and ask rules match whatever might be so (a word unknown
// before it runs could be the forbidden flag).
func (r *Rule) matches(c *Command, in *Input, readOnly bool) bool {
	if len(c.words) == 0 {
		return false
	}
	strict := r.Verdict != Allow
	if !r.matchProgram(c, in, strict) {
		return false
	}
	args := c.words[1:]
	if !matchArgs(r.Args, args, strict) {
		return false
	}
	if len(r.WithFlags) > 0 && !hasFlag(args, r.WithFlags, strict) {
		return false
	}
	if len(r.WithoutFlags) > 0 && hasFlag(args, r.WithoutFlags, !strict) {
		return false
	}
	if r.Paths != "" {
		var extra []string
		for _, w := range r.Grants.Write {
			if x, ok := expandVars(w, in); ok {
				extra = append(extra, path.Clean(x))
			}
		}
		roots := writableRoots(in, readOnly, extra)
		anyOut, anyUnknown, allIn := false, false, true
		for _, w := range operands(args) {
			switch pl, _ := classify(w, c.cwd, roots, in); pl {
			case placeOut:
				anyOut, allIn = true, false
			case placeUnknown:
				anyUnknown, allIn = true, false
			}
		}
		switch {
		case r.Paths == "inside" && strict:
			return !anyOut
		case r.Paths == "inside":
			return allIn
		case r.Paths == "outside" && strict:
			return anyOut || anyUnknown
		default:
			return anyOut
		}
	}
	return true
}

func (r *Rule) matchProgram(c *Command, in *Input, strict bool) bool {
	name := c.words[0].s
	hasSlash := c.slash
	for _, pp := range r.progs {
		if !pp.abs {
			base := c.base
			if hasSlash && !strict && !c.system {
				continue
			}
			if (pp.literal && pp.raw == base) || (!pp.literal && strings.HasPrefix(base, pp.prefix) && globMatch(pp.raw, base, true)) {
				return true
			}
			continue
		}
		if !hasSlash {
			continue
		}
		pat, ok := expandVars(pp.raw, in)
		if !ok {
			continue
		}
		var cands []string
		if path.IsAbs(name) {
			cands = []string{path.Clean(name)}
		} else if !c.cwd.unknown {
			for _, d := range c.cwd.dirs {
				cands = append(cands, path.Join(d, name))
			}
		}
		if len(cands) == 0 {
			continue
		}
		n := 0
		for _, cand := range cands {
			if globMatch(pat, cand, true) {
				n++
			}
		}
		if (strict && n > 0) || (!strict && n == len(cands)) {
			return true
		}
	}
	return false
}

func matchArgs(pats [][]string, args []word, strict bool) bool {
	for i, alts := range pats {
		if i >= len(args) {
			return false
		}
		w := args[i]
		if w.split {
			// It may become any number of words: every later position is
			// uncertain too.
			return strict
		}
		if w.dyn || w.glob {
			if strict {
				continue
			}
			ok := false
			for _, a := range alts {
				if a == "*" {
					ok = true
				}
			}
			if !ok {
				return false
			}
			continue
		}
		ok := false
		for _, a := range alts {
			if globMatch(a, w.s, false) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// hasFlag reports whether any of flags appears in args before "--".
// Combined short flags count (-rf has -r and -f), --flag=value counts as
// --flag, and an unambiguous prefix counts too (--forc is --force to getopt
// and git). With maybe set, a word that might be a flag counts.
func hasFlag(args []word, flags []string, maybe bool) bool {
	for _, w := range args {
		if !w.dyn && w.s == "--" {
			return false
		}
		if w.dyn || (w.glob && w.couldBeFlag()) {
			if maybe && w.couldBeFlag() {
				return true
			}
			continue
		}
		s := w.s
		if len(s) < 2 || s[0] != '-' {
			continue
		}
		for _, f := range flags {
			if flagIn(s, f) {
				return true
			}
		}
	}
	return false
}

func flagIn(arg, flag string) bool {
	if !strings.HasPrefix(flag, "--") && len(flag) > 2 {
		// A single-dash long option (find -delete, go -toolexec): Go's flag
		// package also accepts --name and -name=value.
		name, _, _ := strings.Cut(strings.TrimPrefix(arg, "-"), "=")
		return "-"+name == flag || name == flag
	}
	if strings.HasPrefix(flag, "--") {
		if !strings.HasPrefix(arg, "--") {
			return false
		}
		name, _, _ := strings.Cut(arg, "=")
		return len(name) > 3 && strings.HasPrefix(flag, name) || name == flag
	}
	if strings.HasPrefix(arg, "--") {
		return false
	}
	return strings.IndexByte(arg[1:], flag[1]) >= 0
}

// operands are the arguments that may name files: words that are not
// options, every word after "--", and the value of --opt=/path or -o/path.
func operands(args []word) []word {
	var out []word
	dashdash := false
	for _, w := range args {
		switch {
		case dashdash || w.dyn:
			out = append(out, w)
		case w.s == "--":
			dashdash = true
		case strings.HasPrefix(w.s, "--"):
			if _, v, ok := strings.Cut(w.s, "="); ok && (strings.Contains(v, "/") || strings.HasPrefix(v, "~") || v == "..") {
				out = append(out, word{s: v, glob: w.glob})
			}
		case strings.HasPrefix(w.s, "-") && len(w.s) > 1:
			if len(w.s) > 2 && strings.Contains(w.s[2:], "/") {
				out = append(out, word{s: w.s[2:], glob: w.glob})
			}
		default:
			out = append(out, w)
		}
	}
	return out
}
