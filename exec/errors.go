package exec

import (
	"errors"
	"fmt"

	"github.com/agentexec/agentexec/cred"
)

// ErrInvalidRequest means the Request cannot be run as given (nothing or
// two things to run, a relative directory, a command too long for the
// kernel); nothing ran.
var ErrInvalidRequest = errors.New("invalid request")

// ErrNotFound means the program does not exist on the command's PATH.
var ErrNotFound = errors.New("command not found")

// ErrNotExecutable means the program exists but cannot be executed.
var ErrNotExecutable = errors.New("permission denied")

// ErrNoShell means no bash other than agentexec itself was found to run a
// shell line; running "bash" would have started agentexec again.
var ErrNoShell = errors.New("no bash found on PATH (only agentexec itself)")

// ErrDenied means the policy or the approver refused the command; nothing
// ran.
var ErrDenied = errors.New("denied")

// ErrCannotRun means a step before the command (decision, credentials,
// audit, sandbox set-up) failed, so nothing ran. Callers map it to 125.
var ErrCannotRun = errors.New("could not run the command")

// ProgramError reports a program that could not be started.
type ProgramError struct {
	// Program is the name as given.
	Program string
	// Err is ErrNotFound, ErrNotExecutable or the operating system's error.
	Err error
}

func (e *ProgramError) Error() string { return fmt.Sprintf("%s: %v", e.Program, e.Err) }

func (e *ProgramError) Unwrap() error { return e.Err }

// DeniedError reports a refusal by the policy or the approver.
type DeniedError struct {
	// Rule is the id of the rule that decided, if any.
	Rule string
	// Reason is a sentence for the agent.
	Reason string
	// Hints say what the agent may do instead, or how a human can grant it.
	Hints []string
}

func (e *DeniedError) Error() string {
	switch {
	case e.Rule != "" && e.Reason != "":
		return fmt.Sprintf("denied by rule %q: %s", e.Rule, e.Reason)
	case e.Rule != "":
		return fmt.Sprintf("denied by rule %q", e.Rule)
	case e.Reason != "":
		return "denied: " + e.Reason
	}
	return "denied"
}

// Is makes errors.Is(err, ErrDenied) true for every DeniedError.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }

// StepError reports that one step of the pipeline failed before the
// command ran.
type StepError struct {
	// Step is "decide", "approve", "credentials", "audit" or "sandbox".
	Step string
	Err  error
}

func (e *StepError) Error() string {
	// A credential that could not be issued is named by cred's own error
	// (credential "x" (provider p): ...), the line the docs show.
	var ie *cred.IssueError
	if errors.As(e.Err, &ie) {
		return e.Err.Error()
	}
	return fmt.Sprintf("%s: %v", e.Step, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrCannotRun) true for every StepError.
func (e *StepError) Is(target error) bool { return target == ErrCannotRun }

// ExitCode maps an error returned by Run to agentexec's reserved exit
// status (DESIGN.md §3): 126 for a denial, 127 for a program not found,
// 126 for a program that is not executable (as a shell does), 125 for
// everything else. A nil error maps to 0.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrDenied):
		return ExitDenied
	case errors.Is(err, ErrNotFound):
		return ExitNotFound
	case errors.Is(err, ErrNotExecutable):
		return ExitDenied
	}
	return ExitCannotRun
}
