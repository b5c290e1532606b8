package main

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseFrontDoor(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		tty      bool
		wantMode mode
		wantOpts []string
		wantOps  []string
		wantErr  string
	}{
		{name: "bash -c", args: []string{"-c", "echo hi", "n", "a"}, wantMode: modeCommand, wantOps: []string{"echo hi", "n", "a"}},
		{name: "codex -lc", args: []string{"-lc", "ls"}, wantMode: modeCommand, wantOpts: []string{"-l"}, wantOps: []string{"ls"}},
		{name: "make -ec", args: []string{"-ec", "x"}, wantMode: modeCommand, wantOpts: []string{"-e"}, wantOps: []string{"x"}},
		{name: "-c before options", args: []string{"-c", "-e", "x"}, wantMode: modeCommand, wantOpts: []string{"-e"}, wantOps: []string{"x"}},
		{name: "long options first", args: []string{"-e", "--norc", "-x", "--noprofile", "-c", "x"}, wantMode: modeCommand, wantOpts: []string{"--norc", "--noprofile", "-e", "-x"}, wantOps: []string{"x"}},
		{name: "-o in a group takes the next argument", args: []string{"-euo", "pipefail", "-c", "x"}, wantMode: modeCommand, wantOpts: []string{"-e", "-u", "-o", "pipefail"}, wantOps: []string{"x"}},
		{name: "+o", args: []string{"+o", "errexit", "+x", "-c", "x"}, wantMode: modeCommand, wantOpts: []string{"+o", "errexit", "+x"}, wantOps: []string{"x"}},
		{name: "--login is -l", args: []string{"--login", "-c", "x"}, wantMode: modeCommand, wantOpts: []string{"-l"}, wantOps: []string{"x"}},
		{name: "argv form", args: []string{"--intent", "why", "--", "ls", "-l"}, wantMode: modeArgv, wantOps: []string{"ls", "-l"}},
		{name: "argv form keeps -- in args", args: []string{"--", "echo", "--", "-c"}, wantMode: modeArgv, wantOps: []string{"echo", "--", "-c"}},
		{name: "one string", args: []string{"git status && ls"}, wantMode: modeOperand, wantOps: []string{"git status && ls"}},
		{name: "script and args", args: []string{"build.sh", "a"}, wantMode: modeOperand, wantOps: []string{"build.sh", "a"}},
		{name: "-s with args", args: []string{"-s", "a", "b"}, wantMode: modeStdin, wantOps: []string{"a", "b"}},
		{name: "no operand, pipe", args: nil, wantMode: modeStdin, wantOps: []string{}},
		{name: "no operand, terminal", args: nil, tty: true, wantMode: modeInteractive, wantOps: []string{}},
		{name: "--help", args: []string{"--help"}, wantMode: modeHelp},
		{name: "--version", args: []string{"-e", "--version"}, wantMode: modeVersion},
		{name: "context with =", args: []string{"--session=s", "-c", "x"}, wantMode: modeCommand, wantOps: []string{"x"}},
		{name: "unknown short", args: []string{"-Z"}, wantErr: "-Z: invalid option (see agentexec --help)"},
		{name: "unknown long", args: []string{"--nope"}, wantErr: "--nope: unknown option (see agentexec --help)"},
		{name: "-c needs a string", args: []string{"-e", "-c"}, wantErr: "-c: option requires an argument"},
		{name: "bad -o name", args: []string{"-o", "nope"}, wantErr: "-o: nope: invalid option name"},
		{name: "-o at the end", args: []string{"-o"}, wantErr: "-o: option requires an argument"},
		{name: "shell options with argv", args: []string{"-x", "--", "ls"}, wantErr: "-x: shell options need a shell line; the argv form runs no shell"},
		{name: "empty argv", args: []string{"--"}, wantErr: "--: no program given"},
		{name: "value on a switch", args: []string{"--norc=1"}, wantErr: "--norc: option takes no value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := parseFrontDoor(tc.args, tc.tty)
			if tc.wantErr != "" {
				var u *usageError
				if !errors.As(err, &u) || err.Error() != tc.wantErr {
					t.Fatalf("got error %v, want usage error %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if inv.mode != tc.wantMode {
				t.Errorf("got mode %d, want %d", inv.mode, tc.wantMode)
			}
			if tc.wantMode == modeHelp || tc.wantMode == modeVersion {
				return
			}
			if len(inv.shellOpts) != 0 || len(tc.wantOpts) != 0 {
				if !reflect.DeepEqual(inv.shellOpts, tc.wantOpts) {
					t.Errorf("got shell options %q, want %q", inv.shellOpts, tc.wantOpts)
				}
			}
			if !reflect.DeepEqual(inv.operands, tc.wantOps) && !(len(inv.operands) == 0 && len(tc.wantOps) == 0) {
				t.Errorf("got operands %q, want %q", inv.operands, tc.wantOps)
			}
		})
	}
}

func TestContextFlagsReachTheRequest(t *testing.T) {
	inv, err := parseFrontDoor([]string{"--intent", "fix the build", "--agent=claude", "--session", "s-1", "--policy", "p.yaml", "-c", "make"}, false)
	if err != nil {
		t.Fatal(err)
	}
	req, err := baseRequest(inv, []string{"AGENTEXEC_AGENT=ignored", "AGENTEXEC_WORKSPACE=/", "PATH=/bin"})
	if err != nil {
		t.Fatal(err)
	}
	if req.Intent != "fix the build" || req.Agent != "claude" || req.Session != "s-1" || req.Workspace != "/" {
		t.Errorf("got intent %q agent %q session %q workspace %q, want the flags, and the variable where no flag was given", req.Intent, req.Agent, req.Session, req.Workspace)
	}
	if req.PolicyFile == "p.yaml" || req.PolicyFile[0] != '/' {
		t.Errorf("got policy %q, want it made absolute", req.PolicyFile)
	}
}

// FuzzParseFrontDoor: any argv either parses or is a usage error; it never
// panics, and a parsed command line has what its mode needs.
func FuzzParseFrontDoor(f *testing.F) {
	for _, seed := range [][]string{
		{"-c", "echo hi"}, {"-lc", "x"}, {"-euo", "pipefail", "-c", "x"}, {"--", "ls"},
		{"one string"}, {"-s", "a"}, {"--intent=x", "-o"}, {"+o", "xtrace"}, {"-"}, {"--intent"},
	} {
		f.Add(joinNUL(seed))
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := splitNUL(s)
		inv, err := parseFrontDoor(args, false)
		if err != nil {
			var u *usageError
			if !errors.As(err, &u) {
				t.Fatalf("got error %T %v, want a *usageError", err, err)
			}
			return
		}
		switch inv.mode {
		case modeCommand, modeArgv, modeOperand:
			if len(inv.operands) == 0 {
				t.Fatalf("got mode %d with no operands for %q", inv.mode, args)
			}
		}
	})
}

func joinNUL(a []string) string {
	s := ""
	for i, x := range a {
		if i > 0 {
			s += "\x00"
		}
		s += x
	}
	return s
}

func splitNUL(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
