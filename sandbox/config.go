package sandbox

import (
	"runtime"
	"time"

	"github.com/opencontainers/cgroups"
	cgdevices "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"golang.org/x/sys/unix"
)

// Default limits, used for every zero field of Spec.Limits.
const (
	// DefaultPids bounds the processes and threads of one command: a
	// parallel build fits, a fork bomb does not.
	DefaultPids = 4096
	// DefaultTimeout is the wall-clock limit when Spec.Timeout is zero.
	DefaultTimeout = 2 * time.Hour
	// defaultNofile is the open-file limit; builds with many parallel
	// compilers need more than the usual 1024.
	defaultNofile = 1 << 16
)

// DefaultMemoryBytes is half of the host's RAM (at least 1 GiB): enough for
// real builds, while a memory bomb is killed before the host swaps.
func DefaultMemoryBytes() int64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 4 << 30
	}
	return max(int64(si.Totalram)*int64(si.Unit)/2, 1<<30)
}

// nofile is the open-file limit: defaultNofile, or the caller's hard
// limit when that is lower (raising it needs a capability the container's
// user namespace does not have on the host).
func nofile() uint64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 1024
	}
	return min(rl.Max, defaultNofile)
}

// effectiveLimits fills the defaults.
func effectiveLimits(l Limits) Limits {
	if l.MemoryBytes <= 0 {
		l.MemoryBytes = DefaultMemoryBytes()
	}
	if l.Pids <= 0 {
		l.Pids = DefaultPids
	}
	if l.CPUs <= 0 {
		l.CPUs = float64(runtime.NumCPU())
	}
	return l
}

// devices are the nodes libcontainer's init creates in /dev. A root
// caller's /dev is built before the init starts (rootfs.go) and bound in,
// so the init makes none and the list would only be encoded and decoded.
func devices(ident identity) []*cgdevices.Device {
	if !ident.rootless {
		return nil
	}
	return specconv.AllowedDevices
}

// buildConfig is the libcontainer config of one container.
func buildConfig(id string, rootfs string, s *Spec, ident identity, v *view, lim Limits, cg *cgroups.Cgroup) *configs.Config {
	ns := configs.Namespaces{
		{Type: configs.NEWNS}, {Type: configs.NEWUTS}, {Type: configs.NEWIPC},
		{Type: configs.NEWPID}, {Type: configs.NEWUSER},
	}
	var networks []*configs.Network
	if s.NetNS != "" {
		ns = append(ns, configs.Namespace{Type: configs.NEWNET, Path: s.NetNS})
	} else {
		ns = append(ns, configs.Namespace{Type: configs.NEWNET})
		networks = []*configs.Network{{Type: "loopback"}}
	}
	umask := uint32(0o022)
	return &configs.Config{
		Rootfs:            rootfs,
		Readonlyfs:        true,
		ParentDeathSignal: int(unix.SIGKILL),
		Umask:             &umask,
		Hostname:          "sandbox",
		Namespaces:        ns,
		Networks:          networks,
		UIDMappings:       ident.uidMap,
		GIDMappings:       ident.gidMap,
		RootlessEUID:      ident.rootless,
		RootlessCgroups:   ident.rootless,
		Capabilities:      &configs.Capabilities{},
		NoNewPrivileges:   true,
		Mounts:            v.mounts,
		Devices:           devices(ident),
		Cgroups:           cg,
		MaskPaths: []string{
			"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
			"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
			"/proc/interrupts", "/proc/kallsyms", "/proc/kmsg", "/proc/sysrq-trigger",
		},
		ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"},
		Rlimits: []configs.Rlimit{
			{Type: unix.RLIMIT_NOFILE, Hard: nofile(), Soft: nofile()},
			{Type: unix.RLIMIT_CORE, Hard: 0, Soft: 0},
		},
		Version: "1.2.0",
	}
}

// cgroupConfig is the per-container cgroup. path is where it lives (one
// level below our parent group) or empty for a rootless caller without a
// delegated subtree, who gets none.
func cgroupConfig(id, path string, rootless bool, lim Limits) *cgroups.Cgroup {
	pids := lim.Pids
	const period = 100000
	r := &cgroups.Resources{
		Memory:     lim.MemoryBytes,
		MemorySwap: lim.MemoryBytes, // no swap beyond the limit
		PidsLimit:  &pids,
		CpuPeriod:  period,
		CpuQuota:   int64(lim.CPUs * period),
	}
	c := &cgroups.Cgroup{Path: path, Resources: r, Rootless: rootless}
	if path == "" {
		// Rootless without a delegated subtree: no group of our own, so
		// no limits (cgroupPath refused already if limits were asked for).
		c.Name = id
		c.Resources = &cgroups.Resources{}
	}
	for _, d := range specconv.AllowedDevices {
		c.Resources.Devices = append(c.Resources.Devices, &d.Rule)
	}
	return c
}
