// Command sandboxrun runs its arguments with sandbox.Run in the current
// directory as the workspace, with stdio passed through, and exits with
// the command's status. It measures the sandbox alone, without policy or
// audit, in the whole-process benchmark (testdata/bench/parts/30-sandbox.sh).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/agentexec/agentexec/sandbox"
)

func main() {
	sandbox.MaybeInit()
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: sandboxrun PROGRAM [ARGS...]")
		os.Exit(2)
	}
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandboxrun:", err)
		os.Exit(125)
	}
	res, err := sandbox.Run(context.Background(), sandbox.Spec{
		Argv: os.Args[1:], Env: []string{"PATH=/usr/bin:/bin"}, Workspace: wd,
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandboxrun:", err)
		os.Exit(125)
	}
	os.Exit(res.ExitCode)
}
