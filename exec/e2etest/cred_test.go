package e2etest

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// credEnv is a test env with the exec-provider helper set up to issue a
// fresh random token under a fresh lease id.
type credEnv struct {
	*env
	token, id, dir string
}

func newCredEnv(t *testing.T) *credEnv {
	t.Helper()
	e := newEnv(t)
	c := &credEnv{env: e, token: randomAlnum(t, 32), id: "lease-" + randomToken(t)[:12], dir: filepath.Join(e.tp, "cred")}
	if err := os.Mkdir(c.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"token": c.token, "id": c.id} {
		if err := os.WriteFile(filepath.Join(c.dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e.vars = append(e.vars, "E2E_CRED_DIR="+c.dir)
	return c
}

func randomAlnum(t *testing.T, n int) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	raw := randomToken(t) + randomToken(t) + randomToken(t) + randomToken(t)
	b, _ := hex.DecodeString(raw)
	out := make([]byte, n)
	for i := range out {
		out[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(out)
}

func helperPath(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "cred-helper"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (c *credEnv) credPolicy(port string) string {
	c.t.Helper()
	return c.policy(fmt.Sprintf(`version: 1
credentials:
  - name: api
    provider: exec
    command: [%s]
    env: [TOKEN]
    ttl: 10m
rules:
  - id: leak
    verdict: allow
    program: $WORKSPACE/leak.sh
    reason: prints the token it is given
    grants: {credentials: [api]}
  - id: client
    verdict: allow
    program: python3
    args: [client.py]
    reason: calls the test API with the token
    grants: {credentials: [api], network: ["127.0.0.1:%s"]}
  - id: touch
    verdict: allow
    program: touch
    reason: needs the token to create a file
    grants: {credentials: [api]}
  - {id: printenv, verdict: allow, program: printenv, reason: shows the environment}
`, helperPath(c.t), port))
}

func (c *credEnv) copyTestdata(name string) {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		c.t.Fatal(err)
	}
	c.writeWS(name, string(b))
}

// revoked is every id the helper's revoke was called with.
func (c *credEnv) revoked() []string {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, "revoked"))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// TestCredentialUsed: a granted command gets the token in its environment
// and authenticates with it to a server on the host, through a network
// grant; the token is revoked after the command and never recorded.
func TestCredentialUsed(t *testing.T) {
	c := newCredEnv(t)
	var authed atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+c.token {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		authed.Add(1)
		fmt.Fprint(w, "welcome")
	}))
	defer srv.Close()
	_, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	pol := c.credPolicy(port)
	c.copyTestdata("client.py")

	r := c.run("--policy", pol, "-c", "python3 client.py "+srv.URL+"/")
	if r.code != 0 || r.stdout != "200 welcome\n" {
		t.Fatalf("client: got %s, want exit 0 and %q", r, "200 welcome\n")
	}
	if n := authed.Load(); n != 1 {
		t.Errorf("server saw %d authenticated requests, want 1", n)
	}
	if got := c.revoked(); len(got) != 1 || got[0] != c.id {
		t.Errorf("helper revoke: got ids %q, want [%s]", got, c.id)
	}
	ends := kind(c.records(), "command.end")
	if len(ends) != 1 {
		t.Fatalf("got %d end records, want 1", len(ends))
	}
	end := ends[0]
	if len(end.Credentials) != 1 {
		t.Fatalf("end record: got credentials %+v, want one", end.Credentials)
	}
	cu := end.Credentials[0]
	if cu.Name != "api" || cu.Provider != "exec" || cu.ID != c.id {
		t.Errorf("end record: got credential %s/%s id %q, want api/exec id %q", cu.Name, cu.Provider, cu.ID, c.id)
	}
	if cu.Revocation == nil || cu.Revocation.Status != "ok" {
		t.Errorf("end record: got revocation %+v, want status ok", cu.Revocation)
	}
	if !strings.HasPrefix(cu.Fingerprint, "hmac-sha256:") {
		t.Errorf("end record: got fingerprint %q, want hmac-sha256:...", cu.Fingerprint)
	}
	assertNoSecret(t, "agentexec's stderr", r.stderr, c.token)
	assertNoSecretInFiles(t, c.token, c.home, c.state, c.config, c.cache, c.ws)

	// Not granted: neither this command nor a later one sees it.
	for i := range 2 {
		r := c.run("--policy", pol, "-c", "printenv TOKEN")
		if r.code != 1 || r.stdout != "" {
			t.Errorf("printenv TOKEN without the grant, run %d: got %s, want exit 1 and no output", i+1, r)
		}
	}
	if got := c.revoked(); len(got) != 1 {
		t.Errorf("helper revoke: got ids %q after ungranted commands, want only the first", got)
	}
}

// TestCredentialRedacted: whatever way a granted command prints the token,
// the agent reads [REDACTED:api], and nothing agentexec writes holds it.
func TestCredentialRedacted(t *testing.T) {
	c := newCredEnv(t)
	pol := c.credPolicy("9")
	c.copyTestdata("leak.sh")

	r := c.run("--policy", pol, "-c", "./leak.sh")
	if r.code != 0 {
		t.Fatalf("leak.sh: got %s, want exit 0", r)
	}
	forms := map[string]string{
		"the value":       c.token,
		"hex":             hex.EncodeToString([]byte(c.token)),
		"base64":          base64.StdEncoding.EncodeToString([]byte(c.token))[:40],
		"json":            `"` + c.token + `"`,
		"first 16 bytes":  c.token[:16],
		"second 16 bytes": c.token[16:],
	}
	for name, form := range forms {
		for stream, out := range map[string]string{"stdout": r.stdout, "stderr": r.stderr} {
			if strings.Contains(out, form) {
				t.Errorf("%s holds %s of the token:\n%s", stream, name, out)
			}
		}
	}
	// Every line that printed the token now names the credential instead:
	// plain, printenv, base64, xxd -p, json.dumps, byte by byte.
	if got := strings.Count(r.stdout, "[REDACTED:api]"); got < 6 {
		t.Errorf("stdout: got %d [REDACTED:api], want at least 6:\n%s", got, r.stdout)
	}
	for _, want := range []string{"plain: [REDACTED:api]\n", "TOKEN=[REDACTED:api]\n", "\"[REDACTED:api]\"\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout: no %q:\n%s", want, r.stdout)
		}
	}
	for _, want := range []string{"stderr: [REDACTED:api]\n", "[REDACTED:api]\n"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr: no %q:\n%s", want, r.stderr)
		}
	}
	recs := c.records()
	ends := kind(recs, "command.end")
	if len(ends) != 1 || ends[0].IO == nil || ends[0].IO.Stdout.Redactions < 6 || ends[0].IO.Stderr.Redactions < 2 {
		t.Errorf("end record: got io %+v, want at least 6 stdout and 2 stderr redactions", ends)
	}
	if got := c.revoked(); len(got) != 1 || got[0] != c.id {
		t.Errorf("helper revoke: got ids %q, want [%s]", got, c.id)
	}
	assertNoSecretInFiles(t, c.token, c.home, c.state, c.config, c.cache, c.ws)
	exp := c.run("audit", "export", "--format", "ocsf")
	assertNoSecret(t, "audit export --format ocsf", exp.stdout, c.token)
}

// TestCredentialIssueFails: a credential the helper cannot issue stops
// the command before anything runs, with one line that names it and
// quotes the helper's error with the value removed.
func TestCredentialIssueFails(t *testing.T) {
	c := newCredEnv(t)
	pol := c.credPolicy("9")
	if err := os.WriteFile(filepath.Join(c.dir, "fail"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := c.run("--policy", pol, "-c", "touch marker")
	if r.code != 125 {
		t.Errorf("got exit %d, want 125\n%s", r.code, r)
	}
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	const (
		prefix = "agentexec: "
		names  = `credential "api" (provider exec): issue: `
		quotes = "helper exited with status 1: minting failed for [REDACTED:"
	)
	if len(lines) != 1 || !strings.HasPrefix(lines[0], prefix) || !strings.Contains(lines[0], names) || !strings.Contains(lines[0], quotes) {
		t.Errorf("got stderr %q, want one %q line holding %q and %q", r.stderr, prefix, names, quotes)
	}
	assertNoSecret(t, "agentexec's stderr", r.stderr, c.token)
	t.Run("documented message", func(t *testing.T) {
		// docs/credentials.md: the provider's error, prefixed once.
		want := "agentexec: credential \"api\" (provider exec): issue: helper exited with status 1: minting failed for [REDACTED:helper-output]\n"
		if r.stderr != want {
			t.Errorf("got stderr %q, want %q", r.stderr, want)
		}
	})
	if _, err := os.Stat(filepath.Join(c.ws, "marker")); err == nil {
		t.Errorf("the command ran: the marker file exists")
	}
	if got := c.revoked(); len(got) != 0 {
		t.Errorf("helper revoke: got ids %q, want none (nothing was issued)", got)
	}
	assertNoSecretInFiles(t, c.token, c.home, c.ws, filepath.Join(c.tp, "policy.yaml"))
	// Credentials are issued before the start record is written, so a
	// failure there leaves no log behind, or one without this command.
	if _, err := os.Stat(filepath.Join(c.state, "agentexec")); err == nil {
		assertNoSecretInFiles(t, c.token, c.state)
		for _, rec := range c.records() {
			if rec.Kind == "command.start" || rec.Kind == "command.end" {
				t.Errorf("got a %s record, want none: the command never started", rec.Kind)
			}
		}
	}
}
