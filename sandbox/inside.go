package sandbox

import (
	"bytes"
	"os"
	"strings"
	"sync"
)

var insideOnce = sync.OnceValue(inside)

// Inside reports whether this process runs in a container that agentexec
// started. It holds only when PID 1 of this pid namespace is agentexec's
// reaper at its in-container path, and this process is itself confined
// (no capabilities, no_new_privs, a seccomp filter): an environment
// variable or a file on the host cannot make it true, and a process that
// fakes the rest is already as confined as the sandbox would make it.
func Inside() bool { return insideOnce() }

func inside() bool {
	if os.Getpid() == 1 {
		return false
	}
	cmd, err := os.ReadFile("/proc/1/cmdline")
	if err != nil || string(cmd) != initPath+"\x00" {
		return false
	}
	if exe, err := os.Readlink("/proc/1/exe"); err != nil || exe != initPath {
		return false
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	want := map[string]string{
		"NoNewPrivs": "1", "Seccomp": "2",
		"CapEff": "0000000000000000", "CapBnd": "0000000000000000", "CapPrm": "0000000000000000",
	}
	for _, line := range bytes.Split(status, []byte("\n")) {
		k, v, ok := strings.Cut(string(line), ":")
		if !ok {
			continue
		}
		if w, ok := want[k]; ok {
			if strings.TrimSpace(v) != w {
				return false
			}
			delete(want, k)
		}
	}
	return len(want) == 0
}
