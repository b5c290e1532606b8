// Package osthread runs a function on an OS thread of its own that is
// thrown away afterwards. It has a home of its own because both the
// sandbox (a private mount namespace for the container's view) and the
// network namespaces need it: a thread whose namespaces were changed must
// never run another goroutine.
package osthread

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// Run runs f on a goroutine locked to an OS thread that ends with it, and
// waits for f. The process's main thread is never used: the runtime cannot
// end it (a goroutine that exits locked to it wedges it instead, with
// whatever namespaces f gave it), and /proc/self shows its namespaces.
func Run(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// Holding the main thread makes the next goroutine take another.
			Run(f)
			runtime.UnlockOSThread()
			return
		}
		f()
	}()
	<-done
}
