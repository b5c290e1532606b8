package cred

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agentexec/agentexec/internal/names"
)

// Provider names accepted in Spec.Provider.
const (
	ProviderExec    = "exec"
	ProviderAWS     = "aws-credential-process"
	ProviderGit     = "git-credential"
	ProviderEnv     = "env"
	ProviderFile    = "file"
	defaultTimeout  = 10 * time.Second
	expirySkew      = 30 * time.Second
	maxRevokeWait   = 10 * time.Second
	fileDeliveryDir = "/run/agentexec/credentials"
)

// Spec defines one credential: where it comes from, how it reaches the
// child, and its ceiling. It mirrors the policy file's credentials entry.
// The zero value issues nothing (no provider).
type Spec struct {
	// Name is the credential's name in the policy; it appears in
	// "[REDACTED:<name>]" and in the audit record.
	Name string
	// Provider is one of exec, aws-credential-process, git-credential,
	// env, file.
	Provider string

	// Command is the helper argv for exec and aws-credential-process. It
	// runs outside the sandbox with agentexec's own environment.
	Command []string
	// Host, Protocol (default https) and Path select the git credential.
	Host, Protocol, Path string
	// Helper is a credential.helper value to use instead of git's
	// configured helpers; empty means the configured ones.
	Helper string
	// Var is the env provider's source variable in agentexec's own
	// environment.
	Var string
	// File is the file provider's absolute source path. It and every
	// directory above it must be root-owned and not writable by group or
	// others (sticky directories such as /tmp excepted).
	File string
	// Timeout bounds each helper run; zero means 10s.
	Timeout time.Duration

	// Env are the variable names the value is delivered as. For exec they
	// are also the only names a helper may return.
	Env []string
	// FileEnv, when set, delivers the value as a file in the sandbox's
	// private tmpfs instead, and this variable holds its path.
	FileEnv string

	// TTL is the longest lifetime accepted; a credential that would live
	// longer is revoked and refused. Zero means no ceiling.
	TTL time.Duration
	// Scope is the widest scope accepted, sent to exec helpers as the
	// requested scope; a wider granted scope is revoked and refused. Nil
	// means no ceiling.
	Scope map[string]any
	// ShortLived refuses credentials that carry no expiry.
	ShortLived bool
}

// Purpose says, without secrets, on whose behalf and why a credential is
// issued. Exec helpers receive it so that the provider's own logs can link
// back to the audit record.
type Purpose struct {
	RecordID, Principal, Agent, Session, IntentSHA256 string
	// FingerprintKey keys Credential.Fingerprint (the audit log's own key,
	// so fingerprints correlate within one log); empty means a random key
	// held by this process.
	FingerprintKey []byte
}

// Credential is one issued credential. Only Env, Files and Askpass hold
// secrets; every other field is safe to record.
type Credential struct {
	Name, Provider string
	// ID is the provider's non-secret identifier (AccessKeyId, a lease id,
	// user@host), for the audit record.
	ID string
	// Env are secret variables for the child only.
	Env map[string]Secret
	// Files maps a path inside the sandbox's private tmpfs to its content.
	Files map[string]Secret
	// Vars are non-secret variables the child also needs (a delivered
	// file's path, AWS_ACCESS_KEY_ID, AWS_CREDENTIAL_EXPIRATION).
	Vars map[string]string
	// Askpass is set by the git-credential provider: the answers an
	// askpass server (ServeAskpass) gives git inside the sandbox.
	Askpass *Askpass

	IssuedAt, ExpiresAt time.Time
	// Granted is the scope the provider reports it granted.
	Granted map[string]any
	// Fingerprint is "hmac-sha256:" and 16 hex digits of an HMAC of the
	// secret values, to tell whether two records used the same value.
	Fingerprint string

	hidden []Secret // secrets never delivered but still redacted (revoke handles)
	revoke func(context.Context) error

	mu         sync.Mutex
	revocation *Revocation
}

// Askpass is what the askpass server answers for a git credential.
type Askpass struct {
	Protocol, Host, Path string
	Username             string
	Password             Secret
}

// Revocation statuses.
const (
	RevokeOK          = "ok"
	RevokeFailed      = "failed"
	RevokeUnsupported = "unsupported"
	RevokeExpired     = "expired"
)

// Revocation is the outcome of Credential.Revoke, for the end record.
type Revocation struct {
	Status string    `json:"status"`
	At     time.Time `json:"at"`
	Error  string    `json:"error,omitempty"` // redacted
}

// provider issues one kind of credential.
type provider interface {
	issue(ctx context.Context, spec Spec, p Purpose) (*Credential, error)
}

var providers = map[string]provider{
	ProviderExec: execProvider{},
	ProviderAWS:  awsProvider{},
	ProviderGit:  gitProvider{},
	ProviderEnv:  envProvider{},
	ProviderFile: fileProvider{},
}

// Issue validates spec and issues the credential from its provider. It
// fails closed: any error (a helper failure, a value shorter than
// MinSecretLen, a missing expiry under ShortLived, a ceiling exceeded)
// returns an *IssueError and no credential, after revoking anything the
// provider did issue. Error texts are redacted.
func Issue(ctx context.Context, spec Spec, p Purpose) (*Credential, error) {
	wrap := func(err error) error {
		return &IssueError{Name: spec.Name, Provider: spec.Provider, Err: err}
	}
	if err := Validate(spec); err != nil {
		return nil, wrap(err)
	}
	if spec.Timeout <= 0 {
		spec.Timeout = defaultTimeout
	}
	now := time.Now()
	c, err := providers[spec.Provider].issue(ctx, spec, p)
	if err != nil {
		return nil, wrap(err)
	}
	c.Name, c.Provider = spec.Name, spec.Provider
	if c.IssuedAt.IsZero() {
		c.IssuedAt = now
	}
	if err := c.check(spec, now); err != nil {
		err = c.redactErr(err)
		if r := c.Revoke(ctx); r.Status == RevokeFailed {
			err = fmt.Errorf("%w (revoking it failed too: %s)", err, r.Error)
		}
		c.Destroy()
		return nil, wrap(err)
	}
	key := p.FingerprintKey
	if len(key) == 0 {
		key = processKey()
	}
	c.Fingerprint = c.fingerprint(key)
	return c, nil
}

// check enforces the ceilings and the minimum length on an issued
// credential.
func (c *Credential) check(spec Spec, now time.Time) error {
	for _, v := range c.delivered() {
		if v.s.Len() < MinSecretLen {
			return &TooShortError{Name: spec.Name, What: v.what, Len: v.s.Len()}
		}
	}
	if spec.ShortLived && c.ExpiresAt.IsZero() {
		return fmt.Errorf("%w: the definition demands short-lived credentials (short_lived: false accepts it)", ErrNoExpiry)
	}
	if !c.ExpiresAt.IsZero() && !c.ExpiresAt.After(now) {
		return fmt.Errorf("%w: it expired at %s", ErrBadResponse, c.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if spec.TTL > 0 {
		if c.ExpiresAt.IsZero() {
			// No expiry: revocation at the end of the command is the
			// only bound; ShortLived is how to refuse these.
		} else if c.ExpiresAt.After(now.Add(spec.TTL + expirySkew)) {
			return fmt.Errorf("%w: expires at %s, beyond the ttl of %s",
				ErrCeiling, c.ExpiresAt.UTC().Format(time.RFC3339), spec.TTL)
		}
	}
	if spec.Scope != nil && c.Granted != nil && !within(c.Granted, spec.Scope) {
		return fmt.Errorf("%w: granted scope is wider than the definition's scope", ErrCeiling)
	}
	return nil
}

// within reports whether granted is no wider than ceiling: every map key
// granted exists in the ceiling and is within it, every list element
// granted appears in the ceiling's list, and scalars are equal.
func within(granted, ceiling any) bool {
	switch g := granted.(type) {
	case map[string]any:
		c, ok := ceiling.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range g {
			cv, ok := c[k]
			if !ok || !within(v, cv) {
				return false
			}
		}
		return true
	case []any:
		c, ok := ceiling.([]any)
		if !ok {
			return false
		}
		for _, v := range g {
			if !slices.ContainsFunc(c, func(cv any) bool { return within(v, cv) }) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(normalizeNumber(granted), normalizeNumber(ceiling))
	}
}

func normalizeNumber(v any) any {
	switch n := v.(type) {
	case int:
		return float64(n)
	case int64:
		return float64(n)
	case uint64:
		return float64(n)
	}
	return v
}

// Revoke ends the credential at its provider, or notes that it expired or
// cannot be revoked. It runs once; later calls return the first result.
// Call it on every path after Issue succeeded: success, failure, timeout,
// signal. A cancelled ctx still gets a bounded attempt.
func (c *Credential) Revoke(ctx context.Context) Revocation {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.revocation != nil {
		return *c.revocation
	}
	r := Revocation{}
	switch {
	case c.revoke != nil:
		// Revocation must happen even when the command was cancelled.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), maxRevokeWait)
		err := c.revoke(rctx)
		cancel()
		if err != nil {
			r.Status, r.Error = RevokeFailed, c.redactErr(err).Error()
		} else {
			r.Status = RevokeOK
		}
	case !c.ExpiresAt.IsZero() && !time.Now().Before(c.ExpiresAt):
		r.Status = RevokeExpired
	default:
		r.Status = RevokeUnsupported
	}
	r.At = time.Now().UTC()
	c.revocation = &r
	return r
}

// Destroy zeroes every secret the credential holds (best effort, see the
// package documentation). Call it after Revoke.
func (c *Credential) Destroy() {
	for _, s := range c.secrets() {
		s.Destroy()
	}
}

// secrets lists every secret the credential holds.
func (c *Credential) secrets() []Secret {
	var out []Secret
	for _, v := range c.delivered() {
		out = append(out, v.s)
	}
	for _, s := range c.hidden {
		if s.Len() >= MinSecretLen {
			out = append(out, s)
		}
	}
	return out
}

type namedSecret struct {
	what string
	s    Secret
}

// delivered lists the secrets that reach the child, in a stable order.
func (c *Credential) delivered() []namedSecret {
	var out []namedSecret
	for _, k := range sortedKeys(c.Env) {
		out = append(out, namedSecret{"variable " + k, c.Env[k]})
	}
	for _, k := range sortedKeys(c.Files) {
		out = append(out, namedSecret{"file " + k, c.Files[k]})
	}
	if c.Askpass != nil {
		out = append(out, namedSecret{"password", c.Askpass.Password})
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// redactErr returns err with its text redacted by the credential's own
// secrets, keeping the wrapped chain for errors.Is.
func (c *Credential) redactErr(err error) error {
	if err == nil {
		return nil
	}
	n, nerr := NewNeedles(c)
	if nerr != nil {
		return err
	}
	defer n.Destroy()
	return redactError(n, err)
}

// redactedError keeps err's chain but shows a redacted text.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func redactError(n *Needles, err error) error {
	msg := n.RedactString(err.Error())
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

var (
	keyOnce sync.Once
	key     []byte
)

// processKey is the fingerprint key used when the caller gives none.
func processKey() []byte {
	keyOnce.Do(func() {
		key = make([]byte, 32)
		_, _ = rand.Read(key) // never fails on Linux (crypto/rand docs)
	})
	return key
}

func (c *Credential) fingerprint(key []byte) string {
	m := hmac.New(sha256.New, key)
	for _, v := range c.delivered() {
		fmt.Fprintf(m, "%s\x00%d\x00", v.what, v.s.Len())
		m.Write(v.s.Reveal())
	}
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil)[:8])
}

// Validate checks a Spec before anything runs: the name, the provider,
// then the ordered checks in specChecks. It returns the first problem,
// wrapping ErrInvalidSpec or ErrUnknownProvider.
func Validate(s Spec) error {
	if !names.ID(s.Name, 0) {
		return fmt.Errorf("%w: name %q must be letters, digits, '.', '_' or '-'", ErrInvalidSpec, s.Name)
	}
	if providers[s.Provider] == nil {
		return fmt.Errorf("%w %q", ErrUnknownProvider, s.Provider)
	}
	for _, chk := range specChecks {
		if msg := chk(s); msg != "" {
			return fmt.Errorf("%w: %s", ErrInvalidSpec, msg)
		}
	}
	return nil
}

var specChecks = []func(Spec) string{
	func(s Spec) string {
		for _, e := range s.Env {
			if !names.Env(e) {
				return fmt.Sprintf("env name %q is not a valid variable name", e)
			}
		}
		if s.FileEnv != "" && !names.Env(s.FileEnv) {
			return fmt.Sprintf("file_env %q is not a valid variable name", s.FileEnv)
		}
		return ""
	},
	func(s Spec) string {
		switch s.Provider {
		case ProviderExec, ProviderAWS:
			if len(s.Command) == 0 || s.Command[0] == "" {
				return "command is empty"
			}
			// A relative path would run whatever sits at that path in the
			// current directory, often the agent-writable workspace, outside
			// the sandbox with agentexec's own environment.
			if strings.Contains(s.Command[0], "/") && !strings.HasPrefix(s.Command[0], "/") {
				return fmt.Sprintf("command %q must be an absolute path or a name found in PATH", s.Command[0])
			}
		case ProviderGit:
			if s.Host == "" {
				return "host is empty"
			}
			if strings.ContainsAny(s.Host+s.Path+s.Helper, "\x00\r\n") {
				return "host, path and helper must be one line each"
			}
			switch s.Protocol {
			case "", "https", "http":
			default:
				return fmt.Sprintf("protocol %q is not http or https", s.Protocol)
			}
		case ProviderEnv:
			if !names.Env(s.Var) {
				return fmt.Sprintf("var %q is not a valid variable name", s.Var)
			}
		case ProviderFile:
			if s.File == "" || s.File[0] != '/' {
				return fmt.Sprintf("file %q is not an absolute path", s.File)
			}
		}
		return ""
	},
	func(s Spec) string {
		switch s.Provider {
		case ProviderEnv, ProviderFile, ProviderExec:
			if len(s.Env) == 0 && s.FileEnv == "" && s.Provider != ProviderEnv {
				return "neither env nor file_env says how the value is delivered"
			}
		}
		return ""
	},
}

// deliver puts one value where the spec says: a file plus its path
// variable when FileEnv is set, otherwise each Env name (or fallback).
func deliver(c *Credential, spec Spec, v Secret, fallback string) {
	if spec.FileEnv != "" {
		path := fileDeliveryDir + "/" + spec.Name
		if c.Files == nil {
			c.Files = map[string]Secret{}
		}
		c.Files[path] = v
		setVar(c, spec.FileEnv, path)
		return
	}
	names := spec.Env
	if len(names) == 0 {
		names = []string{fallback}
	}
	if c.Env == nil {
		c.Env = map[string]Secret{}
	}
	for _, n := range names {
		c.Env[n] = v
	}
}

func setVar(c *Credential, k, v string) {
	if c.Vars == nil {
		c.Vars = map[string]string{}
	}
	c.Vars[k] = v
}
