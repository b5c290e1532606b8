// Package names checks the shapes of the names agentexec accepts from a
// policy: rule ids, credential names and environment variable names. It
// has a home of its own because the policy loader and the credential
// providers both check them, and an environment variable name that one
// accepts and the other refuses would be a hole between the two.
//
// The checks are loops rather than package-level regexps: compiling those
// ran at the start of every agentexec process, the sandbox's init included.
package names

import "strings"

const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ID reports whether s matches ^[A-Za-z0-9][A-Za-z0-9._-]*$ and is at most
// max bytes long (max <= 0: no limit).
func ID(s string, max int) bool {
	return s != "" && (max <= 0 || len(s) <= max) && strings.IndexByte(alnum, s[0]) >= 0 && strings.Trim(s, alnum+"._-") == ""
}

// Env reports whether s matches ^[A-Za-z_][A-Za-z0-9_]*$.
func Env(s string) bool {
	return s != "" && (s[0] < '0' || s[0] > '9') && strings.Trim(s, alnum+"_") == ""
}
