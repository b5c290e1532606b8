package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// sampleRecord is a command.start record of typical size.
func sampleRecord() *Record {
	return &Record{
		Kind:      KindStart,
		Agent:     Agent{Name: "claude-code", Session: "conv-8812"},
		Intent:    CapIntent("run the unit tests of the audit package before pushing the fix for issue 412"),
		Command:   Command{Line: "go test ./... && git push origin fix-412", Simple: []string{"go test ./...", "git push origin fix-412"}},
		Cwd:       "/home/alice/web",
		Workspace: "/home/alice/web",
		Decision:  Decision{Verdict: "allow", Rules: []string{"go-test", "git-push"}, Reasons: []string{"tests are safe", "push to own branch"}, PolicySource: "/home/alice/.config/agentexec/policy.yaml", PolicyDigest: "sha256:9f2c4e7a1b3d5f6e8a9c0b1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f"},
		Sandbox:   &Sandbox{Network: "proxy", Egress: []string{"github.com:443"}, Writable: []string{"/home/alice/web"}, Hidden: 9},
		Credentials: []CredentialUse{{Name: "github-write", Provider: "git-credential", ID: "installation:123456", Scope: []string{"repo:acme/web:contents:write"},
			InjectedAs: []string{"GITHUB_TOKEN"}, Fingerprint: "hmac-sha256:1a2b3c4d5e6f7a8b"}},
	}
}

func reportLatencies(b *testing.B, lat []time.Duration) {
	b.Helper()
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
}

// BenchmarkAppend measures one writer: each append is fsync'd and covered
// by a signed checkpoint before it returns.
func BenchmarkAppend(b *testing.B) {
	l, _ := newLog(b)
	lat := make([]time.Duration, 0, b.N)
	start := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := l.Append(context.Background(), sampleRecord()); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
	reportLatencies(b, lat)
}

// BenchmarkAppendOpen measures what a command's start record costs in
// agentexec, which opens the log afresh for every command: Open, one
// Append that cannot build on a previous one of its handle, Close.
func BenchmarkAppendOpen(b *testing.B) {
	_, opts := newLog(b)
	lat := make([]time.Duration, 0, b.N)
	start := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		l, err := Open(opts)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.Append(context.Background(), sampleRecord()); err != nil {
			b.Fatal(err)
		}
		l.Close()
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
	reportLatencies(b, lat)
}

// BenchmarkAppendConcurrent8 measures 8 writers with their own Log handle
// (as 8 processes would have), contending for the file lock.
func BenchmarkAppendConcurrent8(b *testing.B) {
	_, opts := newLog(b)
	const writers = 8
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	logs := make([]*Log, writers)
	for i := range logs {
		l, err := Open(opts)
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		logs[i] = l
	}
	per := (b.N + writers - 1) / writers
	start := time.Now()
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(l *Log) {
			defer wg.Done()
			mine := make([]time.Duration, 0, per)
			for i := 0; i < per; i++ {
				t0 := time.Now()
				if _, err := l.Append(context.Background(), sampleRecord()); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}(logs[w])
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(per*writers)/time.Since(start).Seconds(), "records/s")
	reportLatencies(b, lat)
}

// buildLog writes a log of n records directly, without a flush per record,
// so that a large log for the verify benchmark takes seconds to make.
func buildLog(b *testing.B, dir string, n int) Options {
	b.Helper()
	opts := Options{Dir: filepath.Join(dir, "state"), Origin: "bench.local/log"}
	l, err := Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	var hashes memHashes
	var bundle []byte
	prev := ""
	for i := 0; i < n; i++ {
		r := sampleRecord()
		r.Schema, r.Seq, r.Prev, r.LogOrigin = Schema, uint64(i), prev, l.origin
		r.ID, _ = newUUIDv7(time.Now())
		r.Time.Start = time.Now().UTC()
		r.Host, r.Principal = l.host, l.principal
		env, err := l.seal(r, nil)
		if err != nil {
			b.Fatal(err)
		}
		hs, err := tlog.StoredHashes(int64(i), env, hashes)
		if err != nil {
			b.Fatal(err)
		}
		hashes = append(hashes, hs...)
		sum := sha256.Sum256(env)
		prev = "sha256:" + hex.EncodeToString(sum[:])
		bundle = appendEntry(bundle, env)
		if (i+1)%tileWidth == 0 || i == n-1 {
			w := (i % tileWidth) + 1
			p := filepath.Join(opts.Dir, "log", bundlePath(int64(i/tileWidth), w))
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(p, bundle, 0o600); err != nil {
				b.Fatal(err)
			}
			bundle = nil
		}
	}
	for _, t := range tlog.NewTiles(tileHeight, 0, int64(n)) {
		data, err := tlog.ReadTileData(t, hashes)
		if err != nil {
			b.Fatal(err)
		}
		p := filepath.Join(opts.Dir, "log", hashTilePath(t.L, t.N, t.W))
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	root, err := treeHash(int64(n), hashes)
	if err != nil {
		b.Fatal(err)
	}
	ss := &syncSet{}
	if _, err := l.writeCheckpoint(ss, int64(n), root); err != nil {
		b.Fatal(err)
	}
	ss.close()
	return opts
}

var (
	verifyLogOnce sync.Once
	verifyLogOpts Options
	verifyLogDir  string
)

// BenchmarkVerify100k measures `audit verify` on a 100 000 record log. One
// op is one record: the log is verified ceil(b.N/100000) times, so a fixed
// -benchtime such as 2000x still verifies the whole log once. The log is
// built once per test binary.
func BenchmarkVerify100k(b *testing.B) {
	n := benchVerifySize()
	verifyLogOnce.Do(func() {
		var err error
		if verifyLogDir, err = os.MkdirTemp("", "audit-bench-"); err != nil {
			b.Fatal(err)
		}
		verifyLogOpts = buildLog(b, verifyLogDir, n)
	})
	passes := 1 + (b.N-1)/n
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < passes; i++ {
		rep, err := Verify(verifyLogOpts)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Size != int64(n) {
			b.Fatalf("got %d records, want %d", rep.Size, n)
		}
	}
	b.ReportMetric(float64(n*passes)/time.Since(start).Seconds(), "records/s")
}

func benchVerifySize() int {
	if s := os.Getenv("AUDIT_BENCH_VERIFY_N"); s != "" {
		n, _ := strconv.Atoi(s)
		return n
	}
	return 100_000
}

// BenchmarkEd25519VerifyBaseline is the floor under BenchmarkVerify100k:
// one signature check per record, measured in the same run, so that the
// verify throughput can be read against what this machine can do at all.
func BenchmarkEd25519VerifyBaseline(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := make([]byte, 1200)
	sig := ed25519.Sign(priv, msg)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("bad signature")
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "verifies/s/core")
}

// BenchmarkFsyncBaseline is the floor under BenchmarkAppend: appending an
// envelope-sized block to a file and fsyncing it, in the same directory
// tree and the same run.
func BenchmarkFsyncBaseline(b *testing.B) {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "baseline"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 1500)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := f.Write(block); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	reportLatencies(b, lat)
}
