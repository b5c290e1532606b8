package sandbox

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestWarmAttachMovesNothing: the early cgroup write must leave this
// process in every cgroup it was in.
func TestWarmAttachMovesNothing(t *testing.T) {
	needContainers(t)
	p := ownProcsFile()
	if p == "" {
		t.Fatalf("got no cgroup.procs file for this process, want one (cgroups are mounted at %s)", cgroupFS)
	}
	procs, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("reading %s: %v", p, err)
	}
	if !containsLine(string(procs), os.Getpid()) {
		t.Fatalf("%s does not list this process (pid %d): it is not its own cgroup", p, os.Getpid())
	}
	before, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-startWarm():
	case <-time.After(10 * time.Second):
		t.Fatal("the cgroup write did not return within 10s")
	}
	after, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("got cgroups\n%s\nafter the warm-up, want them unchanged:\n%s", after, before)
	}
}

func containsLine(s string, pid int) bool {
	for _, l := range strings.Split(s, "\n") {
		if l == strconv.Itoa(pid) {
			return true
		}
	}
	return false
}
