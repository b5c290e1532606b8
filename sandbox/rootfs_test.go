package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"golang.org/x/sys/unix"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer/configs"
)

// The container's view is mounted in a namespace of Run's own thread: the
// host never sees those mounts, not even while the command runs, and
// after Run the skeleton root is gone while everything that was bound into
// it (the workspace above all) is intact.
func TestRunViewNeverOnTheHost(t *testing.T) {
	needContainers(t)
	if os.Geteuid() != 0 {
		t.Skip("the view is built outside the container only for a root caller")
	}
	ws := t.TempDir()
	if err := os.WriteFile(filepath.Join(ws, "keep"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := stateDirs(currentIdentity())
	if err != nil {
		t.Fatal(err)
	}
	d.release()
	started := filepath.Join(ws, "started")
	errc := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		_, err := Run(context.Background(), Spec{
			Argv:      []string{"/bin/sh", "-c", "touch started; sleep 0.5; cat keep"},
			Env:       testEnv,
			Workspace: ws,
			Timeout:   time.Minute,
			Stdout:    &out,
		})
		errc <- err
	}()
	waitFor(t, func() bool { _, err := os.Stat(started); return err == nil })
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		if strings.Contains(line, d.rootfs+"/") {
			t.Errorf("a container mount is visible on the host: %s", line)
		}
	}
	prefix := "ae-" + strconv.Itoa(os.Getpid()) + "-"
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if out.String() != "data" {
		t.Errorf("the command read %q from the workspace, want %q", out.String(), "data")
	}
	if b, err := os.ReadFile(filepath.Join(ws, "keep")); err != nil || string(b) != "data" {
		t.Fatalf("the workspace file after Run: %q, %v", b, err)
	}
	ents, _ := os.ReadDir(d.rootfs)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			t.Errorf("skeleton root %s left behind", e.Name())
		}
	}
}

func TestTmpfsOptionsTranslateIDs(t *testing.T) {
	got, err := tmpfsOptions("mode=755,size=65536k,uid=1000,gid=1000", hostBase)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"mode": "755", "size": "65536k", "uid": strconv.Itoa(hostBase + 1000), "gid": strconv.Itoa(hostBase + 1000)}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	got, _ = tmpfsOptions("mode=1777", hostBase)
	if got["uid"] != strconv.Itoa(hostBase) || got["gid"] != strconv.Itoa(hostBase) {
		t.Errorf("a tmpfs without an owner belongs to %s:%s, want the container's root", got["uid"], got["gid"])
	}
	for _, bad := range []string{"uid=70000", "uid=-1", "nr_inodes"} {
		if _, err := tmpfsOptions(bad, hostBase); err == nil {
			t.Errorf("tmpfsOptions(%q) accepted", bad)
		}
	}
}

func TestKernelMount(t *testing.T) {
	for dest, want := range map[string]bool{
		"/proc": true, "/proc/sys": true,
		"/dev": false, "/dev/pts": false, "/usr": false, "/tmp": false, "/run/agentexec/init": false,
	} {
		if got := kernelMount(&configs.Mount{Destination: dest}); got != want {
			t.Errorf("kernelMount(%s) = %v, want %v", dest, got, want)
		}
	}
}

// /dev, made outside the container, works as libcontainer's would: the
// allowed device nodes (made, with the host's numbers and modes, owned by
// the container's root, not removable by the command), a private devpts
// whose ptmx the sandbox user can open, a writable shm, the usual links;
// and no other host device.
func TestRunDev(t *testing.T) {
	needContainers(t)
	script := `set -e
echo x > /dev/null
test "$(head -c 3 /dev/zero | od -An -c | tr -d ' ')" = '\0\0\0'
head -c 16 /dev/urandom | wc -c
echo shm > /dev/shm/f && cat /dev/shm/f
readlink /dev/ptmx /dev/fd /dev/stdin
python3 -c 'import os, pty; m, s = pty.openpty(); print(os.ttyname(s))'
ls /dev/pts | wc -l
for d in /dev/sda /dev/vda /dev/mem /dev/kmsg /dev/console; do test -e $d && echo "host device $d"; done
stat -c '%n %F %t:%T %a %U' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty
rm -f /dev/null 2>/dev/null && echo "removed /dev/null"
true`
	res, out, errOut := sh(t, Spec{}, script)
	if res.ExitCode != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", res.ExitCode, out, errOut)
	}
	want := "16\nshm\npts/ptmx\n/proc/self/fd\n/proc/self/fd/0\n/dev/pts/0\n1\n" +
		"/dev/null character special file 1:3 666 root\n/dev/zero character special file 1:5 666 root\n" +
		"/dev/full character special file 1:7 666 root\n/dev/random character special file 1:8 666 root\n" +
		"/dev/urandom character special file 1:9 666 root\n/dev/tty character special file 5:0 666 root\n"
	if out != want {
		t.Errorf("stdout:\n%s\nwant it to start with:\n%s", out, want)
	}
}

// With DeferTeardown, Run returns once the command is done and the
// container is still there; Teardown removes it.
func TestRunDeferTeardown(t *testing.T) {
	needContainers(t)
	ws := t.TempDir()
	var out bytes.Buffer
	res, err := Run(context.Background(), Spec{
		Argv: []string{"/bin/sh", "-c", "echo done; touch .envrc; exit 4"}, Env: testEnv,
		Workspace: ws, Timeout: time.Minute, Stdout: &out, DeferTeardown: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 4 || out.String() != "done\n" || res.Teardown == nil {
		t.Fatalf("got exit %d, output %q, Teardown set %v; want 4, done, set", res.ExitCode, out.String(), res.Teardown != nil)
	}
	d, err := stateDirs(currentIdentity())
	if err != nil {
		t.Fatal(err)
	}
	d.release()
	prefix := "ae-" + strconv.Itoa(os.Getpid()) + "-"
	ours := func() int {
		n := 0
		ents, _ := os.ReadDir(d.state)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), prefix) {
				n++
			}
		}
		return n
	}
	if ours() != 1 {
		t.Fatalf("before Teardown: %d container state dirs of this process, want 1", ours())
	}
	if err := res.Teardown(); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	if ours() != 0 {
		t.Error("the container's state is still there after Teardown")
	}
	if _, err := os.Stat(filepath.Join(ws, ".envrc")); err == nil {
		t.Error("the planted .envrc is still there after Teardown")
	}
}

// Every Run gets a network namespace of its own, with only loopback, up:
// a namespace Prewarm made ahead is never handed to two containers. The
// runs overlap, so that no namespace can have been freed and its number
// reused while the test looks.
func TestRunOwnNetworkNamespace(t *testing.T) {
	needContainers(t)
	host, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	const n = 3
	outs := make([]bytes.Buffer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	ws := t.TempDir()
	for i := range n {
		wg.Add(1)
		go func() { // no t.Fatal here: it must run on the test's goroutine
			defer wg.Done()
			Prewarm()
			// Each waits until all have started, so all are alive at once.
			_, errs[i] = Run(context.Background(), Spec{
				Argv: []string{"/bin/sh", "-c", fmt.Sprintf(`readlink /proc/self/ns/net; grep -c : /proc/net/dev
python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); print("lo-ok")'
touch started.%d; while [ "$(ls started.* | wc -l)" -lt %d ]; do sleep 0.01; done`, i, n)},
				Env: testEnv, Workspace: ws, Timeout: time.Minute, Stdout: &outs[i],
			})
		}()
	}
	wg.Wait()
	seen := map[string]bool{host: true}
	for i := range outs {
		if errs[i] != nil {
			t.Fatalf("run %d: %v", i, errs[i])
		}
		out := outs[i].String()
		f := strings.Fields(out)
		if len(f) != 3 || f[1] != "1" || f[2] != "lo-ok" {
			t.Fatalf("run %d: got %q; want the namespace, one interface and a working loopback", i, out)
		}
		if seen[f[0]] {
			t.Fatalf("run %d: network namespace %s is the host's or another live run's", i, f[0])
		}
		seen[f[0]] = true
	}
}

// testBuilder is a rootBuilder over the directory root, for tests of its
// lookups.
func testBuilder(t *testing.T, root string) *rootBuilder {
	t.Helper()
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return &rootBuilder{root: fd, owner: os.Geteuid()}
}

// A mount point is created and opened inside the new root whatever
// symlinks lie on its path: an absolute link or a ".." chain resolves as
// if the root were "/", never onto the host.
func TestMountpointStaysInRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nowhere", filepath.Join(root, "dangling")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(root, "abs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../..", filepath.Join(root, "up")); err != nil {
		t.Fatal(err)
	}
	b := testBuilder(t, root)
	name := "agentexec-mountpoint-" + strconv.Itoa(os.Getpid())
	for _, tt := range []struct {
		dest, want string
		file       bool
	}{
		{"/abs/" + name, "etc/" + name, false},
		{"/up/" + name + ".file", name + ".file", true},
		{"/up/abs/" + name + "/deeper", "etc/" + name + "/deeper", false},
	} {
		got, err := b.mountpoint(tt.dest, tt.file)
		if err != nil {
			t.Fatalf("mountpoint(%s): %v", tt.dest, err)
		}
		unix.Close(got)
		if _, err := os.Lstat(filepath.Join(root, tt.want)); err != nil {
			t.Errorf("mountpoint(%s) did not make %s inside the root: %v", tt.dest, tt.want, err)
		}
	}
	// A link to nothing inside the root is refused, not followed out.
	if got, err := b.mountpoint("/dangling/"+name, false); err == nil {
		unix.Close(got)
		t.Error("mountpoint through a dangling link succeeded")
	}
	for _, p := range []string{"/etc/" + name, "/" + name + ".file", "/nowhere", filepath.Dir(root) + "/" + name + ".file"} {
		if _, err := os.Lstat(p); err == nil {
			os.RemoveAll(p)
			t.Errorf("mountpoint made %s on the host", p)
		}
	}
}

// TestMountpointUnderMountChurn: a lookup with ".." under RESOLVE_IN_ROOT
// fails with EAGAIN when a mount changes anywhere on the host meanwhile,
// as other containers' starts do all the time; mountpoint repeats it
// rather than failing the start.
func TestMountpointUnderMountChurn(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	root := t.TempDir()
	if err := os.Symlink("../../..", filepath.Join(root, "up")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	b := testBuilder(t, root)
	churn := t.TempDir()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if unix.Mount("tmpfs", churn, "tmpfs", 0, "") == nil {
				_ = unix.Unmount(churn, unix.MNT_DETACH)
			}
		}
	}()
	defer func() { close(stop); <-done }()
	deep := "/up" + strings.Repeat("/d/..", 20) + "/d"
	for i := range 20000 {
		got, err := b.mountpoint(deep, false)
		if err != nil {
			t.Fatalf("lookup %d: %v", i, err)
		}
		unix.Close(got)
	}
}
