package audit

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha512"
	"errors"
	"io"

	"filippo.io/edwards25519"
)

// Every agentexec command is a fresh process that signs six messages (a
// record, a checkpoint note and its SSHSIG, twice) and verifies one
// checkpoint. crypto/ed25519 multiplies by the base point through tables it
// builds on first use in each process: 256 affine points for signing and 64
// for verifying, one field inversion each, about 2 ms together on the
// reference machine. That is more than all the signing work it speeds up.
//
// sign and verify below are RFC 8032 Ed25519, written on
// filippo.io/edwards25519 (the library crypto/ed25519 itself was taken
// from) with a variable-base multiplication of the generator instead: a
// few tens of microseconds a call and no start-up cost. sign is
// constant-time (ScalarMult is) and its output is byte-for-byte that of
// ed25519.Sign, because Ed25519 signatures are deterministic; verify
// accepts exactly what ed25519.Verify accepts (cofactorless, canonical S).
// The tests hold both to crypto/ed25519 on random keys and messages, and
// to the RFC 8032 test vectors.

// sign returns ed25519.Sign(priv, msg).
func sign(priv ed25519.PrivateKey, msg []byte) []byte {
	if len(priv) != ed25519.PrivateKeySize {
		panic("audit: bad ed25519 private key length")
	}
	seed, pub := priv[:ed25519.SeedSize], priv[ed25519.SeedSize:]
	h := sha512.Sum512(seed)
	s, err := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
	if err != nil {
		panic("audit: " + err.Error()) // cannot happen: h[:32] is 32 bytes
	}

	mh := sha512.New()
	mh.Write(h[32:])
	mh.Write(msg)
	var digest [64]byte
	r, err := edwards25519.NewScalar().SetUniformBytes(mh.Sum(digest[:0]))
	if err != nil {
		panic("audit: " + err.Error())
	}
	R := new(edwards25519.Point).ScalarMult(r, edwards25519.NewGeneratorPoint())

	sig := make([]byte, ed25519.SignatureSize)
	copy(sig[:32], R.Bytes())
	k := challenge(sig[:32], pub, msg)
	S := edwards25519.NewScalar().MultiplyAdd(k, s, r)
	copy(sig[32:], S.Bytes())
	return sig
}

// verify reports whether sig is a valid signature of msg by pub, with
// ed25519.Verify's rules.
func verify(pub ed25519.PublicKey, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize || sig[63]&224 != 0 {
		return false
	}
	A, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return false
	}
	S, err := edwards25519.NewScalar().SetCanonicalBytes(sig[32:])
	if err != nil {
		return false
	}
	k := challenge(sig[:32], pub, msg)
	// R' = [S]B - [k]A; the signature holds if R' encodes to sig[:32].
	minusA := new(edwards25519.Point).Negate(A)
	R := new(edwards25519.Point).VarTimeMultiScalarMult(
		[]*edwards25519.Scalar{S, k},
		[]*edwards25519.Point{edwards25519.NewGeneratorPoint(), minusA})
	return string(R.Bytes()) == string(sig[:32])
}

// challenge is k = SHA-512(R || A || M) mod l.
func challenge(R, pub, msg []byte) *edwards25519.Scalar {
	h := sha512.New()
	h.Write(R)
	h.Write(pub)
	h.Write(msg)
	var digest [64]byte
	k, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(digest[:0]))
	if err != nil {
		panic("audit: " + err.Error()) // cannot happen: the digest is 64 bytes
	}
	return k
}

// edSigner is a crypto.Signer over sign, for the SSH signature of each
// checkpoint (x/crypto/ssh would otherwise call ed25519.Sign).
type edSigner ed25519.PrivateKey

func (s edSigner) Public() crypto.PublicKey {
	return ed25519.PrivateKey(s).Public()
}

func (s edSigner) Sign(_ io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != crypto.Hash(0) {
		return nil, errors.New("ed25519: cannot sign a pre-hashed message")
	}
	return sign(ed25519.PrivateKey(s), msg), nil
}
