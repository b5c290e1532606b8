package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agentexec/agentexec/cred"
	"github.com/agentexec/agentexec/exec"
	"github.com/agentexec/agentexec/policy"
	"github.com/urfave/cli/v3"
)

func init() {
	// Inside the sandbox git runs this binary as agentexec-askpass to ask
	// for a git-credential password; that path must not reach flag
	// parsing or anything else.
	cred.MaybeAskpass()
}

const credUsageText = `agentexec cred list [--policy FILE] [--workspace DIR] [--json]
agentexec cred test [--policy FILE] [--workspace DIR] NAME`

const credDescription = `list shows the credentials the policy defines: name, provider, where the
value comes from, how it is delivered, and its ceilings. It never prints a
value.

test issues NAME from its provider exactly as a granted command would get
it, revokes it at once, and prints only the non-secret id, the expiry and
the fingerprint. It exits 125 if the credential cannot be issued or
revoked.

Examples:
  agentexec cred list
  agentexec cred test github`

// credCommand is the `agentexec cred` subcommand.
func credCommand() *cli.Command {
	flags := func() []cli.Flag {
		return []cli.Flag{
			&cli.StringFlag{Name: "policy", Usage: "the policy `FILE`", Sources: cli.EnvVars(envPolicy)},
			&cli.StringFlag{Name: "workspace", Usage: "the workspace `DIR` whose policy files narrow it", Sources: cli.EnvVars(envWorkspace)},
		}
	}
	return &cli.Command{
		Name:        "cred",
		Usage:       "list the policy's credentials, or issue and revoke one to test it",
		UsageText:   credUsageText,
		Description: credDescription,
		Commands: []*cli.Command{
			{
				Name:      "list",
				Usage:     "list credential definitions (never values)",
				UsageText: "agentexec cred list [--policy FILE] [--workspace DIR] [--json]",
				Flags:     append(flags(), &cli.BoolFlag{Name: "json", Usage: "print JSON lines"}),
				Action:    credList,
			},
			{
				Name:      "test",
				Usage:     "issue NAME and revoke it at once, printing only its id and expiry",
				UsageText: "agentexec cred test [--policy FILE] [--workspace DIR] NAME",
				Flags:     flags(),
				Action:    credTest,
			},
		},
		Action: func(_ context.Context, c *cli.Command) error {
			if c.Args().Len() > 0 {
				return usagef("cred: unknown subcommand %q (want list or test)", c.Args().First())
			}
			return usagef("cred: a subcommand is required (list or test)")
		},
	}
}

// credPolicy loads the policy the way a command would find it.
func credPolicy(c *cli.Command) (*policy.Policy, error) {
	ws := c.String("workspace")
	if ws == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, cli.Exit(err.Error(), exec.ExitCannotRun)
		}
		ws = wd
	}
	ws, err := filepath.Abs(ws)
	if err != nil {
		return nil, cli.Exit(err.Error(), exec.ExitCannotRun)
	}
	cfg := os.Getenv("XDG_CONFIG_HOME")
	if cfg == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cfg = filepath.Join(home, ".config")
		}
	}
	p, err := policy.Load(policy.LoadOptions{File: c.String("policy"), ConfigHome: cfg, Workspace: ws})
	if err != nil {
		// A policy that does not load is a configuration failure.
		return nil, cli.Exit(err.Error(), exec.ExitCannotRun)
	}
	return p, nil
}

// credSpec maps a policy definition to cred's own.
func credSpec(d policy.Credential) cred.Spec {
	return cred.Spec{
		Name: d.Name, Provider: d.Provider, Command: d.Command,
		Host: d.Host, Protocol: d.Protocol, Path: d.Path, Helper: d.Helper,
		Var: d.Var, File: d.File, Timeout: d.Timeout,
		Env: d.Env, FileEnv: d.FileEnv, TTL: d.TTL, Scope: d.Scope, ShortLived: d.ShortLived,
	}
}

// credListEntry is one line of `cred list --json`.
type credListEntry struct {
	Name       string         `json:"name"`
	Provider   string         `json:"provider"`
	Source     string         `json:"source"`
	Delivery   string         `json:"delivery"`
	TTL        string         `json:"ttl,omitempty"`
	ShortLived bool           `json:"short_lived"`
	Scope      map[string]any `json:"scope,omitempty"`
}

func credList(_ context.Context, c *cli.Command) error {
	if c.Args().Len() > 0 {
		return usagef("cred list: takes no arguments")
	}
	p, err := credPolicy(c)
	if err != nil {
		return err
	}
	defs := p.Credentials()
	sort.Slice(defs, func(i, j int) bool { return defs[i].Name < defs[j].Name })
	out := c.Root().Writer
	if c.Bool("json") {
		enc := json.NewEncoder(out)
		for _, d := range defs {
			if err := enc.Encode(listEntry(d)); err != nil {
				return err
			}
		}
		return nil
	}
	if len(defs) == 0 {
		fmt.Fprintf(c.Root().ErrWriter, "agentexec: the policy (%s) defines no credentials\n", p.Source())
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPROVIDER\tSOURCE\tDELIVERED AS\tTTL\tSHORT-LIVED\tSCOPE")
	for _, d := range defs {
		e := listEntry(d)
		scope := "-"
		if e.Scope != nil {
			b, _ := json.Marshal(e.Scope)
			scope = string(b)
		}
		short := "no"
		if e.ShortLived {
			short = "yes"
		}
		ttl := e.TTL
		if ttl == "" {
			ttl = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Provider, e.Source, e.Delivery, ttl, short, scope)
	}
	return tw.Flush()
}

func listEntry(d policy.Credential) credListEntry {
	e := credListEntry{Name: d.Name, Provider: d.Provider, ShortLived: d.ShortLived, Scope: d.Scope}
	if d.TTL > 0 {
		e.TTL = credDuration(d.TTL)
	}
	switch d.Provider {
	case cred.ProviderExec, cred.ProviderAWS:
		e.Source = strings.Join(d.Command, " ")
	case cred.ProviderGit:
		proto := d.Protocol
		if proto == "" {
			proto = "https"
		}
		e.Source = proto + "://" + d.Host + d.Path
		if d.Helper != "" {
			e.Source += " via " + d.Helper
		}
	case cred.ProviderEnv:
		e.Source = "$" + d.Var
	case cred.ProviderFile:
		e.Source = d.File
	}
	var parts []string
	if d.Provider == cred.ProviderGit {
		parts = append(parts, "GIT_ASKPASS")
	}
	switch {
	case d.FileEnv != "":
		parts = append(parts, "file $"+d.FileEnv)
	case len(d.Env) > 0:
		parts = append(parts, strings.Join(d.Env, ","))
	case d.Provider == cred.ProviderAWS:
		parts = append(parts, "AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY,AWS_SESSION_TOKEN")
	case d.Provider == cred.ProviderEnv:
		parts = append(parts, d.Var)
	}
	e.Delivery = strings.Join(parts, " + ")
	return e
}

func credTest(ctx context.Context, c *cli.Command) error {
	if c.Args().Len() != 1 {
		return usagef("cred test: exactly one credential NAME is required")
	}
	name := c.Args().First()
	p, err := credPolicy(c)
	if err != nil {
		return err
	}
	var def *policy.Credential
	for _, d := range p.Credentials() {
		if d.Name == name {
			def = &d
			break
		}
	}
	if def == nil {
		return cli.Exit(fmt.Sprintf("cred test: the policy (%s) defines no credential %q", p.Source(), name), exec.ExitCannotRun)
	}
	purpose := cred.Purpose{Agent: "agentexec cred test"}
	if u, err := user.Current(); err == nil {
		purpose.Principal = u.Username
	}
	cr, err := cred.Issue(ctx, credSpec(*def), purpose)
	if err != nil {
		return cli.Exit(err.Error(), exec.ExitCannotRun)
	}
	defer cr.Destroy()
	out := c.Root().Writer
	expiry := "none"
	if !cr.ExpiresAt.IsZero() {
		expiry = fmt.Sprintf("%s (in %s)", cr.ExpiresAt.UTC().Format(time.RFC3339), time.Until(cr.ExpiresAt).Round(time.Second))
	}
	fmt.Fprintf(out, "%s: issued by %s: id %s, expires %s, fingerprint %s\n", cr.Name, cr.Provider, credDash(cr.ID), expiry, cr.Fingerprint)
	r := cr.Revoke(ctx)
	if r.Status == cred.RevokeFailed {
		return cli.Exit(fmt.Sprintf("cred test: credential %q was issued but revoking it failed: %s", name, r.Error), exec.ExitCannotRun)
	}
	fmt.Fprintf(out, "%s: revocation: %s\n", cr.Name, r.Status)
	return nil
}

// credDuration prints 15m rather than 15m0s.
func credDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// credDash prints "-" for an empty field.
func credDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
