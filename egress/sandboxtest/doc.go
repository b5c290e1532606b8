// Package sandboxtest holds the end-to-end tests that run real commands in
// a real sandbox joined to the egress proxy's namespace. It has no code of
// its own: the tests live here so that package egress itself never
// imports the sandbox.
package sandboxtest
