package cred

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// gitProvider asks git's credential helpers for a host (`git credential
// fill`), non-interactively, and delivers the password through an askpass
// server (ServeAskpass) rather than the environment; only when the
// definition lists env or file_env does it also go there.
type gitProvider struct{}

// gitEnvKeep is the part of agentexec's environment git and its helpers
// get: enough to find their configuration and stores, nothing that would
// make them prompt.
var gitEnvKeep = []string{
	"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR",
	"XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS",
	"GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM", "GIT_EXEC_PATH",
	"GNUPGHOME", "PASSWORD_STORE_DIR",
}

func gitEnv() []string {
	var env []string
	for _, k := range gitEnvKeep {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	// An empty GIT_ASKPASS stops git from falling back to core.askPass or
	// SSH_ASKPASS; with GIT_TERMINAL_PROMPT=0 a missing credential is an
	// error, never a prompt.
	return append(env, "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "SSH_ASKPASS=", "GCM_INTERACTIVE=never")
}

func (gitProvider) issue(ctx context.Context, spec Spec, _ Purpose) (*Credential, error) {
	proto := spec.Protocol
	if proto == "" {
		proto = "https"
	}
	argv := []string{"git"}
	if spec.Helper != "" {
		// The empty value resets the helper list, so only this one runs.
		argv = append(argv, "-c", "credential.helper=", "-c", "credential.helper="+spec.Helper)
	}
	argv = append(argv, "-c", "credential.interactive=never", "credential", "fill")
	var in bytes.Buffer
	fmt.Fprintf(&in, "protocol=%s\nhost=%s\n", proto, spec.Host)
	if spec.Path != "" {
		fmt.Fprintf(&in, "path=%s\n", spec.Path)
	}
	in.WriteString("\n")
	out, err := helperRun{
		argv: argv, env: gitEnv(), stdin: in.Bytes(), timeout: spec.Timeout, op: "git credential fill",
	}.run(ctx)
	defer out.destroy()
	if err != nil {
		return nil, err
	}
	a := &Askpass{Protocol: proto, Host: spec.Host, Path: spec.Path}
	var expires time.Time
	for line := range bytes.SplitSeq(out.stdout, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte("="))
		if !ok {
			continue
		}
		switch string(k) {
		case "username":
			a.Username = string(v)
		case "password":
			a.Password = NewSecret(v)
		case "password_expiry_utc":
			sec, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				a.Password.Destroy()
				return nil, fmt.Errorf("%w: git credential fill: password_expiry_utc is not a number", ErrBadResponse)
			}
			expires = time.Unix(sec, 0)
		}
	}
	if a.Password.Len() == 0 {
		return nil, fmt.Errorf("%w: git credential fill returned no password for %s://%s", ErrBadResponse, proto, spec.Host)
	}
	if strings.ContainsAny(a.Username, "\x00\r\n") {
		a.Password.Destroy()
		return nil, fmt.Errorf("%w: git credential fill: bad username", ErrBadResponse)
	}
	id := proto + "://" + spec.Host
	if a.Username != "" {
		id = proto + "://" + a.Username + "@" + spec.Host
	}
	c := &Credential{ID: id, Askpass: a, ExpiresAt: expires}
	if len(spec.Env) > 0 || spec.FileEnv != "" {
		// Explicitly asked for: tools that are not git (gh, an API
		// client) get the same token in a variable or a file as well.
		deliver(c, spec, a.Password, "")
	}
	return c, nil
}
