package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agentexec/agentexec/audit"
	"github.com/agentexec/agentexec/cred"
	"github.com/agentexec/agentexec/policy"
	"github.com/agentexec/agentexec/sandbox"
)

// maxArgBytes is the kernel's limit on one argument (MAX_ARG_STRLEN,
// 32 pages), terminating NUL included.
const maxArgBytes = 32*4096 - 1

// Verdict is the outcome of a decision. The zero value denies.
type Verdict int

// The verdicts, strictest first.
const (
	Deny Verdict = iota
	Ask
	Allow
)

func (v Verdict) String() string {
	switch v {
	case Allow:
		return "allow"
	case Ask:
		return "ask"
	}
	return "deny"
}

// Decision is what the policy says about one Request. The zero value
// denies.
type Decision struct {
	Verdict Verdict
	// Rule is the id of the rule that decided; Reason is a sentence for
	// the agent; Hints say what it may do instead.
	Rule, Reason string
	Hints        []string
	// Rules and Reasons name every rule that fired, for the record.
	Rules, Reasons []string
	// Simple are the simple commands the policy judged, as written.
	Simple []string
	// Source and Digest say which policy decided.
	Source, Digest string
	// Credentials are the names of the credentials granted to the command.
	Credentials []string
	// Writable are extra host paths granted read-write.
	Writable []string
	// Network are the destinations granted; empty means no network.
	Network []policy.NetGrant
	// Limits and Timeout bound the command; zero means the defaults.
	Limits  sandbox.Limits
	Timeout time.Duration
	// ReadOnlyWorkspace: the policy lets nothing write the workspace.
	ReadOnlyWorkspace bool
}

// Decider judges a Request before anything runs (step 1).
type Decider interface {
	Decide(ctx context.Context, req *Request) (Decision, error)
}

// Approver asks a human about a Decision whose verdict is Ask (step 2). It
// returns nil to approve; any error refuses.
type Approver interface {
	Approve(ctx context.Context, req *Request, d Decision) error
}

// Issuer issues the credentials a Decision grants (step 3). recordID is the
// id the command's audit records will carry, so the provider side can link
// back to them.
type Issuer interface {
	Issue(ctx context.Context, req *Request, names []string, recordID string) (Lease, error)
}

// Lease is a set of issued credentials.
type Lease interface {
	// Env is added to the child's environment only.
	Env() []string
	// Revoke ends the lease (step 6); it is called exactly once, whether
	// the command ran or not.
	Revoke(ctx context.Context) error
}

// Delivery is what a Lease may add besides environment variables: the
// values to mask in the output, files for the sandbox's private tmpfs,
// extra mounts, and the non-secret description for the audit record.
// Leases that implement it are found by type assertion.
type Delivery interface {
	Needles() *cred.Needles
	Files() map[string][]byte
	Mounts() []sandbox.Mount
	Uses() []audit.CredentialUse
}

// Facts are the non-secret things the steps learn about one command, for
// the audit record.
type Facts struct {
	// RecordID is the id of the command's start record.
	RecordID string
	// Credentials describe the issued credentials (after step 6, with the
	// revocation results).
	Credentials []audit.CredentialUse
	// Sandbox summarises the isolation the command ran with.
	Sandbox audit.Sandbox
	// Network lists every connection attempt through the egress proxy.
	Network []audit.Connection
	// Usage is the sandbox's own account of the run.
	Usage sandbox.Result
	// Redact masks the issued credentials' values in free text (intent,
	// error messages) before it is recorded; nil when none were issued.
	Redact func(string) string
}

// Recorder writes the audit record (steps 4 and 7).
type Recorder interface {
	// Begin must make the start record durable before it returns.
	Begin(ctx context.Context, req *Request, d Decision, f *Facts) (Entry, error)
	// Denied records a command that the policy or the approver refused.
	Denied(ctx context.Context, req *Request, d Decision, cause error) error
}

// Entry is one started audit record.
type Entry interface {
	// End writes the end record with the command's result and the
	// pipeline's error, if any.
	End(ctx context.Context, res Result, runErr error, f *Facts) error
}

// Network is a running egress proxy for one command.
type Network interface {
	NetNSPath() string
	Env() []string
	// Close stops it and returns every connection attempt.
	Close() []audit.Connection
}

// NetworkStarter starts the egress proxy for the destinations d grants.
type NetworkStarter func(ctx context.Context, req *Request, d Decision) (Network, error)

// Runner runs one Spec (step 5). sandbox.Run is one; the host runner is
// the other.
type Runner func(ctx context.Context, spec sandbox.Spec) (sandbox.Result, error)

// Engine wires the steps of DESIGN.md §1 together. Every field is optional;
// a nil field means that step is not there (its zero behaviour is
// written beside it). NewEngine returns the fully governed one.
type Engine struct {
	// Policy decides (step 1). nil: every command is allowed.
	Policy Decider
	// Approver is asked about an Ask verdict (step 2). nil: Ask is a
	// denial, so an unattended run never waits for a human who is not there.
	Approver Approver
	// Credentials issues and revokes granted credentials (steps 3 and 6).
	// nil: a decision that grants credentials fails with ErrCannotRun.
	Credentials Issuer
	// Audit records the start and the end (steps 4 and 7). nil: nothing
	// is recorded.
	Audit Recorder
	// Network starts the egress proxy for a decision with network grants.
	// nil: a decision that grants network fails with ErrCannotRun.
	Network NetworkStarter
	// Sandbox runs the command (step 5). nil: the host runner, which
	// isolates nothing; Run then calls Warn("not sandboxed").
	Sandbox Runner
	// GatedRunner says Sandbox honours Spec.Gate, so the start record can
	// be written while the container is built (sandbox.Run does).
	GatedRunner bool
	// Prepare, when set, completes the Spec before it runs (home, hidden
	// paths, caches); it sees the decision.
	Prepare func(spec *sandbox.Spec, d Decision)
	// Digest makes Run count and hash what the caller receives on Stdout
	// and Stderr even without Audit (which always needs it).
	Digest bool
	// Warn receives agentexec's own warnings for the human. nil: dropped.
	Warn func(msg string)
}

// Result is how one Request ended.
type Result struct {
	// ExitCode is the child's exit status, or 128+N when a signal N killed
	// it, or agentexec's reserved code when the command did not run.
	ExitCode int `json:"exit_code"`
	// Signal is the signal that killed the child, or 0.
	Signal int `json:"signal,omitempty"`
	// TimedOut says the wall-clock limit ended the command.
	TimedOut bool `json:"timed_out,omitempty"`
	// Duration is the wall time of the command itself.
	Duration time.Duration `json:"duration_ns"`
	// Stdout and Stderr describe what the caller received. They are zero
	// unless the output was digested (Engine.Digest or an audit).
	Stdout Output `json:"stdout"`
	Stderr Output `json:"stderr"`
	// Merged says the child's stderr went into the Stdout stream: the
	// caller gave one file for both, or the command had a PTY.
	Merged bool `json:"merged,omitempty"`
	// TTY says the command ran on a pseudo-terminal.
	TTY bool `json:"tty,omitempty"`
	// Sandboxed says the command ran in a sandbox.
	Sandboxed bool `json:"sandboxed"`
	// Started says the command started; ExitCode is then its own status.
	Started bool `json:"started"`
}

// Output describes one output stream as the caller received it.
type Output struct {
	Bytes int64 `json:"bytes"`
	// SHA256 is hex; empty when the stream was not digested.
	SHA256 string `json:"sha256,omitempty"`
	// Redactions counts the secrets masked in it.
	Redactions int `json:"redactions,omitempty"`
}

// Run runs req with the zero Engine: on the host, with no policy, no
// credentials and no audit. It is the front door's entry point until the
// other steps are wired in.
func Run(ctx context.Context, req Request) (Result, error) {
	var e Engine
	return e.Run(ctx, req)
}

// Run runs one Request end to end and returns how it ended. The child's
// own failure is not an error: it is in Result.ExitCode. A non-nil error
// with Result.Started false means nothing ran, and Result.ExitCode is
// ExitCode(err). With Result.Started true, the command ran but revoking
// its credentials or recording its end failed: the error says so, and
// Result.ExitCode is still the command's own status, which the front door
// passes through.
func (e *Engine) Run(ctx context.Context, req Request) (Result, error) {
	spec, err := buildSpec(&req)
	if err != nil {
		return Result{ExitCode: ExitCode(err)}, err
	}
	if sandbox.Inside() {
		// A nested agentexec inside a sandbox agentexec made (make inside
		// make): the outer policy judged the line that called it and the
		// outer sandbox holds it, so the command runs in that same sandbox,
		// with no second layer and no second record (the state directory is
		// hidden in here). Inside cannot be faked from outside by an
		// environment variable.
		res, err := execute(ctx, runHost, &req, spec, nil, e.Digest)
		res.Sandboxed = true
		return res, err
	}

	if e.Sandbox != nil && e.GatedRunner {
		// Start the kernel's slow part of joining cgroups now, while the
		// policy decides (sandbox.Prewarm); undo what no container took.
		sandbox.Prewarm()
		defer sandbox.ReleaseAhead()
	}

	// 1. Decide.
	d := Decision{Verdict: Allow}
	if e.Policy != nil {
		if d, err = e.Policy.Decide(ctx, &req); err != nil {
			return e.fail(&StepError{Step: "decide", Err: err})
		}
	}

	// 2. Approve.
	switch d.Verdict {
	case Allow:
	case Ask:
		if e.Approver == nil {
			return e.deny(ctx, &req, d, &DeniedError{Rule: d.Rule, Reason: joinReason(d.Reason, "needs approval and no one can approve here"), Hints: d.Hints})
		}
		if err := e.Approver.Approve(ctx, &req, d); err != nil {
			return e.deny(ctx, &req, d, fmt.Errorf("%w: %w", &DeniedError{Rule: d.Rule, Reason: d.Reason, Hints: d.Hints}, err))
		}
	default:
		return e.deny(ctx, &req, d, &DeniedError{Rule: d.Rule, Reason: d.Reason, Hints: d.Hints})
	}
	spec.Writable = append(spec.Writable, d.Writable...)
	spec.Limits, spec.Timeout = d.Limits, d.Timeout
	if e.Prepare != nil {
		e.Prepare(&spec, d)
	}
	facts := &Facts{RecordID: newRecordID()}

	// 3. Issue credentials.
	var lease Lease
	var needles *cred.Needles
	if len(d.Credentials) > 0 {
		if e.Credentials == nil {
			return e.fail(&StepError{Step: "credentials", Err: errors.New("credentials granted but no issuer configured")})
		}
		if lease, err = e.Credentials.Issue(ctx, &req, d.Credentials, facts.RecordID); err != nil {
			return e.fail(&StepError{Step: "credentials", Err: err})
		}
		spec.Env = setEnv(spec.Env, lease.Env()...)
		if dl, ok := lease.(Delivery); ok {
			needles = dl.Needles()
			if needles != nil {
				facts.Redact = needles.RedactString
			}
			spec.Mounts = append(spec.Mounts, dl.Mounts()...)
			for p, b := range dl.Files() {
				if spec.Files == nil {
					spec.Files = map[string][]byte{}
				}
				spec.Files[p] = b
			}
			facts.Credentials = dl.Uses()
		}
	}
	revoke := func() error {
		if lease == nil {
			return nil
		}
		err := lease.Revoke(context.WithoutCancel(ctx))
		if dl, ok := lease.(Delivery); ok {
			facts.Credentials = dl.Uses()
		}
		if err != nil {
			return &StepError{Step: "revoke", Err: err}
		}
		return nil
	}

	// Network grants: the egress proxy starts only for commands that have
	// them; every other command gets a namespace with loopback only.
	var netw Network
	if len(d.Network) > 0 {
		if e.Network == nil {
			return e.fail(errors.Join(&StepError{Step: "network", Err: errors.New("network granted but no egress proxy configured")}, revoke()))
		}
		if netw, err = e.Network(ctx, &req, d); err != nil {
			return e.fail(errors.Join(&StepError{Step: "network", Err: err}, revoke()))
		}
		spec.NetNS = netw.NetNSPath()
		spec.Env = setEnv(spec.Env, netw.Env()...)
	}
	closeNet := func() {
		if netw != nil {
			facts.Network = netw.Close()
			netw = nil
		}
	}
	facts.Sandbox = sandboxSummary(spec, d)

	// 4. Audit: the start record is durable before anything runs. With a
	// runner that honours Spec.Gate, the container is built while the
	// record is written, and the command itself waits for the gate, which
	// opens only once the record is on disk.
	var entry Entry
	var beginErr error
	beginDone := make(chan struct{})
	launch := func() {}
	overlap := e.Audit != nil && e.GatedRunner && e.Sandbox != nil
	switch {
	case overlap:
		gate := make(chan error, 1)
		spec.Gate = gate
		// The record is begun when the runner is called, not here: until
		// then execute sets up the terminal and signal handling, and the
		// runtime's first signal.Notify waits for a goroutine of its own,
		// which would queue behind the record's signing.
		var once sync.Once
		launch = func() {
			once.Do(func() {
				go func() {
					defer close(beginDone)
					entry, beginErr = e.Audit.Begin(ctx, &req, d, facts)
					gate <- beginErr
				}()
			})
		}
	case e.Audit != nil:
		close(beginDone)
		if entry, err = e.Audit.Begin(ctx, &req, d, facts); err != nil {
			closeNet()
			return e.fail(errors.Join(&StepError{Step: "audit", Err: err}, revoke()))
		}
	default:
		close(beginDone)
	}

	// 5. Run.
	runner, sandboxed := e.Sandbox, true
	if runner == nil {
		runner, sandboxed = runHost, false
		e.warn("not sandboxed")
	}
	usage := func(ctx context.Context, s sandbox.Spec) (sandbox.Result, error) {
		launch()
		r, err := runner(ctx, s)
		facts.Usage = r
		return r, err
	}
	spec.DeferTeardown = true
	res, runErr := execute(ctx, usage, &req, spec, needles, e.Digest || e.Audit != nil)
	res.Sandboxed = sandboxed
	// The container is torn down while the credentials are revoked and the
	// end is recorded (Spec.DeferTeardown); it is gone before Run returns.
	// A failed tear-down is agentexec's own failure, reported after the
	// record of the command's outcome.
	torn := make(chan error, 1)
	if td := facts.Usage.Teardown; td != nil {
		facts.Usage.Teardown = nil
		go func() { torn <- td() }()
	} else {
		torn <- nil
	}
	closeNet()
	// execute may fail before it calls the runner (the terminal): the start
	// record is still written, so that the end record has one.
	launch()
	<-beginDone
	if beginErr != nil {
		// The gate stayed shut: the command never ran.
		return e.fail(errors.Join(&StepError{Step: "audit", Err: beginErr}, revoke(), <-torn))
	}

	// 6. Revoke, then 7. record the end, whatever happened above.
	revErr := revoke()
	var endErr error
	if entry != nil {
		if err := entry.End(context.WithoutCancel(ctx), res, errors.Join(runErr, revErr), facts); err != nil {
			endErr = &StepError{Step: "audit", Err: err}
		}
	}
	if needles != nil {
		needles.Destroy()
	}
	tdErr := <-torn
	if tdErr != nil && runErr == nil && res.ExitCode == 0 {
		res.ExitCode = ExitCode(tdErr)
	}
	return res, errors.Join(runErr, revErr, endErr, tdErr)
}

// deny records a refusal and returns it. A refusal that cannot be recorded
// is still a refusal: nothing runs either way, and the recording error is
// reported with it.
func (e *Engine) deny(ctx context.Context, req *Request, d Decision, cause error) (Result, error) {
	if e.Audit != nil {
		if err := e.Audit.Denied(ctx, req, d, cause); err != nil {
			cause = errors.Join(cause, &StepError{Step: "audit", Err: err})
			return Result{ExitCode: ExitDenied}, cause
		}
	}
	return e.fail(cause)
}

// setEnv sets each NAME=VALUE in kv on env, replacing an earlier setting of
// the same name, so that a grant's value is the one the child sees.
func setEnv(env []string, kv ...string) []string {
	for _, s := range kv {
		name, _, _ := strings.Cut(s, "=")
		env = slices.DeleteFunc(env, func(e string) bool {
			n, _, _ := strings.Cut(e, "=")
			return n == name
		})
		env = append(env, s)
	}
	return env
}

// sandboxSummary is the isolation a command runs with, for its record.
func sandboxSummary(spec sandbox.Spec, d Decision) audit.Sandbox {
	s := audit.Sandbox{
		Network:  "loopback",
		Writable: append([]string{spec.Workspace}, spec.Writable...),
		Hidden:   len(spec.Hidden),
		Limits:   audit.Limits{MemoryBytes: spec.Limits.MemoryBytes, Pids: spec.Limits.Pids, CPUs: spec.Limits.CPUs},
	}
	if spec.NetNS != "" {
		s.Network = "proxy"
		for _, g := range d.Network {
			s.Egress = append(s.Egress, g.String())
		}
	}
	return s
}

func (e *Engine) fail(err error) (Result, error) {
	return Result{ExitCode: ExitCode(err)}, err
}

func (e *Engine) warn(msg string) {
	if e.Warn != nil {
		e.Warn(msg)
	}
}

func joinReason(a, b string) string {
	if a == "" {
		return b
	}
	return a + " (" + b + ")"
}

// buildSpec checks req and turns it into the runner's Spec. It has no side
// effects.
func buildSpec(req *Request) (sandbox.Spec, error) {
	invalid := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, a...))
	}
	hasCmd, hasArgv := req.Command != "", len(req.Argv) > 0
	switch {
	case hasCmd && hasArgv:
		return sandbox.Spec{}, invalid("both a command line and an argv")
	case !hasCmd && !hasArgv:
		return sandbox.Spec{}, invalid("nothing to run")
	case hasArgv && req.Argv[0] == "":
		return sandbox.Spec{}, invalid("empty program name")
	}
	for _, a := range append(append([]string{req.Command, req.Name}, req.Args...), req.Argv...) {
		if len(a) > maxArgBytes {
			return sandbox.Spec{}, invalid("an argument is %d bytes; the kernel allows %d", len(a), maxArgBytes)
		}
		if strings.IndexByte(a, 0) >= 0 {
			return sandbox.Spec{}, invalid("an argument contains a NUL byte")
		}
	}
	for _, p := range []string{req.Dir, req.Workspace} {
		if p != "" && !filepath.IsAbs(p) {
			return sandbox.Spec{}, invalid("%q is not an absolute path", p)
		}
	}
	ws, dir, err := workspaceOf(req)
	if err != nil {
		return sandbox.Spec{}, invalid("no workspace: %v", err)
	}

	env := append([]string{}, req.Env...)
	var argv []string
	if hasArgv {
		argv = append(argv, req.Argv...)
	} else {
		bash, err := findShell(env, dir)
		if err != nil {
			return sandbox.Spec{}, err
		}
		name := req.Name
		if name == "" {
			name = "agentexec"
		}
		argv = append(append([]string{bash}, req.ShellOptions...), "-c", req.Command, name)
		argv = append(argv, req.Args...)
	}
	return sandbox.Spec{Argv: argv, Env: env, Cwd: dir, Workspace: ws}, nil
}

// execute is step 5: it attaches the caller's stdio (terminal, digests),
// captures signals, and calls the runner.
func execute(ctx context.Context, runner Runner, req *Request, spec sandbox.Spec, needles *cred.Needles, digest bool) (Result, error) {
	var res Result
	term := acquireTerminal(req.Stdin, req.Stdout)
	if term != nil {
		defer term.release()
		if err := term.makeRaw(); err != nil {
			return Result{ExitCode: ExitCannotRun}, &StepError{Step: "terminal", Err: err}
		}
		spec.TTY, spec.WinSize = true, term.size()
		res.TTY, res.Merged = true, true
	}
	sig := captureSignals(term)
	defer sig.stop()
	if spec.Gate != nil {
		// The runner honours the gate: the command waits there for the
		// capture, while the container is built.
		spec.Gate = sig.gate(spec.Gate)
	} else {
		<-sig.ready
	}
	spec.Signals, spec.Resize = sig.forward, sig.resize

	if req.Stdin != nil && (term != nil || !inBackground(req.Stdin)) {
		spec.Stdin = req.Stdin
	}
	// Output passes the redactor first (when credentials were issued), then
	// the digest, then the caller: the digest is of exactly what the caller
	// received, and no secret reaches it.
	redact := needles != nil && needles.Len() > 0
	digest = digest || redact
	var out, errw *digestWriter
	var outR, errR *cred.Redactor
	wrap := func(d *digestWriter, r **cred.Redactor) io.Writer {
		if !redact {
			return d
		}
		*r = cred.NewRedactor(d, needles)
		return *r
	}
	switch {
	case term != nil:
		// The PTY's master carries stdout and stderr together.
		out = newDigest(req.Stdout, digest)
		spec.Stdout = wrap(out, &outR)
	case digest:
		out = newDigest(req.Stdout, true)
		spec.Stdout = wrap(out, &outR)
		if sameFile(req.Stdout, req.Stderr) {
			// One pipe for both keeps the order of their writes.
			spec.Stderr, res.Merged = spec.Stdout, true
		} else {
			errw = newDigest(req.Stderr, true)
			spec.Stderr = wrap(errw, &errR)
		}
	default:
		if req.Stdout != nil {
			spec.Stdout = req.Stdout
		}
		if req.Stderr != nil {
			spec.Stderr = req.Stderr
		}
	}

	sr, err := runner(ctx, spec)
	// The runner has copied everything; what the redactors still hold can
	// no longer become a secret.
	for _, r := range []*cred.Redactor{outR, errR} {
		if r != nil {
			_ = r.Close()
		}
	}
	res.Started = err == nil
	res.ExitCode, res.Signal, res.TimedOut, res.Duration = sr.ExitCode, sr.Signal, sr.TimedOut, sr.Duration
	res.Stdout, res.Stderr = out.output(), errw.output()
	if outR != nil {
		res.Stdout.Redactions = outR.Count()
	}
	if errR != nil {
		res.Stderr.Redactions = errR.Count()
	}
	if err != nil {
		res.ExitCode = ExitCode(err)
		return res, err
	}
	return res, nil
}

// digestWriter counts and hashes what it passes on to w, so the digest is
// of exactly the bytes the caller received. It is locked because a copier
// cut off by the runner's drain deadline may still be writing when the
// result is read.
type digestWriter struct {
	mu   sync.Mutex
	w    io.Writer
	hash bool
	d    digest
}

func newDigest(f *os.File, hash bool) *digestWriter {
	var w io.Writer = io.Discard
	if f != nil {
		w = f
	}
	return &digestWriter{w: w, hash: hash, d: newSHA256()}
}

func (d *digestWriter) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, err := d.w.Write(p)
	if d.hash {
		d.d.write(p[:n])
	}
	return n, err
}

func (d *digestWriter) output() Output {
	if d == nil || !d.hash {
		return Output{}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.d.output()
}

// newRecordID names the command's start record before it is written, so
// credential providers can link their side to it. A failure to read random
// bytes leaves it empty, and the log then assigns one.
func newRecordID() string {
	id, err := audit.NewID()
	if err != nil {
		return ""
	}
	return id
}
