package cred

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

const testToken = "ghs_TestToken0123456789abcdefXYZ"

func testdata(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// execSetup points the exec helper at a fresh directory and returns it.
func execSetup(t *testing.T, mode string) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("HELPER_DIR", dir)
	t.Setenv("HELPER_MODE", mode)
	t.Setenv("HELPER_VALUE", testToken)
	t.Setenv("HELPER_EXPIRES", time.Now().Add(10*time.Minute).UTC().Format(time.RFC3339))
	t.Setenv("HELPER_REVOKE_FAIL", "")
	return dir
}

func execSpec(t *testing.T) Spec {
	return Spec{
		Name: "github", Provider: ProviderExec, Command: []string{testdata(t, "exec-helper")},
		Env: []string{"TOKEN"}, TTL: 15 * time.Minute,
		Scope: map[string]any{"repos": []any{"web"}},
	}
}

var testPurpose = Purpose{RecordID: "rec-1", Principal: "alice", Agent: "claude-code", Session: "s-9", IntentSHA256: "abc123"}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("parsing %s: %v (%q)", path, err, b)
	}
	return m
}

func TestExecProviderIssueAndRevoke(t *testing.T) {
	dir := execSetup(t, "ok")
	c, err := Issue(context.Background(), execSpec(t), testPurpose)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	req := readJSON(t, filepath.Join(dir, "issue.json"))
	want := map[string]any{
		"version": 1.0, "name": "github", "ttl_seconds": 900.0, "env": []any{"TOKEN"},
		"scope": map[string]any{"repos": []any{"web"}},
		"purpose": map[string]any{"record_id": "rec-1", "principal": "alice", "agent": "claude-code",
			"session": "s-9", "intent_sha256": "abc123"},
	}
	if got, _ := json.Marshal(req); string(got) != mustJSON(t, want) {
		t.Errorf("request: got %s, want %s", got, mustJSON(t, want))
	}
	if got := string(c.Env["TOKEN"].Reveal()); got != testToken {
		t.Errorf("TOKEN: got %q, want %q", got, testToken)
	}
	if c.ID != "lease-42" || c.Name != "github" || c.Provider != "exec" {
		t.Errorf("got ID %q name %q provider %q, want lease-42 github exec", c.ID, c.Name, c.Provider)
	}
	if d := time.Until(c.ExpiresAt); d < 9*time.Minute || d > 11*time.Minute {
		t.Errorf("ExpiresAt: got %v from now, want about 10m", d)
	}
	if !regexp.MustCompile(`^hmac-sha256:[0-9a-f]{16}$`).MatchString(c.Fingerprint) {
		t.Errorf("Fingerprint: got %q, want hmac-sha256:<16 hex>", c.Fingerprint)
	}
	if got := mustJSON(t, c.Granted); got != `{"repos":["web"]}` {
		t.Errorf("Granted: got %s", got)
	}
	r := c.Revoke(context.Background())
	if r.Status != RevokeOK || r.Error != "" || r.At.IsZero() {
		t.Errorf("Revoke: got %+v, want status ok", r)
	}
	rev := readJSON(t, filepath.Join(dir, "revoke.json"))
	if rev["id"] != "lease-42" || rev["revoke_handle"] != "handle-0123456789" || rev["name"] != "github" {
		t.Errorf("revoke request: got %v, want id lease-42 with the handle", rev)
	}
	// Revoke runs once.
	_ = os.Remove(filepath.Join(dir, "revoke.json"))
	if r2 := c.Revoke(context.Background()); r2 != r {
		t.Errorf("second Revoke: got %+v, want %+v", r2, r)
	}
	if _, err := os.Stat(filepath.Join(dir, "revoke.json")); err == nil {
		t.Errorf("second Revoke ran the helper again")
	}
	tok := c.Env["TOKEN"]
	c.Destroy()
	if got := tok.Reveal(); strings.Trim(string(got), "\x00") != "" {
		t.Errorf("after Destroy: got %q, want zeros", got)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestExecProviderValueAndFile(t *testing.T) {
	execSetup(t, "value")
	spec := execSpec(t)
	spec.Env = []string{"GH_TOKEN", "GITHUB_TOKEN"}
	c, err := Issue(context.Background(), spec, testPurpose)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	for _, n := range spec.Env {
		if got := string(c.Env[n].Reveal()); got != testToken {
			t.Errorf("%s: got %q, want the token", n, got)
		}
	}
	spec.Env, spec.FileEnv = nil, "TOKEN_FILE"
	c, err = Issue(context.Background(), spec, testPurpose)
	if err != nil {
		t.Fatalf("Issue with file_env: %v", err)
	}
	path := c.Vars["TOKEN_FILE"]
	if path != "/run/agentexec/credentials/github" || string(c.Files[path].Reveal()) != testToken || len(c.Env) != 0 {
		t.Errorf("file delivery: got vars %v files %d env %d", c.Vars, len(c.Files), len(c.Env))
	}
}

func TestExecProviderFailures(t *testing.T) {
	cases := []struct {
		name       string
		mode       string
		spec       func(*Spec)
		want       error
		wantRevoke bool
	}{
		{"helper exits non-zero", "fail", nil, ErrHelperFailed, false},
		{"helper times out", "sleep", func(s *Spec) { s.Timeout = 300 * time.Millisecond }, ErrTimeout, false},
		{"value too short", "short", nil, ErrTooShort, true},
		{"not json", "garbage", nil, ErrBadResponse, false},
		{"undeclared variable", "undeclared", nil, ErrBadResponse, true},
		{"declared variable missing", "missing", nil, ErrBadResponse, true},
		{"scope wider than ceiling", "wide", nil, ErrCeiling, true},
		{"ttl beyond ceiling", "ok", func(s *Spec) { s.TTL = time.Minute }, ErrCeiling, true},
		{"wrong version", "version", nil, ErrBadResponse, false},
		{"no expiry when short-lived", "noexpiry", func(s *Spec) { s.ShortLived = true }, ErrNoExpiry, true},
		{"helper missing", "ok", func(s *Spec) { s.Command = []string{"/nonexistent/helper"} }, ErrHelperFailed, false},
		{"empty command", "ok", func(s *Spec) { s.Command = nil }, ErrInvalidSpec, false},
		{"unknown provider", "ok", func(s *Spec) { s.Provider = "vault" }, ErrUnknownProvider, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := execSetup(t, c.mode)
			spec := execSpec(t)
			if c.spec != nil {
				c.spec(&spec)
			}
			cr, err := Issue(context.Background(), spec, testPurpose)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if cr != nil {
				t.Errorf("got a credential with an error")
			}
			var ie *IssueError
			if !errors.As(err, &ie) || ie.Name != "github" {
				t.Errorf("got %T, want *IssueError naming the credential", err)
			}
			assertNoSecret(t, err.Error(), testToken)
			_, statErr := os.Stat(filepath.Join(dir, "revoke.json"))
			if got := statErr == nil; got != c.wantRevoke {
				t.Errorf("revoke called: got %v, want %v", got, c.wantRevoke)
			}
		})
	}
}

func TestExecProviderHelperStderrRedacted(t *testing.T) {
	execSetup(t, "fail")
	_, err := Issue(context.Background(), execSpec(t), testPurpose)
	var he *HelperError
	if !errors.As(err, &he) || he.ExitCode != 3 {
		t.Fatalf("got %v, want *HelperError with exit code 3", err)
	}
	if want := "upstream said: [REDACTED:helper-output] is over quota"; he.Stderr != want {
		t.Errorf("Stderr: got %q, want %q", he.Stderr, want)
	}
}

func TestRevokeFailureIsRedacted(t *testing.T) {
	execSetup(t, "ok")
	c, err := Issue(context.Background(), execSpec(t), testPurpose)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("HELPER_REVOKE_FAIL", "1")
	r := c.Revoke(context.Background())
	if r.Status != RevokeFailed {
		t.Fatalf("got status %q, want failed", r.Status)
	}
	if want := "revoke: helper exited with status 4: revoke refused for token [REDACTED:github]"; r.Error != want {
		t.Errorf("got %q, want %q", r.Error, want)
	}
}

func TestRevokeStatuses(t *testing.T) {
	execSetup(t, "unrevocable")
	c, err := Issue(context.Background(), execSpec(t), testPurpose)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Revoke(context.Background()).Status; got != RevokeUnsupported {
		t.Errorf("unrevocable, unexpired: got %q, want unsupported", got)
	}
	expired := &Credential{ExpiresAt: time.Now().Add(-time.Second)}
	if got := expired.Revoke(context.Background()).Status; got != RevokeExpired {
		t.Errorf("expired: got %q, want expired", got)
	}
}

func TestRevokeAfterCancel(t *testing.T) {
	dir := execSetup(t, "ok")
	c, err := Issue(context.Background(), execSpec(t), testPurpose)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the command was interrupted
	if r := c.Revoke(ctx); r.Status != RevokeOK {
		t.Errorf("got %+v, want ok even with a cancelled context", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "revoke.json")); err != nil {
		t.Errorf("helper revoke not called: %v", err)
	}
}

// assertNoSecret fails if s holds the secret or a common encoding of it.
func assertNoSecret(t *testing.T, s, secret string) {
	t.Helper()
	for _, form := range []string{
		secret, secret[:len(secret)/2], secret[len(secret)/2:],
		base64.RawStdEncoding.EncodeToString([]byte(secret))[:16], hex.EncodeToString([]byte(secret))[:16],
	} {
		if strings.Contains(s, form) {
			t.Errorf("%q contains %q, derived from the secret", s, form)
		}
	}
}

func TestEnvProvider(t *testing.T) {
	t.Setenv("SRC_TOKEN", testToken)
	t.Setenv("SHORT_TOKEN", "abc")
	t.Setenv("EMPTY_TOKEN", "")
	cases := []struct {
		name string
		spec Spec
		want error
		env  map[string]string
	}{
		{"same name", Spec{Name: "e", Provider: ProviderEnv, Var: "SRC_TOKEN"}, nil, map[string]string{"SRC_TOKEN": testToken}},
		{"renamed", Spec{Name: "e", Provider: ProviderEnv, Var: "SRC_TOKEN", Env: []string{"GH_TOKEN"}}, nil, map[string]string{"GH_TOKEN": testToken}},
		{"unset", Spec{Name: "e", Provider: ProviderEnv, Var: "NOPE_TOKEN"}, ErrNotSet, nil},
		{"empty", Spec{Name: "e", Provider: ProviderEnv, Var: "EMPTY_TOKEN"}, ErrNotSet, nil},
		{"too short", Spec{Name: "e", Provider: ProviderEnv, Var: "SHORT_TOKEN"}, ErrTooShort, nil},
		{"bad var", Spec{Name: "e", Provider: ProviderEnv, Var: "A=B"}, ErrInvalidSpec, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cr, err := Issue(context.Background(), c.spec, Purpose{})
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if err != nil {
				return
			}
			if len(cr.Env) != len(c.env) {
				t.Errorf("got %d variables, want %d", len(cr.Env), len(c.env))
			}
			for k, v := range c.env {
				if got := string(cr.Env[k].Reveal()); got != v {
					t.Errorf("%s: got %q, want %q", k, got, v)
				}
			}
			if got := cr.Revoke(context.Background()).Status; got != RevokeUnsupported {
				t.Errorf("Revoke: got %q, want unsupported", got)
			}
		})
	}
}

func TestFileProvider(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the file provider accepts only root-owned files; creating them needs root")
	}
	write := func(t *testing.T, dir, content string, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(dir, "secret")
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name  string
		setup func(t *testing.T) string
		want  error
	}{
		{"root 0600", func(t *testing.T) string { return write(t, t.TempDir(), testToken+"\n", 0o600) }, nil},
		{"root 0644", func(t *testing.T) string { return write(t, t.TempDir(), testToken+"\r\n", 0o644) }, nil},
		{"group writable", func(t *testing.T) string { return write(t, t.TempDir(), testToken, 0o620) }, ErrUnsafeFile},
		{"world writable", func(t *testing.T) string { return write(t, t.TempDir(), testToken, 0o602) }, ErrUnsafeFile},
		{"owned by a user", func(t *testing.T) string {
			p := write(t, t.TempDir(), testToken, 0o600)
			if err := os.Chown(p, 1000, 1000); err != nil {
				t.Fatal(err)
			}
			return p
		}, ErrUnsafeFile},
		{"directory writable by others", func(t *testing.T) string {
			d := t.TempDir()
			if err := os.Chmod(d, 0o777); err != nil {
				t.Fatal(err)
			}
			return write(t, d, testToken, 0o600)
		}, ErrUnsafeFile},
		{"directory owned by a user", func(t *testing.T) string {
			d := t.TempDir()
			if err := os.Chown(d, 1000, 1000); err != nil {
				t.Fatal(err)
			}
			return write(t, d, testToken, 0o600)
		}, ErrUnsafeFile},
		{"symlink", func(t *testing.T) string {
			d := t.TempDir()
			p := write(t, d, testToken, 0o600)
			l := filepath.Join(d, "link")
			if err := os.Symlink(p, l); err != nil {
				t.Fatal(err)
			}
			return l
		}, ErrUnsafeFile},
		{"fifo", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "fifo")
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, ErrUnsafeFile},
		{"too short", func(t *testing.T) string { return write(t, t.TempDir(), "abc\n", 0o600) }, ErrTooShort},
		{"relative", func(t *testing.T) string { return "secret" }, ErrInvalidSpec},
		{"not clean", func(t *testing.T) string { return t.TempDir() + "/../x/secret" }, ErrUnsafeFile},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := Spec{Name: "f", Provider: ProviderFile, File: c.setup(t), Env: []string{"TOKEN"}}
			cr, err := Issue(context.Background(), spec, Purpose{})
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if err == nil {
				if got := string(cr.Env["TOKEN"].Reveal()); got != testToken {
					t.Errorf("got %q, want the token without its newline", got)
				}
			}
		})
	}
}

func TestAWSProvider(t *testing.T) {
	const secret, session = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "FwoGZXIvYXdzEXAMPLESESSIONTOKEN"
	t.Setenv("AWS_TEST_SECRET", secret)
	t.Setenv("AWS_TEST_TOKEN", session)
	exp := time.Now().Add(30 * time.Minute).UTC().Truncate(time.Second)
	t.Setenv("AWS_TEST_EXPIRES", exp.Format(time.RFC3339))
	spec := Spec{Name: "aws-dev", Provider: ProviderAWS, Command: []string{testdata(t, "aws-process")}}

	t.Setenv("AWS_TEST_MODE", "ok")
	c, err := Issue(context.Background(), spec, Purpose{})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if c.ID != "ASIATESTKEY0001" || c.Vars["AWS_ACCESS_KEY_ID"] != "ASIATESTKEY0001" {
		t.Errorf("got ID %q vars %v, want the access key id", c.ID, c.Vars)
	}
	if string(c.Env["AWS_SECRET_ACCESS_KEY"].Reveal()) != secret || string(c.Env["AWS_SESSION_TOKEN"].Reveal()) != session {
		t.Errorf("secret variables not delivered")
	}
	if !c.ExpiresAt.Equal(exp) || c.Vars["AWS_CREDENTIAL_EXPIRATION"] != exp.Format(time.RFC3339) {
		t.Errorf("expiry: got %v / %q, want %v", c.ExpiresAt, c.Vars["AWS_CREDENTIAL_EXPIRATION"], exp)
	}
	if got := c.Revoke(context.Background()).Status; got != RevokeUnsupported {
		t.Errorf("Revoke: got %q, want unsupported (STS keys cannot be revoked one by one)", got)
	}

	spec.FileEnv = "AWS_SHARED_CREDENTIALS_FILE"
	c, err = Issue(context.Background(), spec, Purpose{})
	if err != nil {
		t.Fatalf("Issue with file_env: %v", err)
	}
	want := "[default]\naws_access_key_id = ASIATESTKEY0001\naws_secret_access_key = " + secret + "\naws_session_token = " + session + "\n"
	if got := string(c.Files[c.Vars["AWS_SHARED_CREDENTIALS_FILE"]].Reveal()); got != want {
		t.Errorf("credentials file: got %q, want %q", got, want)
	}
	spec.FileEnv = ""

	cases := []struct {
		mode       string
		shortLived bool
		want       error
	}{
		{"noexpiry", true, ErrNoExpiry},
		{"noexpiry", false, nil},
		{"version", false, ErrBadResponse},
		{"nokey", false, ErrBadResponse},
		{"fail", false, ErrHelperFailed},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			t.Setenv("AWS_TEST_MODE", tc.mode)
			s := spec
			s.ShortLived = tc.shortLived
			_, err := Issue(context.Background(), s, Purpose{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err != nil {
				assertNoSecret(t, err.Error(), secret)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	base := Spec{Name: "x", Provider: ProviderExec, Command: []string{"/bin/true"}, Env: []string{"T"}}
	cases := []struct {
		name string
		mod  func(*Spec)
		want error
	}{
		{"ok", func(*Spec) {}, nil},
		{"empty name", func(s *Spec) { s.Name = "" }, ErrInvalidSpec},
		{"name with slash", func(s *Spec) { s.Name = "../x" }, ErrInvalidSpec},
		{"bad env name", func(s *Spec) { s.Env = []string{"A B"} }, ErrInvalidSpec},
		{"relative command", func(s *Spec) { s.Command = []string{"./helper"} }, ErrInvalidSpec},
		{"command from PATH", func(s *Spec) { s.Command = []string{"true"} }, nil},
		{"no delivery", func(s *Spec) { s.Env = nil }, ErrInvalidSpec},
		{"unknown provider", func(s *Spec) { s.Provider = "nope" }, ErrUnknownProvider},
		{"git without host", func(s *Spec) { s.Provider, s.Env = ProviderGit, nil }, ErrInvalidSpec},
		{"git host injection", func(s *Spec) { s.Provider, s.Env, s.Host = ProviderGit, nil, "a\nhost=b" }, ErrInvalidSpec},
		{"git with env", func(s *Spec) { s.Provider, s.Host = ProviderGit, "h" }, nil},
		{"git ssh protocol", func(s *Spec) { s.Provider, s.Env, s.Host, s.Protocol = ProviderGit, nil, "h", "ssh" }, ErrInvalidSpec},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := base
			c.mod(&s)
			if err := Validate(s); !errors.Is(err, c.want) {
				t.Errorf("got %v, want %v", err, c.want)
			}
		})
	}
}
