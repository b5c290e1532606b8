package policy

import (
	"strings"
	"testing"
)

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pat, s string
		paths  bool
		want   bool
	}{
		{"git", "git", true, true},
		{"git", "gitk", true, false},
		{"python3*", "python3.12", true, true},
		{"gcc-?", "gcc-9", true, true},
		{"[gm]ake", "make", true, true},
		{"[!m]ake", "make", true, false},
		{`\*`, "*", false, true},
		{"/opt/*/bin", "/opt/x/bin", true, true},
		{"/opt/*", "/opt/x/bin", true, false},
		{"/opt/**", "/opt/x/bin", true, true},
		{"--y=*", "--y=a/b", false, true},
		{"*a*a*a*a*a*a*a*a*b", strings.Repeat("a", 200), false, false},
		{"**a**a**a**a**a**b", strings.Repeat("a/", 100), true, false},
	}
	for _, tt := range tests {
		if got := globMatch(tt.pat, tt.s, tt.paths); got != tt.want {
			t.Errorf("globMatch(%q, %q, %v): got %v, want %v", tt.pat, tt.s, tt.paths, got, tt.want)
		}
	}
}
