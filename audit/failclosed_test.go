package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOpenFailsClosed(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, opts Options)
		want  error
	}{
		{"key readable by group", func(t *testing.T, o Options) { must(t, os.Chmod(filepath.Join(o.Dir, keyFile), 0o640)) }, ErrUnsafePermissions},
		{"key readable by others", func(t *testing.T, o Options) { must(t, os.Chmod(filepath.Join(o.Dir, keyFile), 0o604)) }, ErrUnsafePermissions},
		{"key replaced by a symlink", func(t *testing.T, o Options) {
			p := filepath.Join(o.Dir, keyFile)
			must(t, os.Rename(p, p+".real"))
			must(t, os.Symlink(p+".real", p))
		}, syscall.ELOOP},
		{"state dir open to others", func(t *testing.T, o Options) { must(t, os.Chmod(o.Dir, 0o755)) }, ErrUnsafePermissions},
		{"log dir writable by group", func(t *testing.T, o Options) { must(t, os.Chmod(filepath.Join(o.Dir, "log"), 0o770)) }, ErrUnsafePermissions},
		{"key missing for an existing log", func(t *testing.T, o Options) { must(t, os.Remove(filepath.Join(o.Dir, keyFile))) }, ErrKeyMissing},
		{"corrupt key", func(t *testing.T, o Options) {
			must(t, os.WriteFile(filepath.Join(o.Dir, keyFile), []byte("garbage"), 0o600))
		}, ErrMalformed},
		{"corrupt checkpoint", func(t *testing.T, o Options) {
			must(t, os.WriteFile(filepath.Join(o.Dir, checkpointFile), []byte("not a checkpoint\n"), 0o600))
		}, ErrTampered},
		{"other origin requested", func(t *testing.T, o Options) {}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, opts := newLog(t)
			appendN(t, l, 3)
			l.Close()
			tc.setup(t, opts)
			before := snapshotFiles(t, opts.Dir)
			if tc.want == nil {
				opts.Origin = "other.example/log"
				if _, err := Open(opts); err == nil || !strings.Contains(err.Error(), "origin") {
					t.Fatalf("Open with another origin: got %v, want an origin error", err)
				}
				return
			}
			_, err := Open(opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open: got %v, want %v", err, tc.want)
			}
			// Nothing in the log was rewritten.
			after := snapshotFiles(t, opts.Dir)
			for p, b := range before {
				if strings.HasPrefix(p, "log/") && after[p] != b {
					t.Errorf("%s changed by a failed Open", p)
				}
			}
		})
	}
}

func snapshotFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(dir, p)
			out[rel] = string(b)
		}
		return nil
	})
	return out
}

// requireRoot skips tests that mount file systems; on our machines and in
// CI they run as root.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs (run as root, as CI does)")
	}
}

func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	must(t, os.MkdirAll(dir, 0o700))
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Fatalf("mounting tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
}

// TestReadOnlyStateDir: appending to a log on a read-only file system is a
// clear error, changes nothing, and the log still verifies.
func TestReadOnlyStateDir(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	mnt := filepath.Join(base, "ro")
	mountTmpfs(t, mnt, "4m")
	// A read-only bind mount, so the open log's lock file does not keep
	// the remount busy.
	view := filepath.Join(base, "view")
	must(t, os.Mkdir(view, 0o700))
	must(t, unix.Mount(mnt, view, "", unix.MS_BIND, ""))
	t.Cleanup(func() { unix.Unmount(view, unix.MNT_DETACH) })
	opts := Options{Dir: filepath.Join(view, "state"), Origin: "test.local/log"}
	l, err := Open(opts)
	must(t, err)
	appendN(t, l, 3)
	must(t, unix.Mount("", view, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""))
	_, err = l.Append(context.Background(), sampleRecord())
	if !errors.Is(err, syscall.EROFS) {
		t.Fatalf("Append on a read-only state dir: got %v, want EROFS", err)
	}
	l.Close()
	if _, err := Open(opts); !errors.Is(err, syscall.EROFS) {
		t.Errorf("Open on a read-only state dir: got %v, want EROFS", err)
	}
	rep, err := Verify(opts)
	if err != nil || rep.Size != 3 {
		t.Fatalf("Verify on a read-only state dir: got %v, size %v, want 3 records", err, rep)
	}
}

// TestFullDisk: appends on a full file system fail with ENOSPC, never
// damage what was committed, and once space is back the log repairs its
// tail and carries on.
func TestFullDisk(t *testing.T) {
	requireRoot(t)
	mnt := filepath.Join(t.TempDir(), "full")
	mountTmpfs(t, mnt, "256k")
	opts := Options{Dir: filepath.Join(mnt, "state"), Origin: "test.local/log"}
	l, err := Open(opts)
	must(t, err)
	defer l.Close()
	var ok []Entry
	var lastErr error
	for i := 0; i < 2000; i++ {
		e, err := l.Append(context.Background(), sampleRecord())
		if err != nil {
			lastErr = err
			break
		}
		ok = append(ok, e)
	}
	if !errors.Is(lastErr, syscall.ENOSPC) {
		t.Fatalf("got %v after %d appends, want ENOSPC", lastErr, len(ok))
	}
	// Every record whose Append returned is still there.
	if _, err := Verify(opts); err != nil {
		t.Fatalf("Verify on a full disk: %v", err)
	}
	must(t, unix.Mount("", mnt, "", unix.MS_REMOUNT, "size=4m"))
	if _, err := l.Append(context.Background(), sampleRecord()); err != nil {
		t.Fatalf("Append after space came back: %v", err)
	}
	rep, err := Verify(opts)
	if err != nil {
		t.Fatalf("Verify after space came back: %v", err)
	}
	if rep.Size < int64(len(ok))+1 || rep.Pending != 0 || rep.TornBytes != 0 {
		t.Errorf("got size %d pending %d torn %d, want at least %d, 0, 0", rep.Size, rep.Pending, rep.TornBytes, len(ok)+1)
	}
	seen := 0
	Scan(context.Background(), opts, 0, func(it Item) error {
		if seen < len(ok) && it.Entry.ID == ok[seen].ID && it.Entry.Seq == ok[seen].Seq {
			seen++
		}
		return nil
	})
	if seen != len(ok) {
		t.Errorf("got %d of the %d acknowledged records in order, want all", seen, len(ok))
	}
}

// TestTornTailRepaired: bytes of a half-written entry are reported by
// Verify, set aside (not destroyed) by the next Append, and the log goes on.
func TestTornTailRepaired(t *testing.T) {
	l, opts := newLog(t)
	appendN(t, l, 5)
	p := filepath.Join(opts.Dir, "log", bundlePath(0, 5))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	f.Write([]byte{0x01, 0x00, '{', '"'})
	f.Close()
	rep, err := Verify(opts)
	if err != nil {
		t.Fatalf("Verify with a torn tail: %v", err)
	}
	if rep.TornBytes != 4 {
		t.Errorf("got %d torn bytes, want 4", rep.TornBytes)
	}
	appendN(t, l, 1)
	rep, err = Verify(opts)
	if err != nil || rep.Size != 6 || rep.TornBytes != 0 {
		t.Fatalf("after repair: got %+v, %v, want 6 records and no torn bytes", rep, err)
	}
	saved, _ := os.ReadDir(filepath.Join(opts.Dir, tornDir))
	if len(saved) != 1 {
		t.Fatalf("got %d files in log/torn, want 1", len(saved))
	}
	b, _ := os.ReadFile(filepath.Join(opts.Dir, tornDir, saved[0].Name()))
	if string(b) != "\x01\x00{\"" {
		t.Errorf("set-aside bytes: got %q, want the torn bytes", b)
	}
}

// TestEmptyNewBundleRemoved: an appender that dies between creating a new
// bundle (exclusively) and writing its first entry leaves an empty file.
// Verify reports a clean log, and the next Append removes the file and
// creates it afresh instead of failing on it forever. Both ways into a new
// bundle are covered: the first record of the log and the first after a
// full bundle.
func TestEmptyNewBundleRemoved(t *testing.T) {
	for _, n := range []int{0, tileWidth} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			l, opts := newLog(t)
			appendN(t, l, n)
			l.Close()
			p := filepath.Join(opts.Dir, "log", bundlePath(int64(n/tileWidth), 1))
			must(t, os.MkdirAll(filepath.Dir(p), 0o700))
			must(t, os.WriteFile(p, nil, 0o600))
			rep, err := Verify(opts)
			if err != nil || rep.Size != int64(n) || rep.Pending != 0 || rep.TornBytes != 0 {
				t.Fatalf("Verify with an empty new bundle: got %+v, %v, want %d records, nothing pending or torn", rep, err, n)
			}
			l2, err := Open(opts)
			must(t, err)
			defer l2.Close()
			e := appendN(t, l2, 1)[0]
			if e.Seq != uint64(n) {
				t.Errorf("got seq %d, want %d", e.Seq, n)
			}
			rep, err = Verify(opts)
			if err != nil || rep.Size != int64(n)+1 || rep.Pending != 0 || rep.TornBytes != 0 {
				t.Fatalf("Verify after Append: got %+v, %v, want %d records, nothing pending or torn", rep, err, n+1)
			}
		})
	}
}

// TestUncommittedRecordAdopted: a complete record written by an appender
// that died before its checkpoint is pending for Verify and adopted, not
// lost, by the next Append.
func TestUncommittedRecordAdopted(t *testing.T) {
	l, opts := newLog(t)
	appendN(t, l, 3)
	tl, err := l.loadTail()
	must(t, err)
	r := sampleRecord()
	r.Schema, r.Seq, r.Prev, r.LogOrigin, r.ID = Schema, 3, tl.prev, l.origin, "orphan"
	env, err := l.seal(r, nil)
	must(t, err)
	ss, err := l.writeEntry(tl, env)
	must(t, err)
	must(t, ss.sync())
	ss.close()
	rep, err := Verify(opts)
	if err != nil || rep.Size != 3 || rep.Pending != 1 {
		t.Fatalf("Verify: got %+v, %v, want 3 records and 1 pending", rep, err)
	}
	e := appendN(t, l, 1)[0]
	if e.Seq != 4 {
		t.Errorf("got seq %d for the next record, want 4 (after the adopted one)", e.Seq)
	}
	var ids []string
	Scan(context.Background(), opts, 0, func(it Item) error { ids = append(ids, it.Record.ID); return nil })
	if len(ids) != 5 || ids[3] != "orphan" {
		t.Errorf("got records %v, want the orphan at seq 3", ids)
	}
}

// appendFile writes b at the end of the file p, as an interrupted append
// leaves it.
func appendFile(t *testing.T, p string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	defer f.Close()
	_, err = f.Write(b)
	must(t, err)
}

// TestInterruptedTileGrowth: an append grows the open hash tile in place
// and then renames it; dying between the two, or after both, leaves a log
// that verifies, and the next append carries on from the committed hashes.
func TestInterruptedTileGrowth(t *testing.T) {
	cases := []struct {
		name  string
		n     int // records before the interrupted append
		leave func(t *testing.T, dir string, n int)
	}{
		{"grown, not renamed", 5, func(t *testing.T, dir string, n int) {
			p := filepath.Join(dir, "log", hashTilePath(0, 0, n))
			appendFile(t, p, bytes.Repeat([]byte{0xaa}, 32))
		}},
		{"grown by a torn hash", 5, func(t *testing.T, dir string, n int) {
			p := filepath.Join(dir, "log", hashTilePath(0, 0, n))
			appendFile(t, p, []byte{0xaa, 0xbb})
		}},
		{"grown and renamed", 5, func(t *testing.T, dir string, n int) {
			p := filepath.Join(dir, "log", hashTilePath(0, 0, n))
			appendFile(t, p, bytes.Repeat([]byte{0xaa}, 32))
			must(t, os.Rename(p, filepath.Join(dir, "log", hashTilePath(0, 0, n+1))))
		}},
		{"renamed to full", 255, func(t *testing.T, dir string, n int) {
			p := filepath.Join(dir, "log", hashTilePath(0, 0, n))
			appendFile(t, p, bytes.Repeat([]byte{0xaa}, 32))
			must(t, os.Rename(p, filepath.Join(dir, "log", hashTilePath(0, 0, tileWidth))))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, opts := newLog(t)
			appendN(t, l, c.n)
			c.leave(t, opts.Dir, c.n)
			rep, err := Verify(opts)
			if err != nil || rep.Size != int64(c.n) {
				t.Fatalf("Verify after the interruption: got %+v, %v, want %d records", rep, err, c.n)
			}
			appendN(t, l, 2)
			rep, err = Verify(opts)
			if err != nil || rep.Size != int64(c.n+2) {
				t.Fatalf("Verify after two more appends: got %+v, %v, want %d records", rep, err, c.n+2)
			}
		})
	}
}
