package names

import (
	"regexp"
	"strings"
	"testing"
)

// ID and Env are the regexps they document, written as loops.
func TestNamesMatchTheirRegexps(t *testing.T) {
	id := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	env := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	for _, s := range []string{
		"", "a", "A9", "9a", "_a", "-a", ".a", "a.b-c_d", "a b", "a/b", "é", "aé", "a\n", "a=b",
		"GITHUB_TOKEN", "_X", "1X", "X-Y", strings.Repeat("a", 64), strings.Repeat("a", 65), "a\x00",
	} {
		if got, want := ID(s, 0), id.MatchString(s); got != want {
			t.Errorf("ID(%q, 0) = %v, want %v", s, got, want)
		}
		if got, want := ID(s, 64), id.MatchString(s) && len(s) <= 64; got != want {
			t.Errorf("ID(%q, 64) = %v, want %v", s, got, want)
		}
		if got, want := Env(s), env.MatchString(s); got != want {
			t.Errorf("Env(%q) = %v, want %v", s, got, want)
		}
	}
}
