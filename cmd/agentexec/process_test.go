package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// These tests run the real binary as a program would, and check what the
// program and the command observe.

func agentexec(t *testing.T, args ...string) *osexec.Cmd {
	t.Helper()
	c := osexec.Command(bin, args...)
	c.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	c.Dir = t.TempDir()
	return c
}

// exitStatus is the status a shell would report for err.
func exitStatus(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *osexec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("running agentexec: %v", err)
	}
	return ee.ExitCode()
}

func TestHundredMiBThroughCat(t *testing.T) {
	const size = 100 << 20
	c := agentexec(t, "-c", "cat")
	in, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	sent := sha256.New()
	go func() {
		r := rand.NewChaCha8([32]byte{42})
		buf := make([]byte, 1<<20)
		for n := 0; n < size; n += len(buf) {
			_, _ = r.Read(buf)
			sent.Write(buf)
			if _, err := in.Write(buf); err != nil {
				break
			}
		}
		in.Close()
	}()
	got := sha256.New()
	n, err := io.Copy(got, out)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	if n != size || !bytes.Equal(got.Sum(nil), sent.Sum(nil)) {
		t.Errorf("got %d bytes sha256 %x, want %d bytes sha256 %x", n, got.Sum(nil), size, sent.Sum(nil))
	}
}

func TestTenMiBOnBothStreams(t *testing.T) {
	c := agentexec(t, "-c", "head -c 10485760 /dev/zero & head -c 10485760 /dev/zero >&2; wait")
	var out, errOut countWriter
	c.Stdout, c.Stderr = &out, &errOut
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	// stderr also holds agentexec's one-line warning.
	if out.n != 10<<20 || errOut.n < 10<<20 || errOut.n > 10<<20+100 {
		t.Errorf("got %d bytes on stdout and %d on stderr, want 10 MiB on each", out.n, errOut.n)
	}
}

type countWriter struct{ n int }

func (c *countWriter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

// TestOneStringRoundTrip: the whole command line as one argument, as
// CLAUDE_CODE_SHELL_PREFIX passes it, with everything a shell must not
// mangle.
func TestOneStringRoundTrip(t *testing.T) {
	payload := "it's \"quoted\" $HOME `tick` !bang !! \\back\\slash\n\ttab line\nünïcødé 日本語 🚀 \x01"
	line := "printf %s " + shellQuote(payload)
	out, err := agentexec(t, line).Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != payload {
		t.Errorf("got %q, want %q", out, payload)
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// waitReady reads the command's first line, "ready", so the test knows the
// command runs before it signals.
func waitReady(t *testing.T, r io.Reader) *bufio.Reader {
	t.Helper()
	br := bufio.NewReader(r)
	line, err := br.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("got %q %v, want the command's ready line", line, err)
	}
	return br
}

func TestSignalsReachTheCommand(t *testing.T) {
	tests := []struct {
		name    string
		sig     syscall.Signal
		want    int
		ignored bool // agentexec starts with SIGINT ignored, as a background job of a script does
	}{
		{name: "SIGINT", sig: unix.SIGINT, want: 130},
		{name: "SIGINT ignored by agentexec's parent", sig: unix.SIGINT, want: 130, ignored: true},
		{name: "SIGTERM", sig: unix.SIGTERM, want: 143},
		{name: "SIGHUP", sig: unix.SIGHUP, want: 129},
		{name: "SIGQUIT", sig: unix.SIGQUIT, want: 131},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A compound line: bash waits for sleep, so the signal must
			// reach the process group, not only bash.
			args := []string{"-c", "echo ready; sleep 30"}
			var c *osexec.Cmd
			if tc.ignored {
				c = osexec.Command("sh", append([]string{"-c", `trap '' INT; exec "$0" "$@"`, bin}, args...)...)
			} else {
				c = agentexec(t, args...)
			}
			out, _ := c.StdoutPipe()
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			waitReady(t, out)
			// bash ignores SIGQUIT itself; only sleep can take it, so
			// signal once sleep runs.
			waitForDescendant(t, c.Process.Pid, "sleep")
			start := time.Now()
			_ = c.Process.Signal(tc.sig)
			got := exitStatus(t, c.Wait())
			took := time.Since(start)
			if got != tc.want {
				t.Errorf("got exit %d, want %d", got, tc.want)
			}
			// The command must end now, not when sleep would have.
			if took > time.Second {
				t.Errorf("got exit after %v, want within a second", took)
			}
		})
	}
}

// TestCommandStartsWithDefaultSignals: even when agentexec's parent
// ignored SIGINT, the command starts with it at its default action; under
// nohup (SIGHUP ignored) the command keeps ignoring SIGHUP.
func TestCommandStartsWithDefaultSignals(t *testing.T) {
	tests := []struct {
		name     string
		trap     string
		wantIgn  []syscall.Signal
		wantDflt []syscall.Signal
	}{
		{name: "SIGINT ignored above", trap: "trap '' INT", wantDflt: []syscall.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGQUIT}},
		// The command runs in a session of its own, so a hangup of the
		// terminal never reaches it; agentexec itself keeps ignoring it
		// under nohup and so forwards none.
		{name: "nohup", trap: "trap '' HUP", wantDflt: []syscall.Signal{unix.SIGINT}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := osexec.Command("sh", "-c", tc.trap+`; exec "$0" -- grep SigIgn /proc/self/status`, bin)
			out, err := c.Output()
			if err != nil {
				t.Fatal(err)
			}
			f := strings.Fields(string(out))
			mask, err := strconv.ParseUint(f[len(f)-1], 16, 64)
			if err != nil {
				t.Fatalf("parsing %q: %v", out, err)
			}
			for _, s := range tc.wantIgn {
				if mask&(1<<(s-1)) == 0 {
					t.Errorf("got %v not ignored, want it ignored (mask %x)", s, mask)
				}
			}
			for _, s := range tc.wantDflt {
				if mask&(1<<(s-1)) != 0 {
					t.Errorf("got %v ignored, want its default action (mask %x)", s, mask)
				}
			}
		})
	}
}

// TestKilledAgentexecTakesTheCommandAlong: when agentexec is killed
// outright, the command does not outlive it.
func TestKilledAgentexecTakesTheCommandAlong(t *testing.T) {
	for i, args := range [][]string{{"-c", "echo ready; exec sleep 31.%s"}, {"--", "sh", "-c", "echo ready; exec sleep 31.%s"}} {
		t.Run(args[0], func(t *testing.T) {
			// The command's pid is its own namespace's; find it on the host
			// by a command line no other process has.
			mark := fmt.Sprintf("%d%d", os.Getpid(), i)
			args := slices.Clone(args)
			args[len(args)-1] = fmt.Sprintf(args[len(args)-1], mark)
			c := agentexec(t, args...)
			out, _ := c.StdoutPipe()
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			waitReady(t, out)
			want := "sleep\x0031." + mark
			pid := 0
			for deadline := time.Now().Add(5 * time.Second); pid == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				pid = findCmdline(want)
			}
			if pid == 0 {
				t.Fatalf("got no process running sleep 31.%s, want the command running", mark)
			}
			_ = c.Process.Kill()
			_ = c.Wait()
			deadline := time.Now().Add(5 * time.Second)
			for alive(pid) && findCmdline(want) == pid {
				if time.Now().After(deadline) {
					_ = unix.Kill(pid, unix.SIGKILL)
					t.Fatalf("got the command (host pid %d) still running after agentexec was killed, want it gone", pid)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// findCmdline is the host pid of a process whose command line contains s
// (arguments NUL-separated), or 0.
func findCmdline(s string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), s) {
			return pid
		}
	}
	return 0
}

// waitForDescendant waits until a process named comm runs below pid.
func waitForDescendant(t *testing.T, pid int, comm string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if hasDescendant(pid, comm) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("got no %s below pid %d", comm, pid)
}

func hasDescendant(pid int, comm string) bool {
	// Children are listed per thread, and agentexec starts its command
	// from a thread of its own.
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	var b []byte
	for _, task := range tasks {
		c, _ := os.ReadFile(task)
		b = append(append(b, c...), ' ')
	}
	for _, f := range strings.Fields(string(b)) {
		child, _ := strconv.Atoi(f)
		name, _ := os.ReadFile("/proc/" + f + "/comm")
		if strings.TrimSpace(string(name)) == comm || hasDescendant(child, comm) {
			return true
		}
	}
	return false
}

// alive reports whether pid runs (a zombie awaiting its reaper does not).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// onPTY runs agentexec on a terminal of the test's own, of the given
// size, and returns the terminal and the lines it shows.
func onPTY(t *testing.T, rows, cols uint16, args ...string) (c *osexec.Cmd, ptmx *os.File, expect func(string), all func() string) {
	t.Helper()
	c = agentexec(t, args...)
	ptmx, err := pty.StartWithSize(c, &pty.Winsize{Rows: rows, Cols: cols})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Process.Kill()
		ptmx.Close()
	})
	var mu sync.Mutex
	var seen []byte
	more := make(chan struct{}, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			mu.Lock()
			seen = append(seen, buf[:n]...)
			mu.Unlock()
			select {
			case more <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	// expect waits until the terminal shows want after what the previous
	// expect matched.
	mark := 0
	all = func() string {
		mu.Lock()
		defer mu.Unlock()
		return string(seen)
	}
	expect = func(want string) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			mu.Lock()
			i := strings.Index(string(seen[mark:]), want)
			if i >= 0 {
				mark += i + len(want)
			}
			got := string(seen[mark:])
			mu.Unlock()
			if i >= 0 {
				return
			}
			select {
			case <-more:
			case <-timeout:
				t.Fatalf("got no %q on the terminal, only %q", want, got)
			}
		}
	}
	return c, ptmx, expect, all
}

// waitStatus waits, bounded, for agentexec's exit status.
func waitStatus(t *testing.T, c *osexec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		return exitStatus(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("got no exit")
	}
	return -1
}

// TestPTY: on a terminal the command gets a terminal of its own with the
// right window size, and follows resizes.
func TestPTY(t *testing.T) {
	c, ptmx, expect, _ := onPTY(t, 33, 101, "-c", `test -t 0 && test -t 1 && test -t 2 && echo tty; stty size; trap 'stty size' WINCH; echo ready; while :; do sleep 0.05; done`)
	expect("tty\r\n")
	expect("33 101\r\n")
	expect("ready\r\n")
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	expect("40 120\r\n")
	_ = c.Process.Signal(unix.SIGTERM)
	if got := waitStatus(t, c); got != 143 {
		t.Errorf("got exit %d after SIGTERM, want 143", got)
	}
}

// TestPTYCtrlC: Ctrl-C typed on agentexec's terminal interrupts the
// command through its own terminal.
func TestPTYCtrlC(t *testing.T) {
	c, ptmx, expect, _ := onPTY(t, 24, 80, "-c", "echo ready; sleep 30")
	expect("ready")
	if _, err := ptmx.Write([]byte{3}); err != nil {
		t.Fatal(err)
	}
	if got := waitStatus(t, c); got != 130 {
		t.Errorf("got exit %d after Ctrl-C, want 130", got)
	}
}

// TestNoPTYWithoutATerminal: piped stdio stay pipes.
func TestNoPTYWithoutATerminal(t *testing.T) {
	out, err := agentexec(t, "-c", "test -t 0 || test -t 1 || echo notty").Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "notty\n" {
		t.Errorf("got %q, want notty", out)
	}
}

// TestFDs: the command sees only 0, 1 and 2, even when agentexec itself
// was given more.
func TestFDs(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	extra, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	r, w, _ := os.Pipe()
	defer r.Close()
	defer w.Close()
	for _, mode := range []string{"--", "-c"} {
		t.Run(mode, func(t *testing.T) {
			// The child is this test binary, copied into the workspace:
			// the sandbox shows the workspace, not the build's /tmp.
			c := agentexec(t)
			child := filepath.Join(c.Dir, "fds.test")
			copyFile(t, self, child)
			if mode == "--" {
				c.Args = append(c.Args, "--", child)
			} else {
				c.Args = append(c.Args, "-c", shellQuote(child))
			}
			// The Go runtime of the child must not open its own files
			// (cgroup CPU limits) before it counts.
			c.Env = append(c.Env, "AGENTEXEC_TEST_CHILD=fds", "GODEBUG=containermaxprocs=0,updatemaxprocs=0")
			c.ExtraFiles = []*os.File{extra, r, w}
			out, err := c.Output()
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Fields(string(out)); !slices.Equal(got, []string{"0", "1", "2"}) {
				t.Errorf("got open fds %q, want only 0 1 2", got)
			}
		})
	}
}

// TestEnv: the command's environment is agentexec's own, exactly, plus the
// context variables in effect and the sandbox's build-cache variables
// (docs/sandbox.md).
func TestEnv(t *testing.T) {
	base := []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "ODD=a=b c", "EMPTY=", "AGENTEXEC_SESSION=outer", "AGENTEXEC_AGENT=bot", "LD_NOT_SPECIAL=1"}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "unchanged", args: nil, want: base},
		{name: "flags set context", args: []string{"--session", "s2", "--intent", "why"},
			want: []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "ODD=a=b c", "EMPTY=", "AGENTEXEC_SESSION=s2", "AGENTEXEC_AGENT=bot", "LD_NOT_SPECIAL=1", "AGENTEXEC_INTENT=why"}},
		{name: "empty flag removes", args: []string{"--agent="},
			want: []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "ODD=a=b c", "EMPTY=", "AGENTEXEC_SESSION=outer", "LD_NOT_SPECIAL=1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := osexec.Command(bin, append(tc.args, "--", "/usr/bin/env", "-0")...)
			c.Dir = t.TempDir()
			c.Env = append(slices.Clone(base), testEnv...)
			out, err := c.Output()
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
			got = slices.DeleteFunc(got, func(kv string) bool {
				name, _, _ := strings.Cut(kv, "=")
				return slices.Contains([]string{"GOCACHE", "GOMODCACHE", "npm_config_cache", "PIP_CACHE_DIR", "CARGO_HOME"}, name) ||
					slices.ContainsFunc(testEnv, func(t string) bool { return strings.HasPrefix(t, name+"=") })
			})
			if !slices.Equal(got, tc.want) {
				t.Errorf("got env %q, want %q", got, tc.want)
			}
		})
	}
}

// TestNested: a command that calls agentexec again (make inside make)
// works, stdin passes through both, and a "bash" on PATH that is really
// agentexec does not make it start itself without end.
func TestNested(t *testing.T) {
	t.Run("nested", func(t *testing.T) {
		c := agentexec(t, "-c", `agentexec -c 'echo inner $0; cat' in; echo outer`)
		// On a PATH directory the sandbox shows: the workspace.
		link := filepath.Join(c.Dir, "bin", "agentexec")
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(bin, link); err != nil {
			t.Fatal(err)
		}
		c.Env = append(c.Env, "PATH="+filepath.Dir(link)+":/usr/bin:/bin")
		c.Stdin = strings.NewReader("through both\n")
		out, err := c.Output()
		if err != nil {
			t.Fatal(err)
		}
		if want := "inner in\nthrough both\nouter\n"; string(out) != want {
			t.Errorf("got %q, want %q", out, want)
		}
	})
	t.Run("bash shim", func(t *testing.T) {
		dir := filepath.Dir(linkBin(t))
		if err := os.Symlink(bin, filepath.Join(dir, "bash")); err != nil {
			t.Fatal(err)
		}
		c := agentexec(t, "-c", "echo ok")
		c.Env = append([]string{"PATH=" + dir + ":/usr/bin:/bin"}, testEnv...)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c2 := osexec.CommandContext(ctx, c.Path, c.Args[1:]...)
		c2.Env = c.Env
		out, err := c2.Output()
		if err != nil {
			t.Fatalf("got %v, want the command run once by the real bash", err)
		}
		if string(out) != "ok\n" {
			t.Errorf("got %q, want ok", out)
		}
	})
}

// linkBin puts the binary on a fresh directory as "agentexec".
func linkBin(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agentexec")
	if err := os.Symlink(bin, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestInteractiveSession: with no operand on a terminal, each line is run
// as its own command; the command reads the terminal; Ctrl-C at the
// prompt abandons the line; cd is kept; exit ends with the last status.
func TestInteractiveSession(t *testing.T) {
	c, ptmx, expect, all := onPTY(t, 24, 80)
	say := func(s string) {
		t.Helper()
		if _, err := ptmx.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	// Wait for each prompt: keys typed while a command runs are the
	// command's input, as on any terminal a command owns.
	expect("$ ")
	say("echo hel''lo; read x; echo got $x\n")
	expect("hello\r\n")
	say("typed\n")
	expect("got typed\r\n")
	expect("$ ")
	say("echo aban''doned")
	expect("aban''doned")
	say("\x03")
	expect("$ ")
	say("cd /\n")
	expect(":/$ ")
	say("pwd | sed s/^/at:/; (exit 4)\n")
	expect("at:/\r\n")
	expect(":/$ ")
	say("exit\n")
	if got := waitStatus(t, c); got != 4 {
		t.Errorf("got exit %d, want the last line's 4", got)
	}
	if strings.Contains(all(), "abandoned") {
		t.Errorf("got the line abandoned with Ctrl-C run, want it dropped: %q", all())
	}
}

// TestBackgroundJobDoesNotReadTheTerminal: agentexec started as a
// background job on a terminal gives its command /dev/null as stdin, so
// the keys typed at the terminal stay with the foreground job.
func TestBackgroundJobDoesNotReadTheTerminal(t *testing.T) {
	c := osexec.Command("bash", "-c", `set -m; "$0" -c 'read -t 5 x; echo "got:$x"' & sleep 0.3; echo typed-ahead; wait`, bin)
	ptmx, err := pty.Start(c)
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	if _, err := ptmx.Write([]byte("secret\n")); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(ptmx) // ends with EIO when the session ends
	_ = c.Wait()
	if !strings.Contains(string(out), "got:\r\n") || strings.Contains(string(out), "got:secret") {
		t.Errorf("got %q, want the background command to read nothing", out)
	}
}

// TestNestedReadsThePassedTerminal: inside a make recipe on a terminal
// (pass-through, no controlling terminal), a nested agentexec still hands
// the terminal to its command.
func TestNestedReadsThePassedTerminal(t *testing.T) {
	need(t, "make")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Makefile": "all:\n\t@echo ready; \"$$0\" -c 'read -t 5 x; echo \"got:$$x\"'\n"})
	c := osexec.Command("make", "SHELL="+bin)
	c.Dir = dir
	ptmx, err := pty.Start(c)
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	// A hung command must fail the test, not stall the suite.
	stop := time.AfterFunc(30*time.Second, func() { _ = c.Process.Kill(); _ = ptmx.Close() })
	defer stop.Stop()
	br := bufio.NewReader(ptmx)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(line) == "ready" {
			break
		}
	}
	if _, err := ptmx.Write([]byte("typed\n")); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(br)
	_ = c.Wait()
	if !strings.Contains(string(out), "got:typed") {
		t.Errorf("got %q, want the nested command to read the terminal", out)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
