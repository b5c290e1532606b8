package sandbox

import (
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRootless runs the sandbox as a non-root user (an unused uid, no
// setuid helpers): the command runs, its files belong to that user on the
// host, and explicit limits without a delegated cgroup subtree are refused
// rather than silently dropped.
func TestRootless(t *testing.T) {
	needContainers(t)
	const uid = 54321
	if readInt("/proc/sys/kernel/unprivileged_userns_clone") == 0 {
		t.Skip("unprivileged user namespaces are switched off on this host")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// t.TempDir's parent is private to root: the user could not reach it.
	dir, err := os.MkdirTemp("", "agentexec-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "sandbox.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	ws := filepath.Join(dir, "ws")
	if err := os.Mkdir(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chown(ws, uid, uid)
	cmd := osexec.Command(bin)
	cmd.Env = []string{helperEnv + "=rootless", "WS=" + ws, "PATH=/usr/bin:/bin", "TMPDIR=" + dir}
	os.Chmod(dir, 0o777) // the user's state dir goes here
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	got := string(out)
	if !strings.Contains(got, `run: exit=0 err=<nil> out="0\n"`) {
		t.Errorf("got %q, want the command to run as uid 0 of its own user namespace", got)
	}
	if !strings.Contains(got, "limits: unsupported=true") {
		t.Errorf("got %q, want explicit limits refused with ErrUnsupported", got)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(ws, "made"), &st); err != nil || st.Uid != uid {
		t.Errorf("got owner %d (%v), want the caller %d", st.Uid, err, uid)
	}
}
