package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/mod/sumdb/note"
)

// Key file layout under the state directory.
const (
	keyDir             = "keys"
	keyFile            = "keys/log"             // OpenSSH ed25519 private key, 0600
	pubFile            = "keys/log.pub"         // authorized_keys line
	allowedSignersFile = "keys/allowed_signers" // every log key ever used, oldest first
	// SignerPrincipal is the principal under which the log key is listed in
	// allowed_signers: pass it to `ssh-keygen -Y verify -I`.
	SignerPrincipal = "agentexec-audit"
	// SSHSigNamespace is the SSHSIG namespace of checkpoint.sig.
	SSHSigNamespace = "agentexec-audit-v1"
)

// logKey is an Ed25519 key in the three forms the log needs: raw for DSSE,
// SSH for SSHSIG and allowed_signers, and a signed-note signer.
type logKey struct {
	priv        ed25519.PrivateKey // nil for public-only keys
	pub         ed25519.PublicKey
	ssh         ssh.PublicKey
	fingerprint string // "SHA256:..." as ssh-keygen -l prints it
}

func newPublicKey(pub ed25519.PublicKey) (*logKey, error) {
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return &logKey{pub: pub, ssh: sp, fingerprint: ssh.FingerprintSHA256(sp)}, nil
}

// authorizedLine is the key as one "ssh-ed25519 AAAA..." line without newline.
func (k *logKey) authorizedLine() string {
	return strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(k.ssh)), "\n")
}

// noteKey is the log key as a C2SP signed-note signer (with priv) and
// verifier of checkpoints under the origin name; sign and verify are the
// package's own Ed25519 (ed25519.go).
type noteKey struct {
	name string
	hash uint32
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

func (k *noteKey) Name() string                    { return k.name }
func (k *noteKey) KeyHash() uint32                 { return k.hash }
func (k *noteKey) Sign(msg []byte) ([]byte, error) { return sign(k.priv, msg), nil }
func (k *noteKey) Verify(msg, sig []byte) bool     { return verify(k.pub, msg, sig) }

// noteKeyHash is the C2SP key ID: SHA-256(name || 0x0A || 0x01 || pubkey)[:4].
func noteKeyHash(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', 0x01})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

func (k *logKey) noteSigner(origin string) note.Signer {
	return &noteKey{name: origin, hash: noteKeyHash(origin, k.pub), priv: k.priv}
}

func (k *logKey) noteVerifier(origin string) (note.Verifier, error) {
	// NewEd25519VerifierKey is called for its checks of the name.
	if _, err := note.NewEd25519VerifierKey(origin, k.pub); err != nil {
		return nil, err
	}
	return &noteKey{name: origin, hash: noteKeyHash(origin, k.pub), pub: k.pub}, nil
}

// checkPrivate fails closed unless path is a regular file owned by us with
// no group or other permission bits: a readable key lets anyone forge the log.
func checkPrivate(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: cannot read owner", path)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 || st.Uid != uint32(os.Geteuid()) {
		return &PermissionError{Path: path, Mode: fi.Mode(), UID: st.Uid, Want: fmt.Sprintf("a regular file, mode 0600, owner uid %d", os.Geteuid())}
	}
	return nil
}

// checkDir fails closed unless path is a directory owned by us that nobody
// else can write to or list.
func checkDir(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: cannot read owner", path)
	}
	if !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 || st.Uid != uint32(os.Geteuid()) {
		return &PermissionError{Path: path, Mode: fi.Mode(), UID: st.Uid, Want: fmt.Sprintf("a directory, mode 0700, owner uid %d", os.Geteuid())}
	}
	return nil
}

// loadPrivateKey reads the OpenSSH private key, refusing unsafe modes.
func loadPrivateKey(path string) (*logKey, error) {
	// O_NOFOLLOW: a symlink planted in place of the key would make us sign
	// with, or leak, a key chosen by someone else.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", path, ErrKeyMissing)
		}
		return nil, fmt.Errorf("opening log key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("opening log key: %w", err)
	}
	if err := checkPrivate(path, fi); err != nil {
		return nil, err
	}
	buf, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading log key: %w", err)
	}
	raw, err := ssh.ParseRawPrivateKey(buf)
	if err != nil {
		return nil, fmt.Errorf("parsing log key %s: %w", path, &ParseError{What: "OpenSSH private key", Offset: -1, Reason: err.Error()})
	}
	var priv ed25519.PrivateKey
	switch k := raw.(type) {
	case ed25519.PrivateKey:
		priv = k
	case *ed25519.PrivateKey:
		priv = *k
	default:
		return nil, fmt.Errorf("log key %s: %w", path, &ParseError{What: "OpenSSH private key", Offset: -1, Reason: fmt.Sprintf("want ed25519, got %T", raw)})
	}
	k, err := newPublicKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	k.priv = priv
	return k, nil
}

// generateKey creates a fresh key; the private half is written with O_EXCL
// so an existing key is never replaced.
func generateKey(dir, name string, comment string) (*logKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating log key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, fmt.Errorf("encoding log key: %w", err)
	}
	k, err := newPublicKey(pub)
	if err != nil {
		return nil, err
	}
	k.priv = priv
	path := filepath.Join(dir, name)
	if err := writeNewFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, fmt.Errorf("writing log key: %w", err)
	}
	return k, nil
}

// allowedSignersLine lists a key for `ssh-keygen -Y verify`.
func allowedSignersLine(k *logKey, comment string) string {
	return fmt.Sprintf("%s namespaces=%q %s %s\n", SignerPrincipal, SSHSigNamespace, k.authorizedLine(), comment)
}

// readAllowedSigners returns the Ed25519 keys listed in allowed_signers,
// oldest first.
func readAllowedSigners(path string) ([]*logKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var keys []*logKey
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		i := strings.Index(text, "ssh-ed25519 ")
		if i < 0 {
			return nil, &ParseError{What: "allowed_signers line " + fmt.Sprint(line), Offset: -1, Reason: "no ssh-ed25519 key"}
		}
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(text[i:]))
		if err != nil {
			return nil, &ParseError{What: "allowed_signers line " + fmt.Sprint(line), Offset: -1, Reason: err.Error()}
		}
		cpk, ok := pk.(ssh.CryptoPublicKey)
		if !ok {
			return nil, &ParseError{What: "allowed_signers line " + fmt.Sprint(line), Offset: -1, Reason: "not a usable key"}
		}
		edpub, ok := cpk.CryptoPublicKey().(ed25519.PublicKey)
		if !ok {
			return nil, &ParseError{What: "allowed_signers line " + fmt.Sprint(line), Offset: -1, Reason: "not an ed25519 key"}
		}
		k, err := newPublicKey(edpub)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// readPublicKey reads keys/log.pub.
func readPublicKey(path string) (*logKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil, &ParseError{What: path, Offset: -1, Reason: err.Error()}
	}
	cpk, ok := pk.(ssh.CryptoPublicKey)
	if !ok {
		return nil, &ParseError{What: path, Offset: -1, Reason: "not a usable key"}
	}
	edpub, ok := cpk.CryptoPublicKey().(ed25519.PublicKey)
	if !ok {
		return nil, &ParseError{What: path, Offset: -1, Reason: "not an ed25519 key"}
	}
	return newPublicKey(edpub)
}

// ParseFingerprint accepts a key as "SHA256:..." fingerprint and returns it
// normalised; used for pinning the log's first key.
func ParseFingerprint(s string) (string, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, "SHA256:")
	if !ok {
		return "", &ParseError{What: "key fingerprint", Offset: 0, Reason: `want "SHA256:<base64>"`}
	}
	b, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil || len(b) != sha256.Size {
		return "", &ParseError{What: "key fingerprint", Offset: 7, Reason: "not a SHA256 digest"}
	}
	return s, nil
}
