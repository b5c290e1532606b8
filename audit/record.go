package audit

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Schema is the value of Record.Schema for every record this package writes.
const Schema = "agentexec.audit/v1"

// Record kinds.
const (
	KindStart     = "command.start"  // written, durably, before a command runs
	KindEnd       = "command.end"    // written after it ends; StartID names the start record
	KindDenied    = "command.denied" // the policy or the approver refused the command
	KindKeyRotate = "key.rotate"     // the log key changed; signed by the old and the new key
)

// MaxIntent is the cap on Intent.Text in bytes; the digest covers the full text.
const MaxIntent = 2048

// Record is one agentexec.audit/v1 record. Field names follow the schema
// notes in docs/audit.md; zero-valued optional fields are left out of the
// serialised form. No field may hold a secret value: callers redact argv,
// intent and error text before they get here.
type Record struct {
	Schema      string          `json:"schema"`
	Kind        string          `json:"kind"`
	ID          string          `json:"id"` // UUIDv7, set by Append when empty
	Seq         uint64          `json:"seq"`
	Prev        string          `json:"prev,omitempty"` // "sha256:<hex>" of the previous entry's envelope bytes
	LogOrigin   string          `json:"log_origin"`
	Time        Times           `json:"time"`
	Host        Host            `json:"host"`
	Principal   Principal       `json:"principal"`
	Agent       Agent           `json:"agent,omitzero"`
	Intent      Intent          `json:"intent,omitzero"`
	Command     Command         `json:"command,omitzero"`
	Cwd         string          `json:"cwd,omitempty"`
	Workspace   string          `json:"workspace,omitempty"`
	Decision    Decision        `json:"decision,omitzero"`
	Sandbox     *Sandbox        `json:"sandbox,omitempty"`
	Credentials []CredentialUse `json:"credentials,omitempty"`
	Network     []Connection    `json:"network,omitempty"`
	Result      *Result         `json:"result,omitempty"`
	IO          *IO             `json:"io,omitempty"`
	StartID     string          `json:"start_id,omitempty"` // on command.end: the ID of its command.start
	Key         *KeyChange      `json:"key,omitempty"`      // on key.rotate
}

// Times are self-asserted by the host clock.
type Times struct {
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
}

// Host says where the command ran.
type Host struct {
	Hostname  string `json:"hostname,omitempty"`
	MachineID string `json:"machine_id,omitempty"`
	BootID    string `json:"boot_id,omitempty"`
	OS        string `json:"os,omitempty"`
}

// Principal is the human on whose behalf the command ran, as the OS knows it.
type Principal struct {
	User User `json:"user"`
	// LoginUID and AuditSession are the kernel's auid and ses (nil when the
	// kernel has none): the keys that join a record to auditd EXECVE events.
	LoginUID     *uint32 `json:"loginuid,omitempty"`
	AuditSession *uint32 `json:"audit_session,omitempty"`
}

// User is an OS account.
type User struct {
	Name string `json:"name,omitempty"`
	UID  uint32 `json:"uid"`
}

// Agent names the AI agent and its run or conversation.
type Agent struct {
	Name    string `json:"name,omitempty"`
	Session string `json:"session,omitempty"`
}

// Intent is the agent's stated reason, redacted by the caller and capped.
type Intent struct {
	Text      string `json:"text,omitempty"`
	SHA256    string `json:"sha256,omitempty"` // of the full redacted text, before the cap
	Truncated bool   `json:"truncated,omitempty"`
}

// Command is what the agent asked to run, exactly as given.
type Command struct {
	Line   string   `json:"line,omitempty"`   // the shell string for -c and one-string forms
	Argv   []string `json:"argv,omitempty"`   // the argv form
	Name   string   `json:"name,omitempty"`   // $0 for `-c STRING NAME ARGS...`
	Args   []string `json:"args,omitempty"`   // positional parameters
	Simple []string `json:"simple,omitempty"` // the simple commands the policy judged
	// Truncated is set when Line or Argv had to be shortened to fit an
	// entry; SHA256 then covers the full, untruncated form.
	Truncated bool   `json:"truncated,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
}

// Decision is the policy outcome.
type Decision struct {
	Verdict      string   `json:"verdict,omitempty"` // allow, deny, ask
	Rules        []string `json:"rules,omitempty"`
	Reasons      []string `json:"reasons,omitempty"`
	PolicySource string   `json:"policy_source,omitempty"`
	PolicyDigest string   `json:"policy_digest,omitempty"`
	Approver     string   `json:"approver,omitempty"`
}

// Sandbox summarises the confinement the command ran under.
type Sandbox struct {
	Profile  string   `json:"profile,omitempty"`
	Network  string   `json:"network,omitempty"` // "none", "loopback", "proxy"
	Egress   []string `json:"egress,omitempty"`  // granted destinations
	Writable []string `json:"writable,omitempty"`
	Hidden   int      `json:"hidden,omitempty"` // number of hidden paths
	Limits   Limits   `json:"limits,omitzero"`
	Degraded []string `json:"degraded,omitempty"` // protections the host could not provide
}

// Limits are the resource limits applied.
type Limits struct {
	MemoryBytes int64         `json:"memory_bytes,omitempty"`
	Pids        int64         `json:"pids,omitempty"`
	CPUs        float64       `json:"cpus,omitempty"`
	Timeout     time.Duration `json:"timeout_ns,omitempty"`
}

// CredentialUse records one injected credential; never its value.
type CredentialUse struct {
	Name        string      `json:"name"`
	Provider    string      `json:"provider,omitempty"`
	ID          string      `json:"id,omitempty"` // the provider's non-secret identifier
	Scope       []string    `json:"scope,omitempty"`
	InjectedAs  []string    `json:"injected_as,omitempty"`
	IssuedAt    time.Time   `json:"issued_at,omitzero"`
	ExpiresAt   time.Time   `json:"expires_at,omitzero"`
	Fingerprint string      `json:"fingerprint,omitempty"` // hmac-sha256 under a per-log key
	Revocation  *Revocation `json:"revocation,omitempty"`
}

// Revocation is the outcome of revoking a credential when the command ended.
type Revocation struct {
	Status string    `json:"status"` // ok, failed, unsupported, expired
	At     time.Time `json:"at,omitzero"`
	Error  string    `json:"error,omitempty"`
}

// Connection is one egress destination the proxy saw.
type Connection struct {
	Host     string `json:"host,omitempty"`
	Port     int    `json:"port,omitempty"`
	Addr     string `json:"addr,omitempty"`
	Proto    string `json:"proto,omitempty"`
	Verdict  string `json:"verdict,omitempty"`
	Rule     string `json:"rule,omitempty"`
	BytesOut int64  `json:"bytes_out,omitempty"`
	BytesIn  int64  `json:"bytes_in,omitempty"`
}

// Result is how the command ended.
type Result struct {
	ExitCode int           `json:"exit_code"`
	Signal   string        `json:"signal,omitempty"`
	Status   string        `json:"status,omitempty"` // success, failure, killed, timeout, error
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`
	MaxRSS   int64         `json:"max_rss_kb,omitempty"`
	UserTime time.Duration `json:"user_ns,omitempty"`
	SysTime  time.Duration `json:"sys_ns,omitempty"`
}

// IO holds digests of what the agent received, after redaction.
type IO struct {
	Stdout Stream `json:"stdout"`
	Stderr Stream `json:"stderr"`
}

// Stream describes one output stream.
type Stream struct {
	Bytes      int64  `json:"bytes"`
	SHA256     string `json:"sha256,omitempty"`
	Redactions int    `json:"redactions,omitempty"`
}

// KeyChange is the body of a key.rotate record.
type KeyChange struct {
	Old       string `json:"old"`        // SSH SHA256 fingerprint of the retired key
	New       string `json:"new"`        // SSH SHA256 fingerprint of the new key
	NewPublic string `json:"new_public"` // the new key as an authorized_keys line
	Reason    string `json:"reason,omitempty"`
}

// canonicalJSON serialises v with sorted object keys, no insignificant
// whitespace and no HTML escaping, so that the bytes that are signed are the
// bytes that are stored and any verifier can re-derive them.
func canonicalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	raw := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	// The encoder's output differs from the canonical form only in the
	// order of object keys, except where it escaped invalid UTF-8 as
	// \ufffd (canonicalize writes the replacement character itself):
	// sorting the members of its objects in place costs a tenth of a
	// decode into maps and a re-encode. canonicalize stays the reference,
	// and the tests hold the two equal.
	if !bytes.Contains(raw, []byte(`\ufffd`)) {
		if out, rest, ok := sortMembers(make([]byte, 0, len(raw)), raw); ok && len(rest) == 0 {
			return out, nil
		}
	}
	return canonicalize(raw)
}

// sortMembers copies the JSON value at the start of in to out with the
// members of every object sorted by key, and returns the rest of in. It
// expects the encoder's compact output and reports false on anything
// else, including keys with escapes, whose order needs decoding.
func sortMembers(out, in []byte) ([]byte, []byte, bool) {
	if len(in) == 0 {
		return out, in, false
	}
	switch in[0] {
	case '{':
		type member struct{ key, val []byte }
		var ms []member
		in = in[1:]
		if len(in) > 0 && in[0] == '}' {
			return append(out, '{', '}'), in[1:], true
		}
		for {
			if len(in) == 0 || in[0] != '"' {
				return out, in, false
			}
			end := bytes.IndexByte(in[1:], '"')
			if end < 0 || bytes.IndexByte(in[1:1+end], '\\') >= 0 {
				return out, in, false
			}
			key := in[:end+2]
			in = in[end+2:]
			if len(in) == 0 || in[0] != ':' {
				return out, in, false
			}
			val, rest, ok := sortMembers(nil, in[1:])
			if !ok || len(rest) == 0 {
				return out, in, false
			}
			ms = append(ms, member{key, val})
			in = rest[1:]
			if rest[0] == '}' {
				break
			}
			if rest[0] != ',' {
				return out, in, false
			}
		}
		// Compare without the quotes: '"' sorts after ' ' and '!'.
		slices.SortFunc(ms, func(a, b member) int { return bytes.Compare(a.key[1:len(a.key)-1], b.key[1:len(b.key)-1]) })
		out = append(out, '{')
		for i, m := range ms {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, m.key...)
			out = append(out, ':')
			out = append(out, m.val...)
		}
		return append(out, '}'), in, true
	case '[':
		out = append(out, '[')
		in = in[1:]
		if len(in) > 0 && in[0] == ']' {
			return append(out, ']'), in[1:], true
		}
		for {
			var ok bool
			if out, in, ok = sortMembers(out, in); !ok || len(in) == 0 {
				return out, in, false
			}
			c := in[0]
			out, in = append(out, c), in[1:]
			if c == ']' {
				return out, in, true
			}
			if c != ',' {
				return out, in, false
			}
		}
	case '"':
		for i := 1; i < len(in); i++ {
			switch in[i] {
			case '\\':
				i++
			case '"':
				return append(out, in[:i+1]...), in[i+1:], true
			}
		}
		return out, in, false
	default:
		// A number or literal: up to the next delimiter.
		i := 0
		for i < len(in) && in[i] != ',' && in[i] != '}' && in[i] != ']' {
			i++
		}
		if i == 0 {
			return out, in, false
		}
		return append(out, in[:i]...), in[i:], true
	}
}

// canonicalize re-encodes arbitrary JSON in canonical form. Numbers keep
// their literal text; Go's encoder sorts map keys.
func canonicalize(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after JSON value")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(tree); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// newUUIDv7 returns an RFC 9562 version 7 UUID: 48 bits of Unix
// milliseconds then random bits, so IDs sort by creation time.
func newUUIDv7(now time.Time) (string, error) {
	var u [16]byte
	if _, err := rand.Read(u[6:]); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	ms := uint64(now.UnixMilli())
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], ms)
	copy(u[0:6], ts[2:8])
	u[6] = 0x70 | (u[6] & 0x0f)
	u[8] = 0x80 | (u[8] & 0x3f)
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], nil
}

// CapIntent caps text at MaxIntent bytes (on a UTF-8 boundary) and records
// the digest of the full text, so a longer original can still be matched.
// The caller redacts secrets first.
func CapIntent(text string) Intent {
	if text == "" {
		return Intent{}
	}
	sum := sha256.Sum256([]byte(text))
	in := Intent{Text: text, SHA256: hex.EncodeToString(sum[:])}
	if len(text) > MaxIntent {
		cut := MaxIntent
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		in.Text = text[:cut]
		in.Truncated = true
	}
	return in
}

// Identity reads who and where from the OS: the user and uid, the kernel's
// loginuid and audit session id, the hostname, machine id and boot id.
// Values the OS does not provide are left empty; it never fails.
func Identity() (Principal, Host) {
	uid := uint32(os.Getuid())
	p := Principal{User: User{UID: uid}}
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		p.User.Name = u.Username
	}
	p.LoginUID = readProcUint("/proc/self/loginuid")
	p.AuditSession = readProcUint("/proc/self/sessionid")

	var h Host
	h.Hostname, _ = os.Hostname()
	h.MachineID = machineID()
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		h.BootID = strings.TrimSpace(string(b))
	}
	h.OS = runtime.GOOS
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		h.OS += " " + unix.ByteSliceToString(uts.Release[:])
	}
	return p, h
}

// readProcUint reads a kernel audit id; 4294967295 means "unset".
func readProcUint(path string) *uint32 {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil || v == 0xffffffff {
		return nil
	}
	u := uint32(v)
	return &u
}

func machineID() string {
	for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		if b, err := os.ReadFile(p); err == nil {
			if s := strings.TrimSpace(string(b)); s != "" {
				return s
			}
		}
	}
	return ""
}

// NewID returns a fresh record id (a UUIDv7), so a caller can name a
// record before it is appended: the credential provider is told the id of
// the record that will describe its credential.
func NewID() (string, error) { return newUUIDv7(time.Now()) }
