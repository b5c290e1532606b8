// Package functest holds the sandbox's functional tests: real
// compile-test-fix loops (Go through sandbox.Run, C through make with
// SHELL=agentexec) with persistent build caches. They need root and
// namespaces, like the escape suite.
package functest
