package cred

import (
	"fmt"
	"log/slog"
)

// redacted is what every formatting path of a Secret prints.
const redacted = "[REDACTED]"

// Secret holds one secret value. Printing it in any way (fmt verbs,
// encoding/json, encoding.TextMarshaler users such as YAML encoders,
// log/slog, zerolog) yields "[REDACTED]"; only Reveal returns the bytes.
//
// A Secret is a small handle: copies share the same bytes, so Destroy on
// any copy zeroes all of them. The zero Secret is empty.
type Secret struct {
	b []byte
}

// NewSecret returns a Secret holding a copy of b. The caller should zero
// its own copy when it no longer needs it.
func NewSecret(b []byte) Secret {
	return Secret{b: append([]byte(nil), b...)}
}

// Reveal returns the secret bytes themselves, not a copy: do not keep,
// log or modify them. After Destroy they are all zero.
func (s Secret) Reveal() []byte { return s.b }

// Len is the value's length in bytes.
func (s Secret) Len() int { return len(s.b) }

// Destroy overwrites the bytes with zeros. It is best effort: copies the
// Go runtime or a consumer made are out of its reach.
func (s Secret) Destroy() {
	clear(s.b)
}

// String implements fmt.Stringer.
func (Secret) String() string { return redacted }

// GoString implements fmt.GoStringer (%#v).
func (Secret) GoString() string { return redacted }

// Format implements fmt.Formatter so that every verb and flag (%x and %q
// included, which would otherwise print the bytes) prints the placeholder.
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalJSON implements json.Marshaler.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler, which YAML, XML and many
// loggers use.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }
