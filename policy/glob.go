package policy

import (
	"errors"
	"strings"
)

var errBadGlob = errors.New("unterminated [ or trailing \\")

// checkGlob validates a pattern: * ? [set] [!set] [a-z] and \ escapes.
func checkGlob(p string) error {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			if i+1 >= len(p) {
				return errBadGlob
			}
			i++
		case '[':
			end := classEnd(p, i)
			if end < 0 {
				return errBadGlob
			}
			i = end
		}
	}
	return nil
}

func hasMeta(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '*', '?', '[', '\\':
			return true
		}
	}
	return false
}

// classEnd returns the index of the ] closing the class opened at p[i].
func classEnd(p string, i int) int {
	j := i + 1
	if j < len(p) && (p[j] == '!' || p[j] == '^') {
		j++
	}
	if j < len(p) && p[j] == ']' {
		j++
	}
	for ; j < len(p); j++ {
		if p[j] == '\\' {
			j++
			continue
		}
		if p[j] == ']' {
			return j
		}
	}
	return -1
}

func classMatch(class string, c byte) bool {
	neg := false
	if len(class) > 0 && (class[0] == '!' || class[0] == '^') {
		neg, class = true, class[1:]
	}
	ok := false
	for i := 0; i < len(class); i++ {
		lo := class[i]
		if lo == '\\' && i+1 < len(class) {
			i++
			lo = class[i]
		}
		hi := lo
		if i+2 < len(class) && class[i+1] == '-' {
			hi = class[i+2]
			i += 2
		}
		if lo <= c && c <= hi {
			ok = true
		}
	}
	return ok != neg
}

// globMatch reports whether s matches p. With paths set, * and ? do not
// match "/" and ** matches anything; otherwise * matches anything.
func globMatch(p, s string, paths bool) bool {
	if !hasMeta(p) {
		return p == s
	}
	if strings.Count(p, "*") < 2 {
		return globAt(p, s, paths, nil)
	}
	// Several stars: remember positions that failed, so the backtracking
	// is O(len(p) * len(s)) rather than exponential (a workspace policy,
	// which the agent can write, must not be able to stall the decision).
	return globAt(p, s, paths, map[[2]int]bool{})
}

func globAt(p, s string, paths bool, failed map[[2]int]bool) bool {
	key := [2]int{len(p), len(s)}
	if failed != nil && failed[key] {
		return false
	}
	if globStep(p, s, paths, failed) {
		return true
	}
	if failed != nil {
		failed[key] = true
	}
	return false
}

func globStep(p, s string, paths bool, failed map[[2]int]bool) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			star := 1
			for star < len(p) && p[star] == '*' {
				star++
			}
			cross := !paths || star >= 2
			rest := p[star:]
			if rest == "" {
				return cross || !strings.Contains(s, "/")
			}
			for i := 0; i <= len(s); i++ {
				if globAt(rest, s[i:], paths, failed) {
					return true
				}
				if i < len(s) && !cross && s[i] == '/' {
					return false
				}
			}
			return false
		case '?':
			if len(s) == 0 || (paths && s[0] == '/') {
				return false
			}
			p, s = p[1:], s[1:]
		case '[':
			end := classEnd(p, 0)
			if end < 0 || len(s) == 0 || (paths && s[0] == '/') || !classMatch(p[1:end], s[0]) {
				return false
			}
			p, s = p[end+1:], s[1:]
		case '\\':
			if len(p) < 2 || len(s) == 0 || p[1] != s[0] {
				return false
			}
			p, s = p[2:], s[1:]
		default:
			if len(s) == 0 || p[0] != s[0] {
				return false
			}
			p, s = p[1:], s[1:]
		}
	}
	return len(s) == 0
}

// progPattern is one compiled program: pattern.
type progPattern struct {
	raw     string
	abs     bool // has a "/": matched against the absolute path
	literal bool
	prefix  string // the literal text before the first glob character
}

func compileProgram(s string) (progPattern, error) {
	if s == "" {
		return progPattern{}, errors.New("empty program")
	}
	if err := checkGlob(s); err != nil {
		return progPattern{}, err
	}
	pp := progPattern{raw: s, abs: strings.Contains(s, "/"), literal: !hasMeta(s)}
	if i := strings.IndexAny(s, "*?[\\"); i >= 0 {
		pp.prefix = s[:i]
	}
	if pp.abs && !pathPatternOK(s) {
		return pp, errors.New("a program path must be absolute or start with ~/, $HOME/, $WORKSPACE or $TMPDIR")
	}
	return pp, nil
}

// expandVars replaces a leading ~, $HOME, $WORKSPACE or $TMPDIR. An empty
// value leaves the pattern unusable (it then matches nothing absolute).
func expandVars(s string, in *Input) (string, bool) {
	type v struct{ prefix, val string }
	for _, x := range []v{{"~/", in.Home}, {"$HOME", in.Home}, {"$WORKSPACE", in.Workspace}, {"$TMPDIR", in.TmpDir}} {
		if rest, ok := strings.CutPrefix(s, x.prefix); ok {
			if x.val == "" || !strings.HasPrefix(x.val, "/") {
				return "", false
			}
			if x.prefix == "~/" {
				rest = "/" + rest
			}
			return strings.TrimRight(x.val, "/") + rest, true
		}
	}
	if s == "~" {
		return in.Home, in.Home != ""
	}
	return s, true
}
