package main

import (
	"context"
	"errors"

	"github.com/agentexec/agentexec/sandbox"
	"github.com/urfave/cli/v3"
)

// errNotReady is doctor's verdict when a required capability is missing.
var errNotReady = errors.New("doctor: this host cannot run the sandbox")

// doctorCommand is the `agentexec doctor` subcommand: it reports what this
// host supports for the sandbox and what is missing, with the fix.
func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:      "doctor",
		Usage:     "report what this host supports for the sandbox, and how to fix what is missing",
		UsageText: "agentexec doctor",
		Description: "Probes namespaces (including user namespaces), seccomp and libseccomp, cgroup\n" +
			"version and controllers, Landlock, idmapped mounts and whether agentexec runs as\n" +
			"root. Exits 0 when the sandbox can run, 1 when a required item is MISSING\n" +
			"(commands would be refused). \"degraded\" items are not required: the sandbox\n" +
			"runs without them, as the line says.",
		Flags: []cli.Flag{
			// For tests: read a fake /proc or cgroup tree to force a failure.
			&cli.StringFlag{Name: "proc-root", Hidden: true},
			&cli.StringFlag{Name: "cgroup-root", Hidden: true},
		},
		Action: func(_ context.Context, c *cli.Command) error {
			if c.Args().Len() > 0 {
				return &usageError{msg: "doctor: takes no arguments"}
			}
			r := sandbox.Doctor(sandbox.DoctorOptions{ProcRoot: c.String("proc-root"), CgroupRoot: c.String("cgroup-root")})
			if err := r.WriteText(c.Root().Writer); err != nil {
				return err
			}
			if !r.Ready() {
				return errNotReady
			}
			return nil
		},
	}
}
