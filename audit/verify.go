package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sys/unix"
)

// VerifyReport summarises a log that verified.
type VerifyReport struct {
	Dir         string
	Origin      string
	Size        int64    // records covered by the checkpoint
	Root        string   // base64 RFC 6962 root hash, as in the checkpoint
	Keys        []string // fingerprints of the keys that signed records, in order
	Pending     int      // complete records after the checkpoint: an append was interrupted; the next append adopts them
	TornBytes   int      // incomplete bytes after the last record: an append was interrupted; the next append sets them aside
	WitnessSize int64    // size of the newest checkpoint the witness remembers
	Duration    time.Duration
}

// snapshot is a consistent, read-only view of the log under a shared lock.
type snapshot struct {
	dir     string
	keys    map[string]*logKey // by fingerprint
	order   []*logKey          // allowed_signers order
	st      treeState
	cpKey   *logKey
	cpFile  string
	base    int64    // seq of entries[0]
	entries [][]byte // committed entries, then pending ones
	files   []string // bundle file of each entry
	pending int
	torn    int

	witness    treeState
	witnessRel string
}

// openSnapshot takes a shared lock and reads keys, checkpoint and, when
// withEntries is set, every entry bundle.
func openSnapshot(opts Options, withEntries bool) (*snapshot, func(), error) {
	dir, _, err := opts.paths()
	if err != nil {
		return nil, nil, err
	}
	if err := checkDir(dir); err != nil {
		return nil, nil, fmt.Errorf("opening audit log: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening audit log: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_SH); err != nil {
		lock.Close()
		return nil, nil, fmt.Errorf("locking audit log: %w", err)
	}
	release := func() { lock.Close() }
	s := &snapshot{dir: dir, keys: map[string]*logKey{}}
	if err := s.load(withEntries); err != nil {
		release()
		return nil, nil, err
	}
	return s, release, nil
}

func (s *snapshot) path(rel string) string { return filepath.Join(s.dir, rel) }

func (s *snapshot) load(withEntries bool) error {
	keys, err := readAllowedSigners(s.path(allowedSignersFile))
	if err != nil {
		return &VerifyError{Seq: -1, File: allowedSignersFile, Reason: "cannot read the log's public keys", Err: err}
	}
	for _, k := range keys {
		s.keys[k.fingerprint] = k
	}
	s.order = keys
	if err := s.loadCheckpoint(); err != nil {
		return err
	}
	if withEntries {
		return s.loadEntries(0)
	}
	return nil
}

// openNote opens a signed note with whichever listed key signed it.
func (s *snapshot) openNote(raw []byte) (treeState, *logKey, error) {
	var last error = ErrTampered
	for _, k := range s.order {
		st, err := parseCheckpoint(raw, k)
		if err == nil {
			return st, k, nil
		}
		if errors.Is(err, ErrMalformed) {
			return treeState{}, nil, err
		}
		last = err
	}
	return treeState{}, nil, last
}

func (s *snapshot) loadCheckpoint() error {
	raw, err := os.ReadFile(s.path(checkpointFile))
	if err != nil {
		return &VerifyError{Seq: -1, File: checkpointFile, Reason: "checkpoint unreadable", Err: err}
	}
	sig, err := os.ReadFile(s.path(checkpointSig))
	if err != nil {
		return &VerifyError{Seq: -1, File: checkpointSig, Reason: "checkpoint signature unreadable", Err: err}
	}
	s.cpFile = checkpointFile
	fp, sigErr := sshsigVerify(sig, SSHSigNamespace, raw)
	if sigErr != nil {
		// An append may have died at its commit point, after the
		// signature moved but before checkpoint.next did.
		if next, err := os.ReadFile(s.path(checkpointNext)); err == nil {
			if fp2, err := sshsigVerify(sig, SSHSigNamespace, next); err == nil {
				raw, fp, sigErr, s.cpFile = next, fp2, nil, checkpointNext
			}
		}
	}
	st, key, err := s.openNote(raw)
	if err != nil {
		return &VerifyError{Seq: -1, File: s.cpFile, Reason: "checkpoint signature does not verify", Err: err}
	}
	if sigErr != nil {
		return &VerifyError{Seq: -1, File: checkpointSig, Reason: "SSH signature does not match the checkpoint", Err: sigErr}
	}
	if fp != key.fingerprint {
		return &VerifyError{Seq: -1, File: checkpointSig, Reason: "SSH signature is by another key than the checkpoint's", Err: ErrTampered}
	}
	s.st, s.cpKey = st, key
	return nil
}

// loadEntries reads the bundles that the checkpoint covers, plus any
// complete records an interrupted append left after them.
func (s *snapshot) loadEntries(from int64) error {
	n := s.st.size
	full := n / tileWidth
	first := min(from, n) / tileWidth
	s.base = first * tileWidth
	for b := first; b < full; b++ {
		rel := bundlePath(b, tileWidth)
		data, err := os.ReadFile(s.path(filepath.Join(logDirName, rel)))
		if err != nil {
			return &VerifyError{Seq: b * tileWidth, File: "log/" + rel, Reason: "entry bundle missing or unreadable: log truncated behind its checkpoint", Err: err}
		}
		entries, used := parseBundlePrefix(data)
		if used != len(data) {
			return &VerifyError{Seq: b*tileWidth + int64(len(entries)), File: "log/" + rel, Reason: "entry bundle has a truncated record", Err: ErrMalformed}
		}
		s.add(entries, "log/"+rel)
	}
	W := int(n % tileWidth)
	var rel string
	var data []byte
	for _, w := range []int{W, W + 1} {
		if w == 0 {
			continue
		}
		p := bundlePath(full, w)
		b, err := os.ReadFile(s.path(filepath.Join(logDirName, p)))
		if err != nil {
			if isNotExist(err) {
				continue
			}
			return &VerifyError{Seq: full * tileWidth, File: "log/" + p, Reason: "entry bundle unreadable", Err: err}
		}
		if rel != "" {
			return &VerifyError{Seq: full * tileWidth, File: "log/" + p, Reason: "two versions of the open entry bundle", Err: ErrTampered}
		}
		rel, data = p, b
	}
	if rel == "" && W > 0 {
		return &VerifyError{Seq: full * tileWidth, File: "log/" + bundlePath(full, W), Reason: "entry bundle missing: log truncated behind its checkpoint", Err: ErrTampered}
	}
	entries, used := parseBundlePrefix(data)
	if len(entries) > W {
		s.pending = len(entries) - W
	}
	s.torn = len(data) - used
	s.add(entries, "log/"+rel)
	return nil
}

func (s *snapshot) add(entries [][]byte, file string) {
	for _, e := range entries {
		s.entries = append(s.entries, e)
		s.files = append(s.files, file)
	}
}

// checked is what the parallel pass learns about one entry.
type checked struct {
	rec     minimalRecord
	signers []string
	sum     [32]byte
	leaf    tlog.Hash
	err     *VerifyError
}

// minimalRecord is the part of a record that verification needs.
type minimalRecord struct {
	Schema    string     `json:"schema"`
	Kind      string     `json:"kind"`
	ID        string     `json:"id"`
	Seq       *uint64    `json:"seq"`
	Prev      string     `json:"prev"`
	LogOrigin string     `json:"log_origin"`
	Key       *KeyChange `json:"key"`
}

// checkOne checks entry i. A lone signature by a known key is queued on
// that key's batch verifier in bv rather than checked here; the caller
// flushes bv and records which entries failed.
func (s *snapshot) checkOne(i int, e []byte, bv map[string]*batchVerifier) checked {
	var c checked
	c.sum = sha256.Sum256(e)
	c.leaf = tlog.RecordHash(e)
	fail := func(reason string, err error) checked {
		c.err = &VerifyError{Seq: int64(i), File: s.fileOf(int64(i)), Reason: reason, Err: err}
		return c
	}
	env, err := ParseEnvelope(e)
	if err != nil {
		return fail("malformed envelope", err)
	}
	if env.PayloadType != PayloadType {
		return fail(fmt.Sprintf("payload type %q", env.PayloadType), ErrTampered)
	}
	msg := pae(env.PayloadType, env.Payload)
	for _, sig := range env.Signatures {
		k, ok := s.keys[sig.KeyID]
		if !ok {
			return fail("signed by unknown key "+sig.KeyID, ErrTampered)
		}
		if len(env.Signatures) == 1 && bv != nil {
			b := bv[sig.KeyID]
			if b == nil {
				b = newBatchVerifier(k.pub)
				bv[sig.KeyID] = b
			}
			b.add(i, msg, sig.Sig)
		} else if !ed25519Verify(k, msg, sig.Sig) {
			return fail("signature does not verify", ErrTampered)
		}
		c.signers = append(c.signers, sig.KeyID)
	}
	if err := decodeMinimal(env.Payload, &c.rec); err != nil {
		return fail("payload is not a record", err)
	}
	return c
}

// decodeMinimal decodes the fields of a record payload that Verify needs.
// Payloads are compact JSON objects, and the fields it needs are plain
// strings and one number: it picks them out of the top-level members
// directly, and hands anything less simple (an escape in a wanted string,
// a repeated key, a key.rotate body) to encoding/json, which also decides
// every error. json.Valid keeps the fast path as strict about the rest of
// the payload as a full decode.
func decodeMinimal(payload []byte, r *minimalRecord) error {
	if json.Valid(payload) && fastMinimal(payload, r) {
		return nil
	}
	*r = minimalRecord{}
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(r); err != nil {
		return &ParseError{What: "record", Offset: int(dec.InputOffset()), Reason: err.Error()}
	}
	return nil
}

// Verify checks the whole log: every envelope signature, the key chain,
// seq and the prev chain, every hash tile against the entries, the Merkle
// root against the checkpoint, the checkpoint's signed note and SSH
// signature, and the witness. The error names the first fault found, as a
// *VerifyError.
func Verify(opts Options) (*VerifyReport, error) {
	start := time.Now()
	s, release, err := openSnapshot(opts, false)
	if err != nil {
		return nil, err
	}
	defer release()
	// The witness first: a rolled-back checkpoint is the clearest
	// diagnosis even when the entries no longer match it either.
	if err := s.loadWitness(opts); err != nil {
		return nil, err
	}
	// Only the open bundle is loaded here; verify streams the full ones.
	if err := s.loadEntries(s.st.size / tileWidth * tileWidth); err != nil {
		return nil, err
	}
	rep, err := s.verify(opts)
	if err != nil {
		return nil, err
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

// fileOf names the bundle file that holds record seq: a full bundle, or
// the open one loaded by loadEntries.
func (s *snapshot) fileOf(seq int64) string {
	if seq < s.base || len(s.files) == 0 {
		return "log/" + bundlePath(seq/tileWidth, tileWidth)
	}
	return s.files[min(seq-s.base, int64(len(s.files)-1))]
}

// verify checks the full bundles, streamed from disk a bundle at a time on
// every core, and the open bundle that loadEntries loaded, so that memory
// stays small however long the log is.
func (s *snapshot) verify(opts Options) (*VerifyReport, error) {
	n := s.st.size
	full := s.base / tileWidth
	results := make([]checked, s.base+int64(len(s.entries)))
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	// Unit b < full is full bundle b; unit full is the open bundle.
	var nextUnit atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bv := map[string]*batchVerifier{}
			flush := func(b *batchVerifier) {
				// The signature is checked before the payload is decoded,
				// so its failure is the one to report.
				for _, id := range b.flush() {
					results[id].err = &VerifyError{Seq: int64(id), File: s.fileOf(int64(id)), Reason: "signature does not verify", Err: ErrTampered}
				}
			}
			check := func(first int64, entries [][]byte) {
				for j, e := range entries {
					i := int(first) + j
					results[i] = s.checkOne(i, e, bv)
					for _, b := range bv {
						if b.full() {
							flush(b)
						}
					}
				}
			}
			for {
				b := nextUnit.Add(1) - 1
				if b > full {
					break
				}
				if b == full {
					check(s.base, s.entries)
					continue
				}
				first := b * tileWidth
				rel := "log/" + bundlePath(b, tileWidth)
				data, err := os.ReadFile(s.path(rel))
				if err != nil {
					results[first].err = &VerifyError{Seq: first, File: rel, Reason: "entry bundle missing or unreadable: log truncated behind its checkpoint", Err: err}
					continue
				}
				entries, used := parseBundlePrefix(data)
				var bad *VerifyError
				switch {
				case used != len(data) && len(entries) < tileWidth:
					bad = &VerifyError{Seq: first + int64(len(entries)), File: rel, Reason: "entry bundle has a truncated record", Err: ErrMalformed}
				case len(entries) != tileWidth || used != len(data):
					bad = &VerifyError{Seq: first + int64(min(len(entries), tileWidth-1)), File: rel, Reason: fmt.Sprintf("full entry bundle holds %d records and %d more bytes, want %d records: a record is missing or inserted", len(entries), len(data)-used, tileWidth), Err: ErrTampered}
				}
				if bad != nil {
					entries = entries[:min(len(entries), int(bad.Seq-first))]
				}
				check(first, entries)
				if bad != nil {
					results[bad.Seq].err = bad
				}
			}
			for _, b := range bv {
				flush(b)
			}
		}()
	}
	wg.Wait()

	rep := &VerifyReport{Dir: s.dir, Origin: s.st.origin, Size: n, Root: base64.StdEncoding.EncodeToString(s.st.root[:]), Pending: s.pending, TornBytes: s.torn}
	var pin string
	if opts.TrustedKey != "" {
		var err error
		if pin, err = ParseFingerprint(opts.TrustedKey); err != nil {
			return nil, err
		}
	}
	var active, cpActive string
	prev := ""
	for i := range results {
		c := &results[i]
		if c.err != nil {
			return nil, c.err
		}
		fail := func(reason string) (*VerifyReport, error) {
			return nil, &VerifyError{Seq: int64(i), File: s.fileOf(int64(i)), Reason: reason, Err: ErrTampered}
		}
		if c.rec.Schema != Schema {
			return fail(fmt.Sprintf("schema %q, want %q", c.rec.Schema, Schema))
		}
		if c.rec.Seq == nil || *c.rec.Seq != uint64(i) {
			got := "none"
			if c.rec.Seq != nil {
				got = strconv.FormatUint(*c.rec.Seq, 10)
			}
			return fail(fmt.Sprintf("seq is %s, want %d: a record is missing, inserted or out of order", got, i))
		}
		if c.rec.Prev != prev {
			return fail("prev does not match the previous record: the chain is broken")
		}
		if c.rec.LogOrigin != s.st.origin {
			return fail(fmt.Sprintf("log_origin %q, want %q", c.rec.LogOrigin, s.st.origin))
		}
		if i == 0 {
			if len(c.signers) != 1 {
				return fail("first record must have exactly one signature")
			}
			active = c.signers[0]
			if pin != "" && active != pin {
				return fail(fmt.Sprintf("first record signed by %s, not the trusted key %s", active, pin))
			}
			rep.Keys = append(rep.Keys, active)
		}
		if !contains(c.signers, active) {
			return fail("not signed by the log key in force " + active)
		}
		if c.rec.Kind == KindKeyRotate {
			if c.rec.Key == nil || c.rec.Key.Old != active || !contains(c.signers, c.rec.Key.New) {
				return fail("key.rotate must be signed by the old and the new key")
			}
			active = c.rec.Key.New
			rep.Keys = append(rep.Keys, active)
		} else if len(c.signers) != 1 {
			return fail("unexpected extra signature")
		}
		prev = "sha256:" + hex.EncodeToString(c.sum[:])
		if int64(i) == n-1 {
			cpActive = active
		}
	}
	if int64(len(results)-s.pending) < n {
		i := len(results) - s.pending
		return nil, &VerifyError{Seq: int64(i), File: s.fileOf(int64(max(i-1, 0))), Reason: fmt.Sprintf("log holds %d records, checkpoint covers %d: log truncated behind its checkpoint", i, n), Err: ErrTampered}
	}
	if n == 0 {
		if pin != "" && s.cpKey.fingerprint != pin {
			return nil, &VerifyError{Seq: -1, File: s.cpFile, Reason: "empty log signed by another key than the trusted one", Err: ErrTampered}
		}
	} else if s.cpKey.fingerprint != cpActive {
		return nil, &VerifyError{Seq: -1, File: s.cpFile, Reason: "checkpoint is signed by a key that is not in force", Err: ErrTampered}
	}

	// Rebuild the tree from the committed entries.
	hashes := make(memHashes, 0, tlog.StoredHashCount(n))
	for i := int64(0); i < n; i++ {
		hs, err := tlog.StoredHashesForRecordHash(i, results[i].leaf, hashes)
		if err != nil {
			return nil, fmt.Errorf("hashing record %d: %w", i, err)
		}
		hashes = append(hashes, hs...)
	}
	for _, t := range tlog.NewTiles(tileHeight, 0, n) {
		want, err := tlog.ReadTileData(t, hashes)
		if err != nil {
			return nil, err
		}
		got, rel, err := readHashTile(s.path(logDirName), t.L, t.N, t.W)
		rel = "log/" + rel
		if err != nil {
			var ve *VerifyError
			if errors.As(err, &ve) {
				ve.File = rel
				return nil, ve
			}
			return nil, &VerifyError{Seq: -1, File: rel, Reason: "hash tile missing or unreadable", Err: err}
		}
		if !bytes.Equal(got, want) {
			seq := int64(-1)
			if t.L == 0 {
				for j := 0; j < t.W && (j+1)*tlog.HashSize <= len(got); j++ {
					if !bytes.Equal(got[j*tlog.HashSize:(j+1)*tlog.HashSize], want[j*tlog.HashSize:(j+1)*tlog.HashSize]) {
						seq = t.N*tileWidth + int64(j)
						break
					}
				}
			}
			return nil, &VerifyError{Seq: seq, File: rel, Reason: "hash tile does not match the records", Err: ErrTampered}
		}
	}
	root, err := treeHash(n, hashes)
	if err != nil {
		return nil, err
	}
	if root != s.st.root {
		return nil, &VerifyError{Seq: -1, File: s.cpFile, Reason: "Merkle root of the records does not match the checkpoint", Err: ErrTampered}
	}
	ws, err := s.checkWitness(hashes)
	if err != nil {
		return nil, err
	}
	rep.WitnessSize = ws
	return rep, nil
}

// loadWitness reads the newest checkpoint ever written; the checkpoint
// may not be smaller (rollback).
func (s *snapshot) loadWitness(opts Options) error {
	_, witness, err := opts.paths()
	if err != nil {
		return err
	}
	s.witnessRel = witness
	if r, err := filepath.Rel(s.dir, witness); err == nil && !strings.HasPrefix(r, "..") {
		s.witnessRel = r
	}
	raw, err := os.ReadFile(witness)
	if err != nil {
		return &VerifyError{Seq: -1, File: s.witnessRel, Reason: "witness missing or unreadable", Err: err}
	}
	ws, _, err := s.openNote(raw)
	if err != nil {
		return &VerifyError{Seq: -1, File: s.witnessRel, Reason: "witness does not verify", Err: err}
	}
	if ws.origin != s.st.origin {
		return &VerifyError{Seq: -1, File: s.witnessRel, Reason: "witness is for another log", Err: ErrTampered}
	}
	if ws.size > s.st.size {
		return &VerifyError{Seq: -1, File: s.cpFile, Reason: fmt.Sprintf("checkpoint rolled back: it covers %d records, but a checkpoint for %d was signed", s.st.size, ws.size), Err: ErrTampered}
	}
	s.witness = ws
	return nil
}

// checkWitness checks that the log's history up to the witnessed size is
// the history that was witnessed (no rewrite).
func (s *snapshot) checkWitness(hashes memHashes) (int64, error) {
	root, err := treeHash(s.witness.size, hashes)
	if err != nil {
		return 0, err
	}
	if root != s.witness.root {
		return 0, &VerifyError{Seq: -1, File: s.witnessRel, Reason: "log history differs from the witnessed checkpoint: rewritten", Err: ErrTampered}
	}
	return s.witness.size, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// fastMinimal fills r from a valid JSON object whose wanted members are
// simple; it reports false, with r in any state, when they are not.
func fastMinimal(in []byte, r *minimalRecord) bool {
	if len(in) < 2 || in[0] != '{' {
		return false
	}
	in = in[1:]
	if in[0] == '}' {
		return len(in) == 1
	}
	var seen uint8
	for {
		if len(in) == 0 || in[0] != '"' {
			return false
		}
		end := bytes.IndexByte(in[1:], '"')
		if end < 0 || bytes.IndexByte(in[1:1+end], '\\') >= 0 {
			return false
		}
		key := string(in[1 : 1+end])
		in = in[end+2:]
		if len(in) == 0 || in[0] != ':' {
			return false
		}
		rest, ok := skipValue(in[1:])
		if !ok || len(rest) == 0 {
			return false
		}
		val := in[1 : len(in)-len(rest)]
		str := func(dst *string, bit uint8) bool {
			if seen&bit != 0 || len(val) < 2 || val[0] != '"' || bytes.IndexByte(val, '\\') >= 0 || !utf8.Valid(val) {
				return false
			}
			seen |= bit
			*dst = string(val[1 : len(val)-1])
			return true
		}
		switch key {
		case "schema":
			ok = str(&r.Schema, 1)
		case "kind":
			ok = str(&r.Kind, 2)
		case "id":
			ok = str(&r.ID, 4)
		case "prev":
			ok = str(&r.Prev, 8)
		case "log_origin":
			ok = str(&r.LogOrigin, 16)
		case "seq":
			n, err := strconv.ParseUint(string(val), 10, 64)
			ok = err == nil && seen&32 == 0
			seen |= 32
			r.Seq = &n
		case "key":
			ok = false // key.rotate: rare, and its body is a struct
		default:
			// encoding/json matches keys case-insensitively.
			for _, w := range []string{"schema", "kind", "id", "prev", "log_origin", "seq", "key"} {
				if strings.EqualFold(key, w) {
					return false
				}
			}
		}
		if !ok {
			return false
		}
		in = rest[1:]
		if rest[0] == '}' {
			return len(in) == 0
		}
		if rest[0] != ',' {
			return false
		}
	}
}

// skipValue returns what follows the JSON value at the start of in, which
// json.Valid has already accepted as part of a valid document.
func skipValue(in []byte) ([]byte, bool) {
	depth := 0
	for i := 0; i < len(in); i++ {
		switch in[i] {
		case '"':
			for i++; i < len(in) && in[i] != '"'; i++ {
				if in[i] == '\\' {
					i++
				}
			}
			if i >= len(in) {
				return in, false
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return in[i:], i > 0
			}
			depth--
		case ',':
			if depth == 0 {
				return in[i:], i > 0
			}
		}
		if depth == 0 && (in[i] == '"' || in[i] == '}' || in[i] == ']') {
			return in[i+1:], true
		}
	}
	return in[len(in):], len(in) > 0
}
