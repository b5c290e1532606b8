package audit

import (
	"context"
	"fmt"
	"os"
	"time"
)

const newKeyFile = "keys/log.new"

// RotateKey replaces the log key. The key.rotate record is signed by both
// the old and the new key, which chains trust from one to the other; every
// later record and checkpoint is signed by the new key. The new public key
// is added to allowed_signers (older keys stay listed, for older
// checkpoint signatures) and the old private key is deleted.
func (l *Log) RotateKey(ctx context.Context, reason string) (Entry, error) {
	unlock, err := l.lockWriter(ctx)
	defer unlock()
	if err != nil {
		return Entry{}, err
	}
	if err := l.finishRotation(); err != nil {
		return Entry{}, err
	}
	// A leftover new key never signed a committed checkpoint (else
	// finishRotation would have installed it).
	if err := os.Remove(l.path(newKeyFile)); err != nil && !isNotExist(err) {
		return Entry{}, fmt.Errorf("rotating key: %w", err)
	}
	nk, err := generateKey(l.dir, newKeyFile, SignerPrincipal)
	if err != nil {
		return Entry{}, err
	}
	old, err := os.ReadFile(l.path(allowedSignersFile))
	if err != nil {
		return Entry{}, fmt.Errorf("rotating key: %w", err)
	}
	line := allowedSignersLine(nk, "rotated "+time.Now().UTC().Format(time.RFC3339))
	if err := writeAtomic(l.path(allowedSignersFile), append(old, line...)); err != nil {
		return Entry{}, fmt.Errorf("rotating key: %w", err)
	}
	r := &Record{Kind: KindKeyRotate, Key: &KeyChange{Old: l.key.fingerprint, New: nk.fingerprint, NewPublic: nk.authorizedLine(), Reason: reason}}
	e, err := l.appendLocked(r, nk)
	if err != nil {
		return Entry{}, fmt.Errorf("rotating key: %w", err)
	}
	if err := l.installKey(nk); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// installKey makes nk the key on disk once a checkpoint signed by it is
// committed.
func (l *Log) installKey(nk *logKey) error {
	if err := os.Rename(l.path(newKeyFile), l.path(keyFile)); err != nil {
		return fmt.Errorf("installing new key: %w", err)
	}
	if err := writeAtomic(l.path(pubFile), []byte(nk.authorizedLine()+" "+SignerPrincipal+"\n")); err != nil {
		return fmt.Errorf("installing new key: %w", err)
	}
	l.key = nk
	return syncDir(l.path(keyDir))
}

// finishRotation completes a rotation that committed its checkpoint but
// died before the new key file was moved into place.
func (l *Log) finishRotation() error {
	nk, err := loadPrivateKey(l.path(newKeyFile))
	if err != nil {
		if isNotExist(err) || errorsIsKeyMissing(err) {
			return nil
		}
		return err
	}
	saved := l.key
	l.key = nk
	_, err = l.committedState(true)
	if err != nil {
		l.key = saved
		return nil // not committed: the old key is still in force
	}
	return l.installKey(nk)
}
