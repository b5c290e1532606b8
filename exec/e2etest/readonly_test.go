package e2etest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadOnlyWorkspace: a policy that says `workspace: read-only` reaches
// the sandbox. A program the policy allows, writing the file itself (no
// redirection the policy could see), finds the workspace read-only, and
// the host workspace is unchanged.
func TestReadOnlyWorkspace(t *testing.T) {
	e := newEnv(t)
	pol := e.policy(`version: 1
workspace: read-only
rules:
  - {id: touch, verdict: allow, program: touch, reason: creates files}
`)
	r := e.run("--policy", pol, "-c", "touch planted")
	if r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
		t.Errorf("got %s; want touch refused with a read-only file system", r)
	}
	if _, err := os.Stat(filepath.Join(e.ws, "planted")); err == nil {
		t.Error("got planted in the host workspace, want nothing written")
	}

	// The same policy, writable: the file is written.
	pol = e.policy(`version: 1
rules:
  - {id: touch, verdict: allow, program: touch, reason: creates files}
`)
	if r := e.run("--policy", pol, "-c", "touch planted"); r.code != 0 {
		t.Fatalf("writable workspace: got %s, want touch to succeed", r)
	}
	if _, err := os.Stat(filepath.Join(e.ws, "planted")); err != nil {
		t.Errorf("writable workspace: %v", err)
	}
}
