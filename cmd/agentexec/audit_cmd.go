package main

import (
	"context"
	"errors"

	"github.com/urfave/cli/v3"
)

// auditCommand is the `agentexec audit` subcommand.
func auditCommand() *cli.Command {
	return &cli.Command{
		Name:  "audit",
		Usage: "(under construction)",
		Action: func(ctx context.Context, c *cli.Command) error {
			return errors.New("audit: not built yet")
		},
	}
}
