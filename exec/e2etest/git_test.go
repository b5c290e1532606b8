package e2etest

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// TestGitCredentialThroughAskpass: a real git inside the sandbox fetches
// from an HTTP remote that wants a password. The git-credential provider
// asks a git credential helper on the host, and the token reaches git only
// through the askpass agentexec serves: never the environment, the output,
// the record or a file agentexec wrote.
func TestGitCredentialThroughAskpass(t *testing.T) {
	if _, err := osexec.LookPath("git"); err != nil {
		t.Skip("git is not installed: this test needs a real git")
	}
	e := newEnv(t)
	token := randomToken(t)
	var authed, refused atomic.Int32
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("agent:"+token))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != want {
			refused.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="repo"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		authed.Add(1)
		// The dumb HTTP protocol: enough for ls-remote.
		switch {
		case strings.HasSuffix(r.URL.Path, "/info/refs"):
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, "0123456789012345678901234567890123456789\trefs/heads/main\n")
		case strings.HasSuffix(r.URL.Path, "/HEAD"):
			fmt.Fprint(w, "ref: refs/heads/main\n")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	hostport := strings.TrimPrefix(srv.URL, "http://")

	store := filepath.Join(e.tp, "git-credentials")
	if err := os.WriteFile(store, []byte("http://agent:"+token+"@"+hostport+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(hostport, ":")
	// The same rule with and without the credential grant.
	policyFor := func(withCred bool) string {
		creds, grant := "", ""
		if withCred {
			creds = fmt.Sprintf("credentials:\n  - {name: repo, provider: git-credential, protocol: http, host: %q, helper: %q, short_lived: false}\n", hostport, "store --file="+store)
			grant = "\n      credentials: [repo]"
		}
		return e.policy(fmt.Sprintf(`version: 1
default: deny
%srules:
  - id: git-ls-remote
    verdict: allow
    program: git
    args: [ls-remote]
    reason: reads the remote's refs
    grants:
      network: [{host: 127.0.0.1, ports: [%s]}]%s
`, creds, port, grant))
	}
	pol := policyFor(true)

	r := e.run("--policy", pol, "-c", "git ls-remote "+srv.URL+"/repo.git")
	if r.code != 0 || !strings.Contains(r.stdout, "refs/heads/main") {
		t.Fatalf("got %v; want the refs listed", r)
	}
	if authed.Load() == 0 || refused.Load() == 0 {
		t.Errorf("got %d authenticated and %d refused requests, want git asked, refused, then authenticated", authed.Load(), refused.Load())
	}
	assertNoSecret(t, "stdout", r.stdout, token)
	assertNoSecret(t, "stderr", r.stderr, token)
	assertNoSecretInFiles(t, token, e.home, e.state, e.config, e.ws)

	end := lastEnd(t, e)
	if len(end.Credentials) != 1 || end.Credentials[0].Name != "repo" || !slices.Contains(end.Credentials[0].InjectedAs, "GIT_ASKPASS") {
		t.Errorf("got credentials %+v in the end record, want repo delivered through GIT_ASKPASS", end.Credentials)
	}

	// Without the credential the same remote refuses git, which cannot
	// prompt: the sandbox has no terminal and agentexec no askpass for it.
	pol = policyFor(false)
	before := authed.Load()
	r = e.run("--policy", pol, "-c", "git ls-remote "+srv.URL+"/repo.git")
	if r.code == 0 || authed.Load() != before {
		t.Errorf("got %v and %d new authenticated requests; want git refused without the grant", r, authed.Load()-before)
	}
}
