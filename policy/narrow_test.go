package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// setupWorkspace writes basePolicy as the user's policy and returns Load
// options with a fresh workspace.
func setupWorkspace(t *testing.T) (LoadOptions, string) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "config")
	writeFile(t, filepath.Join(conf, "agentexec", "policy.yaml"), basePolicy)
	ws := filepath.Join(dir, "ws")
	if err := os.MkdirAll(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	return LoadOptions{ConfigHome: conf, SystemDir: filepath.Join(dir, "etc"), Workspace: ws}, ws
}

func TestWorkspacePolicyNarrows(t *testing.T) {
	opts, ws := setupWorkspace(t)
	writeFile(t, filepath.Join(ws, ".agentexec", "policy.yaml"), `version: 1
unknown: deny
rules:
  - id: no-tail
    verdict: deny
    program: tail
    reason: this project forbids tail
  - id: make
    grants:
      write: [~/.cache/make/sub]
      network: [{host: api.example.com, ports: [443], methods: [GET]}]
      timeout: 5m
  - id: git-push
    verdict: ask
    reason: pushes need approval in this project
tests:
  - {command: "tail x", expect: deny, rule: no-tail}
  - {command: "git push", expect: ask, rule: git-push}
`)
	p, err := Load(opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !strings.Contains(p.Source(), " + "+filepath.Join(ws, ".agentexec", "policy.yaml")) {
		t.Errorf("got source %q, want the workspace file named", p.Source())
	}
	checkDecision(t, decideLine(t, p, "echo hi | tail -1"), Deny, "no-tail")
	checkDecision(t, decideLine(t, p, "$X"), Deny, "unknown-program")
	d := decideLine(t, p, "git push")
	checkDecision(t, d, Ask, "git-push")
	if len(d.Grants.Credentials) != 0 {
		t.Errorf("got credentials %q on an ask rule, want none", d.Grants.Credentials)
	}
	d = decideLine(t, p, "make")
	checkDecision(t, d, Allow, "make")
	if len(d.Grants.Network) != 1 || d.Grants.Network[0].Host != "api.example.com" || d.Grants.Timeout.Minutes() != 5 ||
		len(d.Grants.Write) != 1 || d.Grants.Write[0] != "/home/user/.cache/make/sub" || d.Grants.Limits.MemoryBytes != 0 {
		t.Errorf("got grants %+v, want the narrowed ones", d.Grants)
	}
}

func TestWorkspacePolicyCannotWiden(t *testing.T) {
	tests := []struct {
		name, src, msg string
		line           int
	}{
		{"allow rule", "version: 1\nrules:\n  - {id: curl, verdict: allow, program: curl, reason: r}\n", "may not add allow rules", 3},
		{"looser default", "version: 1\ndefault: allow\n", "default: allow would widen", 2},
		{"looser unknown", "version: 1\nunknown: allow\n", "unknown: allow would widen", 2},
		{"credentials", "version: 1\ncredentials:\n  - {name: t, provider: env, var: T, env: [T2]}\n", "may not define credentials", 3},
		{"rematch a base rule", "version: 1\nrules:\n  - {id: make, program: '*'}\n", "may not change what it matches", 3},
		{"loosen a base rule", "version: 1\nrules:\n  - {id: git-push, verdict: allow}\n", "", 0},
		{"more write", "version: 1\nrules:\n  - {id: make, grants: {write: [/etc]}}\n", `write grant "/etc" is not inside`, 3},
		{"more network", "version: 1\nrules:\n  - {id: make, grants: {network: [evil.com]}}\n", "network grant evil.com is not within", 3},
		{"other port", "version: 1\nrules:\n  - {id: make, grants: {network: ['a.example.com:22']}}\n", "not within", 3},
		{"any method", "version: 1\nrules:\n  - {id: make, grants: {network: ['a.example.com:443']}}\n", "not within", 3},
		{"new credential grant", "version: 1\nrules:\n  - {id: make, grants: {credentials: [github]}}\n", `credential "github" is not granted`, 3},
		{"more memory", "version: 1\nrules:\n  - {id: make, grants: {limits: {memory: 3GiB}}}\n", "limits exceed", 3},
		{"longer timeout", "version: 1\nrules:\n  - {id: make, grants: {timeout: 1h}}\n", "timeout exceeds", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, ws := setupWorkspace(t)
			name := writeFile(t, filepath.Join(ws, ".agentexec", "policy.yaml"), tt.src)
			p, err := Load(opts)
			if tt.line == 0 {
				// Loosening to the same verdict is not widening.
				if err != nil {
					t.Fatalf("got %v, want no error for an equal verdict", err)
				}
				checkDecision(t, decideLine(t, p, "git push"), Allow, "git-push")
				return
			}
			var le *LoadError
			if !errors.As(err, &le) || !errors.Is(err, ErrWiden) {
				t.Fatalf("got %v, want a *LoadError wrapping ErrWiden", err)
			}
			if le.File != name || le.Line != tt.line || !strings.Contains(le.Msg, tt.msg) {
				t.Errorf("got %s:%d %q, want %s:%d containing %q", le.File, le.Line, le.Msg, name, tt.line, tt.msg)
			}
		})
	}
}

// TestPolicyFlagInsideWorkspaceOnlyNarrows: --policy pointing into the
// workspace (which the agent can write) cannot replace the base policy.
func TestPolicyFlagInsideWorkspaceOnlyNarrows(t *testing.T) {
	opts, ws := setupWorkspace(t)
	opts.File = writeFile(t, filepath.Join(ws, "my-policy.yaml"), "version: 1\ndefault: allow\n")
	_, err := Load(opts)
	if !errors.Is(err, ErrWiden) {
		t.Fatalf("got %v, want ErrWiden", err)
	}
	opts.File = writeFile(t, filepath.Join(ws, "my-policy.yaml"), "version: 1\nrules:\n  - {id: no-echo, verdict: deny, program: echo, reason: r}\n")
	p, err := Load(opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	checkDecision(t, decideLine(t, p, "echo hi"), Deny, "no-echo")
	checkDecision(t, decideLine(t, p, "make"), Allow, "make") // the base still applies
}

// TestConfigHomeInsideWorkspaceOnlyNarrows: when the workspace contains the
// user's config directory (a workspace at $HOME), that file may not widen
// the built-in profile either.
func TestConfigHomeInsideWorkspaceOnlyNarrows(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, ".config", "agentexec", "policy.yaml"), "version: 1\nrules:\n  - {id: all, verdict: allow, program: '*', reason: r}\n")
	_, err := Load(LoadOptions{ConfigHome: filepath.Join(dir, ".config"), Workspace: dir, SystemDir: filepath.Join(dir, "etc")})
	if !errors.Is(err, ErrWiden) {
		t.Fatalf("got %v, want ErrWiden", err)
	}
}

func TestWorkspaceInlineTestFailureStopsLoading(t *testing.T) {
	opts, ws := setupWorkspace(t)
	writeFile(t, filepath.Join(ws, ".agentexec", "policy.yaml"), "version: 1\ntests:\n  - {command: make, expect: deny}\n")
	_, err := Load(opts)
	var le *LoadError
	if !errors.As(err, &le) || !errors.Is(err, ErrTestFailed) || le.Line != 3 {
		t.Fatalf("got %v, want a failing-test *LoadError at line 3", err)
	}
}

// TestReadOnlyWorkspace: `workspace: read-only` takes the workspace out of
// the writable set; a workspace file may set it but never unset it.
func TestReadOnlyWorkspace(t *testing.T) {
	opts, ws := setupWorkspace(t)
	p, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	checkDecision(t, decideLine(t, p, "echo x > out.txt"), Allow, "echo")
	wf := writeFile(t, filepath.Join(ws, ".agentexec", "policy.yaml"), "version: 1\nworkspace: read-only\n")
	if p, err = Load(opts); err != nil {
		t.Fatal(err)
	}
	d := decideLine(t, p, "echo x > out.txt")
	checkDecision(t, d, Deny, "redirect-outside-workspace")
	if !d.WorkspaceReadOnly || !p.WorkspaceReadOnly() {
		t.Errorf("got WorkspaceReadOnly %v, want true", d.WorkspaceReadOnly)
	}
	checkDecision(t, decideLine(t, p, "echo x > /tmp/x"), Allow, "echo")

	ro := writeFile(t, filepath.Join(t.TempDir(), "ro.yaml"), "version: 1\nworkspace: read-only\nrules: [{id: echo, verdict: allow, program: echo, reason: r}]\n")
	writeFile(t, wf, "version: 1\nworkspace: writable\n")
	opts.File = ro
	_, err = Load(opts)
	var le *LoadError
	if !errors.As(err, &le) || !errors.Is(err, ErrWiden) || le.Line != 2 || le.Key != "workspace" {
		t.Fatalf("got %v, want a widening error at line 2 naming workspace", err)
	}
}
