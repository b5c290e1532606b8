package main

import (
	"bytes"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func runDoctor(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := osexec.Command(bin, append([]string{"doctor"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*osexec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestDoctorOnThisHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("this machine's sandbox runs as root; as another user the verdict depends on delegation")
	}
	out, errOut, code := runDoctor(t)
	if code != 0 || !strings.Contains(out, "the sandbox can run on this host") {
		t.Fatalf("got exit %d\n%s%s\nwant 0 and a ready verdict", code, out, errOut)
	}
	for _, want := range []string{"ok        namespaces:", "ok        seccomp:", "ok        libseccomp:", "cgroups:", "landlock:", "idmapped mounts:"} {
		if !strings.Contains(out, want) {
			t.Errorf("got\n%s\nwant a line with %q", out, want)
		}
	}
}

func TestDoctorForcedFailure(t *testing.T) {
	proc := t.TempDir()
	// A kernel without user namespaces and with them switched off.
	for _, ns := range []string{"mnt", "pid", "ipc", "uts", "net"} {
		os.MkdirAll(filepath.Join(proc, "self/ns"), 0o755)
		os.WriteFile(filepath.Join(proc, "self/ns", ns), nil, 0o644)
	}
	os.MkdirAll(filepath.Join(proc, "sys/user"), 0o755)
	os.WriteFile(filepath.Join(proc, "sys/user/max_user_namespaces"), []byte("0\n"), 0o644)
	out, errOut, code := runDoctor(t, "--proc-root", proc)
	if code != 1 {
		t.Errorf("got exit %d, want 1", code)
	}
	for _, want := range []string{
		"MISSING   namespaces: the kernel lacks user namespaces",
		"fix: use a kernel built with CONFIG_NAMESPACES",
		"MISSING   user namespaces: user.max_user_namespaces is 0",
		"fix: sysctl -w user.max_user_namespaces=15000",
		"the sandbox cannot run on this host",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("got\n%s\nwant a line with %q", out, want)
		}
	}
	if errOut != "agentexec: doctor: this host cannot run the sandbox\n" {
		t.Errorf("got stderr %q, want the one-line verdict", errOut)
	}
}
