package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// dirs are where a caller's containers keep their state.
type dirs struct {
	base   string // 0711: the rootfs below must be reachable from inside
	state  string // libcontainer state, 0700
	rootfs string // per-container skeleton roots
	// lock is base, open and share-locked for as long as a container
	// lives in it (runtimeTmpfs); nil for a non-root caller.
	lock *os.File
}

// release drops the share lock stateDirs took.
func (d dirs) release() {
	if d.lock != nil {
		d.lock.Close()
	}
}

// StateRoot is where a root caller's container state lives. A non-root
// caller uses $XDG_RUNTIME_DIR/agentexec, or /tmp/agentexec-UID.
const StateRoot = "/run/agentexec"

// cgroupParent is the cgroup (in every v1 hierarchy, and in the v2 tree)
// below which each container gets its own group.
const cgroupParent = "/agentexec"

// cgroupFS is the cgroup mount; tests point it elsewhere.
var cgroupFS = "/sys/fs/cgroup"

func stateDirs(ident identity) (dirs, error) {
	base := StateRoot
	if ident.rootless {
		if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" && filepath.IsAbs(rt) {
			base = filepath.Join(rt, "agentexec")
		} else {
			base = filepath.Join(os.TempDir(), "agentexec-"+strconv.Itoa(os.Geteuid()))
		}
	}
	d := dirs{base: base, state: filepath.Join(base, "containers"), rootfs: filepath.Join(base, "rootfs")}
	if err := ownedDir(d.base, 0o711); err != nil {
		return d, err
	}
	if !ident.rootless {
		lock, err := runtimeTmpfs(d)
		if err != nil {
			return d, err
		}
		d.lock = lock
	}
	for _, p := range []struct {
		path string
		mode os.FileMode
	}{{d.base, 0o711}, {d.state, 0o700}, {d.rootfs, 0o711}} {
		if err := ownedDir(p.path, p.mode); err != nil {
			d.release()
			return d, err
		}
	}
	return d, nil
}

// runtimeTmpfsOpts is the tmpfs runtimeTmpfs mounts: a state directory
// holds directories, symlinks and one small JSON file per container.
const runtimeTmpfsOpts = "mode=0711,size=64m"

// runtimeTmpfs makes sure a root caller's state directory is a tmpfs, and
// returns it share-locked. Every container creates a skeleton root with a
// mount point for each of its mounts, a state directory and a state file,
// and removes them all again: on a journalling file system (a host whose
// /run is not a tmpfs, as in many containers and minimal VMs) that costs
// more than a millisecond a command. On such a host the first run that
// finds no other run in progress mounts a tmpfs over the directory; it
// stays until reboot, as /run itself would on most hosts.
//
// Every run holds a shared flock on the directory while its container
// exists, and the mount needs an exclusive one, taken without waiting: a
// tmpfs is never mounted over the state of a container that is still
// running, and a run that cannot mount (busy, or not allowed) just uses
// the disk.
func runtimeTmpfs(d dirs) (*os.File, error) {
	f, err := os.Open(d.base)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", d.base, err)
	}
	if !onTmpfs(f) && unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
		if !onTmpfsPath(d.base) {
			// Runs killed before they cleaned up left their state here; it
			// is about to be hidden, so it goes first, with the network
			// namespace pool's mounts.
			sweep(d)
			unmountPool(d.base)
			_ = unix.Mount("tmpfs", d.base, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, runtimeTmpfsOpts)
		}
		f.Close()
		// Reopened: after a mount, the path names the tmpfs.
		if f, err = os.Open(d.base); err != nil {
			return nil, fmt.Errorf("opening %s: %w", d.base, err)
		}
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", d.base, err)
	}
	return f, nil
}

func onTmpfs(f *os.File) bool {
	var st unix.Statfs_t
	return unix.Fstatfs(int(f.Fd()), &st) == nil && isTmpfs(st)
}

func onTmpfsPath(p string) bool {
	var st unix.Statfs_t
	return unix.Statfs(p, &st) == nil && isTmpfs(st)
}

func isTmpfs(st unix.Statfs_t) bool {
	return st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC
}

// ownedDir makes sure p is a real directory owned by us with mode, so that
// another local user cannot pre-create it and watch or swap our state.
func ownedDir(p string, mode os.FileMode) error {
	if err := os.Mkdir(p, mode); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("creating %s: %w", p, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return fmt.Errorf("checking %s: %w", p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s is not a directory owned by uid %d", p, os.Geteuid())
	}
	if os.FileMode(st.Mode&0o777) != mode {
		if err := os.Chmod(p, mode); err != nil {
			return fmt.Errorf("setting the mode of %s: %w", p, err)
		}
	}
	return nil
}

// makeRootfs creates the empty skeleton root of one container; libcontainer
// creates the mount points in it before making it read-only.
// It belongs to the container's root (an unprivileged host id), which has
// to create those mount points.
func makeRootfs(parent, id string, ident identity) (string, error) {
	p := filepath.Join(parent, id)
	if err := os.Mkdir(p, 0o755); err != nil {
		return "", fmt.Errorf("creating the rootfs: %w", err)
	}
	if !ident.rootless {
		if err := os.Lchown(p, int(ident.uidMap[0].HostID), int(ident.gidMap[0].HostID)); err != nil {
			os.Remove(p)
			return "", fmt.Errorf("creating the rootfs: %w", err)
		}
	}
	return p, nil
}

// removeRootfs removes a container's skeleton root. For a root caller it
// is the mount point of the container's view in the calling thread's
// mount namespace (rootfs.go): that is detached first, and the directory
// is only ever rmdir'ed, never removed recursively, which through a mount
// still attached would delete the workspace itself. A directory that is
// not empty stays for the sweep, which sees it from the host's namespace.
func removeRootfs(p string, ident identity) {
	if ident.rootless {
		_ = os.RemoveAll(p)
		return
	}
	_ = unix.Unmount(p, unix.MNT_DETACH)
	_ = unix.Rmdir(p)
}

// cgroupPath chooses the container's cgroup. Root gets its own group under
// cgroupParent. A non-root caller needs a subtree delegated to it
// (agentexec-uUID, writable in the memory and pids hierarchies, see
// docs/sandbox.md); without one the container runs without cgroup limits,
// unless spec limits were asked for explicitly, which then fails closed.
func cgroupPath(ident identity, id string, asked Limits) (string, error) {
	if !ident.rootless {
		return cgroupParent + "/" + id, nil
	}
	sub := fmt.Sprintf("/agentexec-u%d", os.Geteuid())
	if delegated(sub) {
		return sub + "/" + id, nil
	}
	if asked != (Limits{}) {
		return "", fmt.Errorf("%w: cgroup limits need root or a delegated cgroup subtree %s (see agentexec doctor)", ErrUnsupported, sub)
	}
	return "", nil
}

func delegated(sub string) bool {
	for _, ctl := range []string{"memory", "pids"} {
		if unix.Access(filepath.Join(cgroupFS, ctl, sub), unix.W_OK|unix.X_OK) != nil {
			return false
		}
	}
	return true
}

var sweepMu sync.Mutex
var swept = map[string]bool{}

// sweepOnce removes, once per process and state dir, what killed runs left
// behind: the state, cgroups and rootfs of containers whose owning
// agentexec process is gone. A container whose owner lives is never
// touched, so concurrent runs do not disturb each other.
func sweepOnce(d dirs) {
	sweepMu.Lock()
	defer sweepMu.Unlock()
	if swept[d.state] {
		return
	}
	swept[d.state] = true
	sweep(d)
}

func sweep(d dirs) {
	ents, _ := os.ReadDir(d.state)
	for _, e := range ents {
		if !ownerGone(e.Name()) {
			continue
		}
		if c, err := libcontainer.Load(d.state, e.Name()); err == nil {
			if st, err := c.Status(); err == nil && st != libcontainer.Stopped {
				_ = c.Signal(unix.SIGKILL)
			}
			// A pool slot's groups are left to the pool: another live
			// container may hold the slot by now, and a lease checks that
			// the groups are empty. The sweep still waits, as Destroy's
			// removal of the groups would, for the killed container's
			// processes to be gone from them.
			if cfg := c.Config(); cfg.Cgroups == nil || !isPoolPath(cfg.Cgroups.Path) {
				_ = c.Destroy()
			} else if st, err := c.State(); err == nil {
				waitCgroupsEmpty(st.CgroupPaths, time.Second)
			}
		}
		_ = os.RemoveAll(filepath.Join(d.state, e.Name()))
	}
	ents, _ = os.ReadDir(d.rootfs)
	for _, e := range ents {
		if ownerGone(e.Name()) {
			_ = os.RemoveAll(filepath.Join(d.rootfs, e.Name()))
		}
	}
	// Cgroups whose state dir was already gone.
	hier, _ := os.ReadDir(cgroupFS)
	for _, h := range hier {
		parent := filepath.Join(cgroupFS, h.Name(), cgroupParent)
		groups, _ := os.ReadDir(parent)
		for _, g := range groups {
			if g.IsDir() && ownerGone(g.Name()) {
				rmdirCgroup(filepath.Join(parent, g.Name()))
			}
		}
	}
}

// rmdirCgroup removes an abandoned cgroup. Its processes were just sent
// SIGKILL (by the sweep, or by ParentDeathSignal when the owner died), and
// the kernel refuses the rmdir (EBUSY) until the last one is gone, so it
// retries for a bounded time.
func rmdirCgroup(p string) {
	for range 100 {
		err := unix.Rmdir(p)
		if err == nil || errors.Is(err, unix.ENOENT) || !errors.Is(err, unix.EBUSY) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ownerGone parses the owner pid out of a container id (ae-PID-RANDOM) and
// reports whether that process no longer exists.
// waitCgroupsEmpty waits, at most limit, until no process is left in the
// groups.
func waitCgroupsEmpty(paths map[string]string, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for _, p := range paths {
		for {
			procs, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			if err != nil || len(procs) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
}

func ownerGone(id string) bool {
	parts := strings.Split(id, "-")
	if len(parts) != 3 || parts[0] != "ae" {
		return false
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return false
	}
	if pid == os.Getpid() {
		return false
	}
	return errors.Is(unix.Kill(pid, 0), unix.ESRCH)
}
