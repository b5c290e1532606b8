package cred

import (
	"errors"
	"fmt"
)

// Conditions callers branch on. Every error returned by this package wraps
// one of them; test with errors.Is.
var (
	// ErrInvalidSpec: the credential definition cannot be used as written.
	ErrInvalidSpec = errors.New("invalid credential definition")
	// ErrUnknownProvider: Spec.Provider names no provider.
	ErrUnknownProvider = errors.New("unknown credential provider")
	// ErrTooShort: a value is shorter than MinSecretLen bytes and could not
	// be redacted reliably, so it is refused.
	ErrTooShort = errors.New("secret too short to redact")
	// ErrHelperFailed: a helper program exited non-zero or could not start.
	ErrHelperFailed = errors.New("credential helper failed")
	// ErrTimeout: a helper program did not finish within its timeout.
	ErrTimeout = errors.New("credential helper timed out")
	// ErrBadResponse: a helper's answer does not follow its protocol.
	ErrBadResponse = errors.New("malformed helper response")
	// ErrNoExpiry: the definition demands short-lived credentials and the
	// provider returned one without an expiry.
	ErrNoExpiry = errors.New("credential has no expiry")
	// ErrCeiling: the provider granted more than the definition's ceiling
	// (TTL or scope); the credential was revoked where possible.
	ErrCeiling = errors.New("credential exceeds its ceiling")
	// ErrNotSet: the env provider's source variable is unset or empty.
	ErrNotSet = errors.New("source variable not set")
	// ErrUnsafeFile: the file provider's source file, or a directory above
	// it, could be changed by someone other than root.
	ErrUnsafeFile = errors.New("credential file is not safe")
	// ErrClosed: a Redactor or askpass server was used after Close.
	ErrClosed = errors.New("closed")
	// ErrAskpass: an askpass request was refused or could not be answered.
	ErrAskpass = errors.New("askpass refused")
)

// IssueError is returned by Issue: it names the credential and provider so
// the one-line message an agent sees says which grant failed. Its text never
// contains a secret value: helper output in it has been redacted.
type IssueError struct {
	Name, Provider string
	Err            error
}

func (e *IssueError) Error() string {
	return fmt.Sprintf("credential %q (provider %s): %v", e.Name, e.Provider, e.Err)
}

func (e *IssueError) Unwrap() error { return e.Err }

// HelperError describes a helper program that failed. Stderr is the
// helper's standard error, redacted with every value known at the time,
// stripped of control characters and truncated.
type HelperError struct {
	Op       string // "issue", "revoke", "git credential fill", ...
	ExitCode int    // -1 when the helper did not exit normally
	Stderr   string
	Err      error // ErrHelperFailed or ErrTimeout, possibly wrapping more
}

func (e *HelperError) Error() string {
	msg := e.Op + ": "
	switch {
	case errors.Is(e.Err, ErrTimeout):
		msg += e.Err.Error()
	case e.ExitCode >= 0:
		msg += fmt.Sprintf("helper exited with status %d", e.ExitCode)
	default:
		msg += e.Err.Error()
	}
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

func (e *HelperError) Unwrap() error { return e.Err }

// TooShortError names a value that was refused because it is too short
// to redact.
type TooShortError struct {
	Name string // credential name
	What string // which value: an env var name, "password", "file content"
	Len  int
}

func (e *TooShortError) Error() string {
	return fmt.Sprintf("%s of %q is %d bytes, at least %d are needed so that it can be redacted from output",
		e.What, e.Name, e.Len, MinSecretLen)
}

func (e *TooShortError) Unwrap() error { return ErrTooShort }
