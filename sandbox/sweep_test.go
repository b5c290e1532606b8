package sandbox

import (
	"encoding/json"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSweepAfterKill kills an agentexec process in the middle of a run and
// checks that the next run's sweep removes the container state, rootfs and
// cgroups it left, and nothing that belongs to a live run.
func TestSweepAfterKill(t *testing.T) {
	needContainers(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := osexec.Command(self)
	arg := "300." + strconv.Itoa(os.Getpid())
	cmd.Env = append(os.Environ(), helperEnv+"=leak", "WS="+t.TempDir(), "SLEEP="+arg)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	prefix := "ae-" + strconv.Itoa(cmd.Process.Pid) + "-"
	d, err := stateDirs(currentIdentity())
	if err != nil {
		t.Fatal(err)
	}
	defer d.release()
	var id string
	waitFor(t, func() bool {
		ents, _ := os.ReadDir(d.state)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), prefix) {
				id = e.Name()
				_, err := os.Stat(filepath.Join(d.state, id, "state.json"))
				return err == nil
			}
		}
		return false
	})
	// The run's cgroups are a pool slot's: the sweep must leave them to
	// the pool (another live container may hold the slot by then), and
	// they must be empty, its processes gone with it. Read before the
	// kill: any agentexec's sweep may remove the state once it is dead.
	var st struct {
		Config struct {
			Cgroups struct {
				Path string `json:"path"`
			} `json:"cgroups"`
		} `json:"config"`
	}
	if b, err := os.ReadFile(filepath.Join(d.state, id, "state.json")); err != nil || json.Unmarshal(b, &st) != nil {
		t.Fatalf("reading the run's state: %v", err)
	}
	slot := st.Config.Cgroups.Path
	cmd.Process.Kill()
	cmd.Wait()

	leftovers := func() []string {
		var l []string
		for _, p := range []string{filepath.Join(d.state, id), filepath.Join(d.rootfs, id), filepath.Join(cgroupFS, "memory", cgroupParent, id), filepath.Join(cgroupFS, "pids", cgroupParent, id)} {
			if _, err := os.Stat(p); err == nil {
				l = append(l, p)
			}
		}
		return l
	}
	if len(leftovers()) == 0 {
		t.Fatal("the killed run left nothing behind; the test proves nothing")
	}
	// A live run's container must survive the sweep.
	live, err := makeRootfs(d.rootfs, "ae-"+strconv.Itoa(os.Getppid())+"-live", currentIdentity())
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(live)

	sweep(d)
	if l := leftovers(); len(l) != 0 {
		t.Errorf("got leftovers %v after the sweep, want none", l)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the sweep removed the rootfs of a live owner: %v", err)
	}
	if pids := findProcess("sleep\x00" + arg); len(pids) != 0 {
		t.Errorf("got the killed run's command still running: %v", pids)
	}
	if isPoolPath(slot) {
		groups := slotGroups(t, slot)
		if len(groups) == 0 {
			t.Errorf("the sweep removed pool slot %s", slot)
		}
		for _, p := range groups {
			waitFor(t, func() bool {
				procs, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
				return err == nil && len(procs) == 0
			})
		}
	}
}
