package policy

import (
	"regexp"
	"strings"
	"testing"
)

// isID and isEnvName are the regexps they document, written as loops.
func TestNameChecksMatchTheirRegexps(t *testing.T) {
	idRE := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	envRE := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	for _, s := range []string{
		"", "a", "A9", "9a", "_a", "-a", ".a", "a.b-c_d", "a b", "a/b", "é", "aé", "a\n",
		"GITHUB_TOKEN", "_X", "1X", "X-Y", strings.Repeat("a", 64), strings.Repeat("a", 65), "a\x00",
	} {
		if got, want := isID(s), idRE.MatchString(s); got != want {
			t.Errorf("isID(%q) = %v, want %v", s, got, want)
		}
		if got, want := isEnvName(s), envRE.MatchString(s); got != want {
			t.Errorf("isEnvName(%q) = %v, want %v", s, got, want)
		}
	}
}
