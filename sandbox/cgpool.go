package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
)

// A root caller's containers take their cgroups from a pool as well:
// slot N is the group <cgroupParent>/pool-N in every hierarchy, leased
// with an exclusive flock on <StateRoot>/cgroups/N.lock, held until the
// container is gone. Making a container's groups (a dozen mkdirs on a
// cgroup v1 host, the memory one dearest, and the device rules) was the
// last part of the background set-up the start waited for, and removing
// them after the run cost as much again beside the end record.
//
// A slot is leased only when every one of its groups is empty, so no
// process of an earlier container can share it; a container's processes
// are all gone when Run gives the slot back (its pid namespace ended with
// its init). The limits (memory, pids, CPU) are written by libcontainer for
// every container, from that container's grants; the device rules are the
// same for all and written when a group is made. What carries over is the
// page cache the kernel charged to the memory group: it counts towards the
// next container's memory limit until reclaimed, which the kernel does
// first when the limit is reached, before any process is killed.
const cgPoolSlots = 64

// leaseCgroups takes a free slot of the pool under base for the container
// id, making its groups where they are missing.
func leaseCgroups(base, id string) (madeGroups, error) {
	dir := filepath.Join(base, "cgroups")
	if err := ownedDir(dir, 0o700); err != nil {
		return madeGroups{}, err
	}
	for n := range cgPoolSlots {
		lock, err := lockSlot(filepath.Join(dir, strconv.Itoa(n)+".lock"))
		if err != nil {
			return madeGroups{}, fmt.Errorf("cgroup pool: %w", err)
		}
		if lock == nil {
			continue // leased by a live container
		}
		path := cgroupParent + "/pool-" + strconv.Itoa(n)
		cg := cgroupConfig(id, path, false, effectiveLimits(Limits{}))
		m, err := manager.New(cg)
		if err != nil {
			lock.Close()
			return madeGroups{}, err
		}
		made, busy := false, false
		for _, p := range m.GetPaths() {
			if err := os.Mkdir(p, 0o755); err == nil {
				made = true
			} else if !os.IsExist(err) {
				// No slot would do better: the caller makes the groups
				// its own way, which reports the error.
				lock.Close()
				return madeGroups{}, err
			}
			if procs, err := os.ReadFile(filepath.Join(p, "cgroup.procs")); err != nil || len(strings.TrimSpace(string(procs))) > 0 {
				busy = true
				break
			}
		}
		if busy {
			lock.Close()
			continue
		}
		if p := m.Path("devices"); made && p != "" && cgroups.DevicesSetV1 != nil {
			// An error here is libcontainer's to report: its Set tries
			// again.
			_ = cgroups.DevicesSetV1(p, cg.Resources)
		}
		return madeGroups{id: id, path: path, lease: lock}, nil
	}
	return madeGroups{}, errNoPool
}

// isPoolPath says whether a container's cgroup path is a pool slot.
func isPoolPath(p string) bool {
	n, ok := strings.CutPrefix(p, cgroupParent+"/pool-")
	_, err := strconv.Atoi(n)
	return ok && err == nil
}
