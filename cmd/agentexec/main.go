// Command agentexec runs an AI agent's shell commands under a
// least-privilege policy, in a sandbox, with short-lived credentials, and
// records each one in a signed audit log.
package main

import (
	"os"

	"github.com/agentexec/agentexec/sandbox"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func init() {
	// libcontainer re-executes this binary to set up each container; that
	// path must run before flag parsing, logging or config loading.
	sandbox.MaybeInit()
}

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
