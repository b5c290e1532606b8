package main

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// Real programs that take a shell, pointed at agentexec, must notice
// nothing but the warning.

func need(t *testing.T, prog string) string {
	t.Helper()
	p, err := osexec.LookPath(prog)
	if err != nil {
		t.Skipf("%s is not installed (.ci/deps installs it): %v", prog, err)
	}
	return p
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// run runs a client program in dir and returns its status and output.
func runClient(t *testing.T, dir string, env []string, name string, args ...string) (int, string, string) {
	t.Helper()
	c := osexec.Command(name, args...)
	c.Dir = dir
	c.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err := c.Run()
	return exitStatus(t, err), out.String(), errOut.String()
}

const cProject = `CC ?= gcc
all: app
app: main.o util.o
	$(CC) -o $@ $^
%.o: %.c util.h
	$(CC) -c -o $@ $<
check: app
	./app | grep -q 'sum=5' && echo "check passed in $$0"
fail: app
	@echo about to fail; exit 3
clean:
	rm -f app *.o
`

func TestMakeBuildsWithAgentexecAsShell(t *testing.T) {
	need(t, "make")
	need(t, "gcc")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Makefile": cProject,
		"main.c":   "#include <stdio.h>\n#include \"util.h\"\nint main(void){printf(\"sum=%d\\n\", add(2,3));return 0;}\n",
		"util.c":   "#include \"util.h\"\nint add(int a,int b){return a+b;}\n",
		"util.h":   "int add(int a,int b);\n",
	})
	shell := "SHELL=" + bin

	code, out, errOut := runClient(t, dir, nil, "make", "-j4", shell, "all", "check")
	if code != 0 || !strings.Contains(out, "check passed in "+bin) {
		t.Fatalf("make all check: got exit %d, stdout %q, stderr %q; want success and the check run by agentexec", code, out, errOut)
	}
	if log := auditLog(t); !strings.Contains(log, "grep -q 'sum=5'") {
		t.Errorf("got no record of the check recipe in the audit log, want the recipes run through agentexec:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(dir, "app")); err != nil {
		t.Errorf("got no app built: %v", err)
	}

	// A failing recipe: make reports the recipe's own status.
	code, out, errOut = runClient(t, dir, nil, "make", shell, "fail")
	if code != 2 || !strings.Contains(out, "about to fail") || !strings.Contains(errOut, "Error 3") {
		t.Errorf("make fail: got exit %d, stdout %q, stderr %q; want make's 2 and \"Error 3\"", code, out, errOut)
	}
}

// TestMakeOneShell: .ONESHELL with .SHELLFLAGS := -ec passes "-ec" and
// the whole recipe as one string; -e stops it at the first failure.
func TestMakeOneShell(t *testing.T) {
	need(t, "make")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Makefile": ".ONESHELL:\n.SHELLFLAGS := -ec\nall:\n\t@x=kept\n\techo \"$$x across lines\"\n\tfalse\n\techo not reached\n"})
	code, out, errOut := runClient(t, dir, nil, "make", "SHELL="+bin)
	if code != 2 || out != "kept across lines\n" || !strings.Contains(errOut, "Error 1") {
		t.Errorf("got exit %d, stdout %q, stderr %q; want 2, one line, Error 1", code, out, errOut)
	}
}

// TestMakeInterrupt: Ctrl-C (SIGINT to the terminal's foreground process
// group) stops a make whose recipes run through agentexec, as with bash.
func TestMakeInterrupt(t *testing.T) {
	need(t, "make")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Makefile": "all:\n\t@echo ready; sleep 30; echo not reached\n"})
	c := osexec.Command("make", "SHELL="+bin)
	c.Dir = dir
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, _ := c.StdoutPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Kill(-c.Process.Pid, unix.SIGKILL) }()
	waitReady(t, out)
	start := time.Now()
	_ = unix.Kill(-c.Process.Pid, unix.SIGINT)
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("got make success after Ctrl-C, want it interrupted")
		}
		t.Logf("make stopped %v after SIGINT: %v", time.Since(start), err)
	case <-time.After(10 * time.Second):
		t.Fatal("got make still running 10s after Ctrl-C, want it stopped")
	}
}

func TestNpmRunScriptShell(t *testing.T) {
	need(t, "node")
	npm := need(t, "npm")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"package.json": `{"name":"demo-pkg","version":"1.0.0","scripts":{"greet":"echo \"hello from $npm_package_name\" && printf '%s\\n' \"$0\"","bad":"exit 4"}}`,
		".npmrc":       "script-shell=" + bin + "\n",
	})
	env := []string{"HOME=" + dir, "npm_config_cache=" + filepath.Join(dir, ".npm"), "npm_config_update_notifier=false", "npm_config_fund=false", "npm_config_audit=false"}
	code, out, errOut := runClient(t, dir, env, npm, "run", "--silent", "greet")
	if code != 0 || !strings.Contains(out, "hello from demo-pkg\n") {
		t.Errorf("got exit %d, stdout %q, stderr %q; want the script's output", code, out, errOut)
	}
	if log := auditLog(t); !strings.Contains(log, "hello from $npm_package_name") {
		t.Errorf("got no record of the script in the audit log, want it run through agentexec:\n%s", log)
	}
	code, _, _ = runClient(t, dir, env, npm, "run", "--silent", "bad")
	if code == 0 {
		t.Errorf("got success for a failing script, want its failure reported")
	}
}

func TestNodeSpawnShell(t *testing.T) {
	node := need(t, "node")
	script := `const {spawnSync} = require("child_process");
const r = spawnSync("echo $((6*7)) | tr 4 X; echo 'q\"uo ted' >&2; exit 5", {shell: process.argv[1], encoding: "utf8"});
process.stdout.write(JSON.stringify([r.status, r.stdout, r.stderr.split("\n").filter(l => !l.startsWith("agentexec:")).join("\n")]));`
	code, out, errOut := runClient(t, t.TempDir(), nil, node, "-e", script, bin)
	if want := `[5,"X2\n","q\"uo ted\n"]`; code != 0 || out != want {
		t.Errorf("got exit %d, stdout %s, stderr %q; want %s", code, out, errOut, want)
	}
}

func TestPythonSubprocessShell(t *testing.T) {
	py := need(t, "python3")
	script := `import subprocess, sys
r = subprocess.run("echo $((6*7)) | tr 4 X; printf '%s' \"$0\"; exit 6", shell=True, executable=sys.argv[1], capture_output=True, text=True)
print(repr((r.returncode, r.stdout)))`
	code, out, errOut := runClient(t, t.TempDir(), nil, py, "-c", script, bin)
	if want := "(6, 'X2\\n" + bin + "')\n"; code != 0 || out != want {
		t.Errorf("got exit %d, stdout %q, stderr %q; want %q", code, out, errOut, want)
	}
}

// TestMakeOnATerminal: recipes of a make on a terminal run inside make's
// job, so they take no PTY of their own but read the terminal as it is
// (their output passes through agentexec, which digests it for the audit
// record), and Ctrl-C typed on it stops make itself, as with bash.
func TestMakeOnATerminal(t *testing.T) {
	need(t, "make")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Makefile": "all:\n\t@test -t 0 && echo recipe sees the terminal; echo ready; sleep 30; echo not reached\n"})
	c := osexec.Command("make", "SHELL="+bin)
	c.Dir = dir
	ptmx, err := pty.StartWithSize(c, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer func() { _ = c.Process.Kill() }()
	br := bufio.NewReader(ptmx)
	var seen []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("got %q and %v, want the recipe's ready line", seen, err)
		}
		seen = append(seen, strings.TrimSpace(line))
		if strings.TrimSpace(line) == "ready" {
			break
		}
	}
	if !slices.Contains(seen, "recipe sees the terminal") {
		t.Errorf("got %q, want the recipe to see the terminal", seen)
	}
	if _, err := ptmx.Write([]byte{3}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		var ee *osexec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != unix.SIGINT {
			t.Errorf("got make ending with %v, want it interrupted by SIGINT as with bash", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("got make still running 10s after Ctrl-C, want it stopped")
	}
}

// auditLog is every record the tests' agentexec runs wrote so far, as JSON
// lines.
func auditLog(t *testing.T) string {
	t.Helper()
	out, err := osexec.Command(bin, "audit", "show", "--json", "-n", "100000").CombinedOutput()
	if err != nil {
		t.Fatalf("agentexec audit show: %v: %s", err, out)
	}
	return string(out)
}
