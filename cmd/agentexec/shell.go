package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/agentexec/agentexec/sandbox"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/agentexec/agentexec/exec"
	"golang.org/x/sys/unix"
)

// The context variables (DESIGN.md §3). A flag wins over its variable.
const (
	envIntent    = "AGENTEXEC_INTENT"
	envAgent     = "AGENTEXEC_AGENT"
	envSession   = "AGENTEXEC_SESSION"
	envPolicy    = "AGENTEXEC_POLICY"
	envWorkspace = "AGENTEXEC_WORKSPACE"
)

// maxScriptBytes is the kernel's limit on one argument (MAX_ARG_STRLEN),
// which a script run as bash -c STRING must fit.
const maxScriptBytes = 128 << 10

// runShell runs one shell-compatible invocation through exec. argv0 is
// agentexec's own argv[0]: $0 of a shell line without NAME, as bash's $0
// is its argv[0].
func runShell(ctx context.Context, argv0 string, inv *invocation, stdin, stdout, stderr *os.File) int {
	if inv.mode != modeInteractive && !sandbox.Inside() {
		// One command: the parts of its container that do not depend on
		// it are made while the policy is loaded and decides. Whatever no
		// container took (a refusal, an error) is undone on the way out.
		sandbox.Prewarm()
		defer sandbox.ReleaseAhead()
	}
	env := os.Environ()
	req, err := baseRequest(inv, env)
	if err != nil {
		return report(stderr, err)
	}
	req.Stdin, req.Stdout, req.Stderr = stdin, stdout, stderr
	req.Name = argv0
	engine := newEngine(stderr)

	ops := inv.operands
	switch inv.mode {
	case modeInteractive:
		return runSession(ctx, engine, req, stdin, stderr)
	case modeCommand:
		req.Command = ops[0]
		if len(ops) > 1 {
			req.Name, req.Args = ops[1], ops[2:]
		}
	case modeStdin:
		// The whole script is read first so that it is judged as a whole
		// before any of it runs; its commands then read an empty stdin.
		// Read one byte past what the kernel accepts as an argument, so a
		// huge stdin is refused without being held in memory.
		script, err := io.ReadAll(io.LimitReader(stdin, maxScriptBytes+1))
		if err != nil {
			return report(stderr, fmt.Errorf("reading the script from stdin: %w", err))
		}
		req.Command, req.Args, req.Stdin = string(script), ops, nil
	case modeArgv:
		req.Argv = ops
	case modeOperand:
		script, isFile, err := readScript(ops[0])
		switch {
		case err != nil:
			return report(stderr, err)
		case isFile:
			// As `bash FILE ARGS...`: $0 is FILE.
			req.Command, req.Name, req.Args = script, ops[0], ops[1:]
		case len(ops) == 1:
			// The one-string prefix form: a whole command line.
			req.Command = ops[0]
		default:
			return report(stderr, usagef("%s: no such script file; to run a program with arguments use: agentexec -- PROGRAM [ARGS...]", ops[0]))
		}
	}
	if req.Command == "" && len(req.Argv) == 0 {
		return 0 // an empty script, or -c '': bash runs nothing and succeeds
	}
	res, err := engine.Run(ctx, req)
	return finish(stderr, res, err)
}

// finish reports how one command ended and returns the status to exit
// with. When the command ran, its own status passes through, even if a step
// after it (revoking, recording the end) failed and is reported.
func finish(stderr io.Writer, res exec.Result, err error) int {
	if err == nil {
		return res.ExitCode
	}
	code := report(stderr, err)
	if res.Started {
		return res.ExitCode
	}
	return code
}

// baseRequest builds the parts of the Request every form shares: the
// context, the working directory and the child's environment.
func baseRequest(inv *invocation, env []string) (exec.Request, error) {
	get := func(flag *string, name string) string {
		if flag != nil {
			return *flag
		}
		return lookupEnv(env, name)
	}
	req := exec.Request{
		ShellOptions: inv.shellOpts,
		Intent:       get(inv.ctx.intent, envIntent),
		Agent:        get(inv.ctx.agent, envAgent),
		Session:      get(inv.ctx.session, envSession),
		PolicyFile:   get(inv.ctx.policy, envPolicy),
		Workspace:    get(inv.ctx.workspace, envWorkspace),
	}
	wd, err := os.Getwd()
	if err != nil {
		return req, fmt.Errorf("finding the working directory: %w", err)
	}
	req.Dir = wd
	if req.PolicyFile != "" && !filepath.IsAbs(req.PolicyFile) {
		req.PolicyFile = filepath.Join(wd, req.PolicyFile)
	}
	if req.Workspace != "" {
		if !filepath.IsAbs(req.Workspace) {
			req.Workspace = filepath.Join(wd, req.Workspace)
		}
		fi, err := os.Stat(req.Workspace)
		if err != nil || !fi.IsDir() {
			return req, usagef("--workspace: %s: not a directory", req.Workspace)
		}
	}
	req.Env = childEnv(env, map[string]string{
		envIntent: req.Intent, envAgent: req.Agent, envSession: req.Session,
		envPolicy: req.PolicyFile, envWorkspace: req.Workspace,
	})
	return req, nil
}

// childEnv is the command's environment: agentexec's own, unchanged,
// except that the context variables carry the values in effect, so that an
// agentexec started by the command (make inside make) runs in the same
// context. Empty values are removed.
func childEnv(env []string, ctxVars map[string]string) []string {
	out := make([]string, 0, len(env)+len(ctxVars))
	seen := map[string]bool{}
	for _, kv := range env {
		k, _, _ := cutEnv(kv)
		v, isCtx := ctxVars[k]
		switch {
		case !isCtx:
			out = append(out, kv)
		case seen[k] || v == "":
		default:
			out = append(out, k+"="+v)
		}
		seen[k] = seen[k] || isCtx
	}
	for _, k := range []string{envIntent, envAgent, envSession, envPolicy, envWorkspace} {
		if v := ctxVars[k]; v != "" && !seen[k] {
			out = append(out, k+"="+v)
		}
	}
	return out
}

func cutEnv(kv string) (k, v string, ok bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}

func lookupEnv(env []string, name string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := cutEnv(env[i]); ok && k == name {
			return v
		}
	}
	return ""
}

// readScript reads arg as a script when it names an existing regular file
// (or a symlink to one), as `bash FILE` would.
func readScript(arg string) (script string, isFile bool, err error) {
	fi, err := os.Stat(arg)
	if err != nil || !fi.Mode().IsRegular() {
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTDIR) && !errors.Is(err, unix.ENAMETOOLONG) {
			return "", false, fmt.Errorf("%s: %w", arg, err)
		}
		return "", false, nil
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		return "", true, fmt.Errorf("reading script: %w", err)
	}
	return string(b), true, nil
}

// newEngine is the pipeline the front door runs commands through: the
// fully governed one (policy, approval, credentials, audit, egress proxy,
// sandbox), configured from agentexec's own environment.
func newEngine(stderr io.Writer) *exec.Engine {
	var mu sync.Mutex
	said := map[string]bool{}
	o := exec.OptionsFromEnv(os.Environ())
	o.Stderr = stderr
	e := exec.NewEngine(o)
	// Each warning once per invocation, however many commands run.
	e.Warn = func(msg string) {
		mu.Lock()
		defer mu.Unlock()
		if !said[msg] {
			said[msg] = true
			fmt.Fprintf(stderr, "agentexec: warning: %s\n", msg)
		}
	}
	return e
}
