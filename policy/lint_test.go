package policy

import (
	"strings"
	"testing"
)

func TestLint(t *testing.T) {
	p := mustParse(t, `version: 1
credentials:
  - {name: unused, provider: env, var: T, env: [T2]}
rules:
  - {id: all-git, verdict: deny, program: git, reason: r}
  - {id: git-status, verdict: allow, program: git, args: [status], reason: r}
  - {id: contradiction, verdict: deny, program: rm, with_flags: [-r], without_flags: [-r], reason: r}
  - {id: ls, verdict: allow, program: ls, reason: r}
  - {id: ls-l, verdict: allow, program: ls, reason: r}
  - {id: everything, verdict: allow, program: "*", reason: r}
  - {id: ssh-dir, verdict: allow, program: x, reason: r, grants: {write: [~/.ssh]}}
`)
	var got []string
	for _, w := range p.Lint() {
		got = append(got, w.String())
	}
	want := []string{
		`policy.yaml:6: warning: rule "git-status" is shadowed by "all-git"`,
		`policy.yaml:7: warning: rule "contradiction" can never match`,
		`policy.yaml:9: warning: rule "ls-l" never decides anything: "ls"`,
		`policy.yaml:10: warning: rule "everything" allows every program`,
		`policy.yaml:11: warning: rule "ssh-dir" grants write access to ~/.ssh`,
		`policy.yaml:3: warning: credential "unused" is never granted`,
		`policy.yaml:1: warning: the policy has no inline tests`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d warnings, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("warning %d: got %q, want prefix %q", i, got[i], want[i])
		}
	}
}

func TestLintBuiltinProfilesAreClean(t *testing.T) {
	for _, name := range Profiles {
		p, err := Builtin(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range p.Lint() {
			t.Errorf("profile %s: %s", name, w)
		}
	}
}

// TestRenderRoundTrips: the rendered policy parses back into one that
// decides every inline test of the original the same way.
func TestRenderRoundTrips(t *testing.T) {
	for _, name := range Profiles {
		t.Run(name, func(t *testing.T) {
			p, err := Builtin(name)
			if err != nil {
				t.Fatal(err)
			}
			q, err := Parse("rendered.yaml", p.Render())
			if err != nil {
				t.Fatalf("Parse(Render()): %v\n%s", err, p.Render())
			}
			for _, tt := range p.tests {
				a, b := decideLine(t, p, tt.command), decideLine(t, q, tt.command)
				if a.Verdict != b.Verdict || a.Rule() != b.Rule() {
					t.Errorf("%q: got %s (%s) after rendering, want %s (%s)", tt.command, b.Verdict, b.Rule(), a.Verdict, a.Rule())
				}
			}
		})
	}
	q, err := Parse("rendered.yaml", mustParse(t, basePolicy).Render())
	if err != nil {
		t.Fatal(err)
	}
	if c := q.Credentials(); len(c) != 1 || c[0].Scope == nil || c[0].TTL.Minutes() != 10 {
		t.Errorf("got credentials %+v after rendering", c)
	}
}
