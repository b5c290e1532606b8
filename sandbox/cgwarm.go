package sandbox

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
)

// Moving a process between cgroups (a write to cgroup.procs) takes the
// kernel's global cgroup threadgroup lock, and the first such write after
// a quiet spell waits for a full RCU grace period (5 to 15 ms, more under
// load) unless the hierarchy is mounted with favordynmods. libcontainer's
// attach of the container's init is such a write, and nothing else can
// happen while it waits: the init is blocked until it is in its cgroups.
//
// Prewarm starts that grace period early, in the background, by writing
// agentexec's own pid into the cgroup it is already in (a migration that
// moves nothing). For about one more grace period after it returns, the
// next attach finds the grace period passed and costs microseconds. Run
// calls it first thing; a caller that knows a Run is coming calls it
// sooner (before its policy decision and audit record), so that the wait
// overlaps that work. A call while an earlier one is still waiting does
// nothing. It changes nothing, so it is safe when no Run follows, and any
// error is ignored: the attach then just waits.
//
// It also starts, in the background, the other parts of a Run that do not
// depend on its Spec (ahead.go: the container's cgroups, the id-mapping
// user namespace, the network namespace, most taken from pools) and the
// compilation of the seccomp filter, once per process. A caller whose
// command is then refused undoes them with ReleaseAhead.
func Prewarm() {
	prewarmAhead()
	go func() { _, _ = compiledSeccomp() }()
	if !warming.CompareAndSwap(false, true) {
		return
	}
	done := startWarm()
	go func() { <-done; warming.Store(false) }()
}

var warming atomic.Bool

// startWarm does the write in the background; the channel is closed when
// it is done.
func startWarm() <-chan struct{} {
	done := make(chan struct{})
	p := ownProcsFile()
	if p == "" {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer f.Close()
		_, _ = f.WriteString(strconv.Itoa(os.Getpid()))
	}()
	return done
}

// ownProcsFile is the cgroup.procs file of this process's own cgroup in
// the pids hierarchy (cgroup v1) or in the unified hierarchy, or "".
func ownProcsFile() string {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	var v1, v2 string
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/") {
			continue
		}
		switch {
		case parts[1] == "pids":
			v1 = filepath.Join(cgroupFS, "pids", parts[2], "cgroup.procs")
		case parts[0] == "0" && parts[1] == "":
			v2 = parts[2]
		}
	}
	if v1 != "" {
		return v1
	}
	if v2 != "" {
		for _, root := range []string{filepath.Join(cgroupFS, "unified"), cgroupFS} {
			p := filepath.Join(root, v2, "cgroup.procs")
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	return ""
}
