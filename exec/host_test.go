package exec

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentexec/agentexec/sandbox"
)

// output runs req through the zero Engine (the host runner) with digests
// on, capturing stdout and stderr through files, and returns them.
func output(t *testing.T, req Request) (res Result, stdout, stderr string, err error) {
	t.Helper()
	dir := t.TempDir()
	o, _ := os.Create(filepath.Join(dir, "out"))
	e, _ := os.Create(filepath.Join(dir, "err"))
	defer o.Close()
	defer e.Close()
	req.Stdout, req.Stderr = o, e
	if req.Dir == "" {
		req.Dir = dir
	}
	if req.Env == nil {
		req.Env = []string{"PATH=/usr/bin:/bin"}
	}
	eng := Engine{Digest: true}
	res, err = eng.Run(context.Background(), req)
	ob, _ := os.ReadFile(o.Name())
	eb, _ := os.ReadFile(e.Name())
	return res, string(ob), string(eb), err
}

func TestHostExitStatus(t *testing.T) {
	tests := []struct {
		name     string
		req      Request
		wantCode int
		wantSig  int
		wantErr  error
	}{
		{name: "success", req: Request{Command: "true"}, wantCode: 0},
		{name: "status passes through", req: Request{Command: "exit 42"}, wantCode: 42},
		{name: "signal is 128+N", req: Request{Command: "kill -TERM $$"}, wantCode: 143, wantSig: 15},
		{name: "SIGKILL", req: Request{Argv: []string{"sh", "-c", "kill -KILL $$"}}, wantCode: 137, wantSig: 9},
		{name: "argv not found", req: Request{Argv: []string{"no-such-program-x"}}, wantCode: 127, wantErr: ErrNotFound},
		{name: "argv not executable", req: Request{Argv: []string{"/etc/hostname"}}, wantCode: 126, wantErr: ErrNotExecutable},
		{name: "shell not found is the shell's 127", req: Request{Command: "no-such-program-x"}, wantCode: 127},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, _, _, err := output(t, tc.req)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("got error %v, want %v", err, tc.wantErr)
			}
			if res.ExitCode != tc.wantCode || res.Signal != tc.wantSig {
				t.Errorf("got exit %d signal %d, want %d %d", res.ExitCode, res.Signal, tc.wantCode, tc.wantSig)
			}
		})
	}
}

func TestHostEnvIsExactlyTheRequests(t *testing.T) {
	tests := []struct {
		name string
		env  []string
	}{
		{name: "given", env: []string{"PATH=/usr/bin:/bin", "ONE=1", "SPACES=a b  c", "EMPTY="}},
		{name: "empty means empty", env: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, out, _, err := output(t, Request{Argv: []string{"/usr/bin/env", "-0"}, Env: tc.env})
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSuffix(out, "\x00"), "\x00")
			if out == "" {
				got = []string{}
			}
			if !slices.Equal(got, tc.env) {
				t.Errorf("got env %q, want exactly %q", got, tc.env)
			}
		})
	}
}

func TestHostDirAndName(t *testing.T) {
	dir := t.TempDir()
	_, out, _, err := output(t, Request{Command: `printf '%s|%s|%s|%s' "$PWD" "$0" "$1" "$#"`, Name: "nm", Args: []string{"a b", "c"}, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if want := dir + "|nm|a b|2"; out != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

// TestDigestIsOfWhatTheCallerGot checks both streams at once (a command
// writing 10 MiB to each: no deadlock) and that the digests are of the
// bytes that arrived.
func TestDigestIsOfWhatTheCallerGot(t *testing.T) {
	const n = 10 << 20
	res, out, errOut, err := output(t, Request{Command: "head -c 10485760 /dev/urandom & head -c 10485760 /dev/urandom >&2; wait"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		name string
		got  Output
		data string
	}{{"stdout", res.Stdout, out}, {"stderr", res.Stderr, errOut}} {
		sum := sha256.Sum256([]byte(s.data))
		if len(s.data) != n || s.got.Bytes != n || s.got.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: got %d bytes, digest %d %s; want %d and the sha256 of what arrived", s.name, len(s.data), s.got.Bytes, s.got.SHA256, n)
		}
	}
}

// TestSameFileKeepsOrder: when stdout and stderr are one file (2>&1), the
// command's writes to both keep their order, as they would without
// agentexec copying.
func TestSameFileKeepsOrder(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "both"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	eng := Engine{Digest: true}
	res, err := eng.Run(context.Background(), Request{
		Command: "for i in 1 2 3 4 5 6 7 8; do echo o$i; echo e$i >&2; done",
		Env:     []string{"PATH=/usr/bin:/bin"}, Dir: "/", Stdout: f, Stderr: f,
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(f.Name())
	var want bytes.Buffer
	for i := 1; i <= 8; i++ {
		want.WriteString("o" + string(rune('0'+i)) + "\ne" + string(rune('0'+i)) + "\n")
	}
	if string(got) != want.String() || !res.Merged {
		t.Errorf("got %q merged %v, want %q merged", got, res.Merged, want.String())
	}
}

// TestStdinBinaryRoundTrip pipes random bytes through cat, with and
// without digesting.
func TestStdinBinaryRoundTrip(t *testing.T) {
	data := make([]byte, 4<<20)
	r := rand.NewChaCha8([32]byte{1})
	_, _ = r.Read(data)
	for _, digest := range []bool{false, true} {
		t.Run(map[bool]string{false: "pass-through", true: "digested"}[digest], func(t *testing.T) {
			in, w, _ := os.Pipe()
			pr, out, _ := os.Pipe()
			go func() {
				_, _ = w.Write(data)
				w.Close()
			}()
			got := make(chan []byte)
			go func() {
				b, _ := io.ReadAll(pr)
				got <- b
			}()
			eng := Engine{Digest: digest}
			_, err := eng.Run(context.Background(), Request{Command: "cat", Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/", Stdin: in, Stdout: out})
			in.Close()
			out.Close()
			if err != nil {
				t.Fatal(err)
			}
			if b := <-got; !bytes.Equal(b, data) {
				t.Errorf("got %d bytes back, want the %d sent, unchanged", len(b), len(data))
			}
		})
	}
}

// TestBrokenPipe: a reader that goes away makes the command get SIGPIPE
// (141), as it would writing to the pipe directly, and agentexec lives.
func TestBrokenPipe(t *testing.T) {
	pr, pw, _ := os.Pipe()
	pr.Close()
	defer pw.Close()
	eng := Engine{Digest: true}
	res, err := eng.Run(context.Background(), Request{Command: "yes", Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/", Stdout: pw})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 141 {
		t.Errorf("got exit %d, want 141 (SIGPIPE)", res.ExitCode)
	}
}

func TestContextCancelEndsCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	res, err := Run(ctx, Request{Command: "sleep 30", Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Signal != 15 {
		t.Errorf("got signal %d exit %d, want SIGTERM (15)", res.Signal, res.ExitCode)
	}
}

func BenchmarkRunTrue(b *testing.B) {
	req := Request{Argv: []string{"/bin/true"}, Env: []string{}, Dir: "/"}
	for b.Loop() {
		if _, err := Run(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRunShellTrue(b *testing.B) {
	req := Request{Command: "true", Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/"}
	for b.Loop() {
		if _, err := Run(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHostTimeout: the Spec's wall-clock limit ends the whole process
// group and says so.
func TestHostTimeout(t *testing.T) {
	res, err := runHost(context.Background(), sandbox.Spec{
		Argv: []string{"/bin/sh", "-c", "sleep 30; echo not reached"}, Env: []string{}, Workspace: "/",
		Timeout: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut || res.Signal != 15 || res.ExitCode != 143 {
		t.Errorf("got timed out %v signal %d exit %d, want true 15 143", res.TimedOut, res.Signal, res.ExitCode)
	}
}

// BenchmarkStream measures output throughput handed straight to the
// caller's file against copied and digested (what an audit needs).
func BenchmarkStream(b *testing.B) {
	const size = 64 << 20
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	for _, digest := range []bool{false, true} {
		b.Run(map[bool]string{false: "pass-through", true: "digested"}[digest], func(b *testing.B) {
			b.SetBytes(size)
			eng := Engine{Digest: digest}
			req := Request{Argv: []string{"head", "-c", "67108864", "/dev/zero"}, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/", Stdout: devnull}
			for b.Loop() {
				res, err := eng.Run(context.Background(), req)
				if err != nil || res.ExitCode != 0 {
					b.Fatal(res.ExitCode, err)
				}
			}
		})
	}
}
