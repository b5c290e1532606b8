// Package exec runs one agent command end to end: it decides, approves,
// issues credentials, records, sandboxes, streams and reports the exit
// status. It is the one seam every front door goes through.
package exec

import (
	"os"
)

// Exit codes reserved by agentexec itself (DESIGN.md §3). Every other status
// is the child's own, passed through unchanged; a child killed by signal N
// gives 128+N, as in a shell.
const (
	ExitUsage     = 2   // the command line given to agentexec is wrong
	ExitCannotRun = 125 // config, sandbox, audit or credential failure: nothing ran
	ExitDenied    = 126 // denied by policy or approval: nothing ran
	ExitNotFound  = 127 // the program was not found

	// ExitNotExecutable is what a shell returns for a program that exists
	// but cannot be executed; it shares 126 with a denial, as in bash.
	ExitNotExecutable = 126
)

// Request is one command to run. It is plain data (JSON-serialisable) plus
// the three stdio files, so that a later broker can receive it over a unix
// socket. Its zero value runs nothing.
type Request struct {
	// Exactly one of Command or Argv says what to run. A script (a file, or
	// stdin) is read whole by the front door and given as Command, so that
	// the policy judges all of it before anything runs.

	// Command is a shell line, run as
	// `bash ShellOptions... -c Command Name Args...`. It may be a compound
	// line or a whole script. The kernel limits one argument to 128 KiB;
	// a longer Command is refused with ErrInvalidRequest.
	Command string `json:"command,omitempty"`
	// Argv is a program and its arguments, run without a shell.
	Argv []string `json:"argv,omitempty"`

	// Name is $0 for a shell line (bash's NAME after -c STRING); empty
	// means "agentexec".
	Name string `json:"name,omitempty"`
	// Args are $1... for a shell line.
	Args []string `json:"args,omitempty"`
	// ShellOptions are bash options given to agentexec, as bash argv
	// tokens ("--norc", "-l", "-e", "+x", "-o", "pipefail", ...), passed to
	// the shell that runs Command in this order (long options first, as bash
	// requires). They are ignored in the Argv form.
	ShellOptions []string `json:"shell_options,omitempty"`

	// Env is the child's environment, exactly; nil means an empty one.
	// Run adds nothing to it except what a grant or the sandbox documents.
	// The PATH in Env is the one used to find the program (and bash).
	Env []string `json:"env,omitempty"`
	// Dir is the working directory, an absolute path; empty means the
	// workspace.
	Dir string `json:"dir,omitempty"`
	// Workspace is the directory the command may write; empty means Dir, or
	// the current directory.
	Workspace string `json:"workspace,omitempty"`

	// Context: who asks, on whose behalf, and why.
	Intent  string `json:"intent,omitempty"`
	Agent   string `json:"agent,omitempty"`
	Session string `json:"session,omitempty"`

	// PolicyFile is --policy / AGENTEXEC_POLICY; empty means the search
	// order of DESIGN.md §4.
	PolicyFile string `json:"policy_file,omitempty"`

	// Stdin, Stdout and Stderr are the child's stdio. A nil Stdin reads
	// from /dev/null; a nil Stdout or Stderr discards. They are handed to
	// the child as they are unless a PTY is used (docs/terminals.md) or the
	// output must be digested or redacted; then agentexec copies, byte for
	// byte. When Stdout and Stderr are the same file, the child writes both
	// to one stream so their order is kept.
	Stdin  *os.File `json:"-"`
	Stdout *os.File `json:"-"`
	Stderr *os.File `json:"-"`
}
