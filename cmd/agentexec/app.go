package main

import (
	"context"
	"fmt"
	"os"

	"github.com/urfave/cli/v3"
)

// run is the whole program, minus the process exit; tests call it too.
func run(args []string, stdin, stdout, stderr *os.File) int {
	app := &cli.Command{
		Name: "agentexec",
		Commands: []*cli.Command{
			policyCommand(), auditCommand(), credCommand(), doctorCommand(),
		},
		Writer:    stdout,
		ErrWriter: stderr,
	}
	if err := app.Run(context.Background(), args); err != nil {
		fmt.Fprintf(stderr, "agentexec: %v\n", err)
		return 125
	}
	return 0
}
