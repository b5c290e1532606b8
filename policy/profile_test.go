package policy

import (
	"testing"
)

// TestBuiltinProfilesPassTheirTests runs the inline tests embedded in the
// built-in profiles, which Builtin skips at run time to keep start-up fast.
func TestBuiltinProfilesPassTheirTests(t *testing.T) {
	for _, name := range Profiles {
		t.Run(name, func(t *testing.T) {
			p, err := Builtin(name)
			if err != nil {
				t.Fatalf("Builtin(%q): %v", name, err)
			}
			passed, failures := p.RunTests()
			for _, f := range failures {
				t.Errorf("%s:%d: %s", f.File, f.Line, f.String())
			}
			if name == "workspace" && passed < 60 {
				t.Errorf("workspace profile has %d passing inline tests, want at least 60", passed)
			}
		})
	}
}
