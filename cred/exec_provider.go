package cred

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"
)

// execProvider speaks agentexec's JSON helper protocol (see
// docs/credentials.md): `COMMAND... issue` reads a request on stdin and
// prints a response on stdout; `COMMAND... revoke` is called when the
// command ends.
type execProvider struct{}

// execRequest is what an exec helper receives on stdin for issue.
type execRequest struct {
	Version    int            `json:"version"`
	Name       string         `json:"name"`
	Scope      map[string]any `json:"scope,omitempty"`
	TTLSeconds int64          `json:"ttl_seconds,omitempty"`
	Env        []string       `json:"env,omitempty"`
	Purpose    purposeJSON    `json:"purpose"`
}

type purposeJSON struct {
	RecordID     string `json:"record_id,omitempty"`
	Principal    string `json:"principal,omitempty"`
	Agent        string `json:"agent,omitempty"`
	Session      string `json:"session,omitempty"`
	IntentSHA256 string `json:"intent_sha256,omitempty"`
}

// execResponse is what it prints.
type execResponse struct {
	Version      int                   `json:"version"`
	Value        secretJSON            `json:"value"`
	Env          map[string]secretJSON `json:"env"`
	ExpiresAt    *time.Time            `json:"expires_at"`
	ID           string                `json:"id"`
	Granted      map[string]any        `json:"granted"`
	RevokeHandle secretJSON            `json:"revoke_handle"`
	Revocable    *bool                 `json:"revocable"`
}

// execRevokeRequest is what the helper receives on stdin for revoke.
type execRevokeRequest struct {
	Version      int             `json:"version"`
	Name         string          `json:"name"`
	ID           string          `json:"id,omitempty"`
	RevokeHandle json.RawMessage `json:"revoke_handle,omitempty"`
}

func (execProvider) issue(ctx context.Context, spec Spec, p Purpose) (*Credential, error) {
	req := execRequest{
		Version: 1, Name: spec.Name, Scope: spec.Scope,
		TTLSeconds: int64(spec.TTL / time.Second), Env: spec.Env,
		Purpose: purposeJSON{
			RecordID: p.RecordID, Principal: p.Principal, Agent: p.Agent,
			Session: p.Session, IntentSHA256: p.IntentSHA256,
		},
	}
	in, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%w: scope: %w", ErrInvalidSpec, err)
	}
	out, err := helperRun{
		argv: append(slices.Clip(spec.Command), "issue"), env: helperEnv(spec),
		stdin: in, timeout: spec.Timeout, op: "issue",
	}.run(ctx)
	defer out.destroy()
	if err != nil {
		return nil, err
	}
	var resp execResponse
	dec := json.NewDecoder(bytes.NewReader(out.stdout))
	dec.UseNumber()
	if err := dec.Decode(&resp); err != nil {
		// The decoder's message may quote the input: keep only its kind.
		return nil, fmt.Errorf("%w: issue: stdout is not a JSON response object", ErrBadResponse)
	}
	if resp.Version != 1 {
		// Not our protocol: nothing in it, a revoke included, can be
		// trusted to mean what version 1 means.
		destroyResp(&resp)
		return nil, fmt.Errorf("%w: issue: version %d, want 1", ErrBadResponse, resp.Version)
	}
	c := &Credential{ID: resp.ID, Granted: normalizeJSON(resp.Granted)}
	if resp.RevokeHandle.set {
		c.hidden = append(c.hidden, Secret{b: resp.RevokeHandle.b})
	}
	if resp.Revocable == nil || *resp.Revocable {
		handle := c.hidden
		c.revoke = func(ctx context.Context) error {
			return execRevoke(ctx, spec, c.ID, handle, c.secrets())
		}
	}
	if err := fillExec(c, spec, &resp); err != nil {
		// The helper may have created something: undo it before
		// refusing the answer.
		if c.revoke != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), maxRevokeWait)
			_ = c.revoke(rctx)
			cancel()
		}
		destroyResp(&resp)
		n := outputNeedles(out.stdout)
		defer n.Destroy()
		return nil, redactError(n, err)
	}
	return c, nil
}

func destroyResp(r *execResponse) {
	clear(r.Value.b)
	for _, v := range r.Env {
		clear(v.b)
	}
	clear(r.RevokeHandle.b)
}

func fillExec(c *Credential, spec Spec, resp *execResponse) error {
	if resp.ExpiresAt != nil {
		c.ExpiresAt = *resp.ExpiresAt
	}
	if spec.FileEnv != "" {
		if !resp.Value.set || len(resp.Env) > 0 {
			return fmt.Errorf("%w: issue: file delivery needs exactly a \"value\"", ErrBadResponse)
		}
		deliver(c, spec, Secret{b: resp.Value.b}, "")
		return nil
	}
	if resp.Value.set {
		for _, n := range spec.Env {
			if _, ok := resp.Env[n]; !ok {
				if c.Env == nil {
					c.Env = map[string]Secret{}
				}
				c.Env[n] = Secret{b: resp.Value.b}
			}
		}
	}
	for _, k := range sortedKeys(resp.Env) {
		if !slices.Contains(spec.Env, k) {
			return fmt.Errorf("%w: issue: helper returned variable %q, which the definition does not list in env",
				ErrBadResponse, k)
		}
		if c.Env == nil {
			c.Env = map[string]Secret{}
		}
		c.Env[k] = Secret{b: resp.Env[k].b}
	}
	for _, n := range spec.Env {
		if _, ok := c.Env[n]; !ok {
			return fmt.Errorf("%w: issue: helper returned no value for %q", ErrBadResponse, n)
		}
	}
	return nil
}

func execRevoke(ctx context.Context, spec Spec, id string, handle []Secret, known []Secret) error {
	req := execRevokeRequest{Version: 1, Name: spec.Name, ID: id}
	if len(handle) > 0 {
		req.RevokeHandle = quoteJSON(handle[0].Reveal())
	}
	in, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	defer clear(in)
	defer clear(req.RevokeHandle)
	out, err := helperRun{
		argv: append(slices.Clip(spec.Command), "revoke"), env: helperEnv(spec),
		stdin: in, timeout: spec.Timeout, op: "revoke", known: known, knownName: spec.Name,
	}.run(ctx)
	out.destroy()
	return err
}

// quoteJSON encodes b as a JSON string into a fresh, zeroable slice.
func quoteJSON(b []byte) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(string(b)) // a string always encodes
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// helperEnv is agentexec's environment plus the credential's name: the
// helper is trusted configuration running outside the sandbox and may
// need agentexec's own access (VAULT_ADDR, a cloud profile).
func helperEnv(spec Spec) []string {
	return append(os.Environ(), "AGENTEXEC_CREDENTIAL="+spec.Name)
}

// normalizeJSON turns json.Number into float64 or int64-valued float64 so
// that granted scopes compare with policy scopes.
func normalizeJSON(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	return normalizeValue(m).(map[string]any)
}

func normalizeValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = normalizeValue(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = normalizeValue(x)
		}
		return out
	case json.Number:
		if f, err := t.Float64(); err == nil {
			return f
		}
		return t.String()
	}
	return v
}
