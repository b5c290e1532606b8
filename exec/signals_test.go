package exec

import (
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSignalBeforeTheCommandStopsTheRun: a SIGINT that arrives after
// PrepareSignals and before the command starts stops the run with
// ErrInterrupted and 130, and the command never runs; without the early
// catch the signal would have killed the process at that point. The check
// runs in a child process, since PrepareSignals is once per process.
func TestSignalBeforeTheCommandStopsTheRun(t *testing.T) {
	dir := t.TempDir()
	cmd := osexec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "EXEC_TEST_EARLY_SIGNAL="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "checked")); err != nil {
		t.Fatalf("the child did not get to its checks:\n%s", out)
	}
}

// TestMain runs earlySignalChild instead of the tests when the variable
// names its directory.
func TestMain(m *testing.M) {
	if dir := os.Getenv("EXEC_TEST_EARLY_SIGNAL"); dir != "" {
		if err := earlySignalChild(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func earlySignalChild(dir string) error {
	PrepareSignals()
	<-early.ready
	if err := unix.Kill(os.Getpid(), unix.SIGINT); err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(early.ch) == 0 {
		if time.Now().After(deadline) {
			return errors.New("SIGINT not caught")
		}
		time.Sleep(time.Millisecond)
	}
	marker := filepath.Join(dir, "ran")
	res, err := (&Engine{}).Run(context.Background(), Request{
		Argv: []string{"touch", marker}, Dir: dir, Env: []string{"PATH=/usr/bin:/bin"},
	})
	if !errors.Is(err, ErrInterrupted) {
		return fmt.Errorf("got error %v, want ErrInterrupted", err)
	}
	if res.ExitCode != 130 || res.Started {
		return fmt.Errorf("got exit %d, started %v; want 130, not started", res.ExitCode, res.Started)
	}
	if _, err := os.Stat(marker); err == nil {
		return errors.New("the command ran")
	}
	// The next command runs, and its own SIGINT is its own, not one
	// caught early.
	res, err = (&Engine{}).Run(context.Background(), Request{
		Command: "kill -INT $$", Dir: dir, Env: []string{"PATH=/usr/bin:/bin"},
	})
	if err != nil || res.ExitCode != 130 || !res.Started {
		return fmt.Errorf("second run: got exit %d, started %v, error %v; want 130 from the command itself", res.ExitCode, res.Started, err)
	}
	return os.WriteFile(filepath.Join(dir, "checked"), nil, 0o600)
}
