package policy

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels callers branch on with errors.Is.
var (
	// ErrDenied: the policy denies the line; nothing may run.
	ErrDenied = errors.New("denied by policy")
	// ErrAsk: the line needs a human's approval before it may run.
	ErrAsk = errors.New("approval required")
	// ErrInvalidPolicy: a policy file is malformed, fails validation, or
	// fails one of its inline tests. Every *LoadError matches it.
	ErrInvalidPolicy = errors.New("invalid policy")
	// ErrWiden: a policy file inside the workspace tries to widen the base
	// policy. Wrapped by the *LoadError that names the file and line.
	ErrWiden = errors.New("workspace policy may only narrow")
	// ErrTestFailed: an inline test of a policy file failed.
	ErrTestFailed = errors.New("inline test failed")
	// ErrUnknownProfile: no built-in profile has the requested name.
	ErrUnknownProfile = errors.New("unknown built-in profile")
)

// LoadError is a policy file that cannot be used. Its message is one line,
// "FILE:LINE:COL: MSG", so an editor can jump to it.
type LoadError struct {
	File string // the file as it was named, or "builtin:NAME"
	Line int    // 1-based; 0 when the error is about the whole file
	Col  int    // 1-based; 0 when unknown
	Key  string // the offending key, when there is one
	Msg  string // one lowercase sentence, no trailing period
	Err  error  // the cause: ErrWiden, ErrTestFailed, an I/O error, or nil
}

func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	// One line, always: the CLI prints it after "agentexec: ".
	b.WriteString(strings.ReplaceAll(e.Msg, "\n", " "))
	return b.String()
}

// Unwrap returns the cause, if any.
func (e *LoadError) Unwrap() error { return e.Err }

// Is reports that every LoadError is an ErrInvalidPolicy.
func (e *LoadError) Is(target error) bool { return target == ErrInvalidPolicy }

// DenyError is a line the policy denies. Rule is the id of the rule that
// denied it (a rule of the policy, or one of the built-in ids documented in
// docs/policy.md such as "default" or "redirect-outside-workspace").
type DenyError struct {
	Rule    string   // the rule id
	Command string   // the simple command (or redirection) it denied, as written
	Reason  string   // why, one sentence
	Hints   []string // what the agent may do instead, or how a human can grant it
}

func (e *DenyError) Error() string {
	return fmt.Sprintf("denied by rule %q: %s", e.Rule, e.Reason)
}

// Is reports that every DenyError is an ErrDenied.
func (e *DenyError) Is(target error) bool { return target == ErrDenied }

// AskError is a line that needs approval. It lists every simple command
// that asked, so an approval prompt can show them all at once.
type AskError struct {
	Rule    string // the first rule that asked
	Command string // the first command that asked
	Reason  string
	Matches []Match // every match with the ask verdict
	Hints   []string
}

func (e *AskError) Error() string {
	return fmt.Sprintf("approval required by rule %q: %s", e.Rule, e.Reason)
}

// Is reports that every AskError is an ErrAsk.
func (e *AskError) Is(target error) bool { return target == ErrAsk }
