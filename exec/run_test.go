package exec

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/agentexec/agentexec/sandbox"
)

// trace records the order in which the pipeline calls its steps.
type trace struct {
	mu    sync.Mutex
	calls []string
}

func (t *trace) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls = append(t.calls, s)
}

type fakeDecider struct {
	t   *trace
	d   Decision
	err error
}

func (f fakeDecider) Decide(context.Context, *Request) (Decision, error) {
	f.t.add("decide")
	return f.d, f.err
}

type fakeApprover struct {
	t   *trace
	err error
}

func (f fakeApprover) Approve(context.Context, *Request, Decision) error {
	f.t.add("approve")
	return f.err
}

type fakeIssuer struct {
	t   *trace
	err error
}

func (f fakeIssuer) Issue(_ context.Context, _ *Request, names []string, _ string) (Lease, error) {
	f.t.add("issue " + strings.Join(names, ","))
	if f.err != nil {
		return nil, f.err
	}
	return fakeLease{f.t}, nil
}

type fakeLease struct{ t *trace }

func (l fakeLease) Env() []string { return []string{"TOKEN=t0k3n"} }
func (l fakeLease) Revoke(context.Context) error {
	l.t.add("revoke")
	return nil
}

type fakeRecorder struct {
	t   *trace
	err error
}

func (f fakeRecorder) Denied(context.Context, *Request, Decision, error) error {
	f.t.add("denied")
	return nil
}

func (f fakeRecorder) Begin(context.Context, *Request, Decision, *Facts) (Entry, error) {
	f.t.add("begin")
	if f.err != nil {
		return nil, f.err
	}
	return fakeEntry(f), nil
}

type fakeEntry fakeRecorder

func (f fakeEntry) End(_ context.Context, res Result, _ error, _ *Facts) error {
	f.t.add("end " + res.Stdout.SHA256[:8])
	return nil
}

// fakeRunner stands in for the sandbox and records what it was asked to run.
func fakeRunner(t *trace, got *sandbox.Spec) Runner {
	return func(_ context.Context, spec sandbox.Spec) (sandbox.Result, error) {
		t.add("run")
		*got = spec
		if spec.Stdout != nil {
			_, _ = io.WriteString(spec.Stdout, "out")
		}
		return sandbox.Result{ExitCode: 3}, nil
	}
}

func TestEngineRunsStepsInOrder(t *testing.T) {
	tr := &trace{}
	var spec sandbox.Spec
	e := &Engine{
		Policy:      fakeDecider{t: tr, d: Decision{Verdict: Ask, Credentials: []string{"gh"}, Writable: []string{"/cache"}}},
		Approver:    fakeApprover{t: tr},
		Credentials: fakeIssuer{t: tr},
		Audit:       fakeRecorder{t: tr},
		Sandbox:     fakeRunner(tr, &spec),
	}
	res, err := e.Run(context.Background(), Request{Argv: []string{"true"}, Env: []string{"A=1"}, Dir: "/"})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	sum := sha256.Sum256([]byte("out"))
	want := []string{"decide", "approve", "issue gh", "begin", "run", "revoke", "end " + hex.EncodeToString(sum[:])[:8]}
	if !slices.Equal(tr.calls, want) {
		t.Errorf("got steps %q, want %q", tr.calls, want)
	}
	if res.ExitCode != 3 || !res.Sandboxed {
		t.Errorf("got exit %d sandboxed %v, want 3 true", res.ExitCode, res.Sandboxed)
	}
	if want := []string{"A=1", "TOKEN=t0k3n"}; !slices.Equal(spec.Env, want) {
		t.Errorf("got child env %q, want %q", spec.Env, want)
	}
	if !slices.Equal(spec.Writable, []string{"/cache"}) {
		t.Errorf("got writable %q, want the grant", spec.Writable)
	}
	if res.Stdout.Bytes != 3 {
		t.Errorf("got stdout digest of %d bytes, want 3", res.Stdout.Bytes)
	}
}

func TestEngineFailsClosed(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name     string
		engine   func(*trace, *sandbox.Spec) *Engine
		wantCode int
		wantRule string
		wantSeq  []string
	}{
		{
			name: "policy error",
			engine: func(tr *trace, s *sandbox.Spec) *Engine {
				return &Engine{Policy: fakeDecider{t: tr, err: boom}, Sandbox: fakeRunner(tr, s)}
			},
			wantCode: ExitCannotRun, wantSeq: []string{"decide"},
		},
		{
			name: "deny names the rule",
			engine: func(tr *trace, s *sandbox.Spec) *Engine {
				return &Engine{Policy: fakeDecider{t: tr, d: Decision{Verdict: Deny, Rule: "no-push", Reason: "pushing is not allowed"}}, Sandbox: fakeRunner(tr, s)}
			},
			wantCode: ExitDenied, wantRule: "no-push", wantSeq: []string{"decide"},
		},
		{
			name: "zero decision denies",
			engine: func(tr *trace, s *sandbox.Spec) *Engine {
				return &Engine{Policy: fakeDecider{t: tr}, Sandbox: fakeRunner(tr, s)}
			},
			wantCode: ExitDenied, wantSeq: []string{"decide"},
		},
		{
			name: "ask without an approver denies",
			engine: func(tr *trace, s *sandbox.Spec) *Engine {
				return &Engine{Policy: fakeDecider{t: tr, d: Decision{Verdict: Ask, Rule: "ask-net"}}, Sandbox: fakeRunner(tr, s)}
			},
			wantCode: ExitDenied, wantRule: "ask-net", wantSeq: []string{"decide"},
		},
		{
			name: "approver refuses",
			engine: func(tr *trace, s *sandbox.Spec) *Engine {
				return &Engine{Policy: fakeDecider{t: tr, d: Decision{Verdict: Ask, Rule: "ask-net"}}, Approver: fakeApprover{t: tr, err: boom}, Sandbox: fakeRunner(tr, s)}
			},
			wantCode: ExitDenied, wantRule: "ask-net", wantSeq: []string{"decide", "approve"},
		},
		{
			name: "credentials granted but no issuer",
			engine: func(tr *trace, s *sandbox.Spec) *Engine {
				return &Engine{Policy: fakeDecider{t: tr, d: Decision{Verdict: Allow, Credentials: []string{"gh"}}}, Sandbox: fakeRunner(tr, s)}
			},
			wantCode: ExitCannotRun, wantSeq: []string{"decide"},
		},
		{
			name: "issuing fails",
			engine: func(tr *trace, s *sandbox.Spec) *Engine {
				return &Engine{Policy: fakeDecider{t: tr, d: Decision{Verdict: Allow, Credentials: []string{"gh"}}}, Credentials: fakeIssuer{t: tr, err: boom}, Sandbox: fakeRunner(tr, s)}
			},
			wantCode: ExitCannotRun, wantSeq: []string{"decide", "issue gh"},
		},
		{
			name: "audit start fails, lease revoked",
			engine: func(tr *trace, s *sandbox.Spec) *Engine {
				return &Engine{
					Policy:      fakeDecider{t: tr, d: Decision{Verdict: Allow, Credentials: []string{"gh"}}},
					Credentials: fakeIssuer{t: tr}, Audit: fakeRecorder{t: tr, err: boom}, Sandbox: fakeRunner(tr, s),
				}
			},
			wantCode: ExitCannotRun, wantSeq: []string{"decide", "issue gh", "begin", "revoke"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := &trace{}
			var spec sandbox.Spec
			res, err := tc.engine(tr, &spec).Run(context.Background(), Request{Command: "rm -rf /", Dir: "/"})
			if err == nil {
				t.Fatal("got no error, want a refusal")
			}
			if got := ExitCode(err); got != tc.wantCode || res.ExitCode != tc.wantCode {
				t.Errorf("got exit %d (result %d), want %d; err %v", got, res.ExitCode, tc.wantCode, err)
			}
			var de *DeniedError
			if tc.wantCode == ExitDenied && (!errors.As(err, &de) || de.Rule != tc.wantRule) {
				t.Errorf("got %v, want a DeniedError naming rule %q", err, tc.wantRule)
			}
			if tc.wantCode == ExitCannotRun && !errors.Is(err, ErrCannotRun) {
				t.Errorf("got %v, want errors.Is ErrCannotRun", err)
			}
			if !slices.Equal(tr.calls, tc.wantSeq) {
				t.Errorf("got steps %q, want %q (the command must not run)", tr.calls, tc.wantSeq)
			}
		})
	}
}

func TestBuildSpec(t *testing.T) {
	tests := []struct {
		name    string
		req     Request
		want    []string // argv after the shell's path
		wantErr bool
	}{
		{name: "command", req: Request{Command: "echo $0 $1", Args: []string{"a"}}, want: []string{"-c", "echo $0 $1", "agentexec", "a"}},
		{name: "name and options", req: Request{Command: "x", Name: "n", ShellOptions: []string{"--norc", "-e", "-o", "pipefail"}}, want: []string{"--norc", "-e", "-o", "pipefail", "-c", "x", "n"}},
		{name: "argv", req: Request{Argv: []string{"ls", "-l"}}, want: []string{"ls", "-l"}},
		{name: "nothing", req: Request{}, wantErr: true},
		{name: "both", req: Request{Command: "x", Argv: []string{"y"}}, wantErr: true},
		{name: "empty program", req: Request{Argv: []string{""}}, wantErr: true},
		{name: "relative dir", req: Request{Command: "x", Dir: "rel"}, wantErr: true},
		{name: "nul byte", req: Request{Command: "a\x00b"}, wantErr: true},
		{name: "too long", req: Request{Command: strings.Repeat("x", maxArgBytes+1)}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Dir = cmpOr(tc.req.Dir, "/tmp")
			spec, err := buildSpec(&tc.req)
			if tc.wantErr {
				if !errors.Is(err, ErrInvalidRequest) {
					t.Fatalf("got %v, want ErrInvalidRequest", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := spec.Argv
			if tc.req.Command != "" {
				if !strings.HasSuffix(got[0], "/bash") {
					t.Errorf("got shell %q, want a bash", got[0])
				}
				got = got[1:]
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got argv %q, want %q", got, tc.want)
			}
			if spec.Cwd != "/tmp" || spec.Workspace != "/tmp" {
				t.Errorf("got cwd %q workspace %q, want /tmp for both", spec.Cwd, spec.Workspace)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestFindShellSkipsSelf: a "bash" on PATH that is this very program (a
// shim pointing back at agentexec) is never chosen, or agentexec would
// start itself without end.
func TestFindShellSkipsSelf(t *testing.T) {
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, dir+"/bash"); err != nil {
		t.Fatal(err)
	}
	got, err := findShell([]string{"PATH=" + dir + ":/usr/bin:/bin"}, "/")
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(got, dir) {
		t.Errorf("got shell %q, want one that is not agentexec itself", got)
	}
}

// failingEnd is an audit whose end record cannot be written.
type failingEnd struct{}

func (failingEnd) Begin(context.Context, *Request, Decision, *Facts) (Entry, error) {
	return failingEnd{}, nil
}
func (failingEnd) Denied(context.Context, *Request, Decision, error) error { return nil }
func (failingEnd) End(context.Context, Result, error, *Facts) error        { return errors.New("disk full") }

// TestFailureAfterTheCommandKeepsItsStatus: the command ran, so its status
// is still the result; the failed end record is reported as an error.
func TestFailureAfterTheCommandKeepsItsStatus(t *testing.T) {
	tr := &trace{}
	var spec sandbox.Spec
	e := &Engine{Audit: failingEnd{}, Sandbox: fakeRunner(tr, &spec)}
	res, err := e.Run(context.Background(), Request{Command: "x", Dir: "/"})
	if !errors.Is(err, ErrCannotRun) || !res.Started || res.ExitCode != 3 {
		t.Errorf("got %v, started %v, exit %d; want the audit error, started, and the command's 3", err, res.Started, res.ExitCode)
	}
}

// gatedRunner stands in for sandbox.Run with a Gate: it "builds" at once,
// then runs the command only when the gate opens.
func gatedRunner(t *trace, ran *bool) Runner {
	return func(_ context.Context, spec sandbox.Spec) (sandbox.Result, error) {
		t.add("build")
		if spec.Gate == nil {
			return sandbox.Result{}, errors.New("no gate")
		}
		if err := <-spec.Gate; err != nil {
			return sandbox.Result{}, &sandbox.SetupError{Phase: "gate", Err: err}
		}
		*ran = true
		return sandbox.Result{ExitCode: 0}, nil
	}
}

func TestEngineGateHoldsTheCommandUntilRecorded(t *testing.T) {
	t.Run("recorded", func(t *testing.T) {
		tr, ran := &trace{}, false
		e := &Engine{Audit: fakeRecorder{t: tr}, Sandbox: gatedRunner(tr, &ran), GatedRunner: true}
		res, err := e.Run(context.Background(), Request{Argv: []string{"true"}, Dir: "/"})
		if err != nil || !ran || res.ExitCode != 0 {
			t.Fatalf("got ran %v, exit %d, err %v; want the command run", ran, res.ExitCode, err)
		}
		if !slices.Contains(tr.calls, "begin") {
			t.Errorf("got steps %q, want the start record written", tr.calls)
		}
	})
	t.Run("record fails", func(t *testing.T) {
		tr, ran := &trace{}, false
		e := &Engine{Audit: fakeRecorder{t: tr, err: errors.New("disk full")}, Sandbox: gatedRunner(tr, &ran), GatedRunner: true}
		res, err := e.Run(context.Background(), Request{Argv: []string{"true"}, Dir: "/"})
		if ran {
			t.Fatal("got the command run without its start record, want it held at the gate")
		}
		if !errors.Is(err, ErrCannotRun) || res.ExitCode != ExitCannotRun {
			t.Errorf("got exit %d, err %v; want 125 and ErrCannotRun", res.ExitCode, err)
		}
	})
}

// A runner that leaves the tear-down to its caller (Spec.DeferTeardown)
// has it called before Run returns, beside the end record; a failed
// tear-down is Run's error and the exit code of a command that succeeded.
func TestEngineTearsDownBeforeReturning(t *testing.T) {
	for _, fail := range []bool{false, true} {
		tr := &trace{}
		var asked, torn bool
		runner := func(_ context.Context, spec sandbox.Spec) (sandbox.Result, error) {
			asked = spec.DeferTeardown
			return sandbox.Result{Teardown: func() error {
				torn = true
				if fail {
					return &sandbox.SetupError{Phase: "destroy", Err: errors.New("cgroup busy")}
				}
				return nil
			}}, nil
		}
		e := &Engine{Audit: fakeRecorder{t: tr}, Sandbox: runner}
		res, err := e.Run(context.Background(), Request{Argv: []string{"true"}, Dir: "/"})
		if !asked || !torn {
			t.Fatalf("fail=%v: DeferTeardown asked %v, Teardown called %v; want both", fail, asked, torn)
		}
		if !slices.Contains(tr.calls, "end "+hex.EncodeToString(func() []byte { s := sha256.Sum256(nil); return s[:] }())[:8]) {
			t.Errorf("fail=%v: got steps %q, want the end recorded", fail, tr.calls)
		}
		if fail && (err == nil || res.ExitCode != ExitCannotRun) {
			t.Errorf("a failed tear-down: got exit %d, err %v; want 125 and the error", res.ExitCode, err)
		}
		if !fail && (err != nil || res.ExitCode != 0) {
			t.Errorf("got exit %d, err %v; want 0, nil", res.ExitCode, err)
		}
	}
}
