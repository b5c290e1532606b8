package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"math/big"
	"testing"

	"golang.org/x/crypto/ssh"
)

// sign must be ed25519.Sign, byte for byte, and verify must accept and
// refuse exactly what ed25519.Verify does.
func TestSignMatchesCryptoEd25519(t *testing.T) {
	for i := 0; i < 300; i++ {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		msg := make([]byte, i*7%1200)
		rand.Read(msg)
		want := ed25519.Sign(priv, msg)
		got := sign(priv, msg)
		if string(got) != string(want) {
			t.Fatalf("key %d, %d-byte message: sign = %x, ed25519.Sign = %x", i, len(msg), got, want)
		}
		pub := priv.Public().(ed25519.PublicKey)
		if !verify(pub, msg, got) {
			t.Fatalf("key %d: verify refuses a good signature", i)
		}
		// One flipped bit anywhere in the signature, the message or the key.
		bad := append([]byte(nil), got...)
		bad[i%64] ^= 1 << (i % 8)
		if verify(pub, msg, bad) != ed25519.Verify(pub, msg, bad) {
			t.Fatalf("key %d: verify and ed25519.Verify disagree on a corrupted signature", i)
		}
		if verify(pub, msg, bad) {
			t.Fatalf("key %d: verify accepts a corrupted signature", i)
		}
		if len(msg) > 0 {
			m2 := append([]byte(nil), msg...)
			m2[i%len(m2)] ^= 0x80
			if verify(pub, m2, got) {
				t.Fatalf("key %d: verify accepts a changed message", i)
			}
		}
		p2 := append(ed25519.PublicKey(nil), pub...)
		p2[i%32] ^= 1 << (i % 7)
		if verify(p2, msg, got) != ed25519.Verify(p2, msg, got) || verify(p2, msg, got) {
			t.Fatalf("key %d: verify accepts the signature under another key", i)
		}
	}
}

// The RFC 8032 §7.1 vectors, TEST 1 and TEST 2.
func TestSignRFC8032(t *testing.T) {
	for _, v := range []struct{ seed, pub, msg, sig string }{
		{"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
			"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
			"e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
		{"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
			"3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
			"92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
	} {
		seed, _ := hex.DecodeString(v.seed)
		msg, _ := hex.DecodeString(v.msg)
		priv := ed25519.NewKeyFromSeed(seed)
		if got := hex.EncodeToString(priv[32:]); got != v.pub {
			t.Fatalf("public key %s, want %s", got, v.pub)
		}
		if got := hex.EncodeToString(sign(priv, msg)); got != v.sig {
			t.Errorf("sign(%q) = %s, want %s", v.msg, got, v.sig)
		}
		sig, _ := hex.DecodeString(v.sig)
		if !verify(ed25519.PublicKey(priv[32:]), msg, sig) {
			t.Errorf("verify refuses the RFC 8032 signature of %q", v.msg)
		}
	}
}

// A signature whose S is not reduced (S + l) passes a naive check of the
// group equation; ed25519.Verify refuses it as malleable, and so must verify.
func TestVerifyRefusesNonCanonicalS(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	pub := priv.Public().(ed25519.PublicKey)
	msg := []byte("checkpoint")
	sig := sign(priv, msg)
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	le := func(b []byte) []byte { // little-endian <-> big-endian
		r := make([]byte, len(b))
		for i := range b {
			r[len(b)-1-i] = b[i]
		}
		return r
	}
	s := new(big.Int).SetBytes(le(sig[32:]))
	s.Add(s, l)
	if s.BitLen() > 256 {
		t.Skip("S + l does not fit in 32 bytes for this key") // about one key in 2^125
	}
	sb := make([]byte, 32)
	s.FillBytes(sb)
	mall := append(append([]byte(nil), sig[:32]...), le(sb)...)
	if verify(pub, msg, mall) || ed25519.Verify(pub, msg, mall) {
		t.Fatal("a signature with S + l verifies")
	}
}

// The SSH signer over sign yields signatures x/crypto/ssh verifies.
func TestEdSignerSSH(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromSigner(edSigner(priv))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.Sign(rand.Reader, []byte("data"))
	if err != nil {
		t.Fatal(err)
	}
	if err := signer.PublicKey().Verify([]byte("data"), sig); err != nil {
		t.Fatalf("ssh refuses the signature: %v", err)
	}
	if err := signer.PublicKey().Verify([]byte("datb"), sig); err == nil {
		t.Fatal("ssh accepts the signature over other data")
	}
}

func BenchmarkSign(b *testing.B) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := make([]byte, 300)
	for b.Loop() {
		sign(priv, msg)
	}
}
