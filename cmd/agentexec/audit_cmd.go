package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/agentexec/agentexec/audit"
	"github.com/urfave/cli/v3"
)

// auditCommand is `agentexec audit`: read, verify, export and prove the
// signed audit log. The log itself is written by every command agentexec runs.
func auditCommand() *cli.Command {
	return &cli.Command{
		Name:  "audit",
		Usage: "read, verify, export and prove the signed audit log",
		Description: "Every command agentexec runs is recorded in a signed, append-only log under\n" +
			"$XDG_STATE_HOME/agentexec (see docs/audit.md). These subcommands read it.",
		Commands: []*cli.Command{
			auditVerifyCommand(), auditShowCommand(), auditTailCommand(), auditExportCommand(),
			auditProofCommand(), auditVerifyProofCommand(), auditRotateCommand(),
		},
	}
}

func dirFlag() cli.Flag {
	return &cli.StringFlag{Name: "dir", Usage: "state directory holding the log (default $XDG_STATE_HOME/agentexec)"}
}

func auditOptions(c *cli.Command) audit.Options {
	return audit.Options{Dir: c.String("dir"), TrustedKey: c.String("key"), Witness: c.String("witness")}
}

func auditVerifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "check every signature, the chain, the Merkle tree, the checkpoint and the witness",
		UsageText: "agentexec audit verify [--dir DIR] [--key SHA256:...] [--witness FILE] [--json]",
		Flags: []cli.Flag{dirFlag(),
			&cli.StringFlag{Name: "key", Usage: "fingerprint of the key that must have signed the first record"},
			&cli.StringFlag{Name: "witness", Usage: "file holding the newest checkpoint seen (default DIR/witness)"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			rep, err := audit.Verify(auditOptions(c))
			if err != nil {
				return fmt.Errorf("audit verify: %w", err)
			}
			w := c.Root().Writer
			if c.Bool("json") {
				return json.NewEncoder(w).Encode(rep)
			}
			fmt.Fprintf(w, "ok: %d records, origin %s, root %s, keys %s", rep.Size, rep.Origin, rep.Root, strings.Join(rep.Keys, ", "))
			if rep.Pending > 0 || rep.TornBytes > 0 {
				fmt.Fprintf(w, " (interrupted append: %d pending records, %d torn bytes; the next append repairs it)", rep.Pending, rep.TornBytes)
			}
			fmt.Fprintln(w)
			return nil
		},
	}
}

// filter selects records for show and export.
type filter struct {
	since      time.Time
	agent      string
	session    string
	verdict    string
	credential string
}

func newFilter(c *cli.Command) (filter, error) {
	f := filter{agent: c.String("agent"), session: c.String("session"), verdict: c.String("verdict"), credential: c.String("credential")}
	if s := c.String("since"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			f.since = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, s); err == nil {
			f.since = t
		} else if t, err := time.ParseInLocation(time.DateOnly, s, time.Local); err == nil {
			f.since = t
		} else {
			return f, &usageError{msg: fmt.Sprintf("--since %q: want a duration (2h), a date (2026-01-31) or an RFC 3339 time", s)}
		}
	}
	return f, nil
}

func (f filter) match(r *audit.Record) bool {
	when := r.Time.Start
	if !r.Time.End.IsZero() {
		when = r.Time.End
	}
	if !f.since.IsZero() && when.Before(f.since) {
		return false
	}
	if f.agent != "" && r.Agent.Name != f.agent {
		return false
	}
	if f.session != "" && r.Agent.Session != f.session {
		return false
	}
	if f.verdict != "" && r.Decision.Verdict != f.verdict && !(f.verdict == "deny" && r.Kind == audit.KindDenied) {
		return false
	}
	if f.credential != "" {
		found := false
		for _, cu := range r.Credentials {
			found = found || cu.Name == f.credential
		}
		if !found {
			return false
		}
	}
	return true
}

func filterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "since", Usage: "only records from this long ago (2h) or since this date or time"},
		&cli.StringFlag{Name: "agent", Usage: "only records of this agent"},
		&cli.StringFlag{Name: "session", Usage: "only records of this agent session"},
		&cli.StringFlag{Name: "verdict", Usage: "only records with this policy verdict (allow, deny, ask)"},
		&cli.StringFlag{Name: "credential", Usage: "only records that used this credential"},
	}
}

// row is one command: its start (or denial) and, once it ended, its end.
type row struct {
	start *audit.Record
	end   *audit.Record
}

func auditShowCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "list recent commands, one line each",
		UsageText: "agentexec audit show [--since 2h] [--agent NAME] [--session ID] [--verdict V] [--credential NAME] [-n 20] [--json]",
		Flags: append([]cli.Flag{dirFlag(),
			&cli.IntFlag{Name: "n", Value: 20, Usage: "show at most this many commands (the newest)"},
			&cli.BoolFlag{Name: "json", Usage: "print matching records as JSON lines"},
		}, filterFlags()...),
		Action: func(ctx context.Context, c *cli.Command) error {
			f, err := newFilter(c)
			if err != nil {
				return err
			}
			var rows []*row
			byID := map[string]*row{}
			var records []*audit.Record
			_, err = audit.Scan(ctx, auditOptions(c), 0, func(it audit.Item) error {
				r := it.Record
				if r.Kind == audit.KindEnd {
					if rw := byID[r.StartID]; rw != nil {
						rw.end = r
					}
				}
				if !f.match(r) {
					return nil
				}
				records = append(records, r)
				if r.Kind != audit.KindEnd {
					rw := &row{start: r}
					byID[r.ID] = rw
					rows = append(rows, rw)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("audit show: %w", err)
			}
			n := int(c.Int("n"))
			w := c.Root().Writer
			if c.Bool("json") {
				return printJSONLines(w, lastN(records, n))
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tSEQ\tAGENT\tVERDICT\tEXIT\tDURATION\tCOMMAND\tINTENT")
			for _, rw := range lastN(rows, n) {
				fmt.Fprintln(tw, rw.line())
			}
			return tw.Flush()
		},
	}
}

func lastN[T any](list []T, n int) []T {
	if n > 0 && len(list) > n {
		return list[len(list)-n:]
	}
	return list
}

func (rw *row) line() string {
	r := rw.start
	exit, dur := "-", "-"
	switch {
	case r.Kind == audit.KindDenied:
		exit = "denied"
	case r.Kind == audit.KindKeyRotate:
		exit = "key"
	case rw.end != nil && rw.end.Result != nil:
		exit = strconv.Itoa(rw.end.Result.ExitCode)
		if rw.end.Result.Signal != "" {
			exit = rw.end.Result.Signal
		}
		dur = rw.end.Result.Duration.Round(time.Millisecond).String()
	case rw.end == nil:
		exit = "?"
	}
	cmd := audit.CommandLine(r)
	if r.Kind == audit.KindKeyRotate && r.Key != nil {
		cmd = "key rotated to " + r.Key.New
	}
	agent := r.Agent.Name
	if r.Agent.Session != "" {
		agent += "/" + r.Agent.Session
	}
	verdict := r.Decision.Verdict
	if r.Kind == audit.KindDenied && verdict == "" {
		verdict = "deny"
	}
	return strings.Join([]string{r.Time.Start.Local().Format(time.DateTime), strconv.FormatUint(r.Seq, 10),
		orDash(agent), orDash(verdict), exit, dur, shorten(cmd, 60), shorten(r.Intent.Text, 40)}, "\t")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shorten keeps tables to one line: no control characters, capped width.
func shorten(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if rs := []rune(s); len(rs) > n {
		return string(rs[:n-1]) + "…"
	}
	return s
}

func printJSONLines(w io.Writer, records []*audit.Record) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, r := range records {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

func auditTailCommand() *cli.Command {
	return &cli.Command{
		Name:      "tail",
		Usage:     "print the last records, and with -f every new one as it is appended",
		UsageText: "agentexec audit tail [--dir DIR] [-n 10] [-f] [--json]",
		Flags: []cli.Flag{dirFlag(),
			&cli.IntFlag{Name: "n", Value: 10, Usage: "start this many records from the end"},
			&cli.BoolFlag{Name: "f", Aliases: []string{"follow"}, Usage: "keep printing new records until interrupted"},
			&cli.BoolFlag{Name: "json", Usage: "print records as JSON lines"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			opts := auditOptions(c)
			size, err := audit.Size(opts)
			if err != nil {
				return fmt.Errorf("audit tail: %w", err)
			}
			from := uint64(0)
			if n := uint64(max(c.Int("n"), 0)); size > n {
				from = size - n
			}
			w := c.Root().Writer
			print := func(it audit.Item) error {
				if c.Bool("json") {
					return printJSONLines(w, []*audit.Record{it.Record})
				}
				_, err := fmt.Fprintln(w, tailLine(it.Record))
				return err
			}
			if !c.Bool("f") {
				_, err := audit.Scan(ctx, opts, from, print)
				return err
			}
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			return audit.Follow(ctx, opts, from, 500*time.Millisecond, print)
		},
	}
}

func tailLine(r *audit.Record) string {
	when := r.Time.Start
	if !r.Time.End.IsZero() {
		when = r.Time.End
	}
	detail := ""
	switch r.Kind {
	case audit.KindEnd:
		if r.Result != nil {
			detail = "exit=" + strconv.Itoa(r.Result.ExitCode)
			if r.Result.Signal != "" {
				detail = "signal=" + r.Result.Signal
			}
		}
	case audit.KindDenied, audit.KindStart:
		detail = "verdict=" + orDash(r.Decision.Verdict)
		if len(r.Decision.Rules) > 0 {
			detail += " rule=" + strings.Join(r.Decision.Rules, ",")
		}
	case audit.KindKeyRotate:
		if r.Key != nil {
			detail = "new=" + r.Key.New
		}
	}
	return fmt.Sprintf("%s %6d %-14s %-16s %s %s", when.Local().Format(time.DateTime), r.Seq, r.Kind, orDash(r.Agent.Name), detail, shorten(audit.CommandLine(r), 80))
}

func auditExportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write records as JSON lines or as OCSF Process Activity events",
		UsageText: "agentexec audit export [--dir DIR] [--format jsonl|ocsf] [filters]",
		Flags: append([]cli.Flag{dirFlag(),
			&cli.StringFlag{Name: "format", Value: "jsonl", Usage: "jsonl (the records) or ocsf (class 1007 events)"},
		}, filterFlags()...),
		Action: func(ctx context.Context, c *cli.Command) error {
			format := c.String("format")
			if format != "jsonl" && format != "ocsf" {
				return &usageError{msg: fmt.Sprintf("audit export: --format %q: want jsonl or ocsf", format)}
			}
			f, err := newFilter(c)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(c.Root().Writer)
			enc.SetEscapeHTML(false)
			_, err = audit.Scan(ctx, auditOptions(c), 0, func(it audit.Item) error {
				if !f.match(it.Record) {
					return nil
				}
				if format == "ocsf" {
					return enc.Encode(audit.OCSF(it))
				}
				return enc.Encode(it.Record)
			})
			if err != nil {
				return fmt.Errorf("audit export: %w", err)
			}
			return nil
		},
	}
}

func auditProofCommand() *cli.Command {
	return &cli.Command{
		Name:      "proof",
		Usage:     "print a self-contained inclusion proof of one record",
		UsageText: "agentexec audit proof [--dir DIR] SEQ > proof.json\nagentexec audit verify-proof [--key SHA256:...] proof.json",
		Flags:     []cli.Flag{dirFlag()},
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.Args().Len() != 1 {
				return &usageError{msg: "audit proof: want exactly one SEQ"}
			}
			seq, err := strconv.ParseUint(c.Args().First(), 10, 64)
			if err != nil {
				return &usageError{msg: fmt.Sprintf("audit proof: %q is not a record number", c.Args().First())}
			}
			p, err := audit.Prove(auditOptions(c), seq)
			if err != nil {
				return fmt.Errorf("audit proof: %w", err)
			}
			enc := json.NewEncoder(c.Root().Writer)
			enc.SetIndent("", "  ")
			return enc.Encode(p)
		},
	}
}

func auditVerifyProofCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify-proof",
		Usage:     "check a proof from `audit proof` without the log",
		UsageText: "agentexec audit verify-proof [--key SHA256:...] FILE|-",
		Flags:     []cli.Flag{&cli.StringFlag{Name: "key", Usage: "fingerprint the checkpoint must be signed by"}},
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.Args().Len() != 1 {
				return &usageError{msg: "audit verify-proof: want exactly one FILE (or - for stdin)"}
			}
			var data []byte
			var err error
			if name := c.Args().First(); name == "-" {
				data, err = io.ReadAll(os.Stdin)
			} else {
				data, err = os.ReadFile(name)
			}
			if err != nil {
				return fmt.Errorf("audit verify-proof: %w", err)
			}
			var p audit.Proof
			if err := json.Unmarshal(data, &p); err != nil {
				return fmt.Errorf("audit verify-proof: %w", errors.Join(audit.ErrMalformed, err))
			}
			r, err := audit.VerifyProof(&p, c.String("key"))
			if err != nil {
				return fmt.Errorf("audit verify-proof: %w", err)
			}
			fmt.Fprintf(c.Root().Writer, "ok: record %d (%s %s) is in %s\n", r.Seq, r.Kind, r.ID, r.LogOrigin)
			return nil
		},
	}
}

func auditRotateCommand() *cli.Command {
	return &cli.Command{
		Name:      "rotate-key",
		Usage:     "replace the log key, recording a key.rotate record signed by the old and new key",
		UsageText: "agentexec audit rotate-key [--dir DIR] [--reason TEXT]",
		Flags:     []cli.Flag{dirFlag(), &cli.StringFlag{Name: "reason", Usage: "why the key is rotated"}},
		Action: func(ctx context.Context, c *cli.Command) error {
			l, err := audit.Open(audit.Options{Dir: c.String("dir")})
			if err != nil {
				return fmt.Errorf("audit rotate-key: %w", err)
			}
			defer l.Close()
			old := l.Fingerprint()
			e, err := l.RotateKey(ctx, c.String("reason"))
			if err != nil {
				return fmt.Errorf("audit rotate-key: %w", err)
			}
			fmt.Fprintf(c.Root().Writer, "rotated: %s -> %s (record %d)\n", old, l.Fingerprint(), e.Seq)
			return nil
		},
	}
}
