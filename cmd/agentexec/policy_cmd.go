package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/agentexec/agentexec/exec"
	"github.com/agentexec/agentexec/policy"
	"github.com/urfave/cli/v3"
)

// policyCommand is the `agentexec policy` subcommand.
func policyCommand() *cli.Command {
	policyFlag := &cli.StringFlag{Name: "policy", Usage: "the policy file (default: the search order of docs/policy.md)", Sources: cli.EnvVars(envPolicy)}
	workspaceFlag := &cli.StringFlag{Name: "workspace", Usage: "the workspace directory (default: the current directory)", Sources: cli.EnvVars(envWorkspace)}
	return &cli.Command{
		Name:  "policy",
		Usage: "check, test, lint or show the policy",
		Description: "The policy decides, for every simple command in a line, allow, ask or deny. " +
			"See docs/policy.md for the file format.",
		Commands: []*cli.Command{
			{
				Name:      "check",
				Usage:     "decide a command line without running it",
				ArgsUsage: "-- 'LINE' | -- PROGRAM [ARGS...]",
				Description: "With one argument, it is a shell line; with more, a program and its arguments (no shell).\n" +
					"Exit status: 0 allow, 1 ask, 126 deny, 125 the policy does not load.\n\n" +
					"Examples:\n  agentexec policy check -- 'go test ./... 2>&1 | tail -50'\n  agentexec policy check --json -- git push --force",
				Flags:  []cli.Flag{policyFlag, workspaceFlag, &cli.BoolFlag{Name: "json", Usage: "print the decision as JSON"}},
				Action: policyCheck,
			},
			{
				Name:        "test",
				Usage:       "run the policy's inline tests and report every failure",
				ArgsUsage:   "[FILE]",
				Description: "Exit status: 0 all pass, 1 some fail, 125 the policy does not load.",
				Flags:       []cli.Flag{workspaceFlag},
				Action:      policyTest,
			},
			{
				Name:        "lint",
				Usage:       "validate the policy and warn about rules that never match or are shadowed",
				ArgsUsage:   "[FILE]",
				Description: "Exit status: 0 (1 with --strict when there are warnings), 125 the policy does not load.",
				Flags:       []cli.Flag{workspaceFlag, &cli.BoolFlag{Name: "strict", Usage: "exit 1 when there are warnings"}},
				Action:      policyLint,
			},
			{
				Name:      "show",
				Usage:     "print the effective policy",
				ArgsUsage: " ",
				Flags: []cli.Flag{policyFlag, workspaceFlag,
					&cli.StringFlag{Name: "profile", Usage: "print a built-in profile: " + strings.Join(policy.Profiles, ", ")}},
				Action: policyShow,
			},
		},
	}
}

// loadOptions fills policy.LoadOptions from flags and the environment.
func loadOptions(c *cli.Command, file string) (policy.LoadOptions, string, error) {
	ws := c.String("workspace")
	if ws == "" {
		wd, err := os.Getwd()
		if err != nil {
			return policy.LoadOptions{}, "", cli.Exit(err.Error(), exec.ExitCannotRun)
		}
		ws = wd
	}
	ws, err := filepath.Abs(ws)
	if err != nil {
		return policy.LoadOptions{}, "", cli.Exit(err.Error(), exec.ExitCannotRun)
	}
	cfg := os.Getenv("XDG_CONFIG_HOME")
	if cfg == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cfg = filepath.Join(home, ".config")
		}
	}
	return policy.LoadOptions{File: file, ConfigHome: cfg, Workspace: ws}, ws, nil
}

func loadPolicy(opts policy.LoadOptions) (*policy.Policy, error) {
	p, err := policy.Load(opts)
	if err != nil {
		// A policy that does not load is a configuration failure: 125.
		return nil, cli.Exit(err.Error(), exec.ExitCannotRun)
	}
	return p, nil
}

// fileArgPolicy loads the policy `policy test` and `policy lint` work on:
// the FILE argument, or the policy in effect.
func fileArgPolicy(c *cli.Command, skipTests bool) (*policy.Policy, error) {
	file, err := fileArg(c)
	if err != nil {
		return nil, err
	}
	opts, _, err := loadOptions(c, file)
	if err != nil {
		return nil, err
	}
	opts.SkipTests = skipTests
	return loadPolicy(opts)
}

func fileArg(c *cli.Command) (string, error) {
	switch c.Args().Len() {
	case 0:
		return "", nil
	case 1:
		return c.Args().First(), nil
	}
	return "", &usageError{msg: c.Name + ": takes at most one FILE"}
}

func policyCheck(_ context.Context, c *cli.Command) error {
	args := c.Args().Slice()
	if len(args) == 0 {
		return &usageError{msg: "policy check: give the command line after --"}
	}
	opts, ws, err := loadOptions(c, c.String("policy"))
	if err != nil {
		return err
	}
	p, err := loadPolicy(opts)
	if err != nil {
		return err
	}
	in := policy.Input{Workspace: ws}
	if len(args) == 1 {
		in.Line = args[0]
	} else {
		in.Argv = args
	}
	in.Cwd, _ = os.Getwd()
	in.Home, _ = os.UserHomeDir()
	d := p.Decide(in)
	w := c.Root().Writer
	if c.Bool("json") {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(d); err != nil {
			return err
		}
	} else {
		printDecision(w, d)
	}
	switch d.Verdict {
	case policy.Deny:
		return cli.Exit("", exec.ExitDenied)
	case policy.Ask:
		return cli.Exit("", 1)
	}
	return nil
}

func printDecision(w io.Writer, d *policy.Decision) {
	fmt.Fprintf(w, "verdict: %s\n", d.Verdict)
	for i, cmd := range d.Commands {
		via := ""
		if len(cmd.Via) > 0 {
			via = "  (via " + strings.Join(cmd.Via, ", ") + ")"
		}
		text := strings.Join(cmd.Argv, " ")
		if len(cmd.Argv) == 0 {
			text = cmd.Text
		}
		fmt.Fprintf(w, "command %d: %s%s\n", i+1, text, via)
		for _, m := range d.Matches {
			if m.Command == i {
				printMatch(w, m)
			}
		}
	}
	for _, m := range d.Matches {
		if m.Command < 0 {
			fmt.Fprintf(w, "line: %s\n", m.Text)
			printMatch(w, m)
		}
	}
	printGrants(w, &d.Grants)
	fmt.Fprintf(w, "policy: %s %s\n", d.Policy, d.Digest)
}

func printMatch(w io.Writer, m policy.Match) {
	fmt.Fprintf(w, "  %s by rule %q: %s\n", m.Verdict, m.Rule, m.Reason)
	if m.Verdict != policy.Allow {
		for _, h := range m.Hints {
			fmt.Fprintf(w, "  hint: %s\n", h)
		}
	}
}

func printGrants(w io.Writer, g *policy.Grants) {
	var parts []string
	for _, p := range g.Write {
		parts = append(parts, "write "+p)
	}
	for _, n := range g.Network {
		parts = append(parts, "network "+n.String())
	}
	for _, c := range g.Credentials {
		parts = append(parts, "credential "+c)
	}
	if g.Limits.MemoryBytes > 0 {
		parts = append(parts, fmt.Sprintf("memory %d bytes", g.Limits.MemoryBytes))
	}
	if g.Limits.Pids > 0 {
		parts = append(parts, fmt.Sprintf("pids %d", g.Limits.Pids))
	}
	if g.Limits.CPUs > 0 {
		parts = append(parts, fmt.Sprintf("cpus %g", g.Limits.CPUs))
	}
	if g.Timeout > 0 {
		parts = append(parts, "timeout "+g.Timeout.String())
	}
	if len(parts) == 0 {
		parts = []string{"none"}
	}
	fmt.Fprintf(w, "grants: %s\n", strings.Join(parts, ", "))
}

func policyTest(_ context.Context, c *cli.Command) error {
	// The tests are run below, where each failure is reported.
	p, err := fileArgPolicy(c, true)
	if err != nil {
		return err
	}
	passed, failures := p.RunTests()
	w := c.Root().Writer
	for _, f := range failures {
		fmt.Fprintf(w, "%s:%d: %s\n", f.File, f.Line, f.String())
	}
	if len(failures) > 0 {
		fmt.Fprintf(w, "FAIL %s: %d passed, %d failed\n", p.Source(), passed, len(failures))
		return cli.Exit("", 1)
	}
	fmt.Fprintf(w, "ok %s: %d passed\n", p.Source(), passed)
	return nil
}

func policyLint(_ context.Context, c *cli.Command) error {
	p, err := fileArgPolicy(c, false)
	if err != nil {
		return err
	}
	warnings := p.Lint()
	w := c.Root().Writer
	for _, x := range warnings {
		fmt.Fprintln(w, x.String())
	}
	fmt.Fprintf(w, "%s: %d rules, %d warnings\n", p.Source(), len(p.Rules()), len(warnings))
	if len(warnings) > 0 && c.Bool("strict") {
		return cli.Exit("", 1)
	}
	return nil
}

func policyShow(_ context.Context, c *cli.Command) error {
	if c.Args().Len() > 0 {
		return &usageError{msg: "policy show: takes no arguments (use --policy FILE or --profile NAME)"}
	}
	var p *policy.Policy
	var err error
	if name := c.String("profile"); name != "" {
		if p, err = policy.Builtin(name); err != nil {
			return cli.Exit(err.Error(), exec.ExitCannotRun)
		}
	} else {
		opts, _, err := loadOptions(c, c.String("policy"))
		if err != nil {
			return err
		}
		if p, err = loadPolicy(opts); err != nil {
			return err
		}
	}
	w := c.Root().Writer
	fmt.Fprintf(w, "# effective policy: %s\n# digest: %s\n", p.Source(), p.Digest())
	_, err = w.Write(p.Render())
	return err
}
