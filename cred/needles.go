package cred

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// MinSecretLen is the shortest value that can be issued or registered.
// Shorter values would match ordinary output too often to be masked
// reliably, so they are refused rather than silently left visible.
const MinSecretLen = 6

// minNeedleLen is the shortest derived needle (an encoding, one line of a
// multi-line value) that is registered; shorter ones are dropped.
const minNeedleLen = 6

// wrapDepth is how many characters of a needle must have matched before
// a line break inside it is skipped, and blankDepth the same for blanks
// (od separates every byte's two hex digits). This is for hex and base64,
// which tools wrap (base64 at 76 columns, xxd -p at 60) or group, but
// applies to every needle: a value printed with a line break in it is
// still replaced. Skipping
// from the first character would hold back the end of almost every output
// line. An encoding broken before that depth is still caught by the
// needle that starts one base64 group (or two hex bytes) later, so at
// most its first few characters stay visible.
const (
	wrapDepth  = 4
	blankDepth = 2
)

// needle is one byte string to replace.
type needle struct {
	s    []byte
	name int32 // index into Needles.names
}

// Needles is the set of byte strings a Redactor replaces: every secret
// value issued for a command and the encodings it is likely to appear in.
// It is safe for concurrent use. Values added after a Redactor was created
// apply to the bytes that Redactor has not yet written out.
type Needles struct {
	mu      sync.Mutex
	names   []string
	byName  map[string]int32
	needles []needle
	seen    map[[sha256.Size]byte]bool
	m       *matcher // compiled on demand, nil after a change
	gen     atomic.Uint64
}

// NewNeedles returns a set holding every secret of the given credentials
// (their environment values, file contents, askpass password and secret
// revocation handles), each under the credential's name.
func NewNeedles(creds ...*Credential) (*Needles, error) {
	n := &Needles{}
	for _, c := range creds {
		if c == nil {
			continue
		}
		for _, s := range c.secrets() {
			if err := n.Add(c.Name, s.Reveal()); err != nil {
				return nil, err
			}
		}
	}
	return n, nil
}

// Add registers value, and the encodings of it listed in
// docs/credentials.md, to be replaced with "[REDACTED:name]". A value
// shorter than MinSecretLen is refused with a *TooShortError. The bytes
// are copied.
func (n *Needles) Add(name string, value []byte) error {
	if len(value) < MinSecretLen {
		return &TooShortError{Name: name, What: "value", Len: len(value)}
	}
	forms := encodings(value)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.byName == nil {
		n.byName = map[string]int32{}
		n.seen = map[[sha256.Size]byte]bool{}
	}
	id, ok := n.byName[name]
	if !ok {
		id = int32(len(n.names))
		n.names = append(n.names, name)
		n.byName[name] = id
	}
	added := false
	for _, f := range forms {
		// Deduplicate by digest so that no map key holds a copy of the
		// secret that could not be zeroed.
		k := sha256.Sum256(f.s)
		if n.seen[k] {
			clear(f.s)
			continue
		}
		n.seen[k] = true
		f.name = id
		n.needles = append(n.needles, f)
		added = true
	}
	if added {
		n.m = nil
		n.gen.Add(1)
	}
	return nil
}

// Len is the number of distinct needles registered.
func (n *Needles) Len() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.needles)
}

// Destroy zeroes the registered needles and the compiled matcher. The set
// is empty afterwards.
func (n *Needles) Destroy() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, nd := range n.needles {
		clear(nd.s)
	}
	if n.m != nil {
		n.m.destroy()
	}
	n.needles, n.seen, n.m = nil, nil, nil
	n.gen.Add(1)
}

// RedactString returns s with every needle replaced, for text that is not
// a stream: argv, intent, provider error messages, environment names.
func (n *Needles) RedactString(s string) string {
	if n == nil {
		return s
	}
	var b strings.Builder
	r := NewRedactor(&b, n)
	_, _ = r.Write([]byte(s))
	_ = r.Close()
	return b.String()
}

// redactBytes is RedactString for byte slices.
func (n *Needles) redactBytes(p []byte) []byte {
	var b bytes.Buffer
	r := NewRedactor(&b, n)
	_, _ = r.Write(p)
	_ = r.Close()
	return b.Bytes()
}

// compiled returns the current matcher and its generation.
func (n *Needles) compiled() (*matcher, uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil {
		n.m = compile(n.needles, n.names)
	}
	return n.m, n.gen.Load()
}

// encodings returns the forms of v to replace, each a fresh slice.
func encodings(v []byte) []needle {
	var out []needle
	add := func(b []byte, _ bool) {
		if len(b) >= minNeedleLen {
			out = append(out, needle{s: b})
		}
	}
	add(bytes.Clone(v), false)

	// Each line of a multi-line value (a PEM key, a kubeconfig) may be
	// printed on its own.
	if bytes.ContainsAny(v, "\r\n") {
		for line := range bytes.SplitSeq(v, []byte("\n")) {
			line = bytes.TrimSpace(line)
			if len(line) >= MinSecretLen {
				add(bytes.Clone(line), false)
			}
		}
	}

	// Base64, standard and URL-safe, of v[k:] for k = 0, 1, 2: one of the
	// three aligns with the encoder's 3-byte groups wherever v sits in a
	// longer input (Basic auth's base64("user:" + token)). Padding and the
	// last character, which also carries bits of whatever follows, are
	// dropped. k = 3, 4, 5 start one group later, for an encoding that is
	// line-wrapped within its first group.
	for k := 0; k < 6 && k < len(v); k++ {
		part := v[k:]
		for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
			e := make([]byte, enc.EncodedLen(len(part)))
			enc.Encode(e, part)
			if len(part)%3 != 0 {
				e = e[:len(e)-1]
			}
			add(e, true)
		}
	}

	// Hex, as xxd -p, od and %x print it.
	lower := make([]byte, hex.EncodedLen(len(v)))
	hex.Encode(lower, v)
	add(lower, true)
	add(bytes.ToUpper(lower), true)
	if len(lower) > 4 {
		add(bytes.Clone(lower[4:]), true)
		add(bytes.ToUpper(lower[4:]), true)
	}

	s := string(v)
	// Percent-encoding, in both hex cases.
	for _, e := range []string{url.QueryEscape(s), url.PathEscape(s)} {
		if e != s {
			add([]byte(e), false)
			if lc := lowerPercent(e); lc != e {
				add([]byte(lc), false)
			}
		}
	}
	// JSON string bodies: Go's (HTML-safe and not) and the ASCII-only
	// form Python's json.dumps and many others produce.
	for _, e := range jsonForms(s) {
		if e != s {
			add([]byte(e), false)
		}
	}
	// Go %q, shell double quotes, printf %q / backslash quoting, XML.
	if q := strconv.Quote(s); q[1:len(q)-1] != s {
		add([]byte(q[1:len(q)-1]), false)
	}
	if q := strconv.QuoteToASCII(s); q[1:len(q)-1] != s {
		add([]byte(q[1:len(q)-1]), false)
	}
	for _, e := range []string{shellDoubleQuote(s), shellBackslash(s), html.EscapeString(s)} {
		if e != s {
			add([]byte(e), false)
		}
	}
	return out
}

func lowerPercent(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1] = bytes.ToLower(b[i+1 : i+2])[0]
			b[i+2] = bytes.ToLower(b[i+2 : i+3])[0]
			i += 2
		}
	}
	return string(b)
}

func jsonForms(s string) []string {
	var forms []string
	if b, err := json.Marshal(s); err == nil {
		forms = append(forms, string(b[1:len(b)-1]))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(s) == nil {
		b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		forms = append(forms, string(b[1:len(b)-1]))
	}
	// ASCII-only: \uXXXX (lower-case hex) for every non-ASCII rune,
	// surrogate pairs above the BMP, short escapes for the usual controls.
	var a strings.Builder
	for _, r := range s {
		switch {
		case r == '"':
			a.WriteString(`\"`)
		case r == '\\':
			a.WriteString(`\\`)
		case r == '\n':
			a.WriteString(`\n`)
		case r == '\r':
			a.WriteString(`\r`)
		case r == '\t':
			a.WriteString(`\t`)
		case r == '\b':
			a.WriteString(`\b`)
		case r == '\f':
			a.WriteString(`\f`)
		case r < 0x20 || r == 0x7f || r == utf8.RuneError:
			fmt.Fprintf(&a, `\u%04x`, r)
		case r < 0x80:
			a.WriteRune(r)
		case r > 0xffff:
			r -= 0x10000
			fmt.Fprintf(&a, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		default:
			fmt.Fprintf(&a, `\u%04x`, r)
		}
	}
	forms = append(forms, a.String())
	return forms
}

// shellDoubleQuote escapes s for the inside of a shell "..." string.
func shellDoubleQuote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\', '$', '`':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// shellBackslash is bash's printf %q for printable input: a backslash
// before every character outside a safe set.
func shellBackslash(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		safe := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte(",._+:@%/-=", c) >= 0 || c >= 0x80
		if !safe {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}
