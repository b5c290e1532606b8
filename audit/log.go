package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sys/unix"
)

// Files under the state directory.
const (
	logDirName     = "log"
	checkpointFile = "log/checkpoint"      // C2SP tlog-checkpoint, a signed note
	checkpointNext = "log/checkpoint.next" // the next checkpoint while it is being committed
	checkpointSig  = "log/checkpoint.sig"  // SSHSIG over the checkpoint file
	lockFile       = "log/lock"            // flock(2): exclusive to append, shared to read
	tornDir        = "log/torn"            // bytes of interrupted writes, kept for inspection
	witnessFile    = "witness"             // copy of the newest checkpoint ever written
)

// Options says where the log lives. The zero value is the per-user log in
// the default state directory.
type Options struct {
	// Dir is the state directory; "" means StateDir(). It is created with
	// mode 0700 and must not be accessible to anyone but its owner.
	Dir string
	// Origin is the checkpoint origin (the log's name); "" derives it from
	// the machine id. An existing log keeps the origin it was created with,
	// and a different non-empty Origin is an error.
	Origin string
	// TrustedKey, when set, is the SSH SHA256 fingerprint of the key that
	// must have signed the log's first record (Verify and VerifyProof).
	// "" trusts the keys listed in the state directory's allowed_signers,
	// which only protects against someone who cannot write that directory.
	TrustedKey string
	// Witness is the file that remembers the newest checkpoint, to detect
	// a log rolled back to an older state; "" means <Dir>/witness. Point it
	// at storage the agent cannot write to for a stronger guarantee.
	Witness string
}

// Entry locates an appended record.
type Entry struct {
	Seq      uint64
	ID       string
	LeafHash string // hex RFC 6962 leaf hash of the envelope bytes
}

// Log is an open audit log. Its methods are safe for concurrent use, and
// any number of processes may append to the same log at once.
type Log struct {
	dir     string
	witness string
	origin  string
	key     *logKey
	lock    *os.File

	principal Principal
	host      Host

	mu     sync.Mutex
	closed bool

	// The checkpoint this handle last wrote or verified: when the file
	// still holds exactly these bytes, its signature need not be checked
	// again.
	lastCP []byte
	lastSt treeState
	// buf holds the open bundle while an append reads it (up to 16 MiB;
	// typically a few hundred KiB): reused, so that no append allocates
	// and clears a fresh one.
	buf []byte
	// The tail this handle's last append left, reused by the next append
	// when the log is still exactly as that append left it (see ownTail).
	own *tail
}

// StateDir returns the default state directory:
// $XDG_STATE_HOME/agentexec, or ~/.local/state/agentexec.
func StateDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "agentexec"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("locating state directory: %w", err)
	}
	return filepath.Join(home, ".local", "state", "agentexec"), nil
}

// ConfigPaths lists what, besides StateDir, sandboxed commands must not
// see. The key, the log and the default witness all live inside the state
// directory, so the list is empty; a caller that sets Options.Witness
// elsewhere hides that file too.
func ConfigPaths() []string { return nil }

func (o Options) paths() (dir, witness string, err error) {
	dir = o.Dir
	if dir == "" {
		if dir, err = StateDir(); err != nil {
			return "", "", err
		}
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return "", "", err
	}
	witness = o.Witness
	if witness == "" {
		witness = filepath.Join(dir, witnessFile)
	}
	return dir, witness, nil
}

// defaultOrigin names the log after the machine, falling back to the host.
func defaultOrigin(h Host) string {
	id := h.MachineID
	if id == "" {
		id = strings.Map(func(r rune) rune {
			if r == ' ' || r == '+' || r < 0x21 || r > 0x7e {
				return '-'
			}
			return r
		}, h.Hostname)
	}
	if id == "" {
		id = "unknown"
	}
	return "agentexec.local/host/" + id
}

// Open opens the log in opts.Dir, creating the directory, the log key and
// an empty signed checkpoint on first use. It fails closed: an unsafe mode
// on the directory or the key, a missing key for an existing log or a
// checkpoint that does not verify are errors, and nothing is repaired by
// overwriting. Open reads only the checkpoint, not the whole log.
func Open(opts Options) (*Log, error) {
	dir, witness, err := opts.paths()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state directory: %w", err)
	}
	for _, d := range []string{dir, filepath.Join(dir, keyDir), filepath.Join(dir, logDirName)} {
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("creating state directory: %w", err)
		}
		if err := checkDir(d); err != nil {
			return nil, err
		}
	}
	// Read-only: flock needs no write access, and a writable descriptor
	// held between appends would pin the file system writable.
	// Fail at Open, not at the first record, when the log cannot be written.
	if err := unix.Access(filepath.Join(dir, logDirName), unix.W_OK); err != nil {
		return nil, fmt.Errorf("audit log in %s is not writable: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDONLY|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening audit log lock: %w", err)
	}
	l := &Log{dir: dir, witness: witness, lock: lock}
	l.principal, l.host = Identity()
	unlock, err := flockCtx(context.Background(), lock, unix.LOCK_EX, func() {})
	if err != nil {
		lock.Close()
		return nil, err
	}
	err = l.openLocked(opts)
	unlock()
	if err != nil {
		lock.Close()
		return nil, err
	}
	return l, nil
}

func (l *Log) openLocked(opts Options) error {
	cp, cpErr := os.ReadFile(l.path(checkpointFile))
	if cpErr != nil && !isNotExist(cpErr) {
		return fmt.Errorf("reading checkpoint: %w", cpErr)
	}
	if err := l.finishRotation(); err != nil {
		return err
	}
	key, err := loadPrivateKey(l.path(keyFile))
	switch {
	case errors.Is(err, ErrKeyMissing) && cpErr == nil:
		return fmt.Errorf("the log in %s exists but %w", l.dir, err)
	case errors.Is(err, ErrKeyMissing):
		if key, err = generateKey(l.dir, keyFile, SignerPrincipal); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	l.key = key
	if cpErr == nil {
		st, err := parseCheckpoint(cp, key)
		if err != nil {
			return &VerifyError{Seq: -1, File: checkpointFile, Reason: "checkpoint does not verify with the log key", Err: err}
		}
		if opts.Origin != "" && opts.Origin != st.origin {
			return fmt.Errorf("log in %s has origin %q, not %q", l.dir, st.origin, opts.Origin)
		}
		l.origin = st.origin
		l.lastCP, l.lastSt = cp, st
		if pub, err := readPublicKey(l.path(pubFile)); err != nil || pub.fingerprint != key.fingerprint {
			return &VerifyError{Seq: -1, File: pubFile, Reason: "public key does not match the log key", Err: ErrTampered}
		}
		return nil
	}
	// A fresh log: publish the key, then sign the empty tree so that the
	// origin and key are fixed before the first record.
	l.origin = opts.Origin
	if l.origin == "" {
		l.origin = defaultOrigin(l.host)
	}
	if strings.ContainsAny(l.origin, " +\n") || l.origin == "" {
		return fmt.Errorf("origin %q may not contain spaces, '+' or newlines", l.origin)
	}
	if err := writeAtomic(l.path(pubFile), []byte(key.authorizedLine()+" "+SignerPrincipal+"\n")); err != nil {
		return fmt.Errorf("writing public key: %w", err)
	}
	if err := writeAtomic(l.path(allowedSignersFile), []byte(allowedSignersLine(key, "created "+time.Now().UTC().Format(time.RFC3339)))); err != nil {
		return fmt.Errorf("writing allowed_signers: %w", err)
	}
	ss := &syncSet{}
	defer ss.close()
	_, err = l.writeCheckpoint(ss, 0, emptyRoot())
	return err
}

func (l *Log) path(rel string) string { return filepath.Join(l.dir, rel) }

// Origin is the log's checkpoint origin.
func (l *Log) Origin() string { return l.origin }

// Fingerprint is the SSH SHA256 fingerprint of the current log key.
func (l *Log) Fingerprint() string { return l.key.fingerprint }

// Close releases the log. It does not wait for anything: every Append has
// already made its record durable.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return l.lock.Close()
}

// treeState is a verified checkpoint.
type treeState struct {
	origin string
	size   int64
	root   tlog.Hash
	raw    []byte
}

func emptyRoot() tlog.Hash { return tlog.Hash(sha256.Sum256(nil)) }

// parseCheckpoint opens a C2SP checkpoint signed by key.
func parseCheckpoint(raw []byte, key *logKey) (treeState, error) {
	origin, _, _ := strings.Cut(string(raw), "\n")
	v, err := key.noteVerifier(origin)
	if err != nil {
		return treeState{}, &ParseError{What: "checkpoint", Offset: 0, Reason: "bad origin line"}
	}
	n, err := note.Open(raw, note.VerifierList(v))
	if err != nil {
		return treeState{}, fmt.Errorf("opening checkpoint: %w", errors.Join(ErrTampered, err))
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) != 4 || lines[3] != "" {
		return treeState{}, &ParseError{What: "checkpoint", Offset: -1, Reason: "want origin, size and root lines"}
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return treeState{}, &ParseError{What: "checkpoint", Offset: -1, Reason: "bad tree size"}
	}
	rb, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(rb) != tlog.HashSize {
		return treeState{}, &ParseError{What: "checkpoint", Offset: -1, Reason: "bad root hash"}
	}
	return treeState{origin: origin, size: size, root: tlog.Hash(rb), raw: raw}, nil
}

// flockCtx takes a flock, giving up when ctx is done. The blocking
// flock(2) runs in its own goroutine so that waiters are woken in the
// kernel's order the moment the lock is free. If ctx ends first, that
// goroutine releases the lock when it finally gets it, and release (which
// the caller must call either way) leaves that to the goroutine and runs
// after only once the lock is given back: the caller passes its mutex's
// Unlock, so one open file description never has two flock calls in
// flight, and Append still returns as soon as ctx ends.
// lockWriter takes what a writer of the log holds: the Log's mutex, then
// the exclusive file lock that orders writers across processes. unlock
// releases whatever was taken and must be called even on error.
func (l *Log) lockWriter(ctx context.Context) (unlock func(), err error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return func() {}, ErrClosed
	}
	return flockCtx(ctx, l.lock, unix.LOCK_EX, l.mu.Unlock)
}

func flockCtx(ctx context.Context, f *os.File, how int, after func()) (release func(), err error) {
	fd := int(f.Fd())
	lock := func() error {
		for {
			err := unix.Flock(fd, how)
			if !errors.Is(err, unix.EINTR) {
				return err
			}
		}
	}
	unlocked := func() { unix.Flock(fd, unix.LOCK_UN); after() }
	if ctx.Done() == nil {
		if err := lock(); err != nil {
			return after, fmt.Errorf("locking audit log: %w", err)
		}
		return unlocked, nil
	}
	if err := unix.Flock(fd, how|unix.LOCK_NB); err == nil {
		return unlocked, nil
	}
	done := make(chan error, 1)
	go func() { done <- lock() }()
	select {
	case err := <-done:
		if err != nil {
			return after, fmt.Errorf("locking audit log: %w", err)
		}
		return unlocked, nil
	case <-ctx.Done():
		return func() {
			go func() {
				if err := <-done; err == nil {
					unix.Flock(fd, unix.LOCK_UN)
				}
				after()
			}()
		}, fmt.Errorf("locking audit log: %w", ctx.Err())
	}
}

// Append signs r, adds it to the log and returns only once the record and
// a signed checkpoint covering it are durable (fsync). It fills r.Schema,
// r.Seq, r.Prev and r.LogOrigin, and r.ID, r.Time.Start, r.Host and
// r.Principal when they are empty. A torn tail left by a crashed appender
// is repaired first: complete records are kept, incomplete bytes are moved
// to log/torn/.
func (l *Log) Append(ctx context.Context, r *Record) (Entry, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, fmt.Errorf("appending audit record: %w", err)
	}
	unlock, err := l.lockWriter(ctx)
	defer unlock()
	if err != nil {
		return Entry{}, err
	}
	e, err := l.appendLocked(r, nil)
	if err != nil {
		return Entry{}, fmt.Errorf("appending audit record: %w", err)
	}
	return e, nil
}

// tail is the verified end of the log that an append builds on.
type tail struct {
	st     treeState
	prev   string // "sha256:<hex>" of the last envelope, "" for an empty log
	hashes *diskHashes
	// bundleSize is the size of the open bundle file (0: none); after
	// writeEntry, including the new entry.
	bundleSize int64
	// stamps, on a tail kept for the handle's next append, are the
	// files its checks would read, as this append left them.
	stamps []fileStamp
}

// loadTail reads the committed checkpoint, repairs an interrupted append
// and checks the tail against the checkpoint root.
func (l *Log) loadTail() (*tail, error) {
	own := l.own
	l.own = nil
	st, err := l.committedState(true)
	if err != nil {
		return nil, err
	}
	if t := l.ownTail(own, st); t != nil {
		return t, nil
	}
	t, extra, err := l.readTail(st)
	if err != nil {
		return nil, err
	}
	if err := l.checkWitness(t); err != nil {
		return nil, err
	}
	if extra != nil {
		// A complete record written by an appender that died before its
		// checkpoint: adopt it so that no complete record is lost.
		rec, err := l.validateNext(t, extra)
		if err != nil {
			return nil, err
		}
		var nk *logKey
		if rec.Kind == KindKeyRotate && rec.Key != nil {
			// The rotation died after writing its record: the new key
			// must sign the checkpoint that covers it.
			if nk, err = loadPrivateKey(l.path(newKeyFile)); err != nil || nk.fingerprint != rec.Key.New {
				return nil, &VerifyError{Seq: st.size, File: newKeyFile, Reason: "interrupted key rotation without its new key", Err: ErrKeyMissing}
			}
			l.key = nk
		}
		B, W := st.size/tileWidth, int(st.size%tileWidth)
		if err := l.renameBundle(B, W, W+1); err != nil {
			return nil, err
		}
		if st, err = l.commit(t, extra, &syncSet{}); err != nil {
			return nil, err
		}
		if nk != nil {
			if err := l.installKey(nk); err != nil {
				return nil, err
			}
		}
		return l.loadTailAt(st)
	}
	return t, nil
}

func (l *Log) loadTailAt(st treeState) (*tail, error) {
	t, extra, err := l.readTail(st)
	if err != nil {
		return nil, err
	}
	if extra != nil {
		return nil, &VerifyError{Seq: st.size, File: bundlePath(st.size/tileWidth, int(st.size%tileWidth)), Reason: "unexpected record after repair", Err: ErrTampered}
	}
	return t, nil
}

// readBundle reads a whole bundle file into l.buf, which stays valid
// until the next call; callers hold l.mu.
func (l *Log) readBundle(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	// One byte more than the size: a file that grew meanwhile is read to
	// its end all the same.
	n := int(fi.Size()) + 1
	if cap(l.buf) < n {
		l.buf = make([]byte, n+n/4)
	}
	buf := l.buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		m, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			l.buf = buf[:0]
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// ownTail returns own, the tail this handle's previous append left, if
// the log is still exactly as it left it: the committed checkpoint is the
// one it wrote, the open bundle has the size it wrote, nothing was written
// past it, and the witness is that checkpoint. Another appender, or one
// that died, changes one of those. The append then skips re-reading the
// bundle and rehashing the tiles it wrote itself; content changed in place
// behind its back, at the same size, is left for Verify to find.
func (l *Log) ownTail(own *tail, st treeState) *tail {
	if own == nil || own.st.size != st.size || !bytes.Equal(own.st.raw, st.raw) {
		return nil
	}
	B, W := st.size/tileWidth, int(st.size%tileWidth)
	for _, f := range own.stamps {
		if g, err := stampOf(f.path); err != nil || g != f {
			return nil
		}
	}
	if _, err := os.Lstat(l.path(filepath.Join(logDirName, bundlePath(B, W+1)))); !isNotExist(err) {
		return nil
	}
	if w, err := os.ReadFile(l.witness); err != nil || !bytes.Equal(w, st.raw) {
		return nil
	}
	return own
}

// fileStamp identifies a file's content without reading it: a write, a
// truncation or a replacement changes the inode's ctime (which, unlike
// mtime, cannot be set back by the file's owner), its size or its inode.
type fileStamp struct {
	path  string
	ino   uint64
	size  int64
	ctime unix.Timespec
}

func stampOf(path string) (fileStamp, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return fileStamp{}, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fileStamp{}, fmt.Errorf("%s is not a regular file", path)
	}
	return fileStamp{path: path, ino: st.Ino, size: st.Size, ctime: st.Ctim}, nil
}

// tailStamps stamps what an append's tail check reads for a log of size n:
// the open bundle and the rightmost hash tile of every level, which hold
// the last leaf hash and every hash the tree root is computed from.
func (l *Log) tailStamps(n int64) ([]fileStamp, error) {
	paths := []string{bundlePath(n/tileWidth, int(n%tileWidth))}
	for level := 0; n>>(tileHeight*level) > 0; level++ {
		cnt := n >> (tileHeight * level)
		N := (cnt - 1) / tileWidth
		paths = append(paths, hashTilePath(level, N, int(cnt-N*tileWidth)))
	}
	out := make([]fileStamp, 0, len(paths))
	for _, p := range paths {
		f, err := stampOf(l.path(filepath.Join(logDirName, p)))
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// committedState returns the checkpoint in force. When an append died
// between publishing checkpoint.sig and renaming checkpoint.next, the
// signature already covers checkpoint.next: that is the committed state, and
// with repair set the rename is finished.
func (l *Log) committedState(repair bool) (treeState, error) {
	raw, err := os.ReadFile(l.path(checkpointFile))
	if err != nil {
		return treeState{}, fmt.Errorf("reading checkpoint: %w", err)
	}
	next, nerr := os.ReadFile(l.path(checkpointNext))
	// An append that died at its commit point left checkpoint.next one
	// record ahead of checkpoint. Anything else under that name is the
	// checkpoint a previous append swapped out, and is not worth an SSH
	// signature check: compare the size lines first.
	if nerr == nil && textSize(next) > textSize(raw) {
		sig, err := os.ReadFile(l.path(checkpointSig))
		if err == nil {
			if _, err := sshsigVerify(sig, SSHSigNamespace, next); err == nil {
				if st, err := parseCheckpoint(next, l.key); err == nil {
					if repair {
						if err := os.Rename(l.path(checkpointNext), l.path(checkpointFile)); err != nil {
							return treeState{}, fmt.Errorf("finishing checkpoint: %w", err)
						}
						if err := syncDir(l.path(logDirName)); err != nil {
							return treeState{}, err
						}
					}
					return st, nil
				}
			}
		}
	}
	if l.lastCP != nil && bytes.Equal(raw, l.lastCP) {
		return l.lastSt, nil
	}
	st, err := parseCheckpoint(raw, l.key)
	if err != nil {
		return treeState{}, &VerifyError{Seq: -1, File: checkpointFile, Reason: "checkpoint does not verify", Err: err}
	}
	l.lastCP, l.lastSt = raw, st
	if l.origin != "" && st.origin != l.origin {
		return treeState{}, &VerifyError{Seq: -1, File: checkpointFile, Reason: fmt.Sprintf("origin %q, want %q", st.origin, l.origin), Err: ErrTampered}
	}
	return st, nil
}

// textSize is the tree size line of a checkpoint, unverified; -1 if there
// is none.
func textSize(cp []byte) int64 {
	_, rest, _ := bytes.Cut(cp, []byte("\n"))
	line, _, ok := bytes.Cut(rest, []byte("\n"))
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(string(line), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// checkWitness refuses to append to a log whose checkpoint is older than
// the newest one this host has written (a rollback), or whose history up to
// it differs (a rewrite). The check costs O(log n) hashes from the tiles.
func (l *Log) checkWitness(t *tail) error {
	raw, err := os.ReadFile(l.witness)
	if err != nil {
		if isNotExist(err) {
			return &VerifyError{Seq: -1, File: l.witness, Reason: "witness missing", Err: ErrTampered}
		}
		return fmt.Errorf("reading witness: %w", err)
	}
	var ws treeState
	if bytes.Equal(raw, t.st.raw) {
		return nil // the witness is the checkpoint just verified
	}
	ws, err = parseCheckpoint(raw, l.key)
	if err != nil {
		// Signed by a key since rotated away: compare sizes only.
		lines := strings.SplitN(string(raw), "\n", 3)
		if len(lines) < 3 {
			return &VerifyError{Seq: -1, File: l.witness, Reason: "witness is not a checkpoint", Err: ErrMalformed}
		}
		if ws.size, err = strconv.ParseInt(lines[1], 10, 64); err != nil {
			return &VerifyError{Seq: -1, File: l.witness, Reason: "witness is not a checkpoint", Err: ErrMalformed}
		}
		ws.root = tlog.Hash{}
	}
	if ws.size > t.st.size {
		return &VerifyError{Seq: -1, File: checkpointFile, Reason: fmt.Sprintf("checkpoint rolled back: size %d, but size %d was already signed", t.st.size, ws.size), Err: ErrTampered}
	}
	if ws.root == (tlog.Hash{}) {
		return nil
	}
	root, err := treeHash(ws.size, t.hashes)
	if err != nil {
		return &VerifyError{Seq: -1, File: "log/tile", Reason: "hash tiles unreadable", Err: err}
	}
	if root != ws.root {
		return &VerifyError{Seq: -1, File: l.witness, Reason: "log history differs from the witnessed checkpoint: rewritten", Err: ErrTampered}
	}
	return nil
}

// readTail reads the open bundle for the committed size. If it holds one
// more complete entry than the checkpoint covers, that entry is returned as
// extra; incomplete trailing bytes are moved aside.
func (l *Log) readTail(st treeState) (*tail, []byte, error) {
	t := &tail{st: st, hashes: newDiskHashes(l.path(logDirName), st.size)}
	B, W := st.size/tileWidth, int(st.size%tileWidth)
	var rel string
	var data []byte
	for _, w := range []int{W, W + 1} {
		if w == 0 {
			continue
		}
		p := bundlePath(B, w)
		b, err := l.readBundle(l.path(filepath.Join(logDirName, p)))
		if isNotExist(err) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading entry bundle: %w", err)
		}
		if rel != "" {
			return nil, nil, &VerifyError{Seq: -1, File: p, Reason: "two versions of the open entry bundle", Err: ErrTampered}
		}
		rel, data = p, b
	}
	if rel == "" && W > 0 {
		return nil, nil, &VerifyError{Seq: st.size - 1, File: bundlePath(B, W), Reason: "entry bundle missing: log truncated behind its checkpoint", Err: ErrTampered}
	}
	entries, used := parseBundlePrefix(data)
	if len(entries) < W {
		return nil, nil, &VerifyError{Seq: B*tileWidth + int64(len(entries)), File: rel, Reason: fmt.Sprintf("bundle holds %d records, checkpoint needs %d: log truncated behind its checkpoint", len(entries), W), Err: ErrTampered}
	}
	if len(entries) > W+1 {
		return nil, nil, &VerifyError{Seq: st.size + 1, File: rel, Reason: "records beyond the checkpoint", Err: ErrTampered}
	}
	if used < len(data) {
		if err := l.setAsideTorn(rel, data, used); err != nil {
			return nil, nil, err
		}
	}
	if rel != "" && len(entries) == 0 {
		// A new bundle with no complete entry: its appender died between
		// creating it and finishing the write (the file may be empty, or
		// its torn bytes were just saved). Nothing is in it, so the file
		// goes; the next append creates it again, exclusively.
		if err := os.Remove(l.path(filepath.Join(logDirName, rel))); err != nil {
			return nil, nil, fmt.Errorf("removing empty bundle: %w", err)
		}
		rel = ""
	}
	var extra []byte
	if len(entries) == W+1 {
		extra = entries[W]
		entries = entries[:W]
	} else if rel != "" && rel != bundlePath(B, W) && W > 0 {
		// Renamed before its new entry was complete: the name goes back.
		if err := l.renameBundle(B, W+1, W); err != nil {
			return nil, nil, err
		}
	}
	if W > 0 {
		t.bundleSize = int64(entryEnd(entries))
	}
	// The last committed envelope: in this bundle, or the previous full one.
	var last []byte
	switch {
	case W > 0:
		last = entries[W-1]
	case st.size > 0:
		p := bundlePath(B-1, tileWidth)
		b, err := os.ReadFile(l.path(filepath.Join(logDirName, p)))
		if err != nil {
			return nil, nil, &VerifyError{Seq: st.size - 1, File: p, Reason: "entry bundle unreadable", Err: err}
		}
		full, err := ParseBundle(b)
		if err != nil || len(full) != tileWidth {
			return nil, nil, &VerifyError{Seq: st.size - 1, File: p, Reason: "full entry bundle is not 256 records", Err: ErrTampered}
		}
		last = full[tileWidth-1]
	}
	if last != nil {
		// Bind the tail to the signed root: the last envelope's leaf hash
		// must be in the tiles, and the tiles must hash to the root.
		hs, err := t.hashes.ReadHashes([]int64{tlog.StoredHashIndex(0, st.size-1)})
		if err != nil {
			return nil, nil, &VerifyError{Seq: st.size - 1, File: "log/tile/0", Reason: "hash tile unreadable", Err: err}
		}
		if hs[0] != tlog.RecordHash(last) {
			return nil, nil, &VerifyError{Seq: st.size - 1, File: bundlePath(B, W), Reason: "last record does not match its leaf hash", Err: ErrTampered}
		}
		sum := sha256.Sum256(last)
		t.prev = "sha256:" + hex.EncodeToString(sum[:])
	}
	root, err := treeHash(st.size, t.hashes)
	if err != nil {
		return nil, nil, &VerifyError{Seq: -1, File: "log/tile", Reason: "hash tiles unreadable", Err: err}
	}
	if root != st.root {
		return nil, nil, &VerifyError{Seq: -1, File: "log/tile", Reason: "hash tiles do not match the checkpoint root", Err: ErrTampered}
	}
	return t, extra, nil
}

func entryEnd(entries [][]byte) int {
	n := 0
	for _, e := range entries {
		n += 2 + len(e)
	}
	return n
}

func treeHash(n int64, r tlog.HashReader) (tlog.Hash, error) {
	if n == 0 {
		return emptyRoot(), nil
	}
	return tlog.TreeHash(n, r)
}

// setAsideTorn copies the incomplete tail of a bundle to log/torn/ and only
// then cuts it off, so no byte is destroyed.
func (l *Log) setAsideTorn(rel string, data []byte, used int) error {
	if err := os.MkdirAll(l.path(tornDir), 0o700); err != nil {
		return fmt.Errorf("saving torn write: %w", err)
	}
	name := fmt.Sprintf("%d-%s", time.Now().UnixNano(), strings.ReplaceAll(rel, "/", "_"))
	if err := writeNewFile(filepath.Join(l.path(tornDir), name), data[used:], 0o600); err != nil {
		return fmt.Errorf("saving torn write: %w", err)
	}
	f, err := os.OpenFile(l.path(filepath.Join(logDirName, rel)), os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("repairing torn write: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(int64(used)); err != nil {
		return fmt.Errorf("repairing torn write: %w", err)
	}
	return f.Sync()
}

// validateNext checks an adopted entry as Verify would: our signature, the
// next seq and the chain.
func (l *Log) validateNext(t *tail, entry []byte) (*Record, error) {
	rel := bundlePath(t.st.size/tileWidth, int(t.st.size%tileWidth)+1)
	env, err := ParseEnvelope(entry)
	if err != nil {
		return nil, &VerifyError{Seq: t.st.size, File: rel, Reason: "uncommitted record is malformed", Err: err}
	}
	if env.PayloadType != PayloadType || !verifyEnvelope(env, l.key.pub, l.key.fingerprint) {
		return nil, &VerifyError{Seq: t.st.size, File: rel, Reason: "uncommitted record is not signed by the log key", Err: ErrTampered}
	}
	var r Record
	if err := jsonUnmarshal(env.Payload, &r); err != nil {
		return nil, &VerifyError{Seq: t.st.size, File: rel, Reason: "uncommitted record is malformed", Err: err}
	}
	if r.Seq != uint64(t.st.size) || r.Prev != t.prev {
		return nil, &VerifyError{Seq: t.st.size, File: rel, Reason: "uncommitted record does not continue the chain", Err: ErrTampered}
	}
	return &r, nil
}

// renameBundle renames the open bundle from width w0 to w1.
func (l *Log) renameBundle(B int64, w0, w1 int) error {
	if w0 == 0 {
		return nil // a new bundle is created under its final name
	}
	from := l.path(filepath.Join(logDirName, bundlePath(B, w0)))
	to := l.path(filepath.Join(logDirName, bundlePath(B, w1)))
	if err := os.Rename(from, to); err != nil {
		if _, serr := os.Lstat(to); isNotExist(err) && serr == nil {
			return nil // already renamed by the appender that wrote it
		}
		return fmt.Errorf("publishing entry bundle: %w", err)
	}
	return nil
}

// appendLocked runs with the exclusive lock held.
func (l *Log) appendLocked(r *Record, cosigner *logKey) (Entry, error) {
	t, err := l.loadTail()
	if err != nil {
		return Entry{}, err
	}
	now := time.Now()
	r.Schema = Schema
	r.Seq = uint64(t.st.size)
	r.Prev = t.prev
	r.LogOrigin = l.origin
	if r.ID == "" {
		if r.ID, err = newUUIDv7(now); err != nil {
			return Entry{}, err
		}
	}
	if r.Time.Start.IsZero() {
		r.Time.Start = now.UTC()
	}
	if r.Host == (Host{}) {
		r.Host = l.host
	}
	if r.Principal.User == (User{}) && r.Principal.LoginUID == nil {
		r.Principal = l.principal
	}
	env, err := l.seal(r, cosigner)
	if err != nil {
		return Entry{}, err
	}
	ss, err := l.writeEntry(t, env)
	if err != nil {
		return Entry{}, err
	}
	if cosigner != nil {
		// key.rotate: the checkpoint covering it is the new key's first.
		l.key = cosigner
	}
	st, err := l.commit(t, env, ss)
	if err != nil {
		return Entry{}, err
	}
	if st.size%tileWidth != 0 {
		// Keep the tail for the next append; start afresh with each
		// bundle so that the hashes held in memory stay few.
		if stamps, err := l.tailStamps(st.size); err == nil {
			sum := sha256.Sum256(env)
			t.hashes.size = st.size
			l.own = &tail{st: st, prev: "sha256:" + hex.EncodeToString(sum[:]), hashes: t.hashes, bundleSize: t.bundleSize, stamps: stamps}
		}
	}
	return Entry{Seq: r.Seq, ID: r.ID, LeafHash: hex.EncodeToString(func() []byte { h := tlog.RecordHash(env); return h[:] }())}, nil
}

// seal serialises and signs r, shortening the command if the envelope would
// not fit in one entry.
func (l *Log) seal(r *Record, cosigner *logKey) ([]byte, error) {
	keys := []*logKey{l.key}
	if cosigner != nil {
		keys = append(keys, cosigner)
	}
	for attempt := 0; ; attempt++ {
		payload, err := canonicalJSON(r)
		if err != nil {
			return nil, fmt.Errorf("encoding record: %w", err)
		}
		env, err := signEnvelope(payload, keys...)
		if err != nil {
			return nil, err
		}
		if len(env) <= maxEntry {
			return env, nil
		}
		if attempt > 0 || !shrinkCommand(r) {
			return nil, fmt.Errorf("%d byte envelope, limit %d: %w", len(env), maxEntry, ErrTooLarge)
		}
	}
}

// shrinkCommand caps the command text so the record fits, keeping a digest
// of the full form. It reports whether it changed anything.
func shrinkCommand(r *Record) bool {
	full, _ := canonicalJSON(struct {
		Line string   `json:"line"`
		Argv []string `json:"argv"`
		Args []string `json:"args"`
	}{r.Command.Line, r.Command.Argv, r.Command.Args})
	sum := sha256.Sum256(full)
	// Base64 grows the payload by 4/3, JSON escaping by up to 6x.
	budget := 16 << 10
	changed := false
	capStr := func(s string) string {
		if len(s) <= budget {
			return s
		}
		changed = true
		cut := budget
		for cut > 0 && s[cut]&0xc0 == 0x80 {
			cut--
		}
		return s[:cut]
	}
	r.Command.Line = capStr(r.Command.Line)
	var total int
	for _, list := range []*[]string{&r.Command.Argv, &r.Command.Args, &r.Command.Simple} {
		out := (*list)[:0:0]
		for _, a := range *list {
			if total+len(a) > budget {
				changed = true
				break
			}
			total += len(a)
			out = append(out, a)
		}
		*list = out
	}
	if changed {
		r.Command.Truncated = true
		r.Command.SHA256 = hex.EncodeToString(sum[:])
	}
	return changed
}

// writeEntry writes the envelope to the open bundle and publishes the
// bundle under its new width. Nothing is durable yet: the caller syncs the
// returned file and directories together with the tiles and checkpoint,
// before the checkpoint that refers to them is renamed into place. Until
// then no reader looks past the old width, and a crash leaves at worst a
// torn tail that the next append sets aside.
func (l *Log) writeEntry(t *tail, env []byte) (*syncSet, error) {
	B, W := t.st.size/tileWidth, int(t.st.size%tileWidth)
	rec := appendEntry(make([]byte, 0, len(env)+2), env)
	var f *os.File
	var err error
	pdir := filepath.Dir(l.path(filepath.Join(logDirName, bundlePath(B, 1))))
	if W == 0 {
		if err := mkdirAllSync(pdir); err != nil {
			return nil, err
		}
		f, err = os.OpenFile(l.path(filepath.Join(logDirName, bundlePath(B, 1))), os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	} else {
		f, err = os.OpenFile(l.path(filepath.Join(logDirName, bundlePath(B, W))), os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("opening entry bundle: %w", err)
	}
	ss := &syncSet{}
	ss.files = append(ss.files, f)
	if _, err := f.Write(rec); err != nil {
		ss.close()
		return nil, fmt.Errorf("writing entry: %w", err)
	}
	t.bundleSize += int64(len(rec))
	if err := l.renameBundle(B, W, W+1); err != nil {
		ss.close()
		return nil, err
	}
	ss.dirs = append(ss.dirs, pdir)
	if W+1 == tileWidth {
		ss.dirs = append(ss.dirs, filepath.Dir(pdir))
		ss.after = append(ss.after, pdir) // the .p directory of a full bundle is empty now
	}
	return ss, nil
}

// syncSet is a group of files and directories made durable together:
// concurrent fsyncs share journal commits, which keeps an append to two
// rounds of disk flushes.
type syncSet struct {
	files []*os.File
	dirs  []string
	after []string // paths to remove once committed
}

func (s *syncSet) close() {
	for _, f := range s.files {
		f.Close()
	}
	s.files = nil
}

func (s *syncSet) sync() error { return s.start()() }

// start begins flushing everything in s and returns a function that waits
// for the flushes to finish. Files or directories added to s after start
// are not covered.
func (s *syncSet) start() (wait func() error) {
	files, dirs := s.files, s.dirs
	errs := make([]error, len(files)+len(dirs))
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := unix.Fdatasync(int(f.Fd())); err != nil {
				errs[i] = fmt.Errorf("syncing %s: %w", f.Name(), err)
			}
		}()
	}
	for i, d := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[len(files)+i] = syncDir(d)
		}()
	}
	return func() error {
		wg.Wait()
		return errors.Join(errs...)
	}
}

// mkdirAllSync creates dir and its parents with mode 0700 and fsyncs each
// parent whose entries changed.
func mkdirAllSync(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if err := mkdirAllSync(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	return syncDir(parent)
}

// commit writes the hash tiles for the new entry and a checkpoint over the
// new tree, and returns the new state. Tiles grow past their committed
// hashes (growTile); the checkpoint signature is the commit point (see
// doc.go). ss holds the entry's own pending syncs.
func (l *Log) commit(t *tail, env []byte, ss *syncSet) (treeState, error) {
	defer ss.close()
	old := t.st.size
	r := t.hashes
	hs, err := tlog.StoredHashes(old, env, r)
	if err != nil {
		return treeState{}, fmt.Errorf("hashing entry: %w", err)
	}
	base := tlog.StoredHashCount(old)
	for i, h := range hs {
		r.overlay[base+int64(i)] = h
	}
	n := old + 1
	dirs := map[string]bool{}
	for _, tile := range tlog.NewTiles(tileHeight, old, n) {
		data, err := tlog.ReadTileData(tile, r)
		if err != nil {
			return treeState{}, fmt.Errorf("building hash tile: %w", err)
		}
		p := l.path(filepath.Join(logDirName, hashTilePath(tile.L, tile.N, tile.W)))
		if err := mkdirAllSync(filepath.Dir(p)); err != nil {
			return treeState{}, err
		}
		f, err := l.growTile(tile, tileWidthAt(tile.L, tile.N, old), data)
		if f != nil {
			ss.files = append(ss.files, f)
		}
		if err != nil {
			return treeState{}, fmt.Errorf("writing hash tile: %w", err)
		}
		dirs[filepath.Dir(p)] = true
		if ow := tileWidthAt(tile.L, tile.N, old); ow > 0 && tile.W == tileWidth {
			// The .p directory of a tile that just became full is empty.
			dir := filepath.Dir(l.path(filepath.Join(logDirName, hashTilePath(tile.L, tile.N, ow))))
			ss.after = append(ss.after, dir)
			dirs[dir] = true
		}
	}
	for d := range dirs {
		ss.dirs = append(ss.dirs, d)
	}
	root, err := tlog.TreeHash(n, r)
	if err != nil {
		return treeState{}, fmt.Errorf("hashing tree: %w", err)
	}
	st, err := l.writeCheckpoint(ss, n, root)
	if err != nil {
		return treeState{}, err
	}
	for _, p := range ss.after {
		os.Remove(p) // superseded partial tiles and empty .p dirs: derived data
	}
	return st, nil
}

// growTile brings the file of tile from width ow (0: no file yet) to
// tile.W holding data. An existing partial tile is extended in place and
// renamed to its new width, as entry bundles are: creating a file costs
// several times more than a rename. The hashes it keeps are the committed
// ones (readHashTile found and checked them); anything after them is an
// interrupted append's and is overwritten. Until the checkpoint commits,
// readers find the committed prefix under either name.
func (l *Log) growTile(tile tlog.Tile, ow int, data []byte) (*os.File, error) {
	to := l.path(filepath.Join(logDirName, hashTilePath(tile.L, tile.N, tile.W)))
	if ow == 0 {
		f, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, err
		}
		_, err = f.Write(data)
		return f, err
	}
	from := l.path(filepath.Join(logDirName, hashTilePath(tile.L, tile.N, ow)))
	f, err := os.OpenFile(from, os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if isNotExist(err) {
		// Already renamed by an append that died before its checkpoint.
		from = to
		f, err = os.OpenFile(from, os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, err
	}
	at := int64(ow) * tlog.HashSize
	if _, err := f.WriteAt(data[at:], at); err != nil {
		return f, err
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != int64(len(data)) {
		if err := f.Truncate(int64(len(data))); err != nil {
			return f, err
		}
	}
	if from != to {
		if err := os.Rename(from, to); err != nil {
			return f, err
		}
	}
	return f, nil
}

// writeCheckpoint signs a checkpoint and commits it with its SSHSIG and
// the witness. Order: everything pending in ss, checkpoint.next and the
// temporary signature and witness are made durable together (the flushes
// of ss start before the signing, so disk and CPU work overlap); then the
// signature is swapped into place (the commit point: from here on
// committedState prefers checkpoint.next), then checkpoint.next becomes
// checkpoint and the witness moves forward; then both directories are
// synced.
//
// The swaps are renameat2(RENAME_EXCHANGE): the replaced file stays
// behind under the temporary name and is overwritten in place by the next
// append, which spares creating three inodes per append. A leftover under
// a temporary name never looks committed: checkpoint.next is only
// believed when checkpoint.sig verifies it, and after the swaps
// checkpoint.sig is newer than whatever checkpoint.next holds.
func (l *Log) writeCheckpoint(ss *syncSet, n int64, root tlog.Hash) (treeState, error) {
	waitEntry := ss.start()
	entryErr := func() error {
		if waitEntry == nil {
			return nil
		}
		err := waitEntry()
		waitEntry = nil
		return err
	}
	defer entryErr()
	text := fmt.Sprintf("%s\n%d\n%s\n", l.origin, n, base64.StdEncoding.EncodeToString(root[:]))
	signed, err := note.Sign(&note.Note{Text: text}, l.key.noteSigner(l.origin))
	if err != nil {
		return treeState{}, fmt.Errorf("signing checkpoint: %w", err)
	}
	sig, err := sshsigSign(l.key, SSHSigNamespace, signed)
	if err != nil {
		return treeState{}, err
	}
	next := l.path(checkpointNext)
	sigTmp := l.path(checkpointSig) + ".tmp"
	witTmp := l.witness + ".tmp"
	cs := &syncSet{}
	defer cs.close()
	for _, w := range []struct {
		path string
		data []byte
	}{{next, signed}, {sigTmp, sig}, {witTmp, signed}} {
		f, err := overwriteFile(w.path, w.data)
		if err != nil {
			return treeState{}, fmt.Errorf("writing checkpoint: %w", err)
		}
		cs.files = append(cs.files, f)
	}
	cerr := cs.sync()
	if err := errors.Join(entryErr(), cerr); err != nil {
		return treeState{}, err
	}
	if err := swapInto(sigTmp, l.path(checkpointSig)); err != nil {
		return treeState{}, fmt.Errorf("writing checkpoint signature: %w", err)
	}
	if err := swapInto(next, l.path(checkpointFile)); err != nil {
		return treeState{}, fmt.Errorf("writing checkpoint: %w", err)
	}
	if err := swapInto(witTmp, l.witness); err != nil {
		return treeState{}, fmt.Errorf("writing witness: %w", err)
	}
	final := &syncSet{dirs: []string{l.path(logDirName)}}
	if wd := filepath.Dir(l.witness); wd != l.path(logDirName) {
		final.dirs = append(final.dirs, wd)
	}
	if err := final.sync(); err != nil {
		return treeState{}, err
	}
	st := treeState{origin: l.origin, size: n, root: root, raw: signed}
	l.lastCP, l.lastSt = signed, st
	return st, nil
}

// overwriteFile writes data over the start of path (creating it if need
// be) and cuts off whatever followed. Rewriting an existing inode in place
// costs a fraction of creating one, and when the length is unchanged an
// fdatasync needs no journal commit. The caller syncs and closes the file.
// O_NOFOLLOW: a symlink planted under a temporary name is not followed.
func overwriteFile(path string, data []byte) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", path)
	}
	if err == nil {
		_, err = f.WriteAt(data, 0)
	}
	if err == nil && fi.Size() != int64(len(data)) {
		err = f.Truncate(int64(len(data)))
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// swapInto atomically puts tmp at path, leaving the file it replaces at tmp
// for the next overwriteFile. Where the exchange is not available (path
// missing, or a file system without RENAME_EXCHANGE) it is a rename.
func swapInto(tmp, path string) error {
	err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, path, unix.RENAME_EXCHANGE)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
		return os.Rename(tmp, path)
	}
	return &os.LinkError{Op: "exchange", Old: tmp, New: path, Err: err}
}
