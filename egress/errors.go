package egress

import (
	"errors"
	"fmt"
)

// Sentinels callers branch on with errors.Is.
var (
	// ErrPattern reports a host pattern that is malformed or too broad to
	// be a grant (for example "*" or "*.com").
	ErrPattern = errors.New("invalid network grant")
	// ErrUnsupported reports that this host cannot give the proxy its own
	// network namespace (not root, no CAP_SYS_ADMIN, or no network
	// namespaces at all). Nothing was started.
	ErrUnsupported = errors.New("network namespaces unavailable")
	// ErrRegistry reports that a package manager's registry could not be
	// read from its own configuration.
	ErrRegistry = errors.New("cannot determine package registry")
	// ErrUnknownTool reports a registry name RegistryGrants does not know.
	ErrUnknownTool = errors.New("unknown package manager")
	// ErrClosed reports use of a proxy after Close.
	ErrClosed = errors.New("proxy closed")
)

// PatternError says which grant pattern was rejected and why.
type PatternError struct {
	Pattern string
	Reason  string
}

func (e *PatternError) Error() string {
	return fmt.Sprintf("network grant %q: %s", e.Pattern, e.Reason)
}

// Unwrap makes errors.Is(err, ErrPattern) true.
func (e *PatternError) Unwrap() error { return ErrPattern }

// RegistryError says which package manager's configuration could not be
// read, and why.
type RegistryError struct {
	Tool string
	Err  error
}

func (e *RegistryError) Error() string {
	return fmt.Sprintf("%s registry: %v", e.Tool, e.Err)
}

// Unwrap returns both ErrRegistry and the underlying cause.
func (e *RegistryError) Unwrap() []error { return []error{ErrRegistry, e.Err} }
