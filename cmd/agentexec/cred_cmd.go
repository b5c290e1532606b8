package main

import (
	"context"
	"errors"

	"github.com/urfave/cli/v3"
)

// credCommand is the `agentexec cred` subcommand.
func credCommand() *cli.Command {
	return &cli.Command{
		Name:  "cred",
		Usage: "(under construction)",
		Action: func(ctx context.Context, c *cli.Command) error {
			return errors.New("cred: not built yet")
		},
	}
}
