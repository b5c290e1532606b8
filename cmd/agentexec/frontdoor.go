package main

import (
	"fmt"
	"slices"
	"strings"
)

// The shell-compatible front door is parsed here, before the CLI library
// sees anything: bash's argv grammar (combined short flags, +o, a command
// string that is the first operand after -c) is not one a flag library
// knows.

// mode is what an invocation runs.
type mode int

const (
	modeCommand     mode = iota // -c STRING [NAME [ARGS...]]
	modeStdin                   // -s, or no operand and stdin is not a terminal
	modeArgv                    // -- PROGRAM [ARGS...]
	modeOperand                 // FILE [ARGS...] or 'ONE STRING'
	modeInteractive             // no operand and stdin is a terminal
	modeHelp                    // --help
	modeVersion                 // --version
)

// invocation is the parsed shell-compatible command line.
type invocation struct {
	mode mode
	// shellOpts are bash's options as argv tokens, long ones first.
	shellOpts []string
	// operands are the arguments after the options: for modeCommand the
	// string, NAME and ARGS; for modeArgv the program and its arguments;
	// for modeStdin the positional parameters; for modeOperand the file or
	// the one string, and the script's arguments.
	operands []string
	// interactive is -i.
	interactive bool
	ctx         contextFlags
}

// contextFlags are the context options; a nil pointer means "not given".
type contextFlags struct {
	intent, agent, session, policy, workspace *string
}

// usageError is a command line agentexec cannot accept: one line, exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{msg: fmt.Sprintf(format, a...)} }

// setLetters are the single-letter options of bash's `set` builtin, valid
// with - and + on bash's command line.
const setLetters = "abefhkmnptuvxBCEHPT"

// setOptions are the names `set -o` accepts.
var setOptions = []string{
	"allexport", "braceexpand", "emacs", "errexit", "errtrace", "functrace",
	"hashall", "histexpand", "history", "ignoreeof", "interactive-comments",
	"keyword", "monitor", "noclobber", "noexec", "noglob", "nolog", "notify",
	"nounset", "onecmd", "physical", "pipefail", "posix", "privileged",
	"verbose", "vi", "xtrace",
}

// parseFrontDoor parses the shell-compatible command line (without
// argv[0]). stdinTTY says whether stdin is a terminal, which decides
// between a script on stdin and an interactive session.
func parseFrontDoor(args []string, stdinTTY bool) (*invocation, error) {
	inv := &invocation{}
	var long, short []string
	var cflag, sflag, dashdash bool
	i := 0
	next := func(opt string) (string, error) {
		if i+1 >= len(args) {
			return "", usagef("%s: option requires an argument", opt)
		}
		i++
		return args[i], nil
	}
options:
	for ; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--" || a == "-":
			dashdash = true
			i++
			break options
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a, "=")
			var dst **string
			switch name {
			case "--login":
				short = append(short, "-l")
			case "--norc", "--noprofile", "--posix":
				long = append(long, name)
			case "--help":
				inv.mode = modeHelp
				return inv, nil
			case "--version":
				inv.mode = modeVersion
				return inv, nil
			default:
				if dst = inv.ctx.option(name); dst == nil {
					return nil, usagef("%s: unknown option (see agentexec --help)", name)
				}
			}
			if dst == nil {
				if hasVal {
					return nil, usagef("%s: option takes no value", name)
				}
				continue
			}
			if !hasVal {
				v, err := next(name)
				if err != nil {
					return nil, err
				}
				val = v
			}
			*dst = &val
		case len(a) > 1 && (a[0] == '-' || a[0] == '+'):
			on := a[0] == '-'
			for _, c := range a[1:] {
				opt := string(a[0]) + string(c)
				switch {
				case c == 'c' && on:
					cflag = true
				case c == 's' && on:
					sflag = true
				case c == 'i' && on:
					inv.interactive = true
					short = append(short, "-i")
				case c == 'l' && on:
					short = append(short, "-l")
				case c == 'o':
					v, err := next(opt)
					if err != nil {
						return nil, err
					}
					if !slices.Contains(setOptions, v) {
						return nil, usagef("%s: %s: invalid option name", opt, v)
					}
					short = append(short, opt, v)
				case c == 'O':
					v, err := next(opt)
					if err != nil {
						return nil, err
					}
					short = append(short, opt, v)
				case strings.ContainsRune(setLetters, c):
					short = append(short, opt)
				default:
					return nil, usagef("%s: invalid option (see agentexec --help)", opt)
				}
			}
		default:
			break options
		}
	}
	inv.shellOpts = append(long, short...)
	inv.operands = args[i:]

	switch {
	case cflag && sflag:
		return nil, usagef("-c and -s cannot be used together")
	case cflag:
		if len(inv.operands) == 0 {
			return nil, usagef("-c: option requires an argument")
		}
		inv.mode = modeCommand
		// Agents append context to a command they were given
		// (`agentexec -c 'echo hi' --intent 'say hi'`), so agentexec's own
		// context options right after the command string are taken as
		// options, not as $0 and $1. A $0 that looks like one of them
		// (`--intent`) needs the options before -c instead.
		rest, err := trailingContext(inv, inv.operands[1:])
		if err != nil {
			return nil, err
		}
		inv.operands = append(inv.operands[:1:1], rest...)
	case sflag:
		inv.mode = modeStdin
	case dashdash:
		if len(inv.operands) == 0 {
			return nil, usagef("--: no program given")
		}
		if len(inv.shellOpts) > 0 {
			return nil, usagef("%s: shell options need a shell line; the argv form runs no shell", inv.shellOpts[0])
		}
		inv.mode = modeArgv
	case len(inv.operands) > 0:
		inv.mode = modeOperand
	case stdinTTY:
		inv.mode = modeInteractive
	default:
		inv.mode = modeStdin
	}
	return inv, nil
}

// trailingContext takes agentexec's context options (--intent, --agent,
// --session, --policy, --workspace, as --opt VALUE or --opt=VALUE) from the
// front of args and returns the rest.
func trailingContext(inv *invocation, args []string) ([]string, error) {
	for len(args) > 0 {
		name, val, hasVal := strings.Cut(args[0], "=")
		dst := inv.ctx.option(name)
		if dst == nil {
			return args, nil
		}
		args = args[1:]
		if !hasVal {
			if len(args) == 0 {
				return nil, usagef("%s: option requires an argument", name)
			}
			val, args = args[0], args[1:]
		}
		*dst = &val
	}
	return args, nil
}

// option is where the context option name (--intent, ...) is stored, or
// nil when name is not one.
func (c *contextFlags) option(name string) **string {
	switch name {
	case "--intent":
		return &c.intent
	case "--agent":
		return &c.agent
	case "--session":
		return &c.session
	case "--policy":
		return &c.policy
	case "--workspace":
		return &c.workspace
	}
	return nil
}
