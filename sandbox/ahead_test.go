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
