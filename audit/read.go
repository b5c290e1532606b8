package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/mod/sumdb/tlog"
)

// Item is one record read back from the log.
type Item struct {
	Entry    Entry
	Record   *Record
	Envelope []byte // the stored DSSE envelope bytes
}

// Scan calls fn for each committed record with seq >= from, in order, and
// returns the seq after the last one. Each envelope's signature is checked
// against the log's keys; the chain and tree are Verify's job.
func Scan(ctx context.Context, opts Options, from uint64, fn func(Item) error) (uint64, error) {
	s, release, err := openSnapshot(opts, false)
	if err != nil {
		return from, err
	}
	if err := s.loadEntries(int64(min(from, uint64(s.st.size)))); err != nil {
		release()
		return from, err
	}
	release() // the entries are in memory; fn may be slow
	next := from
	for i, e := range s.entries {
		seq := uint64(s.base) + uint64(i)
		if seq >= uint64(s.st.size) {
			break
		}
		if seq < from {
			continue
		}
		if err := ctx.Err(); err != nil {
			return next, err
		}
		it, err := s.item(seq, e, s.files[i])
		if err != nil {
			return next, err
		}
		if err := fn(it); err != nil {
			return next, err
		}
		next = seq + 1
	}
	return next, nil
}

// Size returns the number of committed records.
func Size(opts Options) (uint64, error) {
	s, release, err := openSnapshot(opts, false)
	if err != nil {
		return 0, err
	}
	defer release()
	return uint64(s.st.size), nil
}

func (s *snapshot) item(seq uint64, e []byte, file string) (Item, error) {
	env, err := ParseEnvelope(e)
	if err != nil {
		return Item{}, &VerifyError{Seq: int64(seq), File: file, Reason: "malformed envelope", Err: err}
	}
	msg := pae(env.PayloadType, env.Payload)
	ok := false
	for _, sig := range env.Signatures {
		if k := s.keys[sig.KeyID]; k != nil && ed25519Verify(k, msg, sig.Sig) {
			ok = true
		}
	}
	if !ok || env.PayloadType != PayloadType {
		return Item{}, &VerifyError{Seq: int64(seq), File: file, Reason: "signature does not verify", Err: ErrTampered}
	}
	var r Record
	if err := json.Unmarshal(env.Payload, &r); err != nil {
		return Item{}, &VerifyError{Seq: int64(seq), File: file, Reason: "payload is not a record", Err: err}
	}
	if r.Seq != seq {
		return Item{}, &VerifyError{Seq: int64(seq), File: file, Reason: fmt.Sprintf("seq is %d", r.Seq), Err: ErrTampered}
	}
	h := tlog.RecordHash(e)
	return Item{Entry: Entry{Seq: seq, ID: r.ID, LeafHash: hex.EncodeToString(h[:])}, Record: &r, Envelope: e}, nil
}

// Proof shows that one record is in the log, on its own: the record, its
// RFC 6962 inclusion proof and the signed checkpoint it is proven against.
type Proof struct {
	Seq           uint64   `json:"seq"`
	Entry         []byte   `json:"entry"`          // the DSSE envelope, base64
	RecordKey     string   `json:"record_key"`     // authorized_keys line of the key that signed the record
	Checkpoint    string   `json:"checkpoint"`     // C2SP signed note
	CheckpointSig string   `json:"checkpoint_sig"` // SSHSIG over Checkpoint
	LogKey        string   `json:"log_key"`        // authorized_keys line of the key that signed the checkpoint
	Hashes        []string `json:"inclusion_proof"`
}

// Prove returns an inclusion proof for record seq against the current
// checkpoint.
func Prove(opts Options, seq uint64) (*Proof, error) {
	s, release, err := openSnapshot(opts, false)
	if err != nil {
		return nil, err
	}
	defer release()
	if seq >= uint64(s.st.size) {
		return nil, fmt.Errorf("record %d: log has %d records: %w", seq, s.st.size, ErrNotFound)
	}
	if err := s.loadEntries(int64(seq)); err != nil {
		return nil, err
	}
	e := s.entries[seq-uint64(s.base)]
	it, err := s.item(seq, e, s.files[seq-uint64(s.base)])
	if err != nil {
		return nil, err
	}
	env, _ := ParseEnvelope(e)
	var recKey *logKey
	for _, sig := range env.Signatures {
		if k := s.keys[sig.KeyID]; k != nil {
			recKey = k
			break
		}
	}
	rp, err := tlog.ProveRecord(s.st.size, int64(seq), newDiskHashes(s.path(logDirName), s.st.size))
	if err != nil {
		return nil, fmt.Errorf("proving record %d: %w", seq, err)
	}
	sig, err := os.ReadFile(s.path(checkpointSig))
	if err != nil {
		return nil, fmt.Errorf("reading checkpoint signature: %w", err)
	}
	p := &Proof{Seq: it.Entry.Seq, Entry: e, RecordKey: recKey.authorizedLine(), Checkpoint: string(s.st.raw), CheckpointSig: string(sig), LogKey: s.cpKey.authorizedLine()}
	for _, h := range rp {
		p.Hashes = append(p.Hashes, base64.StdEncoding.EncodeToString(h[:]))
	}
	if _, err := VerifyProof(p, ""); err != nil {
		return nil, fmt.Errorf("the log produced a proof that does not verify: %w", err)
	}
	return p, nil
}

// VerifyProof checks a Proof without the log: the checkpoint's signed note
// and SSH signature, the inclusion of the entry's leaf hash under the
// checkpoint root, and the record's DSSE signature. trustedKey, when set,
// is the SSH SHA256 fingerprint the checkpoint must be signed by; without
// it the proof only shows consistency with the key it carries.
func VerifyProof(p *Proof, trustedKey string) (*Record, error) {
	bad := func(reason string, err error) error {
		return &VerifyError{Seq: int64(p.Seq), File: "proof", Reason: reason, Err: err}
	}
	logKey, err := parseAuthorized(p.LogKey)
	if err != nil {
		return nil, bad("bad log key", err)
	}
	if trustedKey != "" {
		fp, err := ParseFingerprint(trustedKey)
		if err != nil {
			return nil, err
		}
		if logKey.fingerprint != fp {
			return nil, bad("checkpoint key "+logKey.fingerprint+" is not the trusted key", ErrTampered)
		}
	}
	st, err := parseCheckpoint([]byte(p.Checkpoint), logKey)
	if err != nil {
		return nil, bad("checkpoint does not verify", err)
	}
	fp, err := sshsigVerify([]byte(p.CheckpointSig), SSHSigNamespace, []byte(p.Checkpoint))
	if err != nil || fp != logKey.fingerprint {
		return nil, bad("checkpoint SSH signature does not verify", ErrTampered)
	}
	var rp tlog.RecordProof
	for _, h := range p.Hashes {
		b, err := base64.StdEncoding.DecodeString(h)
		if err != nil || len(b) != tlog.HashSize {
			return nil, bad("malformed inclusion proof", ErrMalformed)
		}
		rp = append(rp, tlog.Hash(b))
	}
	if err := tlog.CheckRecord(rp, st.size, st.root, int64(p.Seq), tlog.RecordHash(p.Entry)); err != nil {
		return nil, bad("record is not in the checkpointed tree", ErrTampered)
	}
	recKey, err := parseAuthorized(p.RecordKey)
	if err != nil {
		return nil, bad("bad record key", err)
	}
	env, err := ParseEnvelope(p.Entry)
	if err != nil {
		return nil, bad("malformed envelope", err)
	}
	if env.PayloadType != PayloadType || !verifyEnvelope(env, recKey.pub, recKey.fingerprint) {
		return nil, bad("record signature does not verify", ErrTampered)
	}
	var r Record
	if err := json.Unmarshal(env.Payload, &r); err != nil {
		return nil, bad("payload is not a record", err)
	}
	if r.Seq != p.Seq || r.LogOrigin != st.origin {
		return nil, bad("record seq or origin does not match the proof", ErrTampered)
	}
	return &r, nil
}

func parseAuthorized(line string) (*logKey, error) {
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, &ParseError{What: "public key", Offset: -1, Reason: err.Error()}
	}
	cpk, ok := pk.(ssh.CryptoPublicKey)
	if !ok {
		return nil, &ParseError{What: "public key", Offset: -1, Reason: "not usable"}
	}
	ed, ok := cpk.CryptoPublicKey().(ed25519.PublicKey)
	if !ok {
		return nil, &ParseError{What: "public key", Offset: -1, Reason: "not ed25519"}
	}
	return newPublicKey(ed)
}

// Follow calls fn for every record from seq `from` on, then keeps polling
// for new ones every interval until ctx is done.
func Follow(ctx context.Context, opts Options, from uint64, interval time.Duration, fn func(Item) error) error {
	for {
		next, err := Scan(ctx, opts, from, fn)
		if err != nil {
			return err
		}
		from = next
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}
