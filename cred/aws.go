package cred

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// awsProvider runs an AWS credential_process command and maps its JSON
// (Version 1, AccessKeyId, SecretAccessKey, SessionToken, Expiration) to
// the AWS SDK variables. The AccessKeyId is not secret and is the
// credential's ID. STS credentials cannot be revoked one by one, so
// Revoke reports unsupported or expired; keep the TTL short.
type awsProvider struct{}

type awsProcessOutput struct {
	Version         int        `json:"Version"`
	AccessKeyID     string     `json:"AccessKeyId"`
	SecretAccessKey secretJSON `json:"SecretAccessKey"`
	SessionToken    secretJSON `json:"SessionToken"`
	Expiration      *time.Time `json:"Expiration"`
	AccountID       string     `json:"AccountId"`
}

func (awsProvider) issue(ctx context.Context, spec Spec, _ Purpose) (*Credential, error) {
	out, err := helperRun{
		argv: spec.Command, env: helperEnv(spec), timeout: spec.Timeout, op: "credential_process",
	}.run(ctx)
	defer out.destroy()
	if err != nil {
		return nil, err
	}
	var o awsProcessOutput
	if err := json.NewDecoder(bytes.NewReader(out.stdout)).Decode(&o); err != nil {
		return nil, fmt.Errorf("%w: credential_process: stdout is not a JSON object", ErrBadResponse)
	}
	fail := func(format string, args ...any) error {
		clear(o.SecretAccessKey.b)
		clear(o.SessionToken.b)
		return fmt.Errorf("%w: credential_process: "+format, append([]any{ErrBadResponse}, args...)...)
	}
	switch {
	case o.Version != 1:
		return nil, fail("Version is %d, want 1", o.Version)
	case o.AccessKeyID == "":
		return nil, fail("AccessKeyId is missing")
	case !o.SecretAccessKey.set:
		return nil, fail("SecretAccessKey is missing")
	}
	c := &Credential{ID: o.AccessKeyID}
	if o.Expiration != nil {
		c.ExpiresAt = *o.Expiration
	}
	if o.AccountID != "" {
		c.Granted = map[string]any{"account_id": o.AccountID}
	}
	secret := Secret{b: o.SecretAccessKey.b}
	var token Secret
	if o.SessionToken.set {
		token = Secret{b: o.SessionToken.b}
	}
	if spec.FileEnv != "" {
		// A shared credentials file, for tools that read one
		// (AWS_SHARED_CREDENTIALS_FILE).
		var f bytes.Buffer
		f.WriteString("[default]\naws_access_key_id = " + o.AccessKeyID + "\naws_secret_access_key = ")
		f.Write(secret.b)
		if o.SessionToken.set {
			f.WriteString("\naws_session_token = ")
			f.Write(token.b)
		}
		f.WriteString("\n")
		deliver(c, spec, Secret{b: f.Bytes()}, "")
		// The file's content is the secret; its parts are redacted too.
		c.hidden = append(c.hidden, secret)
		if o.SessionToken.set {
			c.hidden = append(c.hidden, token)
		}
		return c, nil
	}
	c.Env = map[string]Secret{"AWS_SECRET_ACCESS_KEY": secret}
	setVar(c, "AWS_ACCESS_KEY_ID", o.AccessKeyID)
	if o.SessionToken.set {
		c.Env["AWS_SESSION_TOKEN"] = token
	}
	if !c.ExpiresAt.IsZero() {
		setVar(c, "AWS_CREDENTIAL_EXPIRATION", c.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return c, nil
}
