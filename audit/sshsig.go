package audit

import (
	"bytes"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// SSHSIG, as specified in OpenSSH's PROTOCOL.sshsig, so that
// `ssh-keygen -Y verify` can check a checkpoint without agentexec.

const (
	sshsigMagic   = "SSHSIG"
	sshsigVersion = 1
	sshsigHash    = "sha512"
	armorBegin    = "-----BEGIN SSH SIGNATURE-----"
	armorEnd      = "-----END SSH SIGNATURE-----"
)

// sshsigSignedData is what the key actually signs: the magic, namespace,
// reserved field, hash name and H(message), each as an SSH string.
func sshsigSignedData(namespace string, msg []byte) []byte {
	h := sha512.Sum512(msg)
	return append([]byte(sshsigMagic), ssh.Marshal(struct {
		Namespace string
		Reserved  string
		Hash      string
		Digest    string
	}{namespace, "", sshsigHash, string(h[:])})...)
}

type sshsigBlob struct {
	Version   uint32
	PublicKey string
	Namespace string
	Reserved  string
	Hash      string
	Signature string
}

// sshsigSign returns an armored SSHSIG over msg.
func sshsigSign(k *logKey, namespace string, msg []byte) ([]byte, error) {
	signer, err := ssh.NewSignerFromSigner(edSigner(k.priv))
	if err != nil {
		return nil, err
	}
	sig, err := signer.Sign(rand.Reader, sshsigSignedData(namespace, msg))
	if err != nil {
		return nil, fmt.Errorf("ssh signing: %w", err)
	}
	blob := append([]byte(sshsigMagic), ssh.Marshal(sshsigBlob{
		Version:   sshsigVersion,
		PublicKey: string(k.ssh.Marshal()),
		Namespace: namespace,
		Hash:      sshsigHash,
		Signature: string(ssh.Marshal(sig)),
	})...)
	enc := base64.StdEncoding.EncodeToString(blob)
	var b bytes.Buffer
	b.WriteString(armorBegin + "\n")
	for len(enc) > 70 {
		b.WriteString(enc[:70] + "\n")
		enc = enc[70:]
	}
	b.WriteString(enc + "\n" + armorEnd + "\n")
	return b.Bytes(), nil
}

// sshsigVerify checks an armored SSHSIG over msg and returns the signing
// key's fingerprint.
func sshsigVerify(armored []byte, namespace string, msg []byte) (string, error) {
	bad := func(reason string) error { return &ParseError{What: "ssh signature", Offset: -1, Reason: reason} }
	text := strings.TrimSpace(string(armored))
	body, ok := strings.CutPrefix(text, armorBegin)
	if !ok {
		return "", bad("missing armor header")
	}
	body, ok = strings.CutSuffix(body, armorEnd)
	if !ok {
		return "", bad("missing armor footer")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(body), ""))
	if err != nil {
		return "", bad("not base64")
	}
	rest, ok := bytes.CutPrefix(raw, []byte(sshsigMagic))
	if !ok {
		return "", bad("missing SSHSIG magic")
	}
	var blob sshsigBlob
	if err := ssh.Unmarshal(rest, &blob); err != nil {
		return "", bad(err.Error())
	}
	if blob.Version != sshsigVersion {
		return "", bad(fmt.Sprintf("unsupported version %d", blob.Version))
	}
	if blob.Namespace != namespace {
		return "", fmt.Errorf("ssh signature namespace %q, want %q: %w", blob.Namespace, namespace, ErrTampered)
	}
	if blob.Hash != "sha512" && blob.Hash != "sha256" {
		return "", bad("unsupported hash " + blob.Hash)
	}
	pk, err := ssh.ParsePublicKey([]byte(blob.PublicKey))
	if err != nil {
		return "", bad(err.Error())
	}
	var sig ssh.Signature
	if err := ssh.Unmarshal([]byte(blob.Signature), &sig); err != nil {
		return "", bad(err.Error())
	}
	var digest []byte
	if blob.Hash == "sha512" {
		h := sha512.Sum512(msg)
		digest = h[:]
	} else {
		h := sha256Sum(msg)
		digest = h[:]
	}
	signed := append([]byte(sshsigMagic), ssh.Marshal(struct {
		Namespace string
		Reserved  string
		Hash      string
		Digest    string
	}{namespace, blob.Reserved, blob.Hash, string(digest)})...)
	if err := pk.Verify(signed, &sig); err != nil {
		return "", fmt.Errorf("ssh signature does not verify: %w", ErrTampered)
	}
	return ssh.FingerprintSHA256(pk), nil
}
