package audit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the appender process for the concurrency and
// crash tests: with AUDIT_TEST_APPEND=DIR:WRITER:COUNT set it appends COUNT
// records (forever when COUNT is -1) and exits.
func TestMain(m *testing.M) {
	if spec := os.Getenv("AUDIT_TEST_APPEND"); spec != "" {
		os.Exit(appenderMain(spec))
	}
	code := m.Run()
	if verifyLogDir != "" {
		os.RemoveAll(verifyLogDir)
	}
	os.Exit(code)
}

func appenderMain(spec string) int {
	parts := strings.Split(spec, ":")
	count, _ := strconv.Atoi(parts[2])
	l, err := Open(Options{Dir: parts[0]})
	if err != nil {
		fmt.Fprintln(os.Stderr, "appender:", err)
		return 3
	}
	defer l.Close()
	for i := 0; count < 0 || i < count; i++ {
		r := sampleRecord()
		r.Intent = CapIntent(fmt.Sprintf("w%s-%d", parts[1], i))
		if _, err := l.Append(context.Background(), r); err != nil {
			fmt.Fprintln(os.Stderr, "appender:", err)
			return 4
		}
	}
	return 0
}

func appender(t *testing.T, dir string, writer, count int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("AUDIT_TEST_APPEND=%s:%d:%d", dir, writer, count))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting appender: %v", err)
	}
	return cmd
}

// TestConcurrentProcesses: 8 processes append 500 records each to one log;
// every record is present exactly once, in one chain, and the log verifies.
func TestConcurrentProcesses(t *testing.T) {
	writers, per := 8, 500
	if testing.Short() {
		per = 50
	}
	_, opts := newLog(t)
	var cmds []*exec.Cmd
	for w := 0; w < writers; w++ {
		cmds = append(cmds, appender(t, opts.Dir, w, per))
	}
	for w, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("appender %d: %v", w, err)
		}
	}
	rep, err := Verify(opts)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got, want := rep.Size, int64(writers*per); got != want {
		t.Fatalf("got %d records, want %d", got, want)
	}
	seen := map[string]int{}
	ids := map[string]bool{}
	if _, err := Scan(context.Background(), opts, 0, func(it Item) error {
		seen[it.Record.Intent.Text]++
		if ids[it.Record.ID] {
			t.Errorf("record %d: duplicate id %s", it.Entry.Seq, it.Record.ID)
		}
		ids[it.Record.ID] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for w := 0; w < writers; w++ {
		for i := 0; i < per; i++ {
			if n := seen[fmt.Sprintf("w%d-%d", w, i)]; n != 1 {
				t.Errorf("record w%d-%d: got %d copies, want 1", w, i, n)
			}
		}
	}
}

// TestCrashRecovery kills appenders with SIGKILL at random points, 100
// times. After every kill the log verifies (an interrupted append shows as
// pending or torn, never as damage), the committed size never shrinks, and
// a final append repairs the tail and leaves a clean log.
func TestCrashRecovery(t *testing.T) {
	rounds := 100
	if testing.Short() {
		rounds = 10
	}
	_, opts := newLog(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var last int64
	for round := 0; round < rounds; round++ {
		cmd := appender(t, opts.Dir, round, -1)
		// Let it get through start-up and a varying number of appends.
		time.Sleep(time.Duration(5+rng.IntN(55)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		rep, err := Verify(opts)
		if err != nil {
			t.Fatalf("round %d: Verify after SIGKILL: %v", round, err)
		}
		if rep.Size < last {
			t.Fatalf("round %d: size went from %d to %d", round, last, rep.Size)
		}
		last = rep.Size
	}
	l, err := Open(opts)
	if err != nil {
		t.Fatalf("Open after crashes: %v", err)
	}
	defer l.Close()
	if _, err := l.Append(context.Background(), sampleRecord()); err != nil {
		t.Fatalf("Append after crashes: %v", err)
	}
	rep, err := Verify(opts)
	if err != nil {
		t.Fatalf("final Verify: %v", err)
	}
	if rep.Pending != 0 || rep.TornBytes != 0 {
		t.Errorf("after repair: got %d pending, %d torn bytes, want 0, 0", rep.Pending, rep.TornBytes)
	}
	if rep.Size <= last {
		t.Errorf("got size %d after one more append, want more than %d", rep.Size, last)
	}
	t.Logf("%d rounds, %d records", rounds, rep.Size)
}
