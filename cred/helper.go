package cred

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"strings"
	"syscall"
	"time"
	"unicode"
)

// Limits on what a helper may print: a response is small, and an
// unbounded read would let a broken helper exhaust memory.
const (
	maxStdout     = 1 << 20
	maxStderr     = 64 << 10
	maxShownError = 512 // characters of helper stderr kept in an error
	waitDelay     = 2 * time.Second
)

// helperRun is one run of a helper program.
type helperRun struct {
	argv    []string
	env     []string // nil: agentexec's own environment
	stdin   []byte
	timeout time.Duration
	op      string
	// known are values to redact from stderr besides those run finds
	// itself; redaction must happen before stderr is cut to length, or a
	// value straddling the cut would leave its prefix.
	known     []Secret
	knownName string
}

// helperOutput is what a helper printed.
type helperOutput struct {
	stdout, stderr []byte
}

// destroy zeroes the captured output, which may hold secrets.
func (o *helperOutput) destroy() {
	clear(o.stdout)
	clear(o.stderr)
}

// run starts the helper in its own process group, feeds stdin, and waits
// at most timeout. On timeout or cancellation the whole group is killed,
// and pipes held open by grandchildren are abandoned after waitDelay.
// On failure the returned *HelperError carries stderr redacted with
// everything the helper printed on stdout, stripped and truncated; the
// caller redacts it again with the values it knows (see failed).
func (h helperRun) run(ctx context.Context) (*helperOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	cmd := osexec.CommandContext(ctx, h.argv[0], h.argv[1:]...)
	cmd.Env = h.env
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Stdin = bytes.NewReader(h.stdin)
	out := &helperOutput{}
	stdout := &capWriter{max: maxStdout}
	stderr := &capWriter{max: maxStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		return nil
	}
	cmd.WaitDelay = waitDelay
	err := cmd.Run()
	out.stdout, out.stderr = stdout.b, stderr.b
	if err == nil && stdout.over {
		err = fmt.Errorf("%w: more than %d bytes on stdout", ErrBadResponse, maxStdout)
		return out, &HelperError{Op: h.op, ExitCode: -1, Err: err}
	}
	if err == nil {
		return out, nil
	}
	// Whatever the helper printed on stdout may be the secret it meant to
	// return; redact stderr with it before it goes anywhere.
	n := outputNeedles(out.stdout)
	addEnvironmentSecrets(n, h.env)
	for _, k := range h.known {
		_ = n.Add(h.knownName, k.Reveal())
	}
	herr := &HelperError{Op: h.op, ExitCode: -1, Stderr: clean(n.redactBytes(out.stderr))}
	n.Destroy()
	var exit *osexec.ExitError
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		herr.Err = fmt.Errorf("%w after %s", ErrTimeout, h.timeout)
	case ctx.Err() != nil:
		herr.Err = fmt.Errorf("%w: %w", ErrHelperFailed, ctx.Err())
	case errors.As(err, &exit) && exit.Exited():
		herr.ExitCode = exit.ExitCode()
		herr.Err = ErrHelperFailed
	default:
		// Start failures name the program, never its input.
		herr.Err = fmt.Errorf("%w: %w", ErrHelperFailed, err)
	}
	return out, herr
}

// addEnvironmentSecrets registers the values of credential-like variables
// (see IsCredentialName) of the helper's environment: a helper that fails
// often echoes what it was given.
func addEnvironmentSecrets(n *Needles, env []string) {
	if env == nil {
		env = os.Environ()
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if IsCredentialName(k) && len(v) >= MinSecretLen {
			_ = n.Add("environment", []byte(v))
		}
	}
}

// outputNeedles treats everything a helper printed as possibly secret:
// every line, every JSON string in it, and the value of every key=value
// line (git's credential format).
func outputNeedles(stdout []byte) *Needles {
	n := &Needles{}
	for line := range bytes.SplitSeq(stdout, []byte("\n")) {
		line = bytes.TrimSpace(line)
		_ = n.Add("helper-output", line)
		if _, v, ok := bytes.Cut(line, []byte("=")); ok {
			_ = n.Add("helper-output", v)
		}
	}
	var v any
	if json.Unmarshal(stdout, &v) == nil {
		walkStrings(v, func(s string) { _ = n.Add("helper-output", []byte(s)) })
	}
	return n
}

func walkStrings(v any, f func(string)) {
	switch t := v.(type) {
	case string:
		f(t)
	case map[string]any:
		for _, x := range t {
			walkStrings(x, f)
		}
	case []any:
		for _, x := range t {
			walkStrings(x, f)
		}
	}
}

// clean makes helper stderr safe to show on one line: control characters
// (terminal escapes) become spaces, runs of blanks collapse, and it is
// cut at maxShownError characters.
func clean(b []byte) string {
	var sb strings.Builder
	space := false
	for _, r := range string(b) {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar {
			space = sb.Len() > 0
			continue
		}
		if space {
			sb.WriteByte(' ')
			space = false
		}
		sb.WriteRune(r)
		if sb.Len() >= maxShownError {
			sb.WriteString("...")
			break
		}
	}
	return sb.String()
}

// capWriter keeps at most max bytes and notes that more came.
type capWriter struct {
	b    []byte
	max  int
	over bool
}

func (w *capWriter) Write(p []byte) (int, error) {
	n := len(p)
	room := w.max - len(w.b)
	if len(p) > room {
		w.over = true
		p = p[:max(room, 0)]
	}
	w.b = append(w.b, p...)
	return n, nil
}

var _ io.Writer = (*capWriter)(nil)
