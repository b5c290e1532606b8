package sandbox

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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

// The cgroups Prewarm makes are the ones libcontainer puts the container
// in (same id, same paths): they exist before Run and none is left after
// it, in any hierarchy.
func TestRunUsesTheCgroupsMadeAhead(t *testing.T) {
	needContainers(t)
	if os.Geteuid() != 0 {
		t.Skip("cgroups are made ahead only for a root caller")
	}
	// A set another test left pending is taken and removed first.
	if g := cgroupsAhead.take(func() madeGroups { return madeGroups{} }); g.made != nil {
		for _, p := range g.made {
			rmdirCgroup(p)
		}
	}
	if left := ourCgroups(t); len(left) != 0 {
		t.Fatalf("groups of this process before the test: %q", left)
	}
	Prewarm()
	// Wait for them to be made, then put them back for the Run to take.
	g := cgroupsAhead.take(func() madeGroups { return madeGroups{} })
	if len(g.made) == 0 {
		t.Fatal("Prewarm made no cgroups")
	}
	// The device rules are in place before the container joins: the
	// allow-list, not the "a *:* rwm" a new group inherits.
	devicesChecked := false
	for _, p := range g.made {
		if filepath.Base(filepath.Dir(filepath.Dir(p))) != "devices" {
			continue
		}
		devicesChecked = true
		b, err := os.ReadFile(filepath.Join(p, "devices.list"))
		if err != nil {
			t.Fatal(err)
		}
		if list := string(b); strings.Contains(list, "a *:* rwm") || !strings.Contains(list, "c 1:3 rwm") {
			t.Errorf("devices.list of the group made ahead:\n%s\nwant the allow-list (c 1:3 rwm for /dev/null, no a *:* rwm)", list)
		}
	}
	if !devicesChecked {
		t.Errorf("no devices group among those made ahead: %q", g.made)
	}
	cgroupsAhead.start(func() madeGroups { return g })
	res, out, _ := sh(t, Spec{}, "cat /proc/self/cgroup")
	if res.ExitCode != 0 {
		t.Fatalf("exit %d", res.ExitCode)
	}
	if !strings.Contains(out, g.id) {
		t.Errorf("the command ran in\n%s\nnot in the groups made ahead (%s)", out, g.id)
	}
	if left := ourCgroups(t); len(left) != 0 {
		t.Errorf("groups left after Run: %q", left)
	}
}

// TestReleaseAheadRemovesWhatNoRunTook: what Prewarm made for a Run that
// never came (a refused command) is undone: its cgroups are removed and
// its namespace descriptors closed.
func TestReleaseAheadRemovesWhatNoRunTook(t *testing.T) {
	needContainers(t)
	if os.Geteuid() != 0 {
		t.Skip("cgroups and namespaces are made ahead only for a root caller")
	}
	ReleaseAhead() // whatever another test left pending
	if left := ourCgroups(t); len(left) != 0 {
		t.Fatalf("groups of this process before the test: %q", left)
	}
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
	if !ok || len(g.made) == 0 {
		t.Fatal("Prewarm made no cgroups")
	}
	cgroupsAhead.start(func() madeGroups { return g })
	if len(ourCgroups(t)) == 0 {
		t.Fatal("the cgroups made ahead are not there")
	}
	ReleaseAhead()
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
