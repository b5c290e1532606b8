// Package cred issues short-lived credentials for one command and redacts
// their values from everything that command prints.
//
// A credential is issued just before a command starts (Issue), delivered
// only into the sandboxed child's environment or private tmpfs, revoked or
// left to expire when the command ends (Credential.Revoke), and its bytes
// are then zeroed (Credential.Destroy). Every issued value is a Secret,
// whose formatting methods print "[REDACTED]", and is registered with a
// Needles set; a Redactor built on that set replaces the value and its
// common encodings in the child's output before anyone sees it.
//
// Zeroing is best effort: Go may have copied the bytes (string
// conversions, the garbage collector, the kernel's pipe buffers), so
// Destroy shortens a secret's life in this process's memory, it does not
// guarantee that no copy remains.
package cred
