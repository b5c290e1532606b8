package policy

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// decideLine decides line with the workspace profile in TestInput's context.
func decideLine(t *testing.T, p *Policy, line string) *Decision {
	t.Helper()
	in := TestInput
	in.Line = line
	return p.Decide(in)
}

// checkDecision asserts the verdict and, through errors.As, the rule that
// decided it.
func checkDecision(t *testing.T, d *Decision, want Verdict, wantRule string) {
	t.Helper()
	if d.Verdict != want {
		t.Fatalf("got verdict %s (rule %q), want %s (rule %q); matches: %+v", d.Verdict, d.Rule(), want, wantRule, d.Matches)
	}
	err := d.Err()
	switch want {
	case Allow:
		if err != nil {
			t.Fatalf("got Err() = %v, want nil", err)
		}
		if wantRule != "" && d.Rule() != wantRule {
			t.Fatalf("got rule %q, want %q", d.Rule(), wantRule)
		}
	case Deny:
		var de *DenyError
		if !errors.As(err, &de) || !errors.Is(err, ErrDenied) {
			t.Fatalf("got Err() = %v, want a *DenyError", err)
		}
		if wantRule != "" && de.Rule != wantRule {
			t.Fatalf("got deny rule %q (%s), want %q", de.Rule, de.Reason, wantRule)
		}
	case Ask:
		var ae *AskError
		if !errors.As(err, &ae) || !errors.Is(err, ErrAsk) {
			t.Fatalf("got Err() = %v, want an *AskError", err)
		}
		if wantRule != "" && ae.Rule != wantRule {
			t.Fatalf("got ask rule %q (%s), want %q", ae.Rule, ae.Reason, wantRule)
		}
	}
}

func workspaceProfile(t *testing.T) *Policy {
	t.Helper()
	p, err := Builtin("workspace")
	if err != nil {
		t.Fatalf("Builtin(workspace): %v", err)
	}
	return p
}

func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

func mustParse(t *testing.T, src string) *Policy {
	t.Helper()
	p, err := Parse("policy.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

// TestErrorFormats pins the one-line messages an agent reads.
func TestErrorFormats(t *testing.T) {
	p := workspaceProfile(t)
	d := decideLine(t, p, "git push --force")
	if got, want := d.Err().Error(), `denied by rule "git-force-push": git push --force rewrites or deletes shared history`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	var de *DenyError
	if !errors.As(d.Err(), &de) || de.Command != "git push --force" || len(de.Hints) != 1 {
		t.Errorf("got %+v, want the command and one hint", de)
	}
	d = decideLine(t, p, "git push && $X")
	var ae *AskError
	if !errors.As(d.Err(), &ae) || len(ae.Matches) != 2 || ae.Rule != "git-push" {
		t.Fatalf("got %v, want an AskError listing both asks", d.Err())
	}
	if got, want := ae.Error(), `approval required by rule "git-push": pushing publishes commits to a shared remote`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	le := &LoadError{File: "p.yaml", Line: 3, Col: 5, Msg: "a\nb"}
	if got, want := le.Error(), "p.yaml:3:5: a b"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
