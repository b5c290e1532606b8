package policy

import (
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/agentexec/agentexec/internal/names"
	"go.yaml.in/yaml/v3"
)

var providers = []string{"exec", "aws-credential-process", "git-credential", "env", "file"}

// providerKeys lists the provider-specific keys each provider accepts; a
// key that does not apply is an error, so a typo never silently drops a
// restriction.
var providerKeys = map[string][]string{
	"exec":                   {"command", "env", "file_env"},
	"aws-credential-process": {"command", "env", "file_env"},
	"git-credential":         {"host", "protocol", "path", "helper", "env", "file_env"},
	"env":                    {"var", "env", "file_env"},
	"file":                   {"file", "env", "file_env"},
}

// isID reports whether s has the shape of a rule id or credential name:
// 1-64 letters, digits, '.', '_' or '-', not starting with a punctuation.
func isID(s string) bool { return names.ID(s, 64) }

func isEnvName(s string) bool { return names.Env(s) }

// forbiddenDelivery are variables a credential may not be delivered as:
// each changes what programs run or how the shell behaves.
func forbiddenDelivery(name string) bool {
	return dangerousVar(name) || name == "HOME" || name == "SHELL" || name == "USER" || name == "TMPDIR" || name == "PWD"
}

const (
	defaultCredTimeout = 10 * time.Second
	defaultCredTTL     = 15 * time.Minute
	maxCredTTL         = 12 * time.Hour
)

func (d *decoder) credential(n *yaml.Node) (Credential, error) {
	c := Credential{Line: n.Line, ShortLived: true, Timeout: defaultCredTimeout, TTL: defaultCredTTL}
	keys := map[string]*yaml.Node{}
	err := d.mapping(n, "a credential", func(key string, k, v *yaml.Node) error {
		keys[key] = k
		var err error
		switch key {
		case "name":
			c.Name, err = d.str(v, key)
			if err == nil && !isID(c.Name) {
				err = d.errf(v, key, "credential name %q must be 1-64 letters, digits, '.', '_' or '-'", c.Name)
			}
		case "provider":
			c.Provider, err = d.str(v, key)
			if err == nil && !slices.Contains(providers, c.Provider) {
				err = d.errf(v, key, "provider %q must be one of %s", c.Provider, strings.Join(providers, ", "))
			}
		case "command":
			c.Command, err = d.strs(v, key)
			if err == nil && (len(c.Command) == 0 || c.Command[0] == "") {
				err = d.errf(v, key, "command must name a program")
			}
		case "host":
			c.Host, err = d.str(v, key)
			if err == nil && !validHostname(strings.ToLower(hostOnly(c.Host))) {
				err = d.errf(v, key, "host %q is not a valid host name", c.Host)
			}
		case "protocol":
			c.Protocol, err = d.str(v, key)
			if err == nil && c.Protocol != "https" && c.Protocol != "http" {
				err = d.errf(v, key, "protocol must be https or http, got %q", c.Protocol)
			}
		case "path":
			c.Path, err = d.str(v, key)
		case "helper":
			c.Helper, err = d.str(v, key)
		case "var":
			c.Var, err = d.str(v, key)
			if err == nil && !isEnvName(c.Var) {
				err = d.errf(v, key, "var %q is not a valid variable name", c.Var)
			}
		case "file":
			c.File, err = d.str(v, key)
			if err == nil && (!filepath.IsAbs(c.File) || filepath.Clean(c.File) != c.File) {
				err = d.errf(v, key, "file %q must be an absolute, clean path", c.File)
			}
		case "timeout":
			c.Timeout, err = d.duration(v, key)
			if err == nil && c.Timeout > 5*time.Minute {
				err = d.errf(v, key, "timeout must be at most 5m")
			}
		case "env":
			c.Env, err = d.strs(v, key)
			for i, e := range c.Env {
				if err == nil {
					err = d.deliveryVar(elem(v, i), key, e)
				}
			}
		case "file_env":
			c.FileEnv, err = d.str(v, key)
			if err == nil {
				err = d.deliveryVar(v, key, c.FileEnv)
			}
		case "ttl":
			c.TTL, err = d.duration(v, key)
			if err == nil && c.TTL > maxCredTTL {
				err = d.errf(v, key, "ttl must be at most %s", maxCredTTL)
			}
		case "scope":
			if v.Kind != yaml.MappingNode {
				return d.errf(v, key, "scope must be a mapping, got %s", kindName(v))
			}
			var m map[string]any
			if err := v.Decode(&m); err != nil {
				return d.errf(v, key, "scope must map names to values: %s", oneLine(err))
			}
			c.Scope = m
		case "short_lived":
			c.ShortLived, err = d.boolean(v, key)
		default:
			return d.unknownKey(k)
		}
		return err
	})
	if err != nil {
		return c, err
	}
	if c.Name == "" {
		return c, d.errf(n, "name", "credential is missing name")
	}
	if c.Provider == "" {
		return c, d.errf(n, "provider", "credential %q is missing provider", c.Name)
	}
	for _, k := range []string{"command", "host", "protocol", "path", "helper", "var", "file", "env", "file_env"} {
		if kn, set := keys[k]; set && !slices.Contains(providerKeys[c.Provider], k) {
			return c, d.errf(kn, k, "key %q does not apply to provider %s", k, c.Provider)
		}
	}
	need := func(key string, ok bool) error {
		if ok {
			return nil
		}
		return d.errf(n, key, "credential %q (provider %s) needs %s", c.Name, c.Provider, key)
	}
	switch c.Provider {
	case "exec", "aws-credential-process":
		err = need("command", len(c.Command) > 0)
	case "git-credential":
		err = need("host", c.Host != "")
		if c.Protocol == "" {
			c.Protocol = "https"
		}
	case "env":
		err = need("var", c.Var != "")
	case "file":
		err = need("file", c.File != "")
	}
	if err != nil {
		return c, err
	}
	if len(c.Env) > 0 && c.FileEnv != "" {
		return c, d.errf(keys["file_env"], "file_env", "credential %q sets both env and file_env; choose one", c.Name)
	}
	switch c.Provider {
	case "exec", "env", "file":
		if len(c.Env) == 0 && c.FileEnv == "" {
			return c, d.errf(n, "env", "credential %q needs env (variable names) or file_env", c.Name)
		}
	}
	return c, nil
}

func hostOnly(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[:i], ":") {
		return h[:i]
	}
	return h
}

func (d *decoder) deliveryVar(n *yaml.Node, key, name string) error {
	if !isEnvName(name) {
		return d.errf(n, key, "%s %q is not a valid variable name", key, name)
	}
	if forbiddenDelivery(name) {
		return d.errf(n, key, "%s %q would change how programs run; choose another name", key, name)
	}
	return nil
}

// credentialVars are the variable names a credential reaches the child as.
func (c *Credential) vars() []string {
	out := slices.Clone(c.Env)
	if c.FileEnv != "" {
		out = append(out, c.FileEnv)
	}
	switch c.Provider {
	case "aws-credential-process":
		if len(c.Env) == 0 && c.FileEnv == "" {
			out = append(out, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
		}
	case "git-credential":
		out = append(out, "GIT_ASKPASS")
	}
	return out
}
