package cred

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// The askpass tests run this test binary under the name
	// agentexec-askpass, as git runs agentexec's binary in the sandbox.
	MaybeAskpass()
	os.Exit(m.Run())
}

// gitHome gives git an empty configuration of its own: a global config
// file in a temporary HOME and no system config.
func gitHome(t *testing.T, config string) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	home := t.TempDir()
	cfg := filepath.Join(home, ".gitconfig")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("GIT_CONFIG_GLOBAL", cfg)
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	return home
}

func answersFile(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "answers")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGitProvider(t *testing.T) {
	helper := testdata(t, "git-credential-test")
	exp := time.Now().Add(time.Hour).Unix()
	configured := answersFile(t,
		fmt.Sprintf("git.example.com x-access-token %s %d", testToken, exp),
		"noexpiry.example.com bot longlivedtoken123 -",
		"short.example.com bot abc -")
	override := answersFile(t, "git.example.com other-user overrideToken0123456789 -")
	gitHome(t, fmt.Sprintf("[credential]\n\thelper = %s %s\n", helper, configured))

	cases := []struct {
		name                 string
		spec                 Spec
		want                 error
		wantUser, wantSecret string
		wantExpiry           bool
	}{
		// git passes password_expiry_utc on from 2.41.
		{"configured helper", Spec{Host: "git.example.com"}, nil, "x-access-token", testToken, gitAtLeast(t, 2, 41)},
		{"helper override", Spec{Host: "git.example.com", Helper: helper + " " + override}, nil, "other-user", "overrideToken0123456789", false},
		{"no expiry allowed", Spec{Host: "noexpiry.example.com"}, nil, "bot", "longlivedtoken123", false},
		{"no expiry refused", Spec{Host: "noexpiry.example.com", ShortLived: true}, ErrNoExpiry, "", "", false},
		{"too short", Spec{Host: "short.example.com"}, ErrTooShort, "", "", false},
		{"unknown host fails without prompting", Spec{Host: "unknown.example.com"}, ErrHelperFailed, "", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := c.spec
			spec.Name, spec.Provider, spec.Timeout = "git", ProviderGit, 10*time.Second
			cr, err := Issue(context.Background(), spec, Purpose{})
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if err != nil {
				if errors.Is(err, ErrHelperFailed) && !strings.Contains(err.Error(), "terminal prompts disabled") {
					t.Errorf("got %q, want git's own reason", err)
				}
				return
			}
			if cr.Askpass == nil || cr.Askpass.Username != c.wantUser || string(cr.Askpass.Password.Reveal()) != c.wantSecret {
				t.Fatalf("got askpass %+v, want user %q and the password", cr.Askpass, c.wantUser)
			}
			if len(cr.Env) != 0 {
				t.Errorf("git credentials must not be in the environment, got %d variables", len(cr.Env))
			}
			if got := !cr.ExpiresAt.IsZero(); got != c.wantExpiry {
				t.Errorf("expiry set: got %v, want %v", got, c.wantExpiry)
			}
			if want := "https://" + c.wantUser + "@" + spec.Host; cr.ID != want {
				t.Errorf("ID: got %q, want %q", cr.ID, want)
			}
		})
	}
}

// gitAtLeast reports whether the installed git is at least major.minor.
func gitAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	out, err := exec.Command("git", "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	var ma, mi int
	if _, err := fmt.Sscanf(string(out), "git version %d.%d", &ma, &mi); err != nil {
		t.Fatalf("parsing %q: %v", out, err)
	}
	return ma > major || ma == major && mi >= minor
}

// askpassBinary links this test binary under the askpass name.
func askpassBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), AskpassName)
	if err := os.Symlink(self, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func runAskpass(t *testing.T, bin, sock, prompt string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(bin, prompt)
	cmd.Env = []string{AskpassSockEnv + "=" + sock}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func TestAskpassServer(t *testing.T) {
	c := &Credential{Name: "git", Askpass: &Askpass{
		Protocol: "https", Host: "git.example.com", Username: "x-access-token", Password: NewSecret([]byte(testToken)),
	}}
	sock, stop, err := ServeAskpass(context.Background(), t.TempDir(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	bin := askpassBinary(t)
	cases := []struct {
		prompt, want string
		ok           bool
	}{
		{"Username for 'https://git.example.com': ", "x-access-token\n", true},
		{"Password for 'https://x-access-token@git.example.com': ", testToken + "\n", true},
		{"Password for 'https://GIT.example.com': ", testToken + "\n", true},
		{"Password for 'https://evil.example.com': ", "", false},
		{"Password for 'http://git.example.com': ", "", false},
		{"Password for 'https://someone-else@git.example.com': ", "", false},
		{"Enter passphrase for key '/home/a/.ssh/id_ed25519': ", "", false},
		{"", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.prompt, func(t *testing.T) {
			out, errOut, err := runAskpass(t, bin, sock, tc.prompt)
			if got := err == nil; got != tc.ok {
				t.Fatalf("success: got %v (stderr %q), want %v", got, errOut, tc.ok)
			}
			if out != tc.want {
				t.Errorf("stdout: got %q, want %q", out, tc.want)
			}
			if !tc.ok && !strings.HasPrefix(errOut, AskpassName+": ") {
				t.Errorf("stderr: got %q, want a message prefixed %q", errOut, AskpassName+": ")
			}
			assertNoSecret(t, errOut, testToken)
		})
	}
	stop()
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still exists after stop: %v", err)
	}
	if _, _, err := runAskpass(t, bin, sock, cases[1].prompt); err == nil {
		t.Errorf("askpass answered after stop")
	}
}

// TestGitEndToEnd runs a real `git ls-remote` against git http-backend
// served on loopback behind Basic auth. The credential comes from a git
// credential helper configured in a temporary git config and reaches git
// only through GIT_ASKPASS, answered by the askpass server.
func TestGitEndToEnd(t *testing.T) {
	home := gitHome(t, "")
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatal(err)
	}
	backend := filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		t.Skipf("git http-backend not installed: %v", err)
	}
	root := t.TempDir()
	repo := filepath.Join(root, "repo.git")
	git := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	work := t.TempDir()
	git(work, "init", "-q", "-b", "main")
	git(work, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "first")
	head := strings.TrimSpace(git(work, "rev-parse", "HEAD"))
	git(root, "clone", "-q", "--bare", work, repo)

	var authed, refused atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != "x-access-token" || pass != testToken {
			refused.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		authed.Add(1)
		(&cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}).ServeHTTP(w, r)
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	host := l.Addr().String()

	answers := answersFile(t, fmt.Sprintf("%s x-access-token %s %d", host, testToken, time.Now().Add(time.Hour).Unix()))
	spec := Spec{Name: "git-local", Provider: ProviderGit, Protocol: "http", Host: host,
		Helper: testdata(t, "git-credential-test") + " " + answers}
	c, err := Issue(context.Background(), spec, Purpose{})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	defer c.Destroy()
	sockDir := t.TempDir()
	sock, stop, err := ServeAskpass(context.Background(), sockDir, c)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	cmd := exec.Command("git", "ls-remote", "http://"+host+"/repo.git")
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"}
	for k, v := range AskpassEnv(askpassBinary(t), sock) {
		env = append(env, k+"="+v)
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git ls-remote: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), head+"\tHEAD") {
		t.Errorf("ls-remote output %q does not list HEAD %s", out, head)
	}
	if authed.Load() == 0 || refused.Load() == 0 {
		t.Errorf("got %d authenticated and %d refused requests, want git to ask and then authenticate", authed.Load(), refused.Load())
	}
	for _, kv := range cmd.Env {
		if strings.Contains(kv, testToken) {
			t.Errorf("the token is in git's environment: %s", kv)
		}
	}
	// Without the server, the same command fails instead of prompting.
	stop()
	cmd = exec.Command("git", "ls-remote", "http://"+host+"/repo.git")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("git ls-remote succeeded without the askpass server: %s", out)
	} else {
		assertNoSecret(t, string(out), testToken)
	}
}
