package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestCanonicalPayload(t *testing.T) {
	l, opts := newLog(t)
	r := sampleRecord()
	r.Command.Line = "echo '<a & b>' \u00e9"
	r.Result = &Result{ExitCode: 0}
	if _, err := l.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	Scan(context.Background(), opts, 0, func(it Item) error {
		env, err := ParseEnvelope(it.Envelope)
		if err != nil {
			t.Fatal(err)
		}
		again, err := canonicalize(env.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, env.Payload) {
			t.Errorf("payload is not canonical:\n got %s\nwant %s", env.Payload, again)
		}
		for _, want := range []string{`"exit_code":0`, `"line":"echo '<a & b>' é"`, `"schema":"agentexec.audit/v1"`} {
			if !bytes.Contains(env.Payload, []byte(want)) {
				t.Errorf("payload %s: want it to contain %s", env.Payload, want)
			}
		}
		if bytes.ContainsAny(env.Payload, " \n\t") && !bytes.Contains(env.Payload, []byte("echo '")) {
			t.Errorf("payload has insignificant whitespace: %s", env.Payload)
		}
		return nil
	})
}

// TestCanonicalJSONMatchesReference holds the fast canonical encoder to
// the reference (decode into maps, re-encode) on records that exercise
// every kind of value and every escape the encoder writes.
func TestCanonicalJSONMatchesReference(t *testing.T) {
	loginuid := uint32(1000)
	full := sampleRecord()
	full.ID, full.Seq, full.Prev = "0193a0c8-1234-7abc-8def-0123456789ab", 7, "sha256:00"
	full.Time = Times{Start: time.Unix(1700000000, 5).UTC(), End: time.Unix(1700000001, 0).UTC()}
	full.Principal = Principal{User: User{Name: "alice", UID: 1000}, LoginUID: &loginuid}
	full.Sandbox.Limits = Limits{MemoryBytes: 1 << 30, CPUs: 1.5, Timeout: time.Minute}
	full.Credentials[0].Revocation = &Revocation{Status: "ok", At: time.Unix(1700000002, 0).UTC()}
	full.Network = []Connection{{Host: "github.com", Port: 443, BytesIn: 10, BytesOut: 20}}
	full.Result = &Result{ExitCode: -1, Signal: "KILL", Duration: time.Second}
	full.IO = &IO{Stdout: Stream{Bytes: 3, SHA256: "ab"}}
	full.Key = &KeyChange{Old: "a", New: "b", NewPublic: "ssh-ed25519 AAAA"}
	cases := []struct {
		name string
		rec  *Record
	}{
		{"empty", &Record{}},
		{"sample", sampleRecord()},
		{"every field", full},
		{"html and unicode", &Record{Command: Command{Line: "<a & b> é \u2028 \u2029 \"q\" \\ \t\n\x01\x7f"}}},
		{"invalid utf-8", &Record{Command: Command{Line: "bad \xff\xfe bytes", Argv: []string{"\xc3", "ok"}}}},
		{"empty lists", &Record{Command: Command{Argv: []string{""}, Simple: []string{"", "[]", "{}"}}, Decision: Decision{Rules: []string{","}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := canonicalJSON(c.rec)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := json.Marshal(c.rec)
			if err != nil {
				t.Fatal(err)
			}
			want, err := canonicalize(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
	for _, in := range []string{`{"b":1,"a":{"d":[1,{"z":0,"y":"}"}],"c":null}}`, `{"a!":1,"a":2,"a ":3}`, `[]`, `{}`, `"x"`} {
		got, rest, ok := sortMembers(nil, []byte(in))
		want, err := canonicalize([]byte(in))
		if err != nil || !ok || len(rest) != 0 || !bytes.Equal(got, want) {
			t.Errorf("sortMembers(%s) = %s, %v (rest %q), want %s", in, got, ok, rest, want)
		}
	}
}

func TestEnvelopeIsDSSE(t *testing.T) {
	l, opts := newLog(t)
	appendN(t, l, 1)
	var env *Envelope
	Scan(context.Background(), opts, 0, func(it Item) error {
		var err error
		env, err = ParseEnvelope(it.Envelope)
		return err
	})
	if env.PayloadType != "application/vnd.agentexec.audit.v1+json" {
		t.Errorf("got payloadType %q", env.PayloadType)
	}
	if len(env.Signatures) != 1 || env.Signatures[0].KeyID != l.Fingerprint() {
		t.Fatalf("got signatures %+v, want one with keyid %s", env.Signatures, l.Fingerprint())
	}
	// PAE per the DSSE spec, computed here by hand.
	msg := []byte("DSSEv1 39 application/vnd.agentexec.audit.v1+json " + itoa(len(env.Payload)) + " " + string(env.Payload))
	if !ed25519.Verify(l.key.pub, msg, env.Signatures[0].Sig) {
		t.Error("signature does not verify over the DSSE PAE")
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestParseEnvelopeRejects(t *testing.T) {
	good := `{"payload":"e30=","payloadType":"x","signatures":[{"keyid":"k","sig":"AA=="}]}`
	if _, err := ParseEnvelope([]byte(good)); err != nil {
		t.Fatalf("good envelope: %v", err)
	}
	tests := []struct{ name, in string }{
		{"empty", ``},
		{"not json", `hello`},
		{"whitespace", `{"payload": "e30=","payloadType":"x","signatures":[{"keyid":"k","sig":"AA=="}]}`},
		{"reordered keys", `{"payloadType":"x","payload":"e30=","signatures":[{"keyid":"k","sig":"AA=="}]}`},
		{"unknown field", `{"payload":"e30=","payloadType":"x","signatures":[{"keyid":"k","sig":"AA=="}],"x":1}`},
		{"no signatures", `{"payload":"e30=","payloadType":"x","signatures":[]}`},
		{"url-safe base64", `{"payload":"e30_","payloadType":"x","signatures":[{"keyid":"k","sig":"AA=="}]}`},
		{"trailing data", good + `{}`},
		{"missing sig", `{"payload":"e30=","payloadType":"x","signatures":[{"keyid":"k"}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEnvelope([]byte(tc.in))
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrMalformed) {
				t.Errorf("got %v, want a *ParseError wrapping ErrMalformed", err)
			}
		})
	}
}

func TestCapIntent(t *testing.T) {
	long := strings.Repeat("é", MaxIntent) // 2 bytes each
	tests := []struct {
		name      string
		in        string
		wantLen   int
		truncated bool
	}{
		{"empty", "", 0, false},
		{"short", "say hi", 6, false},
		{"exactly the cap", strings.Repeat("a", MaxIntent), MaxIntent, false},
		{"over the cap, cut on a rune boundary", long, MaxIntent, true},
		{"over by one", strings.Repeat("a", MaxIntent) + "é", MaxIntent, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := CapIntent(tc.in)
			if len(got.Text) != tc.wantLen || got.Truncated != tc.truncated {
				t.Errorf("got %d bytes truncated=%v, want %d truncated=%v", len(got.Text), got.Truncated, tc.wantLen, tc.truncated)
			}
			if !strings.HasPrefix(tc.in, got.Text) || !utf8Valid(got.Text) {
				t.Errorf("got text that is not a valid prefix of the input")
			}
			if tc.in != "" && len(got.SHA256) != 64 {
				t.Errorf("got sha256 %q, want 64 hex digits of the full text", got.SHA256)
			}
		})
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestUUIDv7(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, _ := newUUIDv7(time.UnixMilli(1000))
	b, _ := newUUIDv7(time.UnixMilli(2000))
	if !re.MatchString(a) || !re.MatchString(b) {
		t.Fatalf("got %s, %s, want RFC 9562 version 7 UUIDs", a, b)
	}
	if a >= b {
		t.Errorf("got %s >= %s, want IDs to sort by time", a, b)
	}
}

func TestIdentity(t *testing.T) {
	p, h := Identity()
	if p.User.UID != uint32(os.Getuid()) {
		t.Errorf("got uid %d, want %d", p.User.UID, os.Getuid())
	}
	if h.Hostname == "" || !strings.HasPrefix(h.OS, "linux") {
		t.Errorf("got host %+v, want a hostname and linux", h)
	}
}

func TestProofRoundTrip(t *testing.T) {
	l, opts := newLog(t)
	appendN(t, l, 300)
	for _, seq := range []uint64{0, 1, 255, 256, 299} {
		p, err := Prove(opts, seq)
		if err != nil {
			t.Fatalf("Prove(%d): %v", seq, err)
		}
		b, _ := json.Marshal(p)
		var q Proof
		must(t, json.Unmarshal(b, &q))
		r, err := VerifyProof(&q, l.Fingerprint())
		if err != nil || r.Seq != seq {
			t.Fatalf("VerifyProof(%d): got %v, %v", seq, r, err)
		}
	}
	if _, err := Prove(opts, 300); !errors.Is(err, ErrNotFound) {
		t.Errorf("Prove past the end: got %v, want ErrNotFound", err)
	}
	p, _ := Prove(opts, 7)
	tampered := []struct {
		name string
		edit func(p *Proof)
		key  string
	}{
		{"entry changed", func(p *Proof) { p.Entry[len(p.Entry)/2] ^= 1 }, ""},
		{"proof hash changed", func(p *Proof) { p.Hashes[0] = base64.StdEncoding.EncodeToString(make([]byte, 32)) }, ""},
		{"seq changed", func(p *Proof) { p.Seq = 8 }, ""},
		{"untrusted key", func(p *Proof) {}, "SHA256:" + strings.Repeat("A", 43)},
		{"checkpoint changed", func(p *Proof) { p.Checkpoint = strings.Replace(p.Checkpoint, "\n300\n", "\n301\n", 1) }, ""},
	}
	for _, tc := range tampered {
		t.Run(tc.name, func(t *testing.T) {
			q := *p
			q.Entry = append([]byte(nil), p.Entry...)
			q.Hashes = append([]string(nil), p.Hashes...)
			tc.edit(&q)
			if _, err := VerifyProof(&q, tc.key); !errors.Is(err, ErrTampered) {
				t.Errorf("got %v, want ErrTampered", err)
			}
		})
	}
}

func TestRotateKey(t *testing.T) {
	l, opts := newLog(t)
	appendN(t, l, 3)
	first := l.Fingerprint()
	e, err := l.RotateKey(context.Background(), "scheduled")
	if err != nil {
		t.Fatalf("RotateKey: %v", err)
	}
	if e.Seq != 3 || l.Fingerprint() == first {
		t.Fatalf("got seq %d key %s, want seq 3 and a new key", e.Seq, l.Fingerprint())
	}
	appendN(t, l, 2)
	// A second process opening the log uses the new key.
	l2, err := Open(opts)
	must(t, err)
	defer l2.Close()
	if l2.Fingerprint() != l.Fingerprint() {
		t.Errorf("reopened log: got key %s, want %s", l2.Fingerprint(), l.Fingerprint())
	}
	appendN(t, l2, 1)
	rep, err := Verify(opts)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(rep.Keys) != 2 || rep.Keys[0] != first || rep.Keys[1] != l.Fingerprint() {
		t.Errorf("got keys %v, want [%s %s]", rep.Keys, first, l.Fingerprint())
	}
	opts.TrustedKey = first
	if _, err := Verify(opts); err != nil {
		t.Errorf("Verify pinned to the first key: %v", err)
	}
	opts.TrustedKey = l.Fingerprint()
	if _, err := Verify(opts); !errors.Is(err, ErrTampered) {
		t.Errorf("Verify pinned to another key: got %v, want ErrTampered", err)
	}
	if _, err := exec.LookPath("ssh-keygen"); err == nil {
		f, _ := os.Open(filepath.Join(opts.Dir, checkpointFile))
		defer f.Close()
		cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", filepath.Join(opts.Dir, allowedSignersFile), "-I", SignerPrincipal, "-n", SSHSigNamespace, "-s", filepath.Join(opts.Dir, checkpointSig))
		cmd.Stdin = f
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("ssh-keygen after rotation: %v: %s", err, out)
		}
	}
}

func TestOversizedCommandIsCapped(t *testing.T) {
	l, opts := newLog(t)
	r := sampleRecord()
	r.Command.Line = strings.Repeat("x", 200<<10)
	if _, err := l.Append(context.Background(), r); err != nil {
		t.Fatalf("Append of a 200 KiB command: %v", err)
	}
	Scan(context.Background(), opts, 0, func(it Item) error {
		c := it.Record.Command
		if !c.Truncated || len(c.SHA256) != 64 || len(c.Line) >= 200<<10 {
			t.Errorf("got truncated=%v sha256=%q len=%d, want a capped line with the full digest", c.Truncated, c.SHA256, len(c.Line))
		}
		return nil
	})
}

// TestAppendHonoursContext: an Append waiting for another process's lock
// returns when its context ends, and the handle stays usable.
func TestAppendHonoursContext(t *testing.T) {
	l, opts := newLog(t)
	other, err := Open(opts)
	must(t, err)
	defer other.Close()
	must(t, syscallFlock(other.lock, true))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := l.Append(ctx, sampleRecord()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Append while locked: got %v, want DeadlineExceeded", err)
	}
	must(t, syscallFlock(other.lock, false))
	if _, err := l.Append(context.Background(), sampleRecord()); err != nil {
		t.Fatalf("Append after the lock was freed: %v", err)
	}
	if rep, err := Verify(opts); err != nil || rep.Size != 1 {
		t.Fatalf("Verify: got %+v, %v, want 1 record", rep, err)
	}
}

func syscallFlock(f *os.File, lock bool) error {
	how := unix.LOCK_UN
	if lock {
		how = unix.LOCK_EX
	}
	return unix.Flock(int(f.Fd()), how)
}
