package sandbox

import (
	"errors"
	"fmt"
)

// ErrUnsupported means the host cannot provide an isolation the Spec
// requires. Run refuses instead of running the command with less isolation.
var ErrUnsupported = errors.New("isolation not supported on this host")

// ErrInvalidSpec means the Spec itself is wrong (a missing workspace, a
// relative path); nothing was started.
var ErrInvalidSpec = errors.New("invalid sandbox spec")

// SetupError reports that the container could not be prepared or started:
// nothing the caller asked for ran. Callers map it to exit status 125.
type SetupError struct {
	// Phase is the step that failed: "validate", "prepare", "create",
	// "start", "gate".
	Phase string
	Err   error
}

func (e *SetupError) Error() string {
	return fmt.Sprintf("sandbox %s: %v", e.Phase, e.Err)
}

func (e *SetupError) Unwrap() error { return e.Err }

// CheckError is one failed validation check, named as in the ordered list
// in validate.go.
type CheckError struct {
	Check  string
	Reason string
	// Err is ErrInvalidSpec or ErrUnsupported.
	Err error
}

func (e *CheckError) Error() string {
	return fmt.Sprintf("%s: %s", e.Check, e.Reason)
}

func (e *CheckError) Unwrap() error { return e.Err }
