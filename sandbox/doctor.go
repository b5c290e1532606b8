package sandbox

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DoctorOptions points the probes at the host. The zero value probes this
// host as the current user.
type DoctorOptions struct {
	// ProcRoot is where /proc is read; empty means /proc. Tests point it
	// at a fake tree to force a missing capability.
	ProcRoot string
	// CgroupRoot is the cgroup mount; empty means /sys/fs/cgroup.
	CgroupRoot string
}

// Finding is the result of one probe, in plain words.
type Finding struct {
	// Name says what was probed ("user namespaces").
	Name string
	OK   bool
	// Detail is what was found.
	Detail string
	// Fix says how to get it when !OK.
	Fix string
	// Required means Run refuses without it; otherwise the sandbox runs
	// with the documented degradation.
	Required bool
}

// Report is what Doctor found.
type Report struct {
	Findings []Finding
}

// Ready reports whether every required probe passed: Run can start
// containers on this host.
func (r Report) Ready() bool {
	for _, f := range r.Findings {
		if f.Required && !f.OK {
			return false
		}
	}
	return true
}

// WriteText prints the report, one line per probe and an indented fix
// line under each problem.
func (r Report) WriteText(w io.Writer) error {
	var b bytes.Buffer
	for _, f := range r.Findings {
		state := "ok"
		switch {
		case !f.OK && f.Required:
			state = "MISSING"
		case !f.OK:
			state = "degraded"
		}
		fmt.Fprintf(&b, "%-9s %s: %s\n", state, f.Name, f.Detail)
		if !f.OK && f.Fix != "" {
			fmt.Fprintf(&b, "%-9s fix: %s\n", "", f.Fix)
		}
	}
	if r.Ready() {
		b.WriteString("the sandbox can run on this host\n")
	} else {
		b.WriteString("the sandbox cannot run on this host: commands will be refused (exit 125) until the MISSING items are fixed\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}

// Doctor probes what this host supports for the sandbox. It only reads.
func Doctor(o DoctorOptions) Report {
	proc := o.ProcRoot
	if proc == "" {
		proc = "/proc"
	}
	cg := o.CgroupRoot
	if cg == "" {
		cg = cgroupFS
	}
	root := os.Geteuid() == 0
	var r Report
	add := func(f Finding) { r.Findings = append(r.Findings, f) }

	if root {
		add(Finding{Name: "identity", OK: true, Detail: "running as root: commands run as an unprivileged mapped user, with cgroup limits"})
	} else {
		add(Finding{Name: "identity", OK: true, Detail: fmt.Sprintf("running as uid %d: rootless containers (inside uid 0 maps to you, no capabilities)", os.Geteuid())})
	}

	var missing []string
	for _, ns := range []string{"mnt", "pid", "ipc", "uts", "net", "user"} {
		if _, err := os.Stat(filepath.Join(proc, "self/ns", ns)); err != nil {
			missing = append(missing, ns)
		}
	}
	if len(missing) == 0 {
		add(Finding{Name: "namespaces", OK: true, Required: true, Detail: "mount, pid, ipc, uts, network and user namespaces are available"})
	} else {
		add(Finding{Name: "namespaces", Required: true, Detail: "the kernel lacks " + strings.Join(missing, ", ") + " namespaces",
			Fix: "use a kernel built with CONFIG_NAMESPACES, CONFIG_USER_NS, CONFIG_PID_NS, CONFIG_NET_NS, CONFIG_IPC_NS and CONFIG_UTS_NS"})
	}

	maxUserNS := readInt(filepath.Join(proc, "sys/user/max_user_namespaces"))
	unpriv := readInt(filepath.Join(proc, "sys/kernel/unprivileged_userns_clone"))
	switch {
	case maxUserNS == 0:
		add(Finding{Name: "user namespaces", Required: true, Detail: "user.max_user_namespaces is 0",
			Fix: "sysctl -w user.max_user_namespaces=15000 (and persist it in /etc/sysctl.d)"})
	case !root && unpriv == 0:
		add(Finding{Name: "user namespaces", Required: true, Detail: "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0)",
			Fix: "sysctl -w kernel.unprivileged_userns_clone=1, or run agentexec as root"})
	default:
		add(Finding{Name: "user namespaces", OK: true, Required: true, Detail: "available"})
	}

	status, _ := os.ReadFile(filepath.Join(proc, "self/status"))
	actions, _ := os.ReadFile(filepath.Join(proc, "sys/kernel/seccomp/actions_avail"))
	switch {
	case !bytes.Contains(status, []byte("\nSeccomp:")) || !bytes.Contains(actions, []byte("errno")):
		add(Finding{Name: "seccomp", Required: true, Detail: "the kernel has no seccomp filter support",
			Fix: "use a kernel built with CONFIG_SECCOMP_FILTER"})
	default:
		add(Finding{Name: "seccomp", OK: true, Required: true, Detail: "seccomp filters are available (actions: " + strings.TrimSpace(string(actions)) + ")"})
	}
	if v, ok := libseccompVersion(); ok {
		add(Finding{Name: "libseccomp", OK: true, Required: true, Detail: "agentexec is linked with libseccomp " + v})
	} else {
		add(Finding{Name: "libseccomp", Required: true, Detail: "this agentexec binary was built without seccomp support",
			Fix: "install libseccomp-dev and build with CGO_ENABLED=1 go build -tags seccomp"})
	}

	add(cgroupFinding(cg, root))

	if abi := landlockABI(); abi > 0 {
		add(Finding{Name: "landlock", OK: true, Detail: fmt.Sprintf("ABI %d (not required; reserved for a later defence layer)", abi)})
	} else {
		add(Finding{Name: "landlock", OK: false, Detail: "not available (not required)",
			Fix: "boot with lsm=...,landlock on a kernel with CONFIG_SECURITY_LANDLOCK"})
	}

	maj, min := kernelVersion(proc)
	switch {
	case !root:
		add(Finding{Name: "idmapped mounts", OK: true, Detail: "not needed when running rootless"})
	case maj > 5 || maj == 5 && min >= 12:
		add(Finding{Name: "idmapped mounts", OK: true, Required: true, Detail: fmt.Sprintf("kernel %d.%d supports them (files the sandbox writes belong to you)", maj, min)})
	default:
		add(Finding{Name: "idmapped mounts", Required: true, Detail: fmt.Sprintf("kernel %d.%d is older than 5.12", maj, min),
			Fix: "upgrade to Linux 5.12 or later, or run agentexec as a non-root user"})
	}
	if root {
		// Informational: a state directory on disk is made a tmpfs by the
		// first run that finds no other in progress (runtimeTmpfs).
		if onTmpfsPath(StateRoot) {
			add(Finding{Name: "container state", OK: true, Detail: StateRoot + " is a tmpfs"})
		} else {
			add(Finding{Name: "container state", OK: true, Detail: StateRoot + " is on disk; the next run with no other in progress mounts a 64 MiB tmpfs over it (each command creates and removes a skeleton root there)"})
		}
	}
	return r
}

func cgroupFinding(cg string, root bool) Finding {
	f := Finding{Name: "cgroups"}
	var st unix.Statfs_t
	if err := unix.Statfs(cg, &st); err != nil {
		f.Detail = "no cgroup file system at " + cg
		f.Fix = "mount cgroup2 at /sys/fs/cgroup (or the v1 memory, pids and cpu hierarchies)"
		return f
	}
	var have []string
	var missing []string
	version := "v1"
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		version = "v2"
		ctl, _ := os.ReadFile(filepath.Join(cg, "cgroup.controllers"))
		fields := strings.Fields(string(ctl))
		for _, c := range []string{"memory", "pids", "cpu"} {
			if contains(fields, c) {
				have = append(have, c)
			} else {
				missing = append(missing, c)
			}
		}
	} else {
		if _, err := os.Stat(filepath.Join(cg, "unified")); err == nil {
			version = "v1 (hybrid, with a v2 tree at unified/)"
		}
		for _, c := range []string{"memory", "pids", "cpu"} {
			if _, err := os.Stat(filepath.Join(cg, c)); err == nil {
				have = append(have, c)
			} else {
				missing = append(missing, c)
			}
		}
	}
	f.Detail = fmt.Sprintf("cgroup %s, controllers: %s", version, strings.Join(have, ", "))
	if len(missing) > 0 {
		f.Detail += "; missing: " + strings.Join(missing, ", ")
		f.Fix = "enable the " + strings.Join(missing, ", ") + " controllers; without them memory, process and CPU limits are not applied"
		return f
	}
	if !root {
		sub := fmt.Sprintf("agentexec-u%d", os.Geteuid())
		okAll := true
		for _, c := range []string{"memory", "pids"} {
			if unix.Access(filepath.Join(cg, c, sub), unix.W_OK) != nil {
				okAll = false
			}
		}
		if !okAll {
			f.Detail += "; no cgroup subtree is delegated to you, so commands run without memory, pids and CPU limits (and a policy that asks for limits is refused)"
			f.Fix = fmt.Sprintf("as root: for c in memory pids cpu; do mkdir -p %s/$c/%s && chown -R %d %s/$c/%s; done", cg, sub, os.Geteuid(), cg, sub)
			return f
		}
	}
	f.OK = true
	return f
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func readInt(p string) int {
	b, err := os.ReadFile(p)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return n
}

func kernelVersion(proc string) (int, int) {
	b, err := os.ReadFile(filepath.Join(proc, "sys/kernel/osrelease"))
	if err != nil {
		return 0, 0
	}
	var maj, min int
	fmt.Sscanf(string(b), "%d.%d", &maj, &min)
	return maj, min
}

// landlockABI asks the kernel for its Landlock ABI version (0: none).
func landlockABI() int {
	const createRulesetVersion = 1
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, createRulesetVersion)
	if errno != 0 {
		return 0
	}
	return int(v)
}
