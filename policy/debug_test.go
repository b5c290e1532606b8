package policy

import (
	"os"
	"testing"
)

func TestDebugLine(t *testing.T) {
	line := os.Getenv("POLICY_DEBUG_LINE")
	if line == "" {
		t.Skip("set POLICY_DEBUG_LINE")
	}
	p, err := Builtin(os.Getenv("POLICY_DEBUG_PROFILE"))
	if err != nil {
		t.Fatal(err)
	}
	in := TestInput
	in.Line = line
	d := p.Decide(in)
	t.Logf("verdict %s", d.Verdict)
	for _, c := range d.Commands {
		t.Logf("cmd %q via %v unknown %q", c.Argv, c.Via, c.Unknown)
	}
	for _, m := range d.Matches {
		t.Logf("match %d %s %s %s", m.Command, m.Rule, m.Verdict, m.Reason)
	}
	t.Logf("grants %+v", d.Grants)
}
