package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// ourCgroups lists this process's container groups in every hierarchy.
func ourCgroups(t *testing.T) []string {
	t.Helper()
	prefix := "ae-" + strconv.Itoa(os.Getpid()) + "-"
	hier, _ := os.ReadDir(cgroupFS)
	var out []string
	for _, h := range hier {
		groups, _ := os.ReadDir(filepath.Join(cgroupFS, h.Name(), cgroupParent))
		for _, g := range groups {
			if g.IsDir() && strings.HasPrefix(g.Name(), prefix) {
				out = append(out, filepath.Join(h.Name(), g.Name()))
			}
		}
	}
	return out
}

// nothingAhead starts a test of what Prewarm makes: as root (only a root
// caller's cgroups and namespaces are made ahead), with nothing pending
// that another test left, and no container group of this process.
func nothingAhead(t *testing.T) {
	t.Helper()
	needContainers(t)
	if os.Geteuid() != 0 {
		t.Skip("cgroups and namespaces are made ahead only for a root caller")
	}
	ReleaseAhead()
	if left := ourCgroups(t); len(left) != 0 {
		t.Fatalf("groups of this process before the test: %q", left)
	}
}

// slotFree says whether the pool slot of a lease is free to take: its
// lock can be flocked.
func slotFree(t *testing.T, lease *os.File) bool {
	t.Helper()
	f, err := os.OpenFile(lease.Name(), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
}

// slotGroups lists the groups of a pool slot in every hierarchy.
func slotGroups(t *testing.T, path string) []string {
	t.Helper()
	hier, _ := os.ReadDir(cgroupFS)
	var out []string
	for _, h := range hier {
		p := filepath.Join(cgroupFS, h.Name(), path)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			out = append(out, p)
		}
	}
	return out
}

// The cgroups Prewarm leases from the pool are the ones libcontainer puts
// the container in: they exist, with the device rules in place, before
// Run; after it they are empty and the slot is free again, and no group
// of the container's own is left, in any hierarchy.
func TestRunUsesThePooledCgroups(t *testing.T) {
	nothingAhead(t)
	Prewarm()
	// Wait for the lease, then put it back for the Run to take.
	g := cgroupsAhead.take(func() madeGroups { return madeGroups{} })
	if g.lease == nil || !isPoolPath(g.path) {
		t.Fatalf("Prewarm leased no pool slot: %+v", g)
	}
	groups := slotGroups(t, g.path)
	if len(groups) < 3 {
		t.Fatalf("the slot's groups: %q", groups)
	}
	// The device rules are in place before the container joins: the
	// allow-list, not the "a *:* rwm" a new group inherits.
	b, err := os.ReadFile(filepath.Join(cgroupFS, "devices", g.path, "devices.list"))
	if err != nil {
		t.Fatal(err)
	}
	if list := string(b); strings.Contains(list, "a *:* rwm") || !strings.Contains(list, "c 1:3 rwm") {
		t.Errorf("devices.list of the slot:\n%s\nwant the allow-list (c 1:3 rwm for /dev/null, no a *:* rwm)", list)
	}
	cgroupsAhead.start(func() madeGroups { return g })
	res, out, _ := sh(t, Spec{}, "cat /proc/self/cgroup; sleep 300 & echo started")
	if res.ExitCode != 0 {
		t.Fatalf("exit %d", res.ExitCode)
	}
	if !strings.Contains(out, g.path+"\n") {
		t.Errorf("the command ran in\n%s\nnot in the pool slot %s", out, g.path)
	}
	for _, p := range slotGroups(t, g.path) {
		if procs, err := os.ReadFile(filepath.Join(p, "cgroup.procs")); err != nil || len(procs) != 0 {
			t.Errorf("%s after Run: %q, %v; want empty", p, procs, err)
		}
	}
	if !slotFree(t, g.lease) {
		t.Error("the slot is still leased after Run")
	}
	if left := ourCgroups(t); len(left) != 0 {
		t.Errorf("groups left after Run: %q", left)
	}
}

// A slot with a process in any of its groups is never leased.
func TestCgroupPoolSkipsABusySlot(t *testing.T) {
	needContainers(t)
	if os.Geteuid() != 0 {
		t.Skip("the cgroup pool is a root caller's")
	}
	ReleaseAhead()
	d, err := stateDirs(currentIdentity())
	if err != nil {
		t.Fatal(err)
	}
	defer d.release()
	a, err := leaseCgroups(d.base, newID())
	if err != nil {
		t.Fatal(err)
	}
	// A process in the slot's pids group, then the lease given back.
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() }()
	if err := os.WriteFile(filepath.Join(cgroupFS, "pids", a.path, "cgroup.procs"), []byte(strconv.Itoa(sleeper.Process.Pid)), 0); err != nil {
		t.Fatal(err)
	}
	a.lease.Close()
	var leased []madeGroups
	defer func() {
		for _, g := range leased {
			g.lease.Close()
		}
	}()
	for range 3 {
		g, err := leaseCgroups(d.base, newID())
		if err != nil {
			t.Fatal(err)
		}
		leased = append(leased, g)
		if g.path == a.path {
			t.Fatalf("slot %s leased with a process in it", g.path)
		}
	}
	// Once the process has left, the slot is leased again.
	_ = sleeper.Process.Kill()
	_ = sleeper.Wait()
	for _, g := range leased {
		g.lease.Close()
	}
	leased = nil
	for range cgPoolSlots {
		g, err := leaseCgroups(d.base, newID())
		if err != nil {
			break
		}
		leased = append(leased, g)
		if g.path == a.path {
			return
		}
	}
	t.Errorf("slot %s was not leased again once empty", a.path)
}

// TestReleaseAheadRemovesWhatNoRunTook: what Prewarm made for a Run that
// never came (a refused command) is undone: its cgroup pool slot is given
// back and its namespace descriptors closed.
func TestReleaseAheadRemovesWhatNoRunTook(t *testing.T) {
	nothingAhead(t)
	nsFDs := func() int {
		n := 0
		ents, _ := os.ReadDir("/proc/self/fd")
		for _, e := range ents {
			if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && (strings.HasPrefix(l, "net:[") || strings.HasPrefix(l, "user:[")) {
				n++
			}
		}
		return n
	}
	before := nsFDs()
	Prewarm()
	g, ok := cgroupsAhead.drop()
	if !ok || g.lease == nil {
		t.Fatal("Prewarm leased no cgroups")
	}
	cgroupsAhead.start(func() madeGroups { return g })
	ReleaseAhead()
	if !slotFree(t, g.lease) {
		t.Error("the cgroup pool slot is still leased after ReleaseAhead")
	}
	if left := ourCgroups(t); len(left) != 0 {
		t.Errorf("groups left after ReleaseAhead: %q", left)
	}
	if n := nsFDs(); n != before {
		t.Errorf("%d namespace descriptors open after ReleaseAhead, %d before Prewarm", n, before)
	}
	// Nothing is pending any more: a Run now makes its own.
	res, _, _ := sh(t, Spec{}, "true")
	if res.ExitCode != 0 {
		t.Errorf("Run after ReleaseAhead: exit %d", res.ExitCode)
	}
}
