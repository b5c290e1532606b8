package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"golang.org/x/sys/unix"
)

// For a root caller, agentexec lays out the container's file-system view
// itself before libcontainer starts, instead of listing every bind mount in
// the libcontainer config for its init to make inside the container. The
// init is a fresh Go process that checks each path component through
// procfs as it goes, and asks agentexec over its sync pipe for every
// idmapped mount: about 0.3 ms a mount, a dozen mounts a command. Here the
// same mounts cost a few system calls each.
//
// The view is a fresh tmpfs (the skeleton root, owned by the container's
// root) attached at the rootfs directory in a mount namespace private to
// the OS thread that then starts the container: nobody else sees it, not
// even the rest of agentexec, and it goes away with that thread (Run runs
// on an internal/osthread thread, discarded afterwards). /dev, with its
// device nodes, devpts and shm, is made here too. The container's init
// inherits the namespace, copies the whole tree into its own (runc's
// recursive bind of the rootfs), mounts /proc (which needs the container's
// pid namespace), makes the root read-only and pivots into it.
//
// Every mount is made through file descriptors (open_tree, fsmount,
// mount_setattr, move_mount), every target is looked up with openat2
// RESOLVE_IN_ROOT so that a symlink inside a bound directory cannot send a
// mount outside the new root, and a bind's flags and id mapping are set on
// the detached copy before it is attached. A rootless caller cannot make
// mount namespaces and keeps libcontainer's way.

// kernelMount reports whether libcontainer makes m inside the container:
// /proc needs the container's pid namespace.
func kernelMount(m *configs.Mount) bool {
	d := filepath.Clean(m.Destination)
	return d == "/proc" || strings.HasPrefix(d, "/proc/")
}

// privateMountNS gives the calling thread a mount namespace of its own, a
// copy of the host's from which nothing propagates back. The thread must
// be locked and must never run another goroutine afterwards.
func privateMountNS() error {
	if err := unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("making a private mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making the private mount namespace private: %w", err)
	}
	return nil
}

// buildRoot mounts the skeleton root at rootfs and every mount of v that is
// not a kernelMount on it, in v's order, and returns the kernel mounts for
// libcontainer. owner is the container root's host uid and gid; userns is
// the id-mapping namespace for the idmapped mounts.
func buildRoot(rootfs string, v *view, owner int, userns *os.File) ([]*configs.Mount, error) {
	b := &rootBuilder{owner: owner, userns: userns}
	fsfd, err := newTmpfs(map[string]string{"mode": "0755", "size": "1m"}, owner, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return nil, fmt.Errorf("the root tmpfs: %w", err)
	}
	err = unix.MoveMount(fsfd, "", unix.AT_FDCWD, rootfs, unix.MOVE_MOUNT_F_EMPTY_PATH)
	unix.Close(fsfd)
	if err != nil {
		return nil, fmt.Errorf("attaching the root tmpfs: %w", err)
	}
	if b.root, err = unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0); err != nil {
		return nil, fmt.Errorf("opening the root: %w", err)
	}
	defer unix.Close(b.root)
	for name, target := range v.symlinks {
		if err := unix.Symlinkat(target, b.root, name); err != nil {
			return nil, fmt.Errorf("creating /%s: %w", name, err)
		}
		_ = unix.Fchownat(b.root, name, owner, owner, unix.AT_SYMLINK_NOFOLLOW)
	}
	var rest []*configs.Mount
	dev := false
	for _, m := range v.mounts {
		if kernelMount(m) {
			if filepath.Clean(m.Destination) == "/proc" {
				fd, err := b.mountpoint("/proc", false)
				if err != nil {
					return nil, fmt.Errorf("creating /proc: %w", err)
				}
				unix.Close(fd)
			}
			rest = append(rest, m)
			continue
		}
		if err := b.mount(m); err != nil {
			return nil, fmt.Errorf("mounting %s: %w", m.Destination, err)
		}
		dev = dev || filepath.Clean(m.Destination) == "/dev"
	}
	if dev {
		if err := b.devices(); err != nil {
			return nil, fmt.Errorf("populating /dev: %w", err)
		}
		// A bind at /dev tells libcontainer's init that /dev is made:
		// it only binds the finished tree onto itself.
		rest = append(rest, &configs.Mount{Source: filepath.Join(rootfs, "dev"), Destination: "/dev", Device: "bind", Flags: unix.MS_BIND | unix.MS_REC})
	}
	return rest, nil
}

// devices fills /dev with the device nodes libcontainer allows and the
// usual symlinks. libcontainer's init, in a user namespace, cannot mknod
// and binds the host's nodes instead; here, still in the host's, the nodes
// are made in /dev's tmpfs (mounted by the host's root, and without
// nodev, so they open as the host's do, within the device cgroup's
// allow-list) and given to the container's root like the rest of /dev.
// Six nodes instead of six bind mounts: each mount would be copied into
// the container's mount namespace, bound again by its init and torn down
// with both. A node that cannot be made is bound as before.
func (b *rootBuilder) devices() error {
	devFD, err := openInRoot(b.root, "dev", &inRoot)
	if err != nil {
		return err
	}
	defer unix.Close(devFD)
	for _, d := range specconv.AllowedDevices {
		if d.Path == "" {
			continue
		}
		name := strings.TrimPrefix(d.Path, "/dev/")
		if strings.Contains(name, "/") || d.Type != 'c' {
			return fmt.Errorf("unexpected device %s", d.Path)
		}
		err := unix.Mknodat(devFD, name, unix.S_IFCHR|uint32(d.FileMode&0o777), int(unix.Mkdev(uint32(d.Major), uint32(d.Minor))))
		if err == nil {
			if err = unix.Fchmodat(devFD, name, uint32(d.FileMode&0o777), 0); err == nil {
				err = unix.Fchownat(devFD, name, b.owner, b.owner, unix.AT_SYMLINK_NOFOLLOW)
			}
		}
		if err != nil {
			_ = unix.Unlinkat(devFD, name, 0)
			if err := b.mount(&configs.Mount{Source: d.Path, Destination: d.Path, Device: "bind", Flags: unix.MS_BIND}); err != nil {
				return err
			}
		}
	}
	links := [][2]string{
		{"/proc/self/fd", "dev/fd"}, {"/proc/self/fd/0", "dev/stdin"},
		{"/proc/self/fd/1", "dev/stdout"}, {"/proc/self/fd/2", "dev/stderr"},
		{"pts/ptmx", "dev/ptmx"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "dev/core"})
	}
	for _, l := range links {
		name := strings.TrimPrefix(l[1], "dev/")
		if err := unix.Symlinkat(l[0], devFD, name); err != nil {
			return fmt.Errorf("/dev/%s: %w", name, err)
		}
		_ = unix.Fchownat(devFD, name, b.owner, b.owner, unix.AT_SYMLINK_NOFOLLOW)
	}
	return nil
}

type rootBuilder struct {
	root   int // O_PATH descriptor of the skeleton root
	owner  int
	userns *os.File
}

// mount attaches one bind or tmpfs at its destination under the root.
func (b *rootBuilder) mount(m *configs.Mount) error {
	var src int
	file := false
	switch m.Device {
	case "tmpfs":
		opts, err := tmpfsOptions(m.Data, b.owner)
		if err != nil {
			return err
		}
		if src, err = newFS("tmpfs", opts, nil, mountAttrs(m.Flags)); err != nil {
			return err
		}
	case "devpts":
		// A fresh instance (every devpts mount is one), whose ptmx the
		// container's users may open.
		opts, flags := map[string]string{}, []string(nil)
		for _, kv := range strings.Split(m.Data, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				if k == "uid" || k == "gid" {
					return fmt.Errorf("devpts option %q not supported outside the container", kv)
				}
				opts[k] = v
			} else if kv != "" && kv != "newinstance" {
				flags = append(flags, kv)
			}
		}
		var err error
		if src, err = newFS("devpts", opts, flags, mountAttrs(m.Flags)); err != nil {
			return err
		}
	case "bind":
		rec := m.Flags&unix.MS_REC != 0
		flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
		set := uint(unix.AT_EMPTY_PATH)
		if rec {
			flags |= unix.AT_RECURSIVE
			set |= unix.AT_RECURSIVE
		}
		var err error
		if src, err = unix.OpenTree(unix.AT_FDCWD, m.Source, flags); err != nil {
			return fmt.Errorf("open_tree %s: %w", m.Source, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(src, &st); err != nil {
			unix.Close(src)
			return err
		}
		file = st.Mode&unix.S_IFMT != unix.S_IFDIR
		attr := unix.MountAttr{Attr_set: uint64(mountAttrs(m.Flags))}
		if m.IDMapping != nil {
			if b.userns == nil {
				unix.Close(src)
				return fmt.Errorf("%w: no id-mapping namespace for an idmapped mount", ErrUnsupported)
			}
			attr.Attr_set |= unix.MOUNT_ATTR_IDMAP
			attr.Userns_fd = uint64(b.userns.Fd())
		}
		if attr.Attr_set != 0 {
			if err := unix.MountSetattr(src, "", set, &attr); err != nil {
				unix.Close(src)
				return fmt.Errorf("setting the flags of %s: %w", m.Source, err)
			}
		}
		if m.RecAttr != nil {
			if err := unix.MountSetattr(src, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, m.RecAttr); err != nil {
				unix.Close(src)
				return fmt.Errorf("setting the flags below %s: %w", m.Source, err)
			}
		}
	default:
		return fmt.Errorf("mount type %q not supported outside the container", m.Device)
	}
	defer unix.Close(src)
	dst, err := b.mountpoint(m.Destination, file)
	if err != nil {
		return err
	}
	defer unix.Close(dst)
	return unix.MoveMount(src, "", dst, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
}

// inRoot is how every lookup under the root resolves: symlinks and ".."
// stay within the root, as if it were "/".
var inRoot = unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}

// openInRoot is openat2 under the root, tried again on EAGAIN for up to
// a second. The kernel returns EAGAIN when a rename or a mount anywhere on
// the host happened while it resolved a ".." under RESOLVE_IN_ROOT (it
// cannot then prove the walk stayed inside), so concurrent container
// starts make it fail spuriously; the lookup is repeated, as runc's own
// path code does (internal/pathrs; it gives up after 2 ms, this after a
// second, since a failure here refuses the command).
func openInRoot(root int, path string, how *unix.OpenHow) (int, error) {
	deadline := time.Now().Add(time.Second)
	for {
		fd, err := unix.Openat2(root, path, how)
		if err != unix.EAGAIN {
			return fd, err
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("looking up %s under the root: %w", path, err)
		}
	}
}

// mountpoint opens dest under the root, first creating what is missing of
// it: directories, and an empty file at the end when file is set. What it
// creates belongs to the container's root, as if the container had made it.
// A symlink on the way that resolves to nothing inside the root is an
// error: it is never created through.
func (b *rootBuilder) mountpoint(dest string, file bool) (int, error) {
	rel := strings.TrimPrefix(filepath.Clean(dest), "/")
	how := inRoot
	fd, err := openInRoot(b.root, rel, &how)
	if err != unix.ENOENT {
		return fd, err
	}
	parts := strings.Split(rel, "/")
	parent, err := unix.Dup(b.root)
	if err != nil {
		return -1, err
	}
	for i, name := range parts {
		// Each prefix is looked up from the root, so that a symlink on the
		// way resolves inside it.
		prefix := strings.Join(parts[:i+1], "/")
		next, err := openInRoot(b.root, prefix, &how)
		if err == unix.ENOENT {
			if i == len(parts)-1 && file {
				var f int
				if f, err = unix.Openat(parent, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o644); err == nil {
					unix.Close(f)
				}
			} else {
				err = unix.Mkdirat(parent, name, 0o755)
			}
			if err == nil {
				_ = unix.Fchownat(parent, name, b.owner, b.owner, unix.AT_SYMLINK_NOFOLLOW)
			}
			if err == nil || err == unix.EEXIST {
				next, err = openInRoot(b.root, prefix, &how)
			}
		}
		unix.Close(parent)
		if err != nil {
			return -1, err
		}
		parent = next
	}
	return parent, nil
}

// newTmpfs makes a detached tmpfs with options opts, its root owned by
// owner's uid and gid, and mount attributes attrs, and returns its mount
// descriptor.
func newTmpfs(opts map[string]string, owner int, attrs int) (int, error) {
	opts["uid"], opts["gid"] = strconv.Itoa(owner), strconv.Itoa(owner)
	return newFS("tmpfs", opts, nil, attrs)
}

// newFS makes a detached mount of a fresh file system of type fstype, with
// options opts and flag options flags, and returns its mount descriptor.
func newFS(fstype string, opts map[string]string, flags []string, attrs int) (int, error) {
	fs, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen %s: %w", fstype, err)
	}
	defer unix.Close(fs)
	for k, v := range opts {
		if err := unix.FsconfigSetString(fs, k, v); err != nil {
			return -1, fmt.Errorf("%s option %s=%s: %w", fstype, k, v, err)
		}
	}
	for _, f := range flags {
		if err := unix.FsconfigSetFlag(fs, f); err != nil {
			return -1, fmt.Errorf("%s option %s: %w", fstype, f, err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fmt.Errorf("creating a %s: %w", fstype, err)
	}
	mfd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return -1, fmt.Errorf("fsmount %s: %w", fstype, err)
	}
	return mfd, nil
}

// tmpfsOptions parses a tmpfs mount's data. The tmpfs is made in the host's
// user namespace, not the container's, so ids are translated to host ids
// and the root directory belongs to the container's root unless the data
// names its owner.
func tmpfsOptions(data string, owner int) (map[string]string, error) {
	opts := map[string]string{"uid": strconv.Itoa(owner), "gid": strconv.Itoa(owner)}
	for _, kv := range strings.Split(data, ",") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("tmpfs option %q not supported outside the container", kv)
		}
		if k == "uid" || k == "gid" {
			id, err := strconv.Atoi(v)
			if err != nil || id < 0 || id >= idRange {
				return nil, fmt.Errorf("tmpfs option %s: bad id", kv)
			}
			v = strconv.Itoa(owner + id)
		}
		opts[k] = v
	}
	return opts, nil
}

// mountAttrs are the MOUNT_ATTR_* equivalents of a mount(2) flag set.
func mountAttrs(flags int) int {
	var a int
	for _, f := range []struct{ ms, attr int }{
		{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY},
		{unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV},
		{unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
	} {
		if flags&f.ms != 0 {
			a |= f.attr
		}
	}
	return a
}
