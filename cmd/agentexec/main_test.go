package main

import (
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"
)

// bin is the agentexec binary under test: $AGENTEXEC_BIN (make test sets
// it), or one built once here with the same tags.
var bin string

func TestMain(m *testing.M) {
	// As a child of agentexec in TestFDs, this binary reports its open
	// descriptors before the Go runtime opens any of its own.
	if os.Getenv("AGENTEXEC_TEST_CHILD") == "fds" {
		for fd := 0; fd < 1024; fd++ {
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
				fmt.Println(fd)
			}
		}
		os.Exit(0)
	}
	os.Exit(testMain(m))
}

// testPolicy lets every command run, so these tests see the plumbing and
// the sandbox rather than the built-in profile's verdicts (the policy has
// its own tests, and exec/e2etest covers denials end to end).
const testPolicy = "version: 1\ndefault: allow\nunknown: allow\n"

// testEnv isolates every agentexec the tests start from the user's own
// audit log, configuration and caches.
var testEnv []string

func testMain(m *testing.M) int {
	home, err := os.MkdirTemp("", "agentexec-test-home")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(home)
	pol := filepath.Join(home, "policy.yaml")
	if err := os.WriteFile(pol, []byte(testPolicy), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	testEnv = []string{
		"AGENTEXEC_POLICY=" + pol,
		"XDG_STATE_HOME=" + filepath.Join(home, "state"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
		"XDG_CACHE_HOME=" + filepath.Join(home, "cache"),
	}
	for _, kv := range testEnv {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	// Run under `make test`, the make these tests start would otherwise
	// think it is a sub-make and change its output.
	for _, k := range []string{"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "MAKE_TERMOUT", "MAKE_TERMERR"} {
		os.Unsetenv(k)
	}
	bin = os.Getenv("AGENTEXEC_BIN")
	if bin == "" {
		dir, err := os.MkdirTemp("", "agentexec-test")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "agentexec")
		build := osexec.Command("go", "build", "-tags", "seccomp", "-o", bin, ".")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building agentexec:", err)
			return 1
		}
	}
	return m.Run()
}

// TestScripts runs the CLI scripts in testdata/script against the real
// binary, which is on their PATH as agentexec.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			d := filepath.Join(env.WorkDir, ".bin")
			if err := os.Mkdir(d, 0o755); err != nil {
				return err
			}
			if err := os.Symlink(bin, filepath.Join(d, "agentexec")); err != nil {
				return err
			}
			env.Setenv("PATH", d+string(os.PathListSeparator)+env.Getenv("PATH"))
			for _, kv := range testEnv {
				k, v, _ := strings.Cut(kv, "=")
				env.Setenv(k, v)
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// status N PROG [ARGS...] runs PROG and wants exit status N.
			"status": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) < 2 {
					ts.Fatalf("usage: status N PROG [ARGS...]")
				}
				want, err := strconv.Atoi(args[0])
				if err != nil {
					ts.Fatalf("status: %v", err)
				}
				got := 0
				if err := ts.Exec(args[1], args[2:]...); err != nil {
					var ee *osexec.ExitError
					if !errors.As(err, &ee) {
						ts.Fatalf("status: %v", err)
					}
					got = ee.ExitCode()
				}
				if got != want {
					ts.Fatalf("got exit status %d, want %d", got, want)
				}
			},
		},
	})
}
