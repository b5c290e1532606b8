package e2etest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentexec/agentexec/audit"
)

// bin is the agentexec binary under test: $AGENTEXEC_BIN (make test sets
// it), or one built once here with the same tags.
var bin string

// unsupported says why this host cannot run sandboxed commands; every
// test skips with it. On our machines and in CI it stays empty.
var unsupported string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	bin = os.Getenv("AGENTEXEC_BIN")
	if bin == "" {
		dir, err := os.MkdirTemp("", "agentexec-e2e-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "agentexec")
		build := osexec.Command("go", "build", "-tags", "seccomp", "-o", bin, "github.com/agentexec/agentexec/cmd/agentexec")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		build.Env = append(os.Environ(), "CGO_ENABLED=1")
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building agentexec:", err)
			return 1
		}
	}
	if err := probe(); err != nil {
		unsupported = err.Error()
		fmt.Fprintf(os.Stderr, "e2etest: this host cannot sandbox a command, so every test skips: %s\n", unsupported)
	}
	return m.Run()
}

// probe runs the smallest command through the whole pipeline once.
func probe() error {
	root, err := os.MkdirTemp("", "agentexec-e2e-probe")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	e := &env{root: root}
	if err := e.makeDirs(); err != nil {
		return err
	}
	r, err := e.exec(context.Background(), nil, nil, "-c", "true")
	if err != nil {
		return err
	}
	if r.code != 0 {
		return fmt.Errorf("agentexec -c true exited %d: %s", r.code, strings.TrimSpace(r.stderr))
	}
	return nil
}

// env is one test's private world: a workspace, and HOME and the XDG
// directories agentexec reads and writes, all under one temporary root,
// so the real user's log and config are never touched.
type env struct {
	t                                  *testing.T
	root                               string
	home, state, config, cache, ws, tp string
	// vars are added to agentexec's environment for every run.
	vars []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if unsupported != "" {
		t.Skipf("this host cannot sandbox a command: %s", unsupported)
	}
	e := &env{t: t, root: t.TempDir()}
	if err := e.makeDirs(); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) makeDirs() error {
	e.home = filepath.Join(e.root, "home")
	e.state = filepath.Join(e.root, "state")
	e.config = filepath.Join(e.root, "config")
	e.cache = filepath.Join(e.root, "cache")
	e.ws = filepath.Join(e.root, "ws")
	// tp holds the test's own files (policies, helper state), outside
	// everything agentexec or the command may write.
	e.tp = filepath.Join(e.root, "test")
	for _, d := range []string{e.home, e.state, e.config, e.cache, e.ws, e.tp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	return nil
}

// environ is agentexec's whole environment: nothing is inherited from the
// test process (a CI=true there would change what is asked).
func (e *env) environ(extra []string) []string {
	vars := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8",
		"HOME=" + e.home,
		"XDG_STATE_HOME=" + e.state,
		"XDG_CONFIG_HOME=" + e.config,
		"XDG_CACHE_HOME=" + e.cache,
	}
	vars = append(vars, e.vars...)
	return append(vars, extra...)
}

// policy writes a policy file outside the workspace (a file inside it
// could only narrow) and returns its path.
func (e *env) policy(yaml string) string {
	e.t.Helper()
	p := filepath.Join(e.tp, "policy.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// writeWS writes an executable file in the workspace.
func (e *env) writeWS(name, content string) string {
	e.t.Helper()
	p := filepath.Join(e.ws, name)
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		e.t.Fatal(err)
	}
	return p
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// run runs agentexec with args in the workspace, stdin empty.
func (e *env) run(args ...string) result {
	e.t.Helper()
	return e.runWith(nil, nil, args...)
}

func (e *env) runWith(stdin io.Reader, extra []string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r, err := e.exec(ctx, stdin, extra, args...)
	if err != nil {
		e.t.Fatalf("agentexec %q: %v", args, err)
	}
	return r
}

func (e *env) exec(ctx context.Context, stdin io.Reader, extra []string, args ...string) (result, error) {
	cmd := osexec.CommandContext(ctx, bin, args...)
	cmd.Dir = e.ws
	cmd.Env = e.environ(extra)
	cmd.Stdin = stdin
	cmd.WaitDelay = 5 * time.Second
	// A session of its own: no controlling terminal, so an ask can never
	// reach the terminal of whoever runs the tests.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *osexec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		return r, err
	}
	return r, nil
}

// records reads every record of the test's audit log as a user would:
// through `agentexec audit export`.
func (e *env) records() []audit.Record {
	e.t.Helper()
	r := e.run("audit", "export", "--format", "jsonl")
	if r.code != 0 {
		e.t.Fatalf("audit export: %s", r)
	}
	var recs []audit.Record
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		var rec audit.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			e.t.Fatalf("audit export line %q: %v", sc.Text(), err)
		}
		recs = append(recs, rec)
	}
	return recs
}

// kind returns the records of one kind, in log order.
func kind(recs []audit.Record, k string) []audit.Record {
	var out []audit.Record
	for _, r := range recs {
		if r.Kind == k {
			out = append(out, r)
		}
	}
	return out
}

// randomToken is a fresh 32-character secret that cannot appear anywhere
// by chance.
func randomToken(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// assertNoSecret fails if data holds the secret in any form a user could
// read back.
func assertNoSecret(t *testing.T, where, data, secret string) {
	t.Helper()
	if strings.Contains(data, secret) {
		t.Errorf("%s contains the secret:\n%s", where, data)
	}
}

// assertNoSecretInFiles greps every regular file under each root.
func assertNoSecretInFiles(t *testing.T, secret string, roots ...string) {
	t.Helper()
	n := 0
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n++
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("file %s contains the secret", p)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("walking %s: %v", root, err)
		}
	}
	if n == 0 {
		t.Fatalf("found no files under %q to check", roots)
	}
}
