package main

import (
	"context"
	"errors"

	"github.com/urfave/cli/v3"
)

// doctorCommand is the `agentexec doctor` subcommand.
func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "(under construction)",
		Action: func(ctx context.Context, c *cli.Command) error {
			return errors.New("doctor: not built yet")
		},
	}
}
