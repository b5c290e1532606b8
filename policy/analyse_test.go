package policy

import (
	"reflect"
	"strings"
	"testing"
)

// TestAnalyserCommands pins what the analyser reduces each construct to:
// the simple commands that would run, in order, and what they were found
// through.
func TestAnalyserCommands(t *testing.T) {
	p := workspaceProfile(t)
	type cmd struct {
		argv string // space-joined
		via  string // comma-joined
	}
	tests := []struct {
		name string
		line string
		want []cmd
	}{
		{"list", "a; b && c || d", []cmd{{"a", ""}, {"b", ""}, {"c", ""}, {"d", ""}}},
		{"pipeline", "go test ./... 2>&1 | tail -50", []cmd{{"go test ./...", ""}, {"tail -50", ""}}},
		{"subshell and group", "(a) && { b; }", []cmd{{"a", ""}, {"b", ""}}},
		{"quotes resolved", `"g"'i't st\atus`, []cmd{{"git status", ""}}},
		{"bash -c nested", `bash -c "sh -c 'ls -l'"`, []cmd{{"ls -l", "bash -c,sh -c"}}},
		{"env with assignments", "env -i A=1 B=2 go build", []cmd{{"go build", "env"}}},
		{"prefix assignment", "CGO_ENABLED=0 go build", []cmd{{"go build", ""}}},
		{"wrappers stacked", "nice -n5 timeout 10 nohup stdbuf -oL make", []cmd{{"make", "nice,timeout,nohup,stdbuf"}}},
		{"xargs appends input", "ls | xargs -0 -n1 wc -l", []cmd{{"ls", ""}, {"wc -l <stdin words>", "xargs"}}},
		{"xargs default echo", "ls | xargs", []cmd{{"ls", ""}, {"echo <stdin words>", "xargs"}}},
		{"find -exec", `find src -name '*.go' -exec gofmt -l {} +`, []cmd{{"find src -name *.go -exec gofmt -l {} +", ""}, {"gofmt -l src", "find -exec"}}},
		{"command substitution argument", "echo $(date)", []cmd{{"date", ""}, {"echo $(date)", ""}}},
		{"process substitution", "diff <(ls a) <(ls b)", []cmd{{"ls a", ""}, {"ls b", ""}, {"diff <(ls a) <(ls b)", ""}}},
		{"function called", "f() { ls; }; f; f", []cmd{{"ls", ""}}},
		{"eval literal", "eval 'ls -a'", []cmd{{"ls -a", "eval"}}},
		{"here-doc to bash", "bash <<'EOF'\nls\nmake\nEOF", []cmd{{"ls", "bash <<"}, {"make", "bash <<"}}},
		{"sudo judged with payload", "sudo -u root ls", []cmd{{"sudo -u root ls", ""}, {"ls", "sudo"}}},
		{"time keyword", "time make", []cmd{{"make", ""}}},
		{"if while for case", "if a; then b; fi; while c; do d; done; for x in 1; do e; done; case y in *) f;; esac",
			[]cmd{{"a", ""}, {"b", ""}, {"c", ""}, {"d", ""}, {"e", ""}, {"f", ""}}},
		{"tilde expanded", "ls ~/src", []cmd{{"ls /home/user/src", ""}}},
		{"HOME reassigned is unknown", "HOME=/etc; ls ~", []cmd{{"ls ~", ""}}},
		{"declaration", "export A=1", []cmd{{"export A=1", ""}}},
		{"empty line", "", nil},
		{"comment only", "# nothing", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decideLine(t, p, tt.line)
			var got []cmd
			for _, c := range d.Commands {
				got = append(got, cmd{strings.Join(c.Argv, " "), strings.Join(c.Via, ",")})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got commands %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEmptyLineIsAllowed(t *testing.T) {
	d := decideLine(t, workspaceProfile(t), "  \n\t")
	checkDecision(t, d, Allow, "")
	if len(d.Commands) != 0 || len(d.Matches) != 0 {
		t.Errorf("got %d commands and %d matches, want none", len(d.Commands), len(d.Matches))
	}
}

// TestArgvForm judges a program and its arguments without a shell: no
// word is expanded, and wrappers are still seen through.
func TestArgvForm(t *testing.T) {
	p := workspaceProfile(t)
	tests := []struct {
		name string
		argv []string
		want Verdict
		rule string
	}{
		{"plain", []string{"go", "test", "./..."}, Allow, "go-build"},
		{"no expansion", []string{"rm", "-rf", "$HOME"}, Allow, "edit-workspace"}, // a file literally named $HOME in the workspace
		{"tilde is literal", []string{"rm", "-rf", "~"}, Allow, "edit-workspace"},
		{"wrapper", []string{"env", "rm", "-rf", "/"}, Deny, "rm-recursive-outside"},
		{"shell -c", []string{"bash", "-c", "git push -f"}, Deny, "git-force-push"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := TestInput
			in.Argv = tt.argv
			checkDecision(t, p.Decide(in), tt.want, tt.rule)
		})
	}
}

// TestRuleMatching covers the matching semantics of docs/policy.md with a
// small policy: basename and path patterns, argument prefixes, flags and
// precedence.
func TestRuleMatching(t *testing.T) {
	p := mustParse(t, `version: 1
default: deny
rules:
  - {id: git, verdict: allow, program: git, reason: any git}
  - {id: git-status, verdict: allow, program: git, args: [status], reason: status}
  - {id: git-push, verdict: ask, program: git, args: [push], reason: push}
  - {id: git-force, verdict: deny, program: git, args: [push], with_flags: [-f, --force], reason: force}
  - {id: tool, verdict: allow, program: "/opt/tools/**", reason: tools}
  - {id: py, verdict: allow, program: "python3*", args: ["-m", [pytest, unittest]], reason: tests}
  - {id: ls, verdict: allow, program: ls, without_flags: [-R], reason: ls}
  - {id: go-vet, verdict: allow, program: go, args: [vet], without_flags: [-vettool], reason: vet}
  - {id: cp-in, verdict: allow, program: cp, paths: inside, grants: {write: [/srv/out]}, reason: copy}
`)
	tests := []struct {
		name, line string
		want       Verdict
		rule       string
	}{
		{"most specific allow is named", "git status", Allow, "git-status"},
		{"generic allow", "git log", Allow, "git"},
		{"ask beats allow", "git push", Ask, "git-push"},
		{"deny beats ask", "git push --force", Deny, "git-force"},
		{"combined short flags", "git push -uf origin", Deny, "git-force"},
		{"flag with value", "git push --force=true", Deny, "git-force"},
		{"flag after -- is an operand", "git push -- -f", Ask, "git-push"},
		{"dynamic argument may be the flag", `git push "$F"`, Deny, "git-force"},
		{"path pattern", "/opt/tools/bin/fmt", Allow, "tool"},
		{"path pattern does not match a bare name", "fmt", Deny, "default"},
		{"basename glob", "python3.12 -m pytest -x", Allow, "py"},
		{"argument alternatives", "python3 -m unittest", Allow, "py"},
		{"argument prefix mismatch", "python3 -m http.server", Deny, "default"},
		{"without flag present", "ls -laR", Deny, "default"},
		{"without flag absent", "ls -la", Allow, "ls"},
		{"single-dash long flag", "go vet -vettool=/tmp/x ./...", Deny, "default"},
		{"single-dash long flag double dash", "go vet --vettool /tmp/x", Deny, "default"},
		{"basename rule ignores workspace copy", "./ls", Deny, "default"},
		{"basename rule allows system path", "/usr/bin/ls -l", Allow, "ls"},
		{"paths inside", "cp a b/c", Allow, "cp-in"},
		{"paths inside a write grant", "cp a /srv/out/x", Allow, "cp-in"},
		{"paths outside", "cp a /etc/x", Deny, "default"},
		{"paths with dynamic operand", `cp a "$DEST"`, Deny, "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkDecision(t, decideLine(t, p, tt.line), tt.want, tt.rule)
		})
	}
}

func TestRedirections(t *testing.T) {
	p := mustParse(t, `version: 1
rules:
  - {id: echo, verdict: allow, program: echo, reason: r}
  - {id: gen, verdict: allow, program: gen, reason: r, grants: {write: [$HOME/.cache/gen]}}
`)
	tests := []struct {
		name, line string
		want       Verdict
	}{
		{"workspace", "echo x > out.txt", Allow},
		{"workspace absolute", "echo x >> /home/user/project/log/x", Allow},
		{"tmp", "echo x > /tmp/x", Allow},
		{"sandbox tmpdir", "echo x > $TMPDIR/x", Allow},
		{"dev null", "echo x 2>/dev/null >/dev/stderr", Allow},
		{"fd dup", "echo x 2>&1 >&2 3>&-", Allow},
		{"fd path", "echo x > /dev/fd/3", Allow},
		{"reads are fine", "echo < /etc/passwd", Allow},
		{"write grant of the line", "gen > ~/.cache/gen/out", Allow},
		{"write grant of another line", "echo > ~/.cache/gen/out", Deny},
		{"parent escapes", "echo x > ../x", Deny},
		{"dot-dot inside path", "echo x > sub/../../x", Deny},
		{"home", "echo x > ~/x", Deny},
		{"device", "echo x > /dev/sda", Deny},
		{"here-doc into a file", "echo <<EOF > /etc/x\nEOF", Deny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule := ""
			if tt.want == Deny {
				rule = "redirect-outside-workspace"
			}
			checkDecision(t, decideLine(t, p, tt.line), tt.want, rule)
		})
	}
}

// TestDecideConcurrently: a Policy is shared by every goroutine of a
// process (and parsers are pooled); decisions must not interfere.
func TestDecideConcurrently(t *testing.T) {
	p := workspaceProfile(t)
	lines := map[string]Verdict{
		"go test ./... 2>&1 | tail": Allow,
		"bash -c 'rm -rf ~'":        Deny,
		"$X":                        Ask,
		"env -S 'git push -f'":      Deny,
	}
	errs := make(chan string, 64)
	done := make(chan bool)
	for g := 0; g < 8; g++ {
		go func() {
			defer func() { done <- true }()
			for i := 0; i < 50; i++ {
				for line, want := range lines {
					in := TestInput
					in.Line = line
					if got := p.Decide(in).Verdict; got != want {
						errs <- line + ": got " + got.String() + ", want " + want.String()
						return
					}
				}
			}
		}()
	}
	for g := 0; g < 8; g++ {
		<-done
	}
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
