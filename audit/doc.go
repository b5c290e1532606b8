// Package audit writes and verifies the signed, tamper-evident log of what
// every command did.
//
// # Format
//
// Each record is an agentexec.audit/v1 JSON object (Record), serialised
// canonically (sorted keys, no insignificant whitespace), wrapped in a DSSE
// envelope (payloadType application/vnd.agentexec.audit.v1+json) signed
// with the log's Ed25519 key, keyid = the key's SSH SHA256 fingerprint.
// Records carry seq (their index) and prev (sha256 of the previous
// envelope's bytes). The envelopes are the leaves of an RFC 6962 Merkle
// tree stored in the C2SP tlog-tiles layout under <Dir>/log/tile/, and the
// tree is summed up by a C2SP checkpoint (<Dir>/log/checkpoint, a signed
// note) plus an SSHSIG over that file (<Dir>/log/checkpoint.sig) that
// `ssh-keygen -Y verify` checks against <Dir>/keys/allowed_signers.
// <Dir>/witness is a copy of the newest checkpoint ever written.
//
// # What guarantees what
//
//   - Append returns only after the envelope, the hash tiles and a signed
//     checkpoint covering the record have been fsync'd, along with the
//     directories whose entries changed. A command whose start record was
//     appended cannot later be erased by a crash. The files an append
//     changes are flushed in one round of concurrent fdatasyncs (the entry
//     and tiles start flushing while the checkpoint is being signed), then
//     the checkpoint is swapped in and the two directories are synced.
//   - An exclusive flock(2) on <Dir>/log/lock serialises appenders across
//     processes; readers (Verify, Scan, Prove) take a shared lock and so
//     see only committed states. Records are therefore never lost,
//     duplicated or interleaved, and seq is gap-free.
//   - The commit point of an append is the swap of checkpoint.sig.tmp
//     into checkpoint.sig (the signature of checkpoint.next). Before it,
//     nothing a reader consults has changed meaning: the entry was appended
//     past the committed end of the open bundle, and the open hash tile
//     grew past its committed hashes, both then renamed to their next
//     width; readers take the committed prefix under either name. After
//     it, checkpoint.next is the committed checkpoint until it is swapped
//     with checkpoint. A crash or SIGKILL at any point therefore leaves a
//     log that verifies.
//   - The swaps are renameat2(RENAME_EXCHANGE), so the replaced
//     checkpoint, signature and witness stay behind under the temporary
//     names and are overwritten in place by the next append instead of
//     new files being created. checkpoint.next is believed only when it is
//     ahead of checkpoint and checkpoint.sig verifies it, which a file
//     swapped out never is.
//   - The next Append repairs what a crash left: a complete record past the
//     checkpoint is checked (signature, seq, prev) and adopted, so no
//     complete record is lost; incomplete bytes are copied to <Dir>/log/torn/
//     before they are cut off, so no byte is destroyed. Nothing committed is
//     ever overwritten or truncated.
//   - Open reads only the checkpoint. Each Append checks the tail it builds
//     on: the checkpoint signature, the last envelope's leaf hash, the tree
//     root from the right edge of the tiles and the witness (no rollback, no
//     rewrite of witnessed history), all in O(log n). When the handle's own
//     previous append left the log exactly as it is (the same checkpoint
//     and witness bytes; the open bundle and the right-edge tiles with the
//     same inode, size and ctime, which the file's owner cannot set back),
//     the append builds on what it wrote instead of re-reading it. On
//     kernels without fine-grained ctime (before Linux 6.13) a change made
//     within the same clock tick as that append can slip past the next
//     append; never past Verify. Damage deeper in the log is found by
//     Verify, which checks everything.
//   - Verify checks every envelope signature and the key chain (key.rotate
//     records are signed by the old and the new key), seq and prev, every
//     hash tile against the records, the root against the checkpoint, the
//     checkpoint's signed note and SSHSIG, and the witness. Its error names
//     the first bad record by seq, or the file. Signatures by one key are
//     checked 64 at a time with one randomised multi-scalar multiplication
//     (the cofactored batch equation); a batch that fails is re-checked
//     one signature at a time with ed25519.Verify to name the record. The
//     batch equation accepts the same signatures as ed25519.Verify except
//     ones that whoever holds the private key crafted with a small-order
//     component, which gains them nothing: they can sign anything anyway.
//   - Every checkpoint gets its SSHSIG at once, not lazily: it costs one
//     signature computed while the entry is being flushed, and keeps
//     `ssh-keygen -Y verify` true for the checkpoint on disk at all times.
//
// # Limits
//
// Tamper evidence, not tamper proofing: whoever can read the key and write
// the state directory (today, the user agentexec runs as, unless the
// directory is hidden from them) can write a new, internally consistent
// history; the witness in the same directory does not stop them. Pin the
// first key (Options.TrustedKey, `audit verify --key`), keep the witness
// where the agent cannot write (Options.Witness), and ship checkpoints off
// the machine: everything up to a checkpoint held elsewhere is protected.
// Timestamps are the host clock's.
package audit
