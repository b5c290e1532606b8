package main

import (
	"context"
	"errors"

	"github.com/urfave/cli/v3"
)

// policyCommand is the `agentexec policy` subcommand.
func policyCommand() *cli.Command {
	return &cli.Command{
		Name:  "policy",
		Usage: "(under construction)",
		Action: func(ctx context.Context, c *cli.Command) error {
			return errors.New("policy: not built yet")
		},
	}
}
