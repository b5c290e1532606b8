package e2etest

import (
	"bytes"
	"context"
	"errors"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentexec/agentexec/audit"
	"github.com/creack/pty"
)

const askPolicy = `version: 1
rules:
  - id: ask-touch
    verdict: ask
    program: touch
    reason: a human wants to see new files
`

// terminal is agentexec started with a pty as its controlling terminal
// while its stdin, stdout and stderr are pipes, as when an agent runs it
// from a session a human is watching.
type terminal struct {
	t    *testing.T
	cmd  *osexec.Cmd
	ptmx *os.File
	done chan struct{}

	mu     sync.Mutex
	screen bytes.Buffer
	stdout bytes.Buffer
	stderr bytes.Buffer
}

func (e *env) startOnTerminal(stdin string, extra []string, args ...string) *terminal {
	e.t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		e.t.Fatalf("opening a pty: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	e.t.Cleanup(cancel)
	cmd := osexec.CommandContext(ctx, bin, args...)
	cmd.Dir = e.ws
	cmd.Env = e.environ(extra)
	cmd.Stdin = strings.NewReader(stdin)
	term := &terminal{t: e.t, cmd: cmd, ptmx: ptmx, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = lockedWriter{&term.mu, &term.stdout}, lockedWriter{&term.mu, &term.stderr}
	// The pty is the child's fd 3 only so that it can become the
	// controlling terminal of the child's new session.
	cmd.ExtraFiles = []*os.File{tty}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 3}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("starting agentexec: %v", err)
	}
	tty.Close()
	go func() {
		defer close(term.done)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			term.mu.Lock()
			term.screen.Write(buf[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	e.t.Cleanup(func() { ptmx.Close() })
	return term
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (term *terminal) shown() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.screen.String()
}

// waitFor waits until the terminal shows s.
func (term *terminal) waitFor(s string) {
	term.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(term.shown(), s) {
		if time.Now().After(deadline) {
			term.t.Fatalf("the terminal never showed %q; it shows %q", s, term.shown())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (term *terminal) answer(s string) {
	term.t.Helper()
	if _, err := term.ptmx.Write([]byte(s)); err != nil {
		term.t.Fatalf("answering on the terminal: %v", err)
	}
}

// wait returns agentexec's exit status and what it wrote to its pipes.
func (term *terminal) wait() result {
	term.t.Helper()
	err := term.cmd.Wait()
	var ee *osexec.ExitError
	code := 0
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		term.t.Fatalf("agentexec: %v", err)
	}
	term.mu.Lock()
	defer term.mu.Unlock()
	return result{stdout: term.stdout.String(), stderr: term.stderr.String(), code: code}
}

const prompt = "allow it once? [y/N] "

// TestApproval: an ask is put to the human on the controlling terminal,
// never read from the agent's stdin; with CI set nobody is asked.
func TestApproval(t *testing.T) {
	tests := []struct {
		name  string
		stdin string // what the agent writes to agentexec's stdin
		reply string // what the human types on the terminal; "" is no prompt expected
		ci    bool
		want  int
	}{
		{name: "yes on the terminal", reply: "y\n", want: 0},
		{name: "no on the terminal", reply: "n\n", want: 126},
		{name: "yes on stdin, no on the terminal", stdin: "y\ny\n", reply: "n\n", want: 126},
		{name: "CI", stdin: "y\n", ci: true, want: 126},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			pol := e.policy(askPolicy)
			var extra []string
			if tt.ci {
				extra = append(extra, "CI=true")
			}
			term := e.startOnTerminal(tt.stdin, extra, "--policy", pol, "--agent", "tester", "-c", "touch approved")
			if tt.reply != "" {
				term.waitFor(prompt)
				if s := term.shown(); !strings.Contains(s, "touch approved") || !strings.Contains(s, `"ask-touch"`) {
					t.Errorf("the prompt does not show the command and the rule: %q", s)
				}
				term.answer(tt.reply)
			}
			r := term.wait()
			if r.code != tt.want {
				t.Fatalf("got %s, want exit %d", r, tt.want)
			}
			_, err := os.Stat(filepath.Join(e.ws, "approved"))
			if ran := err == nil; ran != (tt.want == 0) {
				t.Errorf("the command ran: %v, want %v", ran, tt.want == 0)
			}
			if tt.ci && strings.Contains(term.shown(), prompt) {
				t.Errorf("with CI set the terminal was asked: %q", term.shown())
			}
			if strings.Contains(r.stdout+r.stderr, prompt) {
				t.Errorf("the prompt went to the agent's pipes: stdout %q, stderr %q", r.stdout, r.stderr)
			}
			recs := e.records()
			if tt.want == 0 {
				if len(kind(recs, "command.end")) != 1 || len(kind(recs, "command.denied")) != 0 {
					t.Errorf("got records %v, want one command.end and no denial", kinds(recs))
				}
				return
			}
			if !strings.HasPrefix(r.stderr, "agentexec: ") || !strings.Contains(r.stderr, "ask-touch") {
				t.Errorf("got stderr %q, want an agentexec: line naming rule ask-touch", r.stderr)
			}
			denied := kind(recs, "command.denied")
			if len(denied) != 1 || len(kind(recs, "command.start")) != 0 {
				t.Fatalf("got records %v, want one command.denied and no start", kinds(recs))
			}
			if !slices.Contains(denied[0].Decision.Rules, "ask-touch") || denied[0].Result == nil || denied[0].Result.ExitCode != 126 {
				t.Errorf("denied record: got decision %+v result %+v, want rule ask-touch and exit 126", denied[0].Decision, denied[0].Result)
			}
		})
	}
}

// TestApprovalNoTerminal: without a controlling terminal there is no one
// to ask, so an ask is a denial, whatever stdin holds.
func TestApprovalNoTerminal(t *testing.T) {
	e := newEnv(t)
	pol := e.policy(askPolicy)
	r := e.runWith(strings.NewReader("y\n"), nil, "--policy", pol, "-c", "touch approved")
	if r.code != 126 || !strings.HasPrefix(r.stderr, "agentexec: ") || !strings.Contains(r.stderr, "ask-touch") {
		t.Errorf("got %s, want exit 126 and an agentexec: line naming rule ask-touch", r)
	}
	if _, err := os.Stat(filepath.Join(e.ws, "approved")); err == nil {
		t.Errorf("the command ran without approval")
	}
}

func kinds(recs []audit.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Kind)
	}
	return out
}
