package main

import (
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
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

func testMain(m *testing.M) int {
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
