package policy

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse: the loader never panics, and every failure is a *LoadError
// with a one-line message.
func FuzzParse(f *testing.F) {
	f.Add([]byte(basePolicy))
	// Not the workspace profile: its 90 inline tests make each run too
	// slow for the fuzzer to get anywhere.
	for _, name := range []string{"readonly"} {
		data, err := profileFS.ReadFile("profiles/" + name + ".yaml")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) || !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("got error %T %v, want a *LoadError", err, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("got a multi-line error %q", err.Error())
			}
			return
		}
		in := TestInput
		in.Line = "git push --force && rm -rf ~ > /etc/x"
		checkConsistent(t, p.Decide(in))
		p.Lint()
		if _, err := Parse("rendered.yaml", p.Render()); err != nil && !errors.Is(err, ErrTestFailed) {
			t.Fatalf("a policy that loaded renders to one that does not: %v", err)
		}
	})
}

// FuzzAnalyse: any line gets a consistent decision and no panic: the
// verdict is the strictest match, and Err agrees with it.
func FuzzAnalyse(f *testing.F) {
	for _, line := range []string{
		"go build ./... && go test ./... 2>&1 | tail -50", `bash -c "sh -c 'eval rm -rf ~'"`, "find . -exec sh -c '{}' \\;",
		"env -S 'a b' c", "xargs -I{} sh -c {}", "f() { f; }; f", "(( a[$(id)] ))", "cat <<EOF\n$(x)\nEOF", "${!x}",
		"coproc x { y; }", "a=(1 2); ${a[@]}", "time -p ls", "{a,b}{c,d}", "$'\\x00'", "cd /; cd ..; rm -rf *",
	} {
		f.Add(line)
	}
	p, err := Builtin("workspace")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line string) {
		in := TestInput
		in.Line = line
		checkConsistent(t, p.Decide(in))
	})
}

func checkConsistent(t *testing.T, d *Decision) {
	t.Helper()
	want := Allow
	for _, m := range d.Matches {
		if m.Verdict > Allow {
			t.Fatalf("invalid verdict %d", m.Verdict)
		}
		if m.Rule == "" {
			t.Fatalf("a match without a rule id: %+v", m)
		}
		if m.Verdict.stricter(want) {
			want = m.Verdict
		}
	}
	if d.Verdict != want {
		t.Fatalf("got verdict %s, want the strictest match %s", d.Verdict, want)
	}
	err := d.Err()
	var de *DenyError
	var ae *AskError
	switch d.Verdict {
	case Allow:
		if err != nil {
			t.Fatalf("allowed, but Err() = %v", err)
		}
	case Deny:
		if !errors.As(err, &de) {
			t.Fatalf("denied, but Err() = %v", err)
		}
	case Ask:
		if !errors.As(err, &ae) {
			t.Fatalf("ask, but Err() = %v", err)
		}
	}
}
