package audit

import (
	"context"
	"errors"
	"testing"
)

// newLog opens a fresh log in a temporary directory.
func newLog(t testing.TB) (*Log, Options) {
	t.Helper()
	opts := Options{Dir: t.TempDir() + "/state", Origin: "test.local/log"}
	l, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l, opts
}

func appendN(t testing.TB, l *Log, n int) []Entry {
	t.Helper()
	var out []Entry
	for i := 0; i < n; i++ {
		e, err := l.Append(context.Background(), &Record{Kind: KindStart, Command: Command{Line: "echo hi"}, Intent: CapIntent("say hi")})
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		out = append(out, e)
	}
	return out
}

func TestAppendVerifyRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 2, 255, 256, 257, 600} {
		t.Run("", func(t *testing.T) {
			l, opts := newLog(t)
			es := appendN(t, l, n)
			for i, e := range es {
				if e.Seq != uint64(i) {
					t.Fatalf("entry %d: got seq %d, want %d", i, e.Seq, i)
				}
			}
			rep, err := Verify(opts)
			if err != nil {
				t.Fatalf("Verify after %d appends: %v", n, err)
			}
			if rep.Size != int64(n) {
				t.Errorf("got size %d, want %d", rep.Size, n)
			}
			var ve *VerifyError
			_ = errors.As(err, &ve)
		})
	}
}
