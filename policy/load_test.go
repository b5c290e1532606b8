package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParseErrors checks that every kind of bad input is one *LoadError
// naming the file, line, column and key, with a message a user can act on.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		line, col int
		key       string
		msg       string
	}{
		{"unknown top-level key", "version: 1\nrulez: []\n", 2, 1, "rulez", `unknown key "rulez"`},
		{"unknown rule key", "version: 1\nrules:\n  - id: a\n    verdict: allow\n    program: ls\n    reason: r\n    argz: [x]\n", 7, 5, "argz", `unknown key "argz"`},
		{"unknown grants key", "version: 1\nrules:\n  - id: a\n    verdict: allow\n    program: ls\n    reason: r\n    grants: {writ: [/x]}\n", 7, 14, "writ", `unknown key "writ"`},
		{"missing version", "default: deny\n", 1, 1, "version", "missing version: 1"},
		{"wrong version", "version: 2\n", 1, 10, "version", `unsupported version "2"`},
		{"rules not a list", "version: 1\nrules: 3\n", 2, 8, "rules", "rules must be a list"},
		{"bad verdict", "version: 1\ndefault: maybe\n", 2, 10, "default", "default must be allow, ask or deny"},
		{"bad glob", "version: 1\nrules:\n  - id: a\n    verdict: deny\n    program: 'rm['\n    reason: r\n", 5, 14, "program", `bad program pattern "rm["`},
		{"bad args glob", "version: 1\nrules:\n  - id: a\n    verdict: deny\n    program: rm\n    args: ['[x']\n    reason: r\n", 6, 12, "args", `bad glob "[x"`},
		{"duplicate id", "version: 1\nrules:\n  - {id: a, verdict: deny, program: rm, reason: r}\n  - {id: a, verdict: deny, program: ls, reason: r}\n", 4, 5, "id", `duplicate rule id "a"`},
		{"duplicate key", "version: 1\nversion: 1\n", 2, 1, "version", `duplicate key "version"`},
		{"reserved id", "version: 1\nrules:\n  - {id: default, verdict: deny, program: rm, reason: r}\n", 3, 10, "id", "reserved"},
		{"missing reason", "version: 1\nrules:\n  - {id: a, verdict: deny, program: rm}\n", 3, 5, "reason", "missing reason"},
		{"missing program", "version: 1\nrules:\n  - {id: a, verdict: deny, reason: r}\n", 3, 5, "program", "missing program"},
		{"grants on deny", "version: 1\nrules:\n  - {id: a, verdict: deny, program: rm, reason: r, grants: {timeout: 1m}}\n", 3, 5, "grants", "only allow rules carry grants"},
		{"bad flag", "version: 1\nrules:\n  - {id: a, verdict: deny, program: rm, reason: r, with_flags: [r]}\n", 3, 65, "with_flags", "must be a flag"},
		{"star host", "version: 1\nrules:\n  - {id: a, verdict: allow, program: x, reason: r, grants: {network: ['*']}}\n", 3, 71, "host", "too broad"},
		{"public suffix wildcard", "version: 1\nrules:\n  - {id: a, verdict: allow, program: x, reason: r, grants: {network: ['*.com']}}\n", 3, 71, "host", "public suffix"},
		{"co.uk wildcard", "version: 1\nrules:\n  - {id: a, verdict: allow, program: x, reason: r, grants: {network: [{host: '*.co.uk'}]}}\n", 3, 71, "host", "public suffix"},
		{"any without name", "version: 1\nrules:\n  - {id: a, verdict: allow, program: x, reason: r, grants: {network: [{any: true}]}}\n", 3, 71, "name", "needs a name"},
		{"bad port", "version: 1\nrules:\n  - {id: a, verdict: allow, program: x, reason: r, grants: {network: ['example.com:99999']}}\n", 3, 71, "network", "port must be 1-65535"},
		{"bad method", "version: 1\nrules:\n  - {id: a, verdict: allow, program: x, reason: r, grants: {network: [{host: example.com, methods: [FETCH]}]}}\n", 3, 101, "methods", `method "FETCH"`},
		{"bad registry", "version: 1\nrules:\n  - {id: a, verdict: allow, program: x, reason: r, grants: {network: [{registry: maven}]}}\n", 3, 82, "registry", `registry "maven"`},
		{"relative write", "version: 1\nrules:\n  - {id: a, verdict: allow, program: x, reason: r, grants: {write: [build]}}\n", 3, 69, "write", "must be absolute"},
		{"root write", "version: 1\nrules:\n  - {id: a, verdict: allow, program: x, reason: r, grants: {write: [/]}}\n", 3, 69, "write", "too broad"},
		{"bad memory", "version: 1\nrules:\n  - {id: a, verdict: allow, program: x, reason: r, grants: {limits: {memory: lots}}}\n", 3, 78, "memory", "positive size"},
		{"bad timeout", "version: 1\nrules:\n  - {id: a, verdict: allow, program: x, reason: r, grants: {timeout: soon}}\n", 3, 70, "timeout", "positive duration"},
		{"undefined credential", "version: 1\nrules:\n  - {id: a, verdict: allow, program: x, reason: r, grants: {credentials: [gh]}}\n", 3, 5, "grants", `undefined credential "gh"`},
		{"unknown provider", "version: 1\ncredentials:\n  - {name: gh, provider: vault}\n", 3, 26, "provider", `provider "vault"`},
		{"key not for provider", "version: 1\ncredentials:\n  - {name: gh, provider: env, var: T, env: [T2], host: github.com}\n", 3, 50, "host", `does not apply to provider env`},
		{"missing helper command", "version: 1\ncredentials:\n  - {name: gh, provider: exec, env: [T]}\n", 3, 5, "command", "needs command"},
		{"env and file_env", "version: 1\ncredentials:\n  - {name: gh, provider: env, var: T, env: [T2], file_env: F}\n", 3, 50, "file_env", "choose one"},
		{"dangerous delivery", "version: 1\ncredentials:\n  - {name: gh, provider: env, var: T, env: [LD_PRELOAD]}\n", 3, 45, "env", "would change how programs run"},
		{"relative credential file", "version: 1\ncredentials:\n  - {name: gh, provider: file, file: token, env: [T]}\n", 3, 38, "file", "absolute"},
		{"duplicate credential", "version: 1\ncredentials:\n  - {name: gh, provider: env, var: T, env: [T2]}\n  - {name: gh, provider: env, var: T, env: [T2]}\n", 4, 5, "name", `duplicate credential "gh"`},
		{"anchors", "version: 1\nrules: &r []\n", 2, 8, "", "anchors and aliases"},
		{"malformed yaml", "version: 1\nrules: [\n", 2, 0, "", "malformed YAML"},
		{"test without expect", "version: 1\ntests:\n  - {command: ls}\n", 3, 5, "", "needs command and expect"},
		{"empty file", "", 0, 0, "", "empty policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("policy.yaml", []byte(tt.src))
			var le *LoadError
			if !errors.As(err, &le) || !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("got error %v, want a *LoadError", err)
			}
			if le.File != "policy.yaml" || le.Line != tt.line || (tt.col != 0 && le.Col != tt.col) || le.Key != tt.key {
				t.Errorf("got %s:%d:%d key %q, want policy.yaml:%d:%d key %q", le.File, le.Line, le.Col, le.Key, tt.line, tt.col, tt.key)
			}
			if !strings.Contains(le.Msg, tt.msg) {
				t.Errorf("got message %q, want it to contain %q", le.Msg, tt.msg)
			}
			if strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), "policy.yaml:") {
				t.Errorf("got %q, want one line starting with the file name", err.Error())
			}
		})
	}
}

const basePolicy = `version: 1
default: deny
unknown: ask
credentials:
  - name: github
    provider: exec
    command: [/usr/local/bin/gh-token, --repo, agentexec/agentexec]
    env: [GITHUB_TOKEN]
    ttl: 10m
    scope: {repositories: [agentexec], permissions: {contents: write}}
rules:
  - id: echo
    verdict: allow
    program: [echo, cat, tail]
    reason: prints
  - id: make
    verdict: allow
    program: make
    reason: builds
    grants:
      write: [~/.cache/make]
      network: [{host: "*.example.com", ports: [443], methods: [GET, HEAD]}]
      limits: {memory: 2GiB, pids: "512", cpus: "2"}
      timeout: 10m
  - id: git-push
    verdict: allow
    program: git
    args: [push]
    reason: pushes with a short-lived token
    grants:
      credentials: [github]
      network: [github.com]
tests:
  - {command: "make -j2", expect: allow, rule: make}
  - {command: "rm x", expect: deny, rule: default}
`

func TestParseAcceptsAFullPolicy(t *testing.T) {
	p := mustParse(t, basePolicy)
	creds := p.Credentials()
	if len(creds) != 1 {
		t.Fatalf("got %d credentials, want 1", len(creds))
	}
	c := creds[0]
	if c.Name != "github" || c.Provider != "exec" || c.TTL.Minutes() != 10 || c.Timeout.Seconds() != 10 || !c.ShortLived ||
		len(c.Command) != 3 || c.Env[0] != "GITHUB_TOKEN" || c.Scope["repositories"] == nil || c.Line != 5 {
		t.Errorf("got credential %+v", c)
	}
	d := decideLine(t, p, "make -j2")
	checkDecision(t, d, Allow, "make")
	g := d.Grants
	if len(g.Write) != 1 || g.Write[0] != "/home/user/.cache/make" {
		t.Errorf("got write grants %q, want [/home/user/.cache/make]", g.Write)
	}
	if len(g.Network) != 1 || g.Network[0].Host != "*.example.com" || g.Network[0].Ports[0] != 443 || g.Network[0].Rule != "make" {
		t.Errorf("got network grants %+v", g.Network)
	}
	if g.Limits.MemoryBytes != 2<<30 || g.Limits.Pids != 512 || g.Limits.CPUs != 2 || g.Timeout.Minutes() != 10 {
		t.Errorf("got limits %+v timeout %s", g.Limits, g.Timeout)
	}
	if !strings.HasPrefix(d.Digest, "sha256:") || len(d.Digest) != 71 || d.Policy != "policy.yaml" {
		t.Errorf("got policy %q digest %q", d.Policy, d.Digest)
	}
}

func TestFailingInlineTestStopsLoading(t *testing.T) {
	src := basePolicy + "  - {command: \"git push --force\", expect: deny}\n"
	_, err := Parse("policy.yaml", []byte(src))
	var le *LoadError
	if !errors.As(err, &le) || !errors.Is(err, ErrTestFailed) {
		t.Fatalf("got %v, want a *LoadError wrapping ErrTestFailed", err)
	}
	wantLine := strings.Count(src, "\n")
	if le.Line != wantLine || !strings.Contains(le.Msg, `test "git push --force": got allow (rule "git-push"), want deny`) {
		t.Errorf("got %q at line %d, want the failing test named at line %d", le.Msg, le.Line, wantLine)
	}
}

func TestLoadSearchOrder(t *testing.T) {
	dir := t.TempDir()
	ws := filepath.Join(dir, "ws")
	conf := filepath.Join(dir, "config")
	sys := filepath.Join(dir, "etc")
	explicit := writeFile(t, filepath.Join(dir, "explicit.yaml"), "version: 1\ndefault: ask\n")
	writeFile(t, filepath.Join(ws, "README"), "")
	tests := []struct {
		name       string
		setup      func()
		opts       LoadOptions
		wantSource string
	}{
		{"builtin when nothing exists", func() {}, LoadOptions{ConfigHome: conf, SystemDir: sys, Workspace: ws}, "builtin:workspace"},
		{"named profile", func() {}, LoadOptions{ConfigHome: conf, SystemDir: sys, Profile: "readonly"}, "builtin:readonly"},
		{"system file", func() { writeFile(t, filepath.Join(sys, "policy.yaml"), "version: 1\n") }, LoadOptions{ConfigHome: conf, SystemDir: sys}, filepath.Join(sys, "policy.yaml")},
		{"user file beats system file", func() { writeFile(t, filepath.Join(conf, "agentexec", "policy.yaml"), "version: 1\n") }, LoadOptions{ConfigHome: conf, SystemDir: sys}, filepath.Join(conf, "agentexec", "policy.yaml")},
		{"explicit file beats both", func() {}, LoadOptions{File: explicit, ConfigHome: conf, SystemDir: sys}, explicit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup()
			p, err := Load(tt.opts)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if p.Source() != tt.wantSource {
				t.Errorf("got source %q, want %q", p.Source(), tt.wantSource)
			}
		})
	}
}

func worldWritable(t *testing.T, name string) string {
	t.Helper()
	writeFile(t, name, "version: 1\n")
	if err := os.Chmod(name, 0o666); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestLoadFailsClosed(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		opts LoadOptions
		want error
	}{
		{"missing explicit file", LoadOptions{File: filepath.Join(dir, "nope.yaml")}, ErrInvalidPolicy},
		{"unknown profile", LoadOptions{Profile: "yolo", SystemDir: dir}, ErrUnknownProfile},
		{"bad system file", LoadOptions{SystemDir: filepath.Dir(writeFile(t, filepath.Join(dir, "etc", "policy.yaml"), "version: 1\nbad: x\n"))}, ErrInvalidPolicy},
		{"relative workspace", LoadOptions{Workspace: "ws", SystemDir: dir}, ErrInvalidPolicy},
		{"world-writable file", LoadOptions{File: worldWritable(t, filepath.Join(dir, "ww.yaml"))}, ErrInvalidPolicy},
		{"a directory", LoadOptions{File: dir}, ErrInvalidPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Load(tt.opts)
			if p != nil || !errors.Is(err, tt.want) {
				t.Fatalf("got (%v, %v), want nil and %v", p, err, tt.want)
			}
		})
	}
}
