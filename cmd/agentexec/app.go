package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/agentexec/agentexec/exec"
	"github.com/urfave/cli/v3"
)

// The UI contract. stdout and stderr belong to the command: agentexec
// writes nothing to stdout except what a management subcommand was asked
// to print. agentexec's own messages go to stderr, one line each, prefixed
// "agentexec: ", lowercase, no trailing period: errors as
// "agentexec: MESSAGE", warnings as "agentexec: warning: MESSAGE", advice
// as "agentexec: hint: MESSAGE". The interactive session's prompt goes to
// stderr, like bash's.

// subcommands own their names: a program of the same name needs `--`.
var subcommands = []string{"policy", "audit", "cred", "doctor", "version", "help"}

// run is the whole program, minus the process exit; tests call it too.
func run(args []string, stdin, stdout, stderr *os.File) int {
	ctx := context.Background()
	rest := args[1:]
	if len(rest) == 1 && rest[0] == "-h" {
		// Alone, -h is a request for help; with a command it is bash's -h.
		fmt.Fprint(stdout, usageText)
		return 0
	}
	if len(rest) > 0 && slices.Contains(subcommands, rest[0]) {
		return runManagement(ctx, args, stdout, stderr)
	}
	inv, err := parseFrontDoor(rest, exec.IsTerminal(stdin))
	if err != nil {
		return report(stderr, err)
	}
	switch inv.mode {
	case modeHelp:
		fmt.Fprint(stdout, usageText)
		return 0
	case modeVersion:
		fmt.Fprintln(stdout, versionLine())
		return 0
	}
	return runShell(ctx, args[0], inv, stdin, stdout, stderr)
}

// report prints err as agentexec's one line and returns the exit status.
func report(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "agentexec: %v\n", err)
	// A denial tells the agent what it may do instead (STYLE.md §7).
	var d *exec.DeniedError
	if errors.As(err, &d) {
		for _, h := range d.Hints {
			fmt.Fprintf(stderr, "agentexec: hint: %s\n", h)
		}
	}
	var u *usageError
	if errors.As(err, &u) {
		return exec.ExitUsage
	}
	return exec.ExitCode(err)
}

// runManagement runs a management subcommand through the CLI library.
func runManagement(ctx context.Context, args []string, stdout, stderr *os.File) int {
	app := &cli.Command{
		Name:            "agentexec",
		Usage:           "run an AI agent's shell commands under policy, in a sandbox, on the record",
		UsageText:       "agentexec [OPTIONS] -c 'COMMAND' [NAME [ARGS...]]\nagentexec [OPTIONS] -- PROGRAM [ARGS...]\nagentexec [OPTIONS] 'COMMAND'\nagentexec SUBCOMMAND [ARGS...]",
		Description:     "Run 'agentexec --help' for the full manual of the shell-compatible front door.",
		HideVersion:     true,
		HideHelpCommand: false,
		Commands: []*cli.Command{
			policyCommand(), auditCommand(), credCommand(), doctorCommand(), versionCommand(),
		},
		Writer:    stdout,
		ErrWriter: stderr,
		// The exit status is decided below; the library must not exit.
		ExitErrHandler: func(context.Context, *cli.Command, error) {},
		OnUsageError: func(_ context.Context, _ *cli.Command, err error, _ bool) error {
			return &usageError{msg: err.Error()}
		},
	}
	// A wrong flag to any subcommand is one `agentexec: ...` line and exit
	// status 2, as everywhere else, not the library's help page.
	var usage func(cs []*cli.Command)
	usage = func(cs []*cli.Command) {
		for _, c := range cs {
			if c.OnUsageError == nil {
				c.OnUsageError = app.OnUsageError
			}
			usage(c.Commands)
		}
	}
	usage(app.Commands)
	err := app.Run(ctx, args)
	if err == nil {
		return 0
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintf(stderr, "agentexec: %s\n", msg)
		}
		return ec.ExitCode()
	}
	var u *usageError
	if errors.As(err, &u) {
		return report(stderr, err)
	}
	fmt.Fprintf(stderr, "agentexec: %v\n", err)
	return 1
}

// versionCommand is `agentexec version`.
func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print agentexec's version",
		Action: func(_ context.Context, c *cli.Command) error {
			if c.Args().Len() > 0 {
				return &usageError{msg: "version: takes no arguments"}
			}
			_, err := fmt.Fprintln(c.Root().Writer, versionLine())
			return err
		},
	}
}

func versionLine() string { return "agentexec " + version }
