package audit

import (
	"errors"
	"fmt"
	"io/fs"
)

// Conditions callers branch on. Every error the package returns wraps one of
// these (or an *os.PathError from the file system) so that exec can map an
// audit failure to "nothing ran" without string matching.
var (
	// ErrTampered means the log does not verify: a record, tile, checkpoint
	// or witness disagrees with what was signed.
	ErrTampered = errors.New("audit log does not verify")
	// ErrMalformed means bytes that should be an entry bundle, envelope,
	// checkpoint or signature could not be parsed.
	ErrMalformed = errors.New("malformed audit data")
	// ErrUnsafePermissions means the state directory or the key is readable
	// or writable by someone other than its owner, or owned by someone else.
	ErrUnsafePermissions = errors.New("unsafe permissions")
	// ErrKeyMissing means the log exists but its signing key does not.
	ErrKeyMissing = errors.New("audit log key missing")
	// ErrTooLarge means a record does not fit in one tlog-tiles entry.
	ErrTooLarge = errors.New("audit record too large")
	// ErrClosed means the Log was used after Close.
	ErrClosed = errors.New("audit log closed")
	// ErrNotFound means a requested record does not exist in the log.
	ErrNotFound = errors.New("audit record not found")
)

// VerifyError names the first thing in the log that does not verify.
type VerifyError struct {
	Seq    int64  // record sequence number, or -1 when the fault is not in a record
	File   string // file (relative to the state directory) that holds the fault
	Reason string // what is wrong, one phrase
	Err    error  // ErrTampered or ErrMalformed, possibly with more detail
}

func (e *VerifyError) Error() string {
	where := e.File
	if e.Seq >= 0 {
		where = fmt.Sprintf("record %d (%s)", e.Seq, e.File)
	}
	if e.Err != nil && !errors.Is(e.Err, ErrTampered) {
		return fmt.Sprintf("%s: %s: %v", where, e.Reason, e.Err)
	}
	return fmt.Sprintf("%s: %s", where, e.Reason)
}

// Unwrap lets errors.Is(err, ErrTampered) hold for every verification fault.
func (e *VerifyError) Unwrap() []error { return []error{ErrTampered, e.Err} }

// ParseError reports malformed input at a byte offset.
type ParseError struct {
	What   string // "entry bundle", "envelope", "checkpoint", "ssh signature"
	Offset int    // byte offset of the fault, -1 when unknown
	Reason string
}

func (e *ParseError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("parsing %s at byte %d: %s", e.What, e.Offset, e.Reason)
	}
	return fmt.Sprintf("parsing %s: %s", e.What, e.Reason)
}

// Unwrap makes errors.Is(err, ErrMalformed) hold.
func (e *ParseError) Unwrap() error { return ErrMalformed }

// PermissionError reports a file or directory whose mode or owner would let
// someone else read the key or rewrite the log.
type PermissionError struct {
	Path string
	Mode fs.FileMode
	UID  uint32
	Want string
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("%s has mode %04o owner uid %d, want %s", e.Path, e.Mode.Perm(), e.UID, e.Want)
}

// Unwrap makes errors.Is(err, ErrUnsafePermissions) hold.
func (e *PermissionError) Unwrap() error { return ErrUnsafePermissions }
