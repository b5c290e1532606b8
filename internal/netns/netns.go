// Package netns makes Linux network namespaces from a Go process. It has a
// home of its own because two packages need the same careful dance: the
// sandbox gives every command a namespace with loopback only, and egress a
// namespace whose loopback also holds its proxy.
package netns

import (
	"fmt"
	"os"

	"github.com/agentexec/agentexec/internal/osthread"
	"golang.org/x/sys/unix"
)

// New creates a network namespace holding only an up loopback interface,
// runs inside (when not nil) in it, and returns the namespace file, whose
// open descriptor keeps the namespace alive. Sockets inside creates stay
// in the namespace whichever thread later uses them.
//
// The work happens on a thread of its own that is then discarded
// (osthread), never on one that sits in the wrong namespace afterwards.
// An error wraps ErrUnshare when the kernel refused the namespace itself.
func New(inside func() error) (*os.File, error) {
	type result struct {
		ns  *os.File
		err error
	}
	ch := make(chan result, 1)
	osthread.Run(func() {
		var r result
		defer func() { ch <- r }()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			r.err = fmt.Errorf("creating network namespace: %w: %w", ErrUnshare, err)
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
		if inside != nil {
			if err := inside(); err != nil {
				ns.Close()
				r.err = err
				return
			}
		}
		r.ns = ns
	})
	r := <-ch
	return r.ns, r.err
}

// ErrUnshare marks the kernel's refusal to create a network namespace.
var ErrUnshare = fmt.Errorf("network namespaces unavailable")

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
