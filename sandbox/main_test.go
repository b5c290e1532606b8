package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
)

// helperEnv makes the test binary, started inside a container, act as a
// small helper program instead of running tests.
const helperEnv = "AGENTEXEC_SANDBOX_TEST_HELPER"

func TestMain(m *testing.M) {
	MaybeInit()
	switch os.Getenv(helperEnv) {
	case "":
	case "inside":
		fmt.Println("inside:", Inside())
		os.Exit(0)
	case "rootless":
		// As a non-root user: run a command, then ask for limits.
		var out bytes.Buffer
		res, err := Run(context.Background(), Spec{Argv: []string{"sh", "-c", "id -u; echo hi > made"}, Env: testEnv, Workspace: os.Getenv("WS"), Stdout: &out, Stderr: os.Stderr})
		fmt.Printf("run: exit=%d err=%v out=%q\n", res.ExitCode, err, out.String())
		_, err = Run(context.Background(), Spec{Argv: []string{"true"}, Env: testEnv, Workspace: os.Getenv("WS"), Limits: Limits{Pids: 10}})
		fmt.Printf("limits: unsupported=%v\n", errors.Is(err, ErrUnsupported))
		os.Exit(0)
	case "leak":
		// Start a long command and wait to be killed, leaving the
		// container behind for TestSweepAfterKill.
		_, err := Run(context.Background(), Spec{Argv: []string{"sleep", os.Getenv("SLEEP")}, Env: testEnv, Workspace: os.Getenv("WS")})
		fmt.Println("run returned:", err)
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "unknown helper")
		os.Exit(2)
	}
	if reason := cannotRun(); reason != "" {
		fmt.Println("sandbox: skipping the container tests:", reason)
		skipContainers = reason
	}
	os.Exit(m.Run())
}

var skipContainers string

// cannotRun says why containers cannot start here, or "".
func cannotRun() string {
	if os.Geteuid() != 0 {
		return "they need root (CI and the development machines run them as root)"
	}
	if _, err := os.Stat("/proc/self/ns/user"); err != nil {
		return "the kernel has no user namespaces"
	}
	return ""
}

func needContainers(t *testing.T) {
	t.Helper()
	if skipContainers != "" {
		t.Skip(skipContainers)
	}
}
