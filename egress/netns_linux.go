package egress

import (
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// newNamespace creates a network namespace holding only an up loopback
// interface and a TCP listener on 127.0.0.1 with a kernel-chosen port. It
// returns the namespace file (whose open descriptor keeps the namespace
// alive) and the listener, which keeps working when accepted from any
// thread: a socket stays in the namespace it was created in.
//
// The work happens on a dedicated, locked OS thread that is never unlocked,
// so the Go runtime discards that thread when the goroutine returns instead
// of reusing a thread that sits in the wrong namespace.
func newNamespace() (*os.File, net.Listener, error) {
	type result struct {
		ns  *os.File
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		var r result
		defer func() { ch <- r }()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			// The thread is unchanged and could be reused, but it costs
			// nothing to let it go with the others.
			r.err = fmt.Errorf("creating network namespace: %w: %w", ErrUnsupported, err)
			return
		}
		ns, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			r.err = fmt.Errorf("opening network namespace: %w", err)
			return
		}
		if err := loopbackUp(); err != nil {
			ns.Close()
			r.err = fmt.Errorf("bringing up loopback: %w", err)
			return
		}
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			ns.Close()
			r.err = fmt.Errorf("listening inside network namespace: %w", err)
			return
		}
		r.ns, r.ln = ns, ln
	}()
	r := <-ch
	return r.ns, r.ln, r.err
}

// loopbackUp sets IFF_UP on "lo" in the calling thread's namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}
