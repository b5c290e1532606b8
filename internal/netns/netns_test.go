package netns

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// New gives a namespace other than the caller's, with loopback up (a
// listener made inside works), and its file names that namespace.
func TestNew(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating a network namespace needs root (CAP_SYS_ADMIN)")
	}
	var ln net.Listener
	ns, err := New(func() error {
		var err error
		ln, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	defer ln.Close()
	mine, _ := os.Readlink("/proc/self/ns/net")
	theirs, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", ns.Fd()))
	if err != nil || !strings.HasPrefix(theirs, "net:[") || theirs == mine {
		t.Fatalf("namespace file names %q (err %v), this process is in %q; want another network namespace", theirs, err, mine)
	}
	// The listener is inside: from here (the host's namespace) nothing
	// listens on its port, unless by chance the same port is in use here.
	port := ln.Addr().(*net.TCPAddr).Port
	if c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
		c.Close()
		if probe, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			probe.Close()
			t.Fatal("reached the listener made inside the namespace from outside it")
		}
	}
	// And it accepts there: a connection made from a thread in the namespace.
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	if err := inside(ns, func() error {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		t.Fatalf("connecting inside the namespace: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// inside runs f on a thread that joined ns and is then discarded.
func inside(ns *os.File, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		lockThread()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

func lockThread() { runtime.LockOSThread() }
