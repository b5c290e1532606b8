package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// nsID names the namespace f is, as readlink of /proc/PID/ns/* does (a
// slot opened by its path reads back as the path).
func nsID(t *testing.T, f *os.File) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("net:[%d]", st.Ino)
}

// poolBase is a state root of the test's own for the kept namespaces,
// whose mounts go with the test; only root keeps namespaces.
func poolBase(t *testing.T) string {
	t.Helper()
	needContainers(t)
	if os.Geteuid() != 0 {
		t.Skip("namespaces are kept only for a root caller")
	}
	base := t.TempDir()
	t.Cleanup(func() { unmountPool(base) })
	return base
}

// TestNetNSPoolLeases: a lease is exclusive while held, a slot given back
// is leased again with the same namespace, a slot whose namespace is gone
// is filled anew, and unmountPool takes the slots' mounts down.
func TestNetNSPoolLeases(t *testing.T) {
	base := poolBase(t)

	a, err := leaseNetNS(base)
	if err != nil {
		t.Fatal(err)
	}
	b, err := leaseNetNS(base)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Readlink("/proc/self/ns/net")
	idA, idB := nsID(t, a.ns), nsID(t, b.ns)
	if idA == idB || idA == host || idB == host || !strings.HasPrefix(idA, "net:[") {
		t.Fatalf("two live leases got %s and %s (host %s); want two namespaces of their own", idA, idB, host)
	}
	a.close()
	c, err := leaseNetNS(base)
	if err != nil {
		t.Fatal(err)
	}
	if got := nsID(t, c.ns); got != idA {
		t.Errorf("a slot given back was leased with %s, want its namespace %s again", got, idA)
	}
	c.close()
	// The slot's namespace disappears (its mount is gone): it is refilled.
	slot := filepath.Join(base, "netns", "0")
	if err := unix.Unmount(slot, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	d, err := leaseNetNS(base)
	if err != nil {
		t.Fatal(err)
	}
	if got := nsID(t, d.ns); got == idA || got == idB || !strings.HasPrefix(got, "net:[") {
		t.Errorf("refilled slot has %s; want a new network namespace", got)
	}
	if _, err := openPooledNetNS(slot); err != nil {
		t.Errorf("refilled slot: %v", err)
	}
	d.close()
	b.close()
	unmountPool(base)
	for _, s := range []string{"0", "1"} {
		if _, err := openPooledNetNS(filepath.Join(base, "netns", s)); err == nil {
			t.Errorf("slot %s is still a namespace after unmountPool", s)
		}
	}
}

// TestNetNSPoolReuseLeavesNothing: two runs in a row share the pooled
// namespace, and the second finds nothing of the first: its listener,
// and the process holding it, are gone, and the port is free.
func TestNetNSPoolReuseLeavesNothing(t *testing.T) {
	needContainers(t)
	if os.Geteuid() != 0 {
		t.Skip("the network namespace pool is a root caller's")
	}
	ReleaseAhead() // take the namespace from the pool, not a pending one
	ws := t.TempDir()
	var first, second bytes.Buffer
	res, err := Run(context.Background(), Spec{Argv: []string{"sh", "-c",
		`readlink /proc/self/ns/net
python3 -c 'import socket,os,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0); s.bind(("127.0.0.1", 47613)); s.listen()
if os.fork(): os._exit(0)
time.sleep(600)'`}, Env: testEnv, Workspace: ws, Stdout: &first})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("first run: exit %d, %v", res.ExitCode, err)
	}
	ReleaseAhead()
	res, err = Run(context.Background(), Spec{Argv: []string{"sh", "-c",
		`readlink /proc/self/ns/net; grep -c " 0A " /proc/net/tcp
python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 47613)); s.listen(); print("port free")'`}, Env: testEnv, Workspace: ws, Stdout: &second})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("second run: exit %d, %v (%q)", res.ExitCode, err, second.String())
	}
	f1, f2 := strings.Fields(first.String()), strings.Fields(second.String())
	if len(f1) != 1 || len(f2) < 3 {
		t.Fatalf("got %q then %q", first.String(), second.String())
	}
	if f1[0] != f2[0] {
		t.Fatalf("the runs had namespaces %s and %s; want the pooled one twice", f1[0], f2[0])
	}
	if f2[1] != "0" || strings.Join(f2[2:], " ") != "port free" {
		t.Errorf("second run saw %q; want no listener and the port free", second.String())
	}
}

// TestKeptIdmapUserns: the id-mapping user namespace is made once per
// mapping and shared; another mapping gets its own; unmountPool takes
// them down.
func TestKeptIdmapUserns(t *testing.T) {
	base := poolBase(t)
	ident := currentIdentity()
	a, err := keptIdmapUserns(base, ident.mntUID, ident.mntGID)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := keptIdmapUserns(base, ident.mntUID, ident.mntGID)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if nsID(t, a) != nsID(t, b) {
		t.Errorf("the same mapping got namespaces %s and %s; want one, kept", nsID(t, a), nsID(t, b))
	}
	other := swapMap(5, sandboxUID)
	c, err := keptIdmapUserns(base, other, other)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if nsID(t, c) == nsID(t, a) {
		t.Error("another mapping got the same namespace")
	}
	if typ, err := unix.IoctlRetInt(int(c.Fd()), unix.NS_GET_NSTYPE); err != nil || typ != unix.CLONE_NEWUSER {
		t.Errorf("kept namespace type %#x (%v), want a user namespace", typ, err)
	}
	ents, _ := os.ReadDir(filepath.Join(base, "userns"))
	unmountPool(base)
	for _, e := range ents {
		if _, err := openKeptNS(filepath.Join(base, "userns", e.Name()), unix.CLONE_NEWUSER); err == nil {
			t.Errorf("%s is still a namespace after unmountPool", e.Name())
		}
	}
}
