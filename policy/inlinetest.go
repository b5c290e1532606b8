package policy

import (
	"fmt"
	"slices"
)

// TestInput is the context inline tests run in: a workspace in the home
// directory, and the current directory at its top.
var TestInput = Input{
	Cwd:       "/home/user/project",
	Workspace: "/home/user/project",
	Home:      "/home/user",
	TmpDir:    "/tmp/agentexec",
}

// TestFailure is one inline test that did not pass.
type TestFailure struct {
	File     string
	Line     int
	Command  string
	Want     Verdict
	WantRule string
	Got      *Decision
}

// RunTests runs every inline test of the policy (the built-in profiles'
// too) and returns the failures.
func (p *Policy) RunTests() (passed int, failures []TestFailure) {
	for _, t := range p.tests {
		if f := p.runTest(t); f != nil {
			failures = append(failures, *f)
		} else {
			passed++
		}
	}
	return passed, failures
}

func (p *Policy) runTest(t inlineTest) *TestFailure {
	in := TestInput
	in.Line = t.command
	d := p.Decide(in)
	ok := d.Verdict == t.expect
	if ok && t.rule != "" {
		ok = slices.ContainsFunc(d.Matches, func(m Match) bool { return m.Verdict == d.Verdict && m.Rule == t.rule })
	}
	if ok {
		return nil
	}
	return &TestFailure{File: t.file, Line: t.line, Command: t.command, Want: t.expect, WantRule: t.rule, Got: d}
}

func (f *TestFailure) String() string {
	want := f.Want.String()
	if f.WantRule != "" {
		want += fmt.Sprintf(" (rule %q)", f.WantRule)
	}
	return fmt.Sprintf("test %q: got %s (rule %q), want %s", f.Command, f.Got.Verdict, f.Got.Rule(), want)
}

func (p *Policy) runTests(tests []inlineTest) error {
	for _, t := range tests {
		if f := p.runTest(t); f != nil {
			return &LoadError{File: t.file, Line: t.line, Col: t.col, Key: "tests", Msg: f.String(), Err: ErrTestFailed}
		}
	}
	return nil
}
