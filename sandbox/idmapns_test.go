package sandbox

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestIdmapUserns: a mount idmapped with the namespace shows the caller's
// files as the sandbox user's, exactly as the mapping in identity.go says.
func TestIdmapUserns(t *testing.T) {
	needContainers(t)
	f, err := idmapUserns(swapMap(0, sandboxUID), swapMap(0, sandboxGID))
	if err != nil {
		t.Fatalf("idmapUserns: %v", err)
	}
	defer f.Close()
	dir := t.TempDir() // owned by the caller, root
	fd, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		t.Fatalf("open_tree: %v", err)
	}
	defer unix.Close(fd)
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(f.Fd())}); err != nil {
		t.Fatalf("mount_setattr(MOUNT_ATTR_IDMAP): %v", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	if want := uint32(hostBase + sandboxUID); st.Uid != want || st.Gid != uint32(hostBase+sandboxGID) {
		t.Errorf("got owner %d:%d through the idmapped mount, want %d:%d", st.Uid, st.Gid, want, hostBase+sandboxGID)
	}
}

func BenchmarkIdmapUserns(b *testing.B) {
	if skipContainers != "" {
		b.Skip(skipContainers)
	}
	for b.Loop() {
		f, err := idmapUserns(swapMap(0, sandboxUID), swapMap(0, sandboxGID))
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
