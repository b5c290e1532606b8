package escapetest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/agentexec/agentexec/sandbox"
)

// tools is a directory of helper programs built for the suite; it is bound
// read-only into every sandbox at the same path.
var tools string

func TestMain(m *testing.M) {
	sandbox.MaybeInit()
	if reason := missingCapability(); reason != "" {
		// Printed, not silent: CI runs as root and must never take this path.
		fmt.Println("escapetest: skipping the escape suite:", reason)
		os.Exit(0)
	}
	if err := buildTools(); err != nil {
		fmt.Println("escapetest:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(tools)
	os.Exit(code)
}

// missingCapability says why this host cannot run containers at all.
func missingCapability() string {
	if os.Geteuid() != 0 {
		return "it needs root"
	}
	if _, err := os.Stat("/proc/self/ns/user"); err != nil {
		return "the kernel has no user namespaces"
	}
	return ""
}

// buildTools compiles the helper programs; a missing compiler is a broken
// test environment, not a reason to skip.
func buildTools() error {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return fmt.Errorf("gcc is needed to build the escape helpers: %w", err)
	}
	dir, err := os.MkdirTemp("", "agentexec-escape-tools-")
	if err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	tools = dir
	build := func(src, out string) error {
		cmd := exec.Command(gcc, "-O1", "-o", filepath.Join(dir, out), src)
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %v: %s", src, err, b)
		}
		return nil
	}
	return build("testdata/escape.c", "escape")
}
