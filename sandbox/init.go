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
// starts containers). It takes over the process only when it is
// libcontainer's own re-exec (argv "init" plus the descriptors libcontainer
// passes in its environment); otherwise it returns and does nothing, so
// `agentexec init` on the host never lands there. (The container's PID 1,
// the reaper, is taken over earlier still, by reaper.c's constructor,
// before the Go runtime starts.)
func MaybeInit() {
	if len(os.Args) == 2 && os.Args[1] == "init" &&
		os.Getenv("_LIBCONTAINER_INITPIPE") != "" && os.Getenv("_LIBCONTAINER_INITTYPE") != "" {
		libcontainer.Init() // never returns
	}
}

// libcontainer's re-exec is taken over in this package's own init as well
// as from main: Go initialises a package after everything it imports, so
// at this point packages only agentexec's front end needs (SSH, HTTP, the
// CLI, the policy parser) may not have run their initialisers yet, and the
// container's init does not pay for them.
func init() { MaybeInit() }
