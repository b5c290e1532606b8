package exec

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agentexec/agentexec/audit"
	"github.com/agentexec/agentexec/cred"
	"github.com/agentexec/agentexec/egress"
	"github.com/agentexec/agentexec/policy"
	"github.com/agentexec/agentexec/sandbox"
)

// Options configure the governed Engine. The zero value takes every
// location from the environment, as a user's shell would, and governs
// fully: policy, approval on the human's terminal, credentials, audit,
// egress proxy and sandbox.
type Options struct {
	// ConfigHome is $XDG_CONFIG_HOME (or ~/.config); policies are searched
	// there and agentexec's part of it is hidden from commands.
	ConfigHome string
	// SystemDir holds the system policy; "" means /etc/agentexec.
	SystemDir string
	// Profile is the built-in profile used when no policy file is found;
	// "" means "workspace" ("ci" when the CI variable is set).
	Profile string
	// Audit says where the log is; the zero value is the per-user log.
	Audit audit.Options
	// CacheDir holds the sandbox's build caches; "" means
	// sandbox.DefaultCacheDir().
	CacheDir string
	// Home is the caller's home directory, mounted read-only with its
	// secrets hidden; "" means $HOME.
	Home string
	// CI makes every ask a denial, since no human is there to answer.
	CI bool
	// Stderr receives the egress proxy's refusal lines and the approval
	// prompt's fallback messages; nil discards them.
	Stderr io.Writer
}

// OptionsFromEnv fills Options from agentexec's own environment.
func OptionsFromEnv(env []string) Options {
	get := func(k string) string {
		for i := len(env) - 1; i >= 0; i-- {
			if n, v, ok := strings.Cut(env[i], "="); ok && n == k {
				return v
			}
		}
		return ""
	}
	o := Options{ConfigHome: get("XDG_CONFIG_HOME"), Home: get("HOME"), CI: get("CI") != "" && get("CI") != "false"}
	if o.Home == "" {
		if u, err := user.Current(); err == nil {
			o.Home = u.HomeDir
		}
	}
	if o.ConfigHome == "" && o.Home != "" {
		o.ConfigHome = filepath.Join(o.Home, ".config")
	}
	if o.CI {
		o.Profile = "ci"
	}
	return o
}

// NewEngine returns the Engine every front door uses: each step of
// DESIGN.md §1 wired to its package.
func NewEngine(o Options) *Engine {
	g := &governor{o: o}
	e := &Engine{
		Policy:      g,
		Credentials: g,
		Audit:       g,
		Network:     g.startNetwork,
		Sandbox:     sandbox.Run,
		GatedRunner: true,
		Prepare:     g.prepare,
	}
	if !o.CI {
		e.Approver = ttyApprover{}
	}
	return e
}

// governor holds what the steps share for one invocation: the policy
// loaded for the first command (an interactive session decides many lines
// under the same policy).
type governor struct {
	o Options

	mu     sync.Mutex
	pol    *policy.Policy
	polKey string
}

func (g *governor) policyFor(req *Request, ws string) (*policy.Policy, error) {
	key := req.PolicyFile + "\x00" + ws
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pol != nil && g.polKey == key {
		return g.pol, nil
	}
	p, err := policy.Load(policy.LoadOptions{
		File: req.PolicyFile, Profile: g.o.Profile, ConfigHome: g.o.ConfigHome,
		Workspace: ws, SystemDir: g.o.SystemDir,
	})
	if err != nil {
		return nil, err
	}
	g.pol, g.polKey = p, key
	return p, nil
}

// workspaceOf is the Request's workspace and working directory: the
// workspace defaults to the directory, the directory to the workspace, and
// both to the current directory.
func workspaceOf(req *Request) (ws, dir string, err error) {
	ws, dir = req.Workspace, req.Dir
	if ws == "" {
		ws = dir
	}
	if ws == "" {
		if ws, err = os.Getwd(); err != nil {
			return "", "", err
		}
	}
	if dir == "" {
		dir = ws
	}
	return ws, dir, nil
}

// Decide is step 1: the policy's verdict on every simple command.
func (g *governor) Decide(_ context.Context, req *Request) (Decision, error) {
	ws, dir, err := workspaceOf(req)
	if err != nil {
		return Decision{}, err
	}
	p, err := g.policyFor(req, ws)
	if err != nil {
		return Decision{}, err
	}
	pd := p.Decide(policy.Input{Line: req.Command, Argv: req.Argv, Cwd: dir, Workspace: ws, Home: g.o.Home, TmpDir: "/tmp"})
	d := Decision{
		Source: pd.Policy, Digest: pd.Digest,
		Credentials: pd.Grants.Credentials, Writable: pd.Grants.Write, Network: pd.Grants.Network,
		Limits:  sandbox.Limits{MemoryBytes: pd.Grants.Limits.MemoryBytes, Pids: pd.Grants.Limits.Pids, CPUs: pd.Grants.Limits.CPUs},
		Timeout: pd.Grants.Timeout,
	}
	for _, c := range pd.Commands {
		d.Simple = append(d.Simple, c.Text)
	}
	for _, m := range pd.Matches {
		d.Rules = append(d.Rules, m.Rule)
		d.Reasons = append(d.Reasons, m.Reason)
	}
	if pd.WorkspaceReadOnly {
		d.ReadOnlyWorkspace = true
	}
	switch pd.Verdict {
	case policy.Allow:
		d.Verdict = Allow
		d.Rule = pd.Rule()
	case policy.Ask:
		d.Verdict = Ask
		var ae *policy.AskError
		if errors.As(pd.Err(), &ae) {
			d.Rule, d.Reason, d.Hints = ae.Rule, ae.Command+": "+ae.Reason, ae.Hints
		}
	default:
		d.Verdict = Deny
		var de *policy.DenyError
		if errors.As(pd.Err(), &de) {
			d.Rule, d.Reason, d.Hints = de.Rule, de.Reason, de.Hints
		}
	}
	return d, nil
}

// prepare completes the Spec: the caller's home read-only with its secrets
// hidden, agentexec's own state and config hidden, the persistent build
// caches, and no inherited credentials in the environment.
func (g *governor) prepare(spec *sandbox.Spec, d Decision) {
	spec.Home = g.o.Home
	if dir, err := audit.StateDir(); err == nil {
		spec.Hidden = append(spec.Hidden, dir)
	}
	if g.o.Audit.Dir != "" {
		spec.Hidden = append(spec.Hidden, g.o.Audit.Dir)
	}
	spec.Hidden = append(spec.Hidden, audit.ConfigPaths()...)
	if g.o.ConfigHome != "" {
		spec.Hidden = append(spec.Hidden, filepath.Join(g.o.ConfigHome, "agentexec"))
	}
	spec.ReadOnlyWorkspace = d.ReadOnlyWorkspace
	spec.Env = cred.StripInherited(spec.Env, nil)
	// A command may call agentexec again (make inside make, a script that
	// runs `agentexec -c`): its binary is visible at its own path, read-only,
	// wherever it is installed.
	if self, err := os.Executable(); err == nil {
		if self, err = filepath.EvalSymlinks(self); err == nil && !visibleInside(self, spec) {
			spec.Mounts = append(spec.Mounts, sandbox.Mount{Source: self, Dest: self})
		}
	}
	cache := g.o.CacheDir
	if cache == "" {
		cache, _ = sandbox.DefaultCacheDir()
	}
	if cache != "" {
		spec.CacheDir = cache
		spec.Env = setEnv(spec.Env, sandbox.CacheEnv(cache)...)
	}
}

// visibleInside says whether a host path is already in the sandbox's view:
// the system directories and the workspace.
func visibleInside(p string, spec *sandbox.Spec) bool {
	for _, root := range []string{"/usr", "/bin", "/sbin", "/lib", "/lib64", "/opt", "/etc", spec.Workspace} {
		if root != "" && (p == root || strings.HasPrefix(p, strings.TrimSuffix(root, "/")+"/")) {
			return true
		}
	}
	return false
}

// Issue is step 3: every granted credential, from its provider, or none.
func (g *governor) Issue(ctx context.Context, req *Request, names []string, recordID string) (Lease, error) {
	ws, _, err := workspaceOf(req)
	if err != nil {
		return nil, err
	}
	p, err := g.policyFor(req, ws)
	if err != nil {
		return nil, err
	}
	defs := map[string]policy.Credential{}
	for _, c := range p.Credentials() {
		defs[c.Name] = c
	}
	principal := ""
	if u, err := user.Current(); err == nil {
		principal = u.Username
	}
	sum := sha256.Sum256([]byte(req.Intent))
	purpose := cred.Purpose{RecordID: recordID, Principal: principal, Agent: req.Agent, Session: req.Session, IntentSHA256: hex.EncodeToString(sum[:])}
	l := &credLease{}
	for _, name := range names {
		def, ok := defs[name]
		if !ok {
			_ = l.Revoke(ctx)
			return nil, fmt.Errorf("credential %q is granted but not defined", name)
		}
		c, err := cred.Issue(ctx, credSpec(def), purpose)
		if err != nil {
			// cred's error already names the credential and its provider,
			// with the provider's output redacted.
			_ = l.Revoke(ctx)
			return nil, err
		}
		l.creds = append(l.creds, c)
		l.uses = append(l.uses, credUse(def, c))
		if c.Askpass != nil {
			if err := l.serveAskpass(ctx, c); err != nil {
				_ = l.Revoke(ctx)
				return nil, fmt.Errorf("credential %q: %w", name, err)
			}
		}
	}
	if l.needles, err = cred.NewNeedles(l.creds...); err != nil {
		_ = l.Revoke(ctx)
		return nil, err
	}
	return l, nil
}

func credSpec(c policy.Credential) cred.Spec {
	return cred.Spec{
		Name: c.Name, Provider: c.Provider, Command: c.Command,
		Host: c.Host, Protocol: c.Protocol, Path: c.Path, Helper: c.Helper,
		Var: c.Var, File: c.File, Timeout: c.Timeout, Env: c.Env, FileEnv: c.FileEnv,
		TTL: c.TTL, Scope: c.Scope, ShortLived: c.ShortLived,
	}
}

func credUse(def policy.Credential, c *cred.Credential) audit.CredentialUse {
	u := audit.CredentialUse{
		Name: c.Name, Provider: c.Provider, ID: c.ID,
		IssuedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt, Fingerprint: c.Fingerprint,
	}
	for k := range c.Env {
		u.InjectedAs = append(u.InjectedAs, k)
	}
	for k := range c.Files {
		u.InjectedAs = append(u.InjectedAs, k)
	}
	if c.Askpass != nil {
		u.InjectedAs = append(u.InjectedAs, "GIT_ASKPASS")
	}
	sort.Strings(u.InjectedAs)
	for k, v := range c.Granted {
		u.Scope = append(u.Scope, fmt.Sprintf("%s=%v", k, v))
	}
	sort.Strings(u.Scope)
	return u
}

// credLease is the credentials issued for one command.
type credLease struct {
	creds   []*cred.Credential
	uses    []audit.CredentialUse
	needles *cred.Needles
	mounts  []sandbox.Mount
	env     []string
	stops   []func()
	once    sync.Once
}

// askpassDest is where agentexec's binary appears inside the sandbox under
// the name git runs as its askpass helper.
const askpassDest = "/run/agentexec/bin/" + cred.AskpassName

func (l *credLease) serveAskpass(ctx context.Context, c *cred.Credential) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding agentexec's own binary for git: %w", err)
	}
	dir, err := os.MkdirTemp("", "agentexec-askpass-")
	if err != nil {
		return fmt.Errorf("making the askpass directory: %w", err)
	}
	sock, stop, err := cred.ServeAskpass(ctx, dir, c)
	if err != nil {
		_ = os.RemoveAll(dir)
		return err
	}
	l.stops = append(l.stops, func() { stop(); _ = os.RemoveAll(dir) })
	l.mounts = append(l.mounts, sandbox.Mount{Source: self, Dest: askpassDest}, sandbox.Mount{Source: dir, Dest: dir, Writable: true})
	for k, v := range cred.AskpassEnv(askpassDest, sock) {
		l.env = append(l.env, k+"="+v)
	}
	return nil
}

func (l *credLease) Env() []string {
	var env []string
	for _, c := range l.creds {
		for k, v := range c.Env {
			env = append(env, k+"="+string(v.Reveal()))
		}
		for k, v := range c.Vars {
			env = append(env, k+"="+v)
		}
	}
	return append(env, l.env...)
}

func (l *credLease) Needles() *cred.Needles { return l.needles }

func (l *credLease) Files() map[string][]byte {
	files := map[string][]byte{}
	for _, c := range l.creds {
		for p, v := range c.Files {
			files[p] = v.Reveal()
		}
	}
	return files
}

func (l *credLease) Mounts() []sandbox.Mount { return l.mounts }

func (l *credLease) Uses() []audit.CredentialUse { return l.uses }

// Revoke revokes every credential (also on failure paths), records the
// outcome for the end record, and zeroes the values.
func (l *credLease) Revoke(ctx context.Context) error {
	var errs []error
	l.once.Do(func() {
		for _, stop := range l.stops {
			stop()
		}
		for i, c := range l.creds {
			r := c.Revoke(ctx)
			l.uses[i].Revocation = &audit.Revocation{Status: r.Status, At: r.At, Error: r.Error}
			if r.Status == "failed" {
				errs = append(errs, fmt.Errorf("revoking credential %q: %s", c.Name, r.Error))
			}
			c.Destroy()
		}
	})
	return errors.Join(errs...)
}

// startNetwork starts the egress proxy with the decision's grants; package
// registries are read from the tools' own configuration now.
func (g *governor) startNetwork(ctx context.Context, req *Request, d Decision) (Network, error) {
	var grants []egress.Grant
	for _, ng := range d.Network {
		if ng.Registry != "" {
			rg, err := egress.RegistryGrants(ctx, ng.Registry, req.Env)
			if err != nil {
				return nil, err
			}
			for i := range rg {
				rg[i].Rule = ng.Rule
			}
			grants = append(grants, rg...)
			continue
		}
		grants = append(grants, egress.Grant{Host: ng.Host, Ports: ng.Ports, Methods: ng.Methods, Any: ng.Any, Name: ng.Name, Rule: ng.Rule})
	}
	refused := g.o.Stderr
	if refused == nil {
		refused = io.Discard
	}
	p, err := egress.Start(ctx, egress.Config{Grants: grants, Refused: refused})
	if err != nil {
		return nil, err
	}
	return proxyNet{p}, nil
}

type proxyNet struct{ p *egress.Proxy }

func (n proxyNet) NetNSPath() string { return n.p.NetNSPath() }
func (n proxyNet) Env() []string     { return n.p.Env() }
func (n proxyNet) Close() []audit.Connection {
	st := n.p.Close()
	var out []audit.Connection
	for _, c := range st.Connections {
		v := "refused"
		if c.Allowed {
			v = "allowed"
		}
		out = append(out, audit.Connection{
			Host: c.Host, Port: c.Port, Addr: c.Addr, Proto: c.Method, Verdict: v, Rule: c.Rule,
			BytesOut: c.BytesUp, BytesIn: c.BytesDown,
		})
	}
	return out
}

// Begin is step 4: the start record, durable before the command runs.
func (g *governor) Begin(ctx context.Context, req *Request, d Decision, f *Facts) (Entry, error) {
	l, err := audit.Open(g.o.Audit)
	if err != nil {
		return nil, err
	}
	rec := g.record(req, d, f, "command.start")
	rec.ID = f.RecordID
	rec.Time.Start = time.Now().UTC()
	e, err := l.Append(ctx, rec)
	if err != nil {
		_ = l.Close()
		return nil, err
	}
	return &auditEntry{g: g, l: l, req: req, d: d, startID: e.ID, start: rec.Time.Start}, nil
}

// Denied records a refused command.
func (g *governor) Denied(ctx context.Context, req *Request, d Decision, cause error) error {
	l, err := audit.Open(g.o.Audit)
	if err != nil {
		return err
	}
	defer l.Close()
	rec := g.record(req, d, &Facts{}, "command.denied")
	rec.Time.Start = time.Now().UTC()
	rec.Result = &audit.Result{ExitCode: ExitCode(cause), Status: "denied", Error: cause.Error()}
	_, err = l.Append(ctx, rec)
	return err
}

type auditEntry struct {
	g       *governor
	l       *audit.Log
	req     *Request
	d       Decision
	startID string
	start   time.Time
}

// End is step 7: the end record, with the result and what was used.
func (e *auditEntry) End(ctx context.Context, res Result, runErr error, f *Facts) error {
	defer e.l.Close()
	rec := e.g.record(e.req, e.d, f, "command.end")
	rec.StartID = e.startID
	rec.Time.Start, rec.Time.End = e.start, time.Now().UTC()
	r := &audit.Result{
		ExitCode: res.ExitCode, Duration: res.Duration,
		MaxRSS: f.Usage.MaxRSSBytes / 1024, UserTime: f.Usage.UserTime, SysTime: f.Usage.SystemTime,
		Status: "success",
	}
	switch {
	case res.TimedOut:
		r.Status = "timeout"
	case res.Signal != 0:
		r.Status, r.Signal = "killed", strconv.Itoa(res.Signal)
	case res.ExitCode != 0:
		r.Status = "failure"
	}
	if runErr != nil {
		msg := runErr.Error()
		if f.Redact != nil {
			msg = f.Redact(msg)
		}
		r.Error = msg
		if !res.Started {
			r.Status = "error"
		}
	}
	rec.Result = r
	rec.IO = &audit.IO{
		Stdout: audit.Stream{Bytes: res.Stdout.Bytes, SHA256: res.Stdout.SHA256, Redactions: res.Stdout.Redactions},
		Stderr: audit.Stream{Bytes: res.Stderr.Bytes, SHA256: res.Stderr.SHA256, Redactions: res.Stderr.Redactions},
	}
	_, err := e.l.Append(ctx, rec)
	return err
}

// record is the part every record of a command shares.
func (g *governor) record(req *Request, d Decision, f *Facts, kind string) *audit.Record {
	redact := func(s string) string {
		if f.Redact != nil {
			return f.Redact(s)
		}
		return s
	}
	ws, dir, _ := workspaceOf(req) // buildSpec already refused a Request without one
	rec := &audit.Record{
		Kind:      kind,
		Agent:     audit.Agent{Name: req.Agent, Session: req.Session},
		Intent:    audit.CapIntent(redact(req.Intent)),
		Cwd:       dir,
		Workspace: ws,
		Command:   audit.Command{Line: redact(req.Command), Name: req.Name, Simple: d.Simple},
		Decision: audit.Decision{
			Verdict: d.Verdict.String(), Rules: d.Rules, Reasons: d.Reasons,
			PolicySource: d.Source, PolicyDigest: d.Digest,
		},
		Credentials: f.Credentials,
		Network:     f.Network,
	}
	for _, a := range req.Argv {
		rec.Command.Argv = append(rec.Command.Argv, redact(a))
	}
	for _, a := range req.Args {
		rec.Command.Args = append(rec.Command.Args, redact(a))
	}
	if req.Intent == "" {
		rec.Intent = audit.Intent{}
	}
	if kind != "command.denied" {
		sb := f.Sandbox
		rec.Sandbox = &sb
	}
	return rec
}

// ttyApprover asks the human on the controlling terminal (/dev/tty), never
// on the agent's stdin: an agent that writes "y" to its own pipe approves
// nothing. Without a terminal, there is no one to ask, and the answer is no.
type ttyApprover struct{}

func (ttyApprover) Approve(ctx context.Context, req *Request, d Decision) error {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return errors.New("no terminal to ask a human on")
	}
	defer tty.Close()
	what := req.Command
	if what == "" {
		what = strings.Join(req.Argv, " ")
	}
	fmt.Fprintf(tty, "agentexec: %s wants to run:\n  %s\nagentexec: rule %q: %s\nagentexec: allow it once? [y/N] ", agentName(req), what, d.Rule, d.Reason)
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(tty).ReadString('\n')
		line <- s
	}()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case s := <-line:
		if a := strings.ToLower(strings.TrimSpace(s)); a == "y" || a == "yes" {
			return nil
		}
		return errors.New("not approved")
	}
}

func agentName(req *Request) string {
	if req.Agent != "" {
		return "agent " + strconv.Quote(req.Agent)
	}
	return "the agent"
}
