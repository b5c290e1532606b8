package cred

import (
	"slices"
	"strings"
)

// inheritedExact are variables that grant access by themselves.
var inheritedExact = []string{
	"SSH_AUTH_SOCK", "SSH_AGENT_PID", "GPG_AGENT_INFO",
	"GITHUB_TOKEN", "GH_TOKEN", "GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN",
	"GITLAB_TOKEN", "CI_JOB_TOKEN", "NPM_TOKEN", "NODE_AUTH_TOKEN",
	"VAULT_TOKEN", "CONSUL_HTTP_TOKEN", "NOMAD_TOKEN",
	"DOCKER_AUTH_CONFIG", "KUBECONFIG", "KUBERNETES_EXEC_INFO",
	"GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_OAUTH_ACCESS_TOKEN", "CLOUDSDK_AUTH_ACCESS_TOKEN",
	"DATABASE_URL", "REDIS_URL", "PGPASSWORD", "MYSQL_PWD",
	"GIT_ASKPASS", "SSH_ASKPASS", "SUDO_ASKPASS",
	"ANTHROPIC_API_KEY", "OPENAI_API_KEY", "HF_TOKEN",
	"AGENTEXEC_ASKPASS_SOCK",
}

// inheritedPrefixes are families of credential variables.
var inheritedPrefixes = []string{
	"AWS_", "AZURE_", "ARM_CLIENT_", "OP_", "VAULT_", "GOOGLE_", "GCP_", "DIGITALOCEAN_",
	"HEROKU_", "TF_TOKEN_", "CLOUDFLARE_", "BUILDKITE_AGENT_",
}

// inheritedSuffixes catch the naming conventions for secrets.
var inheritedSuffixes = []string{
	"_TOKEN", "_SECRET", "_KEY", "_PASSWORD", "_PASSWD", "_PASS", "_PWD",
	"_CREDENTIALS", "_CREDENTIAL", "_API_KEY", "_APIKEY", "_AUTH", "_PAT",
	"_PRIVATE_KEY", "_ACCESS_KEY", "_SECRET_KEY",
}

// StripInherited returns env without the variables that carry the
// caller's own credentials (SSH_AUTH_SOCK, AWS_*, GITHUB_TOKEN,
// VAULT_TOKEN, OP_*, *_TOKEN, *_SECRET, *_KEY, *_PASSWORD and the rest
// of the lists above), except names listed in keep. Names are compared
// case-insensitively, since some programs read lower-case variants.
// Entries without "=" are dropped. The order of the rest is kept.
func StripInherited(env []string, keep []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			continue
		}
		if slices.Contains(keep, name) || !IsCredentialName(name) {
			out = append(out, kv)
		}
	}
	return out
}

// IsCredentialName reports whether StripInherited would remove a variable
// of this name.
func IsCredentialName(name string) bool {
	u := strings.ToUpper(name)
	if slices.Contains(inheritedExact, u) {
		return true
	}
	for _, p := range inheritedPrefixes {
		if strings.HasPrefix(u, p) {
			return true
		}
	}
	for _, s := range inheritedSuffixes {
		if strings.HasSuffix(u, s) {
			return true
		}
	}
	return false
}
