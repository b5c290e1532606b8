package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Warning is something that loads but is probably a mistake.
type Warning struct {
	File string
	Line int
	Rule string
	Msg  string
}

func (w Warning) String() string {
	return fmt.Sprintf("%s:%d: warning: %s", w.File, w.Line, w.Msg)
}

// Lint reports rules that can never match or never decide anything, and
// other things that load but are probably mistakes. It is a separate,
// warn-only list: a policy with warnings still loads.
func (p *Policy) Lint() []Warning {
	var out []Warning
	warn := func(r *Rule, format string, args ...any) {
		out = append(out, Warning{File: r.File, Line: r.Line, Rule: r.ID, Msg: fmt.Sprintf(format, args...)})
	}
	granted := map[string]bool{}
	for _, r := range p.rules {
		for _, c := range r.Grants.Credentials {
			granted[c] = true
		}
		for _, f := range r.WithFlags {
			if slices.Contains(r.WithoutFlags, f) {
				warn(r, "rule %q can never match: %s is both required and forbidden", r.ID, f)
			}
		}
		if r.Verdict == Allow {
			for _, pp := range r.progs {
				if pp.raw == "*" || pp.raw == "**" || pp.raw == "/**" {
					warn(r, "rule %q allows every program", r.ID)
				}
			}
			for _, n := range r.Grants.Network {
				if n.Any {
					warn(r, "rule %q grants network access to any destination (%s)", r.ID, n.Name)
				}
			}
			for _, w := range r.Grants.Write {
				for _, s := range []string{"/.ssh", "/.aws", "/.gnupg", "/.config", "/.docker", "/.kube", "/.bashrc", "/.profile", "/.git/hooks"} {
					if strings.HasSuffix(w, s) || strings.Contains(w, s+"/") {
						warn(r, "rule %q grants write access to %s, where secrets or code that runs later live", r.ID, w)
					}
				}
			}
		}
		for _, q := range p.rules {
			if q == r || !q.covers(r) {
				continue
			}
			if q.Verdict.stricter(r.Verdict) {
				warn(r, "rule %q is shadowed by %q (%s:%d): every command it matches gets the stricter verdict %s", r.ID, q.ID, q.File, q.Line, q.Verdict)
				break
			}
			if q.Verdict == r.Verdict && (q.specificity > r.specificity || (q.specificity == r.specificity && slices.Index(p.rules, q) < slices.Index(p.rules, r))) {
				warn(r, "rule %q never decides anything: %q (%s:%d) matches every command it does with the same verdict and is preferred", r.ID, q.ID, q.File, q.Line)
				break
			}
		}
	}
	for _, c := range p.creds {
		if !granted[c.Name] {
			out = append(out, Warning{File: p.files[0].name, Line: c.Line, Msg: fmt.Sprintf("credential %q is never granted by a rule", c.Name)})
		}
	}
	if len(p.tests) == 0 && len(p.rules) > 0 {
		out = append(out, Warning{File: p.files[0].name, Line: 1, Msg: "the policy has no inline tests; add tests: to pin what it allows and denies"})
	}
	return out
}

// covers reports whether q matches every command r matches (a sufficient,
// not a necessary, condition): q has no conditions, each of r's programs
// is one of q's (or matched by q's glob), and q's argument prefix is
// implied by r's.
func (q *Rule) covers(r *Rule) bool {
	if len(q.WithFlags) > 0 || len(q.WithoutFlags) > 0 || q.Paths != "" {
		return false
	}
	for _, rp := range r.progs {
		if !slices.ContainsFunc(q.progs, func(qp progPattern) bool {
			if qp.raw == rp.raw {
				return true
			}
			return rp.literal && qp.abs == rp.abs && globMatch(qp.raw, rp.raw, true)
		}) {
			return false
		}
	}
	if len(q.Args) > len(r.Args) {
		return false
	}
	for i, qa := range q.Args {
		for _, ra := range r.Args[i] {
			if !slices.ContainsFunc(qa, func(x string) bool { return x == ra || (!hasMeta(ra) && globMatch(x, ra, false)) }) {
				return false
			}
		}
	}
	return true
}
