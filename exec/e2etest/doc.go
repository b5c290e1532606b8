// Package e2etest holds the end-to-end acceptance tests that run the real
// agentexec binary: a policy file, a temporary workspace and private
// HOME and XDG directories per test, and only what a user can observe
// (exit status, stdout, stderr, the audit log, files on disk) is asserted.
//
// The tests need what agentexec itself needs to sandbox a command (root or
// user namespaces, cgroups, seccomp). TestMain probes that once and says
// why it stops when the host cannot.
package e2etest
