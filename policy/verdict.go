package policy

import "fmt"

// Verdict is what a rule or a decision says about a command. Its zero value
// is Deny, so a forgotten field never allows anything.
type Verdict uint8

const (
	Deny  Verdict = iota // the command must not run
	Ask                  // a human must approve it first
	Allow                // it may run, with its rule's grants
)

func (v Verdict) String() string {
	switch v {
	case Deny:
		return "deny"
	case Ask:
		return "ask"
	case Allow:
		return "allow"
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// stricter reports whether v is stricter than w (deny > ask > allow).
func (v Verdict) stricter(w Verdict) bool { return v < w }

// MarshalText writes the lowercase name.
func (v Verdict) MarshalText() ([]byte, error) {
	if v > Allow {
		return nil, fmt.Errorf("invalid verdict %d", uint8(v))
	}
	return []byte(v.String()), nil
}

// UnmarshalText reads "allow", "ask" or "deny".
func (v *Verdict) UnmarshalText(b []byte) error {
	p, ok := parseVerdict(string(b))
	if !ok {
		return fmt.Errorf("invalid verdict %q (want allow, ask or deny)", b)
	}
	*v = p
	return nil
}

func parseVerdict(s string) (Verdict, bool) {
	switch s {
	case "allow":
		return Allow, true
	case "ask":
		return Ask, true
	case "deny":
		return Deny, true
	}
	return Deny, false
}
