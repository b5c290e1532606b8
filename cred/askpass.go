package cred

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// AskpassName is the basename under which agentexec's binary acts as git's
// askpass program (see MaybeAskpass).
const AskpassName = "agentexec-askpass"

// AskpassSockEnv names the variable that tells the askpass program where
// the server listens.
const AskpassSockEnv = "AGENTEXEC_ASKPASS_SOCK"

const (
	askpassSockName = "askpass.sock"
	askpassMaxMsg   = 4096
	askpassIOWait   = 5 * time.Second
	maxSockPath     = 107 // sun_path holds 108 bytes including the NUL
)

type askpassRequest struct {
	Prompt string `json:"prompt"`
}

type askpassResponse struct {
	Answer json.RawMessage `json:"answer,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// AskpassEnv returns the variables that make git inside the sandbox use
// the askpass server: GIT_ASKPASS (the path, as seen by the child, of
// agentexec's binary under the name agentexec-askpass), the socket path,
// and GIT_TERMINAL_PROMPT=0 so that git fails instead of prompting.
func AskpassEnv(askpassPath, sockPath string) map[string]string {
	return map[string]string{
		"GIT_ASKPASS":         askpassPath,
		AskpassSockEnv:        sockPath,
		"GIT_TERMINAL_PROMPT": "0",
	}
}

// ServeAskpass listens on a unix socket in dir and answers askpass
// prompts with c's git credential until ctx is done or stop is called.
// stop closes the listener, waits for open connections and removes the
// socket; call it when the command ends.
//
// Only git's "Username for '<url>': " and "Password for '<url>': "
// prompts are answered, and only when the URL's scheme and host are the
// credential's (and, for the password, its user is the credential's
// username or absent); everything else is refused.
//
// The socket is reachable by whoever can enter dir: make dir private to
// the command (mode 0700, owned by the sandboxed user) and bind-mount it
// into the sandbox. Same-user processes outside the sandbox that can
// reach dir can ask too, for as long as the command runs.
func ServeAskpass(ctx context.Context, dir string, c *Credential) (sockPath string, stop func(), err error) {
	if c == nil || c.Askpass == nil {
		return "", nil, fmt.Errorf("%w: credential has no askpass answers", ErrAskpass)
	}
	sockPath = filepath.Join(dir, askpassSockName)
	if len(sockPath) > maxSockPath {
		return "", nil, fmt.Errorf("%w: socket path %s is longer than %d bytes", ErrAskpass, sockPath, maxSockPath)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sockPath, Net: "unix"})
	if err != nil {
		return "", nil, fmt.Errorf("listening for askpass: %w", err)
	}
	// Access is governed by dir; the sandboxed user may differ from ours.
	if err := os.Chmod(sockPath, 0o666); err != nil {
		l.Close()
		return "", nil, fmt.Errorf("listening for askpass: %w", err)
	}
	var wg sync.WaitGroup
	var once sync.Once
	done := make(chan struct{})
	stop = func() {
		once.Do(func() {
			close(done)
			l.Close()
			wg.Wait()
			_ = os.Remove(sockPath)
		})
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := l.AcceptUnix()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				serveAskpassConn(conn, c.Askpass)
			}()
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			stop()
		case <-done:
		}
	}()
	return sockPath, stop, nil
}

func serveAskpassConn(conn *net.UnixConn, a *Askpass) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(askpassIOWait))
	line, err := bufio.NewReaderSize(conn, askpassMaxMsg).ReadSlice('\n')
	if err != nil {
		return
	}
	var req askpassRequest
	var resp askpassResponse
	if err := json.Unmarshal(line, &req); err != nil {
		resp.Error = "malformed request"
	} else if answer, err := a.answer(req.Prompt); err != nil {
		resp.Error = err.Error()
	} else {
		resp.Answer = quoteJSON(answer)
		defer clear(resp.Answer)
	}
	b, _ := json.Marshal(resp) // RawMessage from quoteJSON is valid JSON
	b = append(b, '\n')
	_, _ = conn.Write(b)
	clear(b)
}

// answer decides what to say to one git prompt.
func (a *Askpass) answer(prompt string) ([]byte, error) {
	kind, rest, ok := strings.Cut(prompt, " for '")
	if !ok {
		return nil, fmt.Errorf("%w: not a git credential prompt", ErrAskpass)
	}
	raw, _, ok := strings.Cut(rest, "'")
	if !ok {
		return nil, fmt.Errorf("%w: not a git credential prompt", ErrAskpass)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: prompt names no url", ErrAskpass)
	}
	if u.Scheme != a.Protocol || !strings.EqualFold(u.Host, a.Host) {
		return nil, fmt.Errorf("%w: %s://%s is not the granted %s://%s", ErrAskpass, u.Scheme, u.Host, a.Protocol, a.Host)
	}
	switch kind {
	case "Username":
		if a.Username == "" {
			return nil, fmt.Errorf("%w: no username for %s", ErrAskpass, a.Host)
		}
		return []byte(a.Username), nil
	case "Password":
		if u.User != nil && a.Username != "" && u.User.Username() != a.Username {
			return nil, fmt.Errorf("%w: user %q is not the granted user", ErrAskpass, u.User.Username())
		}
		return a.Password.Reveal(), nil
	}
	return nil, fmt.Errorf("%w: not a username or password prompt", ErrAskpass)
}

// MaybeAskpass turns the process into git's askpass program when it was
// started under the name agentexec-askpass: it sends its prompt argument
// to the server named by AGENTEXEC_ASKPASS_SOCK, prints the answer on
// stdout and exits. Otherwise it returns at once. Call it first thing in
// main's init.
func MaybeAskpass() {
	if filepath.Base(os.Args[0]) != AskpassName {
		return
	}
	prompt := ""
	if len(os.Args) > 1 {
		prompt = os.Args[1]
	}
	answer, err := askpassClient(os.Getenv(AskpassSockEnv), prompt)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", AskpassName, err)
		os.Exit(1)
	}
	answer = append(answer, '\n')
	_, err = os.Stdout.Write(answer)
	clear(answer)
	if err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

// askpassClient asks the server at sock and returns the answer.
func askpassClient(sock, prompt string) ([]byte, error) {
	if sock == "" {
		return nil, fmt.Errorf("%w: %s is not set", ErrAskpass, AskpassSockEnv)
	}
	conn, err := net.DialTimeout("unix", sock, askpassIOWait)
	if err != nil {
		return nil, fmt.Errorf("connecting to the askpass server: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(askpassIOWait))
	req, _ := json.Marshal(askpassRequest{Prompt: prompt})
	if len(req) >= askpassMaxMsg {
		return nil, fmt.Errorf("%w: prompt too long", ErrAskpass)
	}
	if _, err := conn.Write(append(req, '\n')); err != nil {
		return nil, fmt.Errorf("asking the askpass server: %w", err)
	}
	line, err := bufio.NewReaderSize(conn, 64<<10).ReadSlice('\n')
	if err != nil {
		return nil, fmt.Errorf("reading the askpass answer: %w", err)
	}
	defer clear(line)
	var resp askpassResponse
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("%w: malformed answer", ErrAskpass)
	}
	if resp.Error != "" {
		return nil, errors.New(resp.Error)
	}
	var s secretJSON
	if err := s.UnmarshalJSON(resp.Answer); err != nil || !s.set {
		return nil, fmt.Errorf("%w: malformed answer", ErrAskpass)
	}
	return s.b, nil
}
