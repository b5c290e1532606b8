package policy

import (
	"fmt"
	"strings"
	"testing"
)

const typicalLine = "go build ./... && go test ./... 2>&1 | tail -50"

// BenchmarkDecide is decide alone for a typical compound line (target:
// under 50µs).
func BenchmarkDecide(b *testing.B) {
	p, err := Builtin("workspace")
	if err != nil {
		b.Fatal(err)
	}
	in := TestInput
	in.Line = typicalLine
	b.ReportAllocs()
	for b.Loop() {
		if d := p.Decide(in); d.Verdict != Allow {
			b.Fatalf("got %s, want allow", d.Verdict)
		}
	}
}

// BenchmarkLoadDecideBuiltin is a cold start in-process: parse and
// validate the embedded workspace profile, then decide one line (target:
// under 1ms).
func BenchmarkLoadDecideBuiltin(b *testing.B) {
	in := TestInput
	in.Line = typicalLine
	b.ReportAllocs()
	for b.Loop() {
		p, err := loadBuiltin("workspace")
		if err != nil {
			b.Fatal(err)
		}
		if d := p.Decide(in); d.Verdict != Allow {
			b.Fatalf("got %s, want allow", d.Verdict)
		}
	}
}

// generated returns a policy with n rules, the last of which allows the
// typical line's programs.
func generated(n int) []byte {
	var sb strings.Builder
	sb.WriteString("version: 1\ndefault: deny\nrules:\n")
	for i := 0; i < n-3; i++ {
		fmt.Fprintf(&sb, "  - {id: r%d, verdict: %s, program: [tool%d, \"t%d-*\"], args: [sub%d, [\"-x\", \"--y=*\"]], without_flags: [-f], reason: rule %d}\n",
			i, []string{"allow", "ask", "deny"}[i%3], i, i, i, i)
	}
	sb.WriteString("  - {id: go, verdict: allow, program: go, args: [[build, test]], reason: go, grants: {network: [{registry: go}]}}\n")
	sb.WriteString("  - {id: tail, verdict: allow, program: tail, reason: tail}\n")
	sb.WriteString("  - {id: push, verdict: deny, program: git, args: [push], reason: push}\n")
	return []byte(sb.String())
}

func BenchmarkLoadDecide1000Rules(b *testing.B) {
	data := generated(1000)
	in := TestInput
	in.Line = typicalLine
	b.ReportAllocs()
	for b.Loop() {
		p, err := Parse("gen.yaml", data)
		if err != nil {
			b.Fatal(err)
		}
		if d := p.Decide(in); d.Verdict != Allow {
			b.Fatalf("got %s, want allow", d.Verdict)
		}
	}
}

func BenchmarkDecide1000Rules(b *testing.B) {
	p, err := Parse("gen.yaml", generated(1000))
	if err != nil {
		b.Fatal(err)
	}
	in := TestInput
	in.Line = typicalLine
	b.ReportAllocs()
	for b.Loop() {
		if d := p.Decide(in); d.Verdict != Allow {
			b.Fatalf("got %s, want allow", d.Verdict)
		}
	}
}
