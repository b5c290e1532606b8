package audit

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"filippo.io/edwards25519"
)

func TestBatchVerifier(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	// s + L: the same point equation, but not canonical, which
	// ed25519.Verify rejects.
	nonCanonicalS := func(sig []byte) {
		var l = [32]byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 31: 0x10}
		carry := 0
		for i := 32; i < 64; i++ {
			v := int(sig[i]) + int(l[i-32]) + carry
			sig[i], carry = byte(v), v>>8
		}
	}
	cases := []struct {
		name   string
		n      int
		spoil  map[int]func(msg, sig []byte) []byte // returns the message to check
		wantOK bool                                 // the batch equation alone holds
	}{
		{name: "one valid", n: 1, wantOK: true},
		{name: "full batch valid", n: batchSize, wantOK: true},
		{name: "flipped bit in s", n: 10, spoil: map[int]func([]byte, []byte) []byte{3: func(m, s []byte) []byte { s[40] ^= 1; return m }}},
		{name: "flipped bit in R", n: 10, spoil: map[int]func([]byte, []byte) []byte{0: func(m, s []byte) []byte { s[5] ^= 2; return m }}},
		{name: "changed message", n: 20, spoil: map[int]func([]byte, []byte) []byte{19: func(m, s []byte) []byte { return append([]byte("x"), m...) }}},
		{name: "two bad", n: batchSize, spoil: map[int]func([]byte, []byte) []byte{
			1:  func(m, s []byte) []byte { s[33] ^= 4; return m },
			60: func(m, s []byte) []byte { return m[1:] },
		}},
		{name: "other key", n: 5, spoil: map[int]func([]byte, []byte) []byte{2: func(m, s []byte) []byte { copy(s, ed25519.Sign(other, m)); return m }}},
		{name: "non-canonical s", n: 5, spoil: map[int]func([]byte, []byte) []byte{4: func(m, s []byte) []byte { nonCanonicalS(s); return m }}},
		{name: "short signature", n: 3, spoil: map[int]func([]byte, []byte) []byte{1: func(m, s []byte) []byte { return m }}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBatchVerifier(pub)
			var want []int
			for i := range c.n {
				msg := []byte(fmt.Sprintf("record %d", i))
				sig := ed25519.Sign(priv, msg)
				if f := c.spoil[i]; f != nil {
					msg = f(msg, sig)
					if c.name == "short signature" {
						sig = sig[:63]
					}
					want = append(want, i)
				}
				b.add(i, msg, sig)
			}
			if got := b.check(); got != c.wantOK {
				t.Errorf("batch equation holds: got %v, want %v", got, c.wantOK)
			}
			got := b.flush()
			if !slices.Equal(got, want) {
				t.Errorf("bad signatures: got %v, want %v", got, want)
			}
			if left := b.flush(); left != nil {
				t.Errorf("second flush: got %v, want nothing", left)
			}
		})
	}
}

// TestBatchVerifierSmallOrderKey: a key with a small-order component gets no
// shortcut, so the cofactored equation can never accept what
// ed25519.Verify rejects.
func TestBatchVerifierSmallOrderKey(t *testing.T) {
	// The identity point's encoding: order 1.
	id := edwards25519.NewIdentityPoint().Bytes()
	b := newBatchVerifier(ed25519.PublicKey(id))
	if b.a != nil {
		t.Fatalf("small-order key: got a batch point, want none")
	}
	b.add(0, []byte("m"), make([]byte, 64))
	if got := b.flush(); !slices.Equal(got, []int{0}) {
		t.Errorf("got %v, want [0]", got)
	}
}

// TestDecodeMinimalMatchesJSON holds the fast field picker to what
// a json.Decoder decodes (the reference, which ignores trailing data), on real payloads and on ones built to trip it.
func TestDecodeMinimalMatchesJSON(t *testing.T) {
	r := sampleRecord()
	r.Schema, r.Seq, r.Prev, r.LogOrigin, r.ID = Schema, 42, "sha256:ab", "o", "id-1"
	real, err := canonicalJSON(r)
	if err != nil {
		t.Fatal(err)
	}
	r.Kind, r.Key = KindKeyRotate, &KeyChange{Old: "a", New: "b"}
	rotate, _ := canonicalJSON(r)
	cases := []struct {
		name    string
		payload string
	}{
		{"record", string(real)},
		{"key.rotate", string(rotate)},
		{"empty object", `{}`},
		{"escaped prev", `{"prev":"sha256:\u0061b","seq":1}`},
		{"duplicate seq", `{"seq":1,"seq":2}`},
		{"duplicate schema", `{"schema":"a","schema":"b"}`},
		{"other case", `{"Seq":3,"SCHEMA":"x"}`},
		{"null seq", `{"seq":null}`},
		{"negative seq", `{"seq":-1}`},
		{"float seq", `{"seq":1.5}`},
		{"huge seq", `{"seq":18446744073709551616}`},
		{"string seq", `{"seq":"1"}`},
		{"number schema", `{"schema":1}`},
		{"invalid utf-8", "{\"schema\":\"a\xffb\"}"},
		{"trailing garbage", `{"seq":1}x`},
		{"broken value", `{"seq":1,"cwd":tru}`},
		{"not an object", `[1]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got, want minimalRecord
			gotErr := decodeMinimal([]byte(c.payload), &got)
			wantErr := json.NewDecoder(strings.NewReader(c.payload)).Decode(&want)
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("error: got %v, want %v", gotErr, wantErr)
			}
			if gotErr != nil {
				return
			}
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(want)
			if string(gj) != string(wj) {
				t.Errorf("got %s, want %s", gj, wj)
			}
		})
	}
}

// TestCanonicalPoint holds the byte test to a decode and re-encode.
func TestCanonicalPoint(t *testing.T) {
	encs := [][]byte{
		edwards25519.NewGeneratorPoint().Bytes(),
		edwards25519.NewIdentityPoint().Bytes(),
	}
	// y = 1 with the sign bit; y = p-1 with and without; y = p, p+1 (= 0, 1
	// non-canonically); 2^255-1.
	add := func(low byte, mid byte, top byte) {
		e := make([]byte, 32)
		for i := range e {
			e[i] = mid
		}
		e[0], e[31] = low, top
		encs = append(encs, e)
	}
	encs = append(encs, append([]byte{1}, append(make([]byte, 30), 0x80)...))
	add(0xec, 0xff, 0x7f)
	add(0xec, 0xff, 0xff)
	add(0xed, 0xff, 0x7f)
	add(0xee, 0xff, 0x7f)
	add(0xff, 0xff, 0xff)
	for i := range 200 {
		e := make([]byte, 32)
		e[0], e[1], e[31] = byte(i), byte(i*7), byte(i*13)
		encs = append(encs, e)
	}
	for _, e := range encs {
		p, err := new(edwards25519.Point).SetBytes(e)
		want := err == nil && string(p.Bytes()) == string(e)
		if got := canonicalPoint(e) && err == nil; got != want {
			t.Errorf("canonicalPoint(%x): got %v, want %v", e, got, want)
		}
	}
}
