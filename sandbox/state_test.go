package sandbox

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// diskDir is a fresh directory on a file system that is not a tmpfs, for
// the runtimeTmpfs tests; they need root to mount.
func diskDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	for _, parent := range []string{".", os.TempDir()} {
		if onTmpfsPath(parent) {
			continue
		}
		p, err := os.MkdirTemp(parent, "runtime-test-")
		if err != nil {
			t.Fatal(err)
		}
		abs, _ := filepath.Abs(p)
		t.Cleanup(func() {
			for unix.Unmount(abs, unix.MNT_DETACH) == nil {
			}
			os.RemoveAll(abs)
		})
		return abs
	}
	t.Skip("no directory outside a tmpfs to test on (the package dir and TMPDIR are both tmpfs)")
	return ""
}

func testDirs(base string) dirs {
	return dirs{base: base, state: filepath.Join(base, "containers"), rootfs: filepath.Join(base, "rootfs")}
}

// On disk with no run in progress, the state directory becomes a tmpfs,
// and what a killed run left there is swept first; the network namespace
// pool's mounts are taken down rather than hidden under it.
func TestRuntimeTmpfsMounts(t *testing.T) {
	base := diskDir(t)
	d := testDirs(base)
	stale := filepath.Join(d.rootfs, "ae-999999999-dead")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	lease, err := leaseNetNS(base)
	if err != nil {
		t.Fatal(err)
	}
	lease.close()
	slot := filepath.Join(base, "netns", "0")
	t.Cleanup(func() { _ = unix.Unmount(slot, unix.MNT_DETACH) })
	if _, err := openPooledNetNS(slot); err != nil {
		t.Fatalf("pool slot before the tmpfs: %v", err)
	}
	lock, err := runtimeTmpfs(d)
	if err != nil {
		t.Fatal(err)
	}
	if !onTmpfsPath(base) {
		t.Fatalf("%s is still not a tmpfs", base)
	}
	if !onTmpfs(lock) {
		t.Error("the lock is not held on the tmpfs")
	}
	var st unix.Stat_t
	if err := unix.Stat(base, &st); err != nil || st.Mode&0o777 != 0o711 || st.Uid != 0 {
		t.Errorf("tmpfs root: mode %o uid %d, want 711 and root", st.Mode&0o777, st.Uid)
	}
	lock.Close()
	if err := unix.Unmount(base, 0); err == nil {
		if _, err := os.Stat(stale); err == nil {
			t.Error("the killed run's rootfs was hidden, not swept")
		}
		if _, err := openPooledNetNS(slot); err == nil {
			t.Error("the pool's namespace mount was hidden under the tmpfs, not taken down")
		}
	} else {
		t.Errorf("unmounting: %v", err)
	}
}

// A run in progress (a shared lock) means no tmpfs goes over its state;
// the caller still gets its own shared lock, on the disk directory.
func TestRuntimeTmpfsNotOverARunningContainer(t *testing.T) {
	base := diskDir(t)
	d := testDirs(base)
	other, err := os.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := unix.Flock(int(other.Fd()), unix.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	lock, err := runtimeTmpfs(d)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if onTmpfsPath(base) {
		t.Fatal("a tmpfs was mounted while another run held the directory")
	}
	if err := unix.Flock(int(other.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
		t.Error("runtimeTmpfs returned without holding a shared lock")
	}
}
