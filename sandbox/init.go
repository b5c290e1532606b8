package sandbox

import (
	"os"

	"github.com/opencontainers/runc/libcontainer"
	// nsexec's C constructor sets up the namespaces of libcontainer's init
	// before the Go runtime starts; without it Run fails with "can't get
	// final child's PID from pipe".
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// MaybeInit is called first thing in main (and in every test binary that
// starts containers). It takes over the process only in the two re-execs
// Run causes: libcontainer's own init (argv "init" plus the descriptors
// libcontainer passes in its environment) and agentexec's reaper (PID 1 of
// a container, started as initPath). Otherwise it returns and does
// nothing, so `agentexec init` on the host is never either of them.
func MaybeInit() {
	if len(os.Args) == 2 && os.Args[1] == "init" &&
		os.Getenv("_LIBCONTAINER_INITPIPE") != "" && os.Getenv("_LIBCONTAINER_INITTYPE") != "" {
		libcontainer.Init() // never returns
	}
	if len(os.Args) == 1 && os.Args[0] == initPath && os.Getpid() == 1 {
		reaperMain() // never returns
	}
}
