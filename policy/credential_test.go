package policy

import (
	"slices"
	"testing"
)

// TestCredentialSemantics: a credential reaches a line only through the
// rule that allowed one of its commands, and then nothing else in the line
// may see it.
func TestCredentialSemantics(t *testing.T) {
	p := mustParse(t, basePolicy)
	tests := []struct {
		name, line string
		want       Verdict
		rule       string
		creds      bool
	}{
		{"alone", "git push origin HEAD", Allow, "git-push", true},
		{"output to the workspace", "git push 2>&1 > push.log", Allow, "git-push", true},
		{"output discarded", "git push 2>/dev/null", Allow, "git-push", true},
		{"two granted commands", "git push origin a && git push origin b", Allow, "git-push", true},
		{"mixed with another program", "git push && echo done", Deny, "credential-scope", true},
		{"piped into another program", "git push 2>&1 | tail -5", Deny, "credential-scope", true},
		{"with an unknown program", "git push; $X", Deny, "credential-scope", true},
		{"expands the variable", `git push "https://x:$GITHUB_TOKEN@github.com/a/b"`, Deny, "credential-exposure", true},
		{"expands it in a substitution", `git push $(echo $GITHUB_TOKEN)`, Deny, "credential-scope", true},
		{"indirect expansion", `git push ${!GITHUB*}`, Deny, "credential-exposure", true},
		{"redirect to tmp", "git push > /tmp/log", Deny, "credential-redirect", true},
		{"redirect to unknown", `git push > "$LOG"`, Deny, "redirect-outside-workspace", true},
		{"not granted", "echo $GITHUB_TOKEN", Allow, "echo", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decideLine(t, p, tt.line)
			checkDecision(t, d, tt.want, tt.rule)
			if got := slices.Contains(d.Grants.Credentials, "github"); got != tt.creds {
				t.Errorf("got credential granted %v, want %v", got, tt.creds)
			}
		})
	}
}
