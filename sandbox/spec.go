package sandbox

import (
	"io"
	"os"
	"time"
)

// Spec is one command to run in a fresh container. It is plain data. The
// zero value of every field is the most restrictive choice: no writable
// paths, no network, no environment, stdin from /dev/null, output discarded,
// default limits.
type Spec struct {
	// Argv is the program and its arguments, resolved inside the sandbox
	// with Env's PATH. Required.
	Argv []string
	// Env is the child's environment, exactly.
	Env []string
	// Cwd is the working directory inside the sandbox (host paths are kept
	// as they are); empty means Workspace.
	Cwd string
	// Workspace is mounted read-write at its host path. Required.
	Workspace string
	// ReadOnlyWorkspace binds the workspace read-only, like /usr, for a
	// policy that lets nothing write it (the readonly profile). Writable
	// grants still apply, also below the workspace; false keeps it
	// read-write.
	ReadOnlyWorkspace bool
	// Writable are extra host paths mounted read-write at their own path
	// (policy grants). They must exist.
	Writable []string
	// Hidden are host paths that must not be visible inside, even when they
	// lie under a mounted path (agentexec's own state and config). The
	// credential directories of DefaultHidden under Home are always hidden
	// on top of these. Missing paths are ignored.
	Hidden []string
	// Home is the caller's home directory, mounted read-only (with Hidden
	// applied) so that tools find their configuration; empty means none.
	// A 0700 /root is never mounted: it stays unreadable (docs/sandbox.md).
	Home string
	// Mounts are extra bind mounts chosen by agentexec itself (its own
	// binary for helper entry points, a credential socket directory).
	Mounts []Mount
	// Files are written into the sandbox's private tmpfs before the command
	// starts, at the given absolute path under /tmp or /run; used for
	// credentials delivered as files. They never touch the host disk.
	Files map[string][]byte

	// CacheDir is a host directory for persistent build caches (Go, npm,
	// pip, cargo), mounted read-write at its own path; Run creates it and
	// its subdirectories. Empty means no persistent caches. Run does not add
	// the variables that point the tools at it: append CacheEnv(CacheDir)
	// to Env. DefaultCacheDir is the usual choice.
	CacheDir string

	// NetNS is the path of an existing network namespace to join (one that
	// agentexec's egress proxy serves). Empty means a new namespace with
	// loopback only.
	NetNS string

	// Limits are the cgroup and rlimit ceilings; zero fields take the
	// defaults (DefaultMemoryBytes, DefaultPids, all CPUs). A non-zero field
	// is a requirement: Run fails with ErrUnsupported when it cannot be
	// enforced (a non-root caller without a delegated cgroup subtree).
	Limits Limits
	// Timeout is the wall-clock limit; zero means DefaultTimeout. When it
	// expires the command gets SIGTERM, then SIGKILL after KillGrace.
	Timeout time.Duration

	// Stdin is the child's input; nil means /dev/null.
	Stdin io.Reader
	// Stdout and Stderr receive the child's output; nil discards it. When
	// they are *os.File the descriptors are handed to the child directly.
	// When both are the same writer, at most one goroutine at a time calls
	// its Write (as with os/exec).
	Stdout io.Writer
	Stderr io.Writer

	// TTY asks for a pseudo-terminal inside the sandbox as the child's
	// stdio; Stdin and Stdout are then copied to and from its master, and
	// Stderr is unused.
	TTY bool
	// WinSize is the initial terminal size when TTY is set.
	WinSize WinSize
	// Resize delivers later window sizes when TTY is set.
	Resize <-chan WinSize
	// Signals are forwarded to the command (through the container's init,
	// which passes them on to the whole foreground process group).
	Signals <-chan os.Signal

	// Gate, when set, holds the command back until it yields a value:
	// the container is built meanwhile, but nothing of Argv runs (and
	// Files are not written) before a nil arrives. A non-nil error, or ctx
	// ending first, tears the container down and Run returns a
	// *SetupError for phase "gate" wrapping it: nothing ran. It lets the
	// caller finish work that must precede the command (a durable audit
	// record) while the container is being set up; nil means no gate.
	Gate <-chan error

	// DeferTeardown makes Run return as soon as the command has exited and
	// its output is drained, with Result.Teardown set: the caller must
	// call it, and it tears the container down and returns what Run would
	// otherwise have returned for that step (a *SetupError for phase
	// "destroy"). A caller with its own work to do after the command (the
	// end of the audit record) does it meanwhile. Removed and the destroy
	// phase are known only to Teardown. Zero: Run tears down before it
	// returns.
	DeferTeardown bool
}

// Mount is one extra bind mount.
type Mount struct {
	Source, Dest string
	Writable     bool
}

// Limits bound what one command may use. Zero means the default.
type Limits struct {
	MemoryBytes int64   // cgroup memory limit
	Pids        int64   // cgroup pids limit
	CPUs        float64 // CPU quota, in cores
}

// WinSize is a terminal size in character cells.
type WinSize struct {
	Rows, Cols uint16
}

// Result is how the command ended.
type Result struct {
	// ExitCode is the child's exit status, or 128+N when killed by signal N.
	ExitCode int
	// Signal is the signal that killed the child, or 0.
	Signal int
	// TimedOut says the wall-clock limit ended the command.
	TimedOut bool
	Duration time.Duration
	// MaxRSSBytes, UserTime and SystemTime are the resource usage of the
	// command's processes, where the host reports them.
	MaxRSSBytes          int64
	UserTime, SystemTime time.Duration
	// Removed are persistence files (.mcp.json, .envrc, shell rc files)
	// that did not exist in the workspace before the command and that the
	// command created; Run deleted them.
	Removed []string
	// Phases are how long each step of running the container took, for
	// benchmarks and the audit record.
	Phases []Phase
	// Teardown is set when Spec.DeferTeardown was: see there.
	Teardown func() error
}

// Phase is one timed step.
type Phase struct {
	Name     string
	Duration time.Duration
}
