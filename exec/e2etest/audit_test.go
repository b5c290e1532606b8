package e2etest

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const auditPolicy = `version: 1
rules:
  - {id: echo, verdict: allow, program: echo, reason: prints its arguments}
  - {id: touch, verdict: allow, program: touch, reason: creates files in the workspace}
  - id: no-push
    verdict: deny
    program: git
    args: [push]
    reason: pushing is for humans
    hint: [commit locally; a human pushes]
`

// TestAuditRoundTrip: a command that runs leaves a start and an end record
// with its intent, exit status and output digest; a denied one leaves a
// denied record naming the rule; the log verifies.
func TestAuditRoundTrip(t *testing.T) {
	e := newEnv(t)
	pol := e.policy(auditPolicy)

	r := e.run("--policy", pol, "--intent", "say hi", "-c", "echo hi")
	if r.code != 0 || r.stdout != "hi\n" {
		t.Fatalf("echo hi: got %s, want exit 0 and stdout %q", r, "hi\n")
	}

	r = e.run("--policy", pol, "--intent", "publish", "-c", "touch ran && git push origin HEAD")
	if r.code != 126 {
		t.Errorf("denied line: got exit %d, want 126\n%s", r.code, r)
	}
	wantLine := `agentexec: denied by rule "no-push": pushing is for humans`
	if first, _, _ := strings.Cut(r.stderr, "\n"); first != wantLine {
		t.Errorf("denied line: got first stderr line %q, want %q", first, wantLine)
	}
	if !strings.Contains(r.stderr, "agentexec: hint: commit locally; a human pushes\n") {
		t.Errorf("denied line: stderr has no hint line:\n%s", r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("denied line: got stdout %q, want none", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(e.ws, "ran")); err == nil {
		t.Errorf("denied line: a part of it ran (the marker file exists)")
	}

	recs := e.records()
	starts, ends, denied := kind(recs, "command.start"), kind(recs, "command.end"), kind(recs, "command.denied")
	if len(starts) != 1 || len(ends) != 1 || len(denied) != 1 {
		t.Fatalf("got %d start, %d end, %d denied records, want 1 of each", len(starts), len(ends), len(denied))
	}
	start, end, den := starts[0], ends[0], denied[0]
	for _, rec := range []struct {
		kind, intent string
	}{{start.Kind, start.Intent.Text}, {end.Kind, end.Intent.Text}} {
		if rec.intent != "say hi" {
			t.Errorf("%s: got intent %q, want %q", rec.kind, rec.intent, "say hi")
		}
	}
	if start.Command.Line != "echo hi" {
		t.Errorf("start: got command line %q, want %q", start.Command.Line, "echo hi")
	}
	if end.StartID != start.ID {
		t.Errorf("end: got start_id %q, want the start record's id %q", end.StartID, start.ID)
	}
	if end.Result == nil || end.Result.ExitCode != 0 || end.Result.Status != "success" {
		t.Errorf("end: got result %+v, want exit 0, success", end.Result)
	}
	sum := sha256.Sum256([]byte("hi\n"))
	if end.IO == nil || end.IO.Stdout.SHA256 != hex.EncodeToString(sum[:]) || end.IO.Stdout.Bytes != 3 {
		t.Errorf("end: got stdout %+v, want 3 bytes with sha256 %x", end.IO, sum)
	}
	if !slices.Contains(den.Decision.Rules, "no-push") || den.Decision.Verdict != "deny" {
		t.Errorf("denied: got decision %+v, want verdict deny naming rule no-push", den.Decision)
	}
	if den.Result == nil || den.Result.ExitCode != 126 || !strings.Contains(den.Result.Error, `"no-push"`) {
		t.Errorf("denied: got result %+v, want exit 126 and an error naming no-push", den.Result)
	}
	if den.Intent.Text != "publish" {
		t.Errorf("denied: got intent %q, want %q", den.Intent.Text, "publish")
	}

	v := e.run("audit", "verify")
	if v.code != 0 || !strings.HasPrefix(v.stdout, "ok: 3 records") {
		t.Errorf("audit verify: got %s, want exit 0 and ok: 3 records", v)
	}
}

// TestAuditTamper: changing one byte of what the log stores makes
// `agentexec audit verify` fail.
func TestAuditTamper(t *testing.T) {
	tests := []struct {
		name string
		// file picks the file to change under the log directory.
		file func(t *testing.T, logDir string) string
	}{
		{"entry bundle", func(t *testing.T, logDir string) string {
			return largestUnder(t, filepath.Join(logDir, "tile", "entries"))
		}},
		{"checkpoint", func(t *testing.T, logDir string) string {
			return filepath.Join(logDir, "checkpoint")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			pol := e.policy(auditPolicy)
			for _, line := range []string{"echo one", "echo two"} {
				if r := e.run("--policy", pol, "-c", line); r.code != 0 {
					t.Fatalf("%s: %s", line, r)
				}
			}
			if v := e.run("audit", "verify"); v.code != 0 {
				t.Fatalf("audit verify before the change: %s", v)
			}
			p := tt.file(t, filepath.Join(e.state, "agentexec", "log"))
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			// A byte in the middle: inside a payload or the root hash,
			// not a trailing newline a lenient parser might skip.
			b[len(b)/2] ^= 0x01
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			v := e.run("audit", "verify")
			if v.code == 0 {
				t.Fatalf("audit verify after flipping a byte of %s: got exit 0, want a failure\n%s", p, v)
			}
			if !strings.HasPrefix(v.stderr, "agentexec: ") {
				t.Errorf("audit verify: got stderr %q, want an agentexec: line", v.stderr)
			}
		})
	}
}

func largestUnder(t *testing.T, root string) string {
	t.Helper()
	var best string
	var size int64 = -1
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Size() > size {
			best, size = p, fi.Size()
		}
		return nil
	})
	if err != nil || best == "" {
		t.Fatalf("finding a file under %s: %v", root, err)
	}
	return best
}
