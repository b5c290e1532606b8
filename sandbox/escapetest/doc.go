// Package escapetest holds the sandbox escape suite: each test is a command
// that tries to break out of a sandbox.Run container, and asserts what a
// user would observe, and that the host is unchanged afterwards. It needs
// root, namespaces and gcc; TestMain says why when it cannot run.
package escapetest
