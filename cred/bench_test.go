package cred

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// benchNeedles is 20 random 40-byte secrets with every encoding.
func benchNeedles(b *testing.B) (*Needles, [][]byte) {
	b.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/"
	n := &Needles{}
	var secrets [][]byte
	for i := range 20 {
		s := make([]byte, 40)
		for j := range s {
			s[j] = alnum[rng.IntN(len(alnum))]
		}
		if err := n.Add(fmt.Sprintf("secret%d", i), s); err != nil {
			b.Fatal(err)
		}
		secrets = append(secrets, s)
	}
	return n, secrets
}

// benchSize keeps one iteration short: make bench runs a fixed number
// of iterations of every benchmark.
const benchSize = 512 << 10

// benchInput is build-log-like text, hex and base64 dumps, with a secret
// every ~64 KiB.
func benchInput(secrets [][]byte, size int) []byte {
	rng := rand.New(rand.NewPCG(8, 8))
	var buf bytes.Buffer
	lines := []string{
		"ok  \tgithub.com/example/project/internal/pkg\t0.512s\n",
		"=== RUN   TestSomethingWithAReasonablyLongName/sub_case_42\n",
		"2026-11-30T05:00:00Z INFO request handled method=GET path=/api/v1/items status=200 dur=3ms\n",
		"00000010: 6465 6667 6869 6a6b 6c6d 6e6f 7071 7273  defghijklmnopqrs\n",
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpM\n",
		"  compiling serde v1.0.210 (registry+https://github.com/rust-lang/crates.io-index)\n",
	}
	for buf.Len() < size {
		buf.WriteString(lines[rng.IntN(len(lines))])
		if rng.IntN(1000) == 0 {
			buf.Write(secrets[rng.IntN(len(secrets))])
			buf.WriteByte('\n')
		}
	}
	return buf.Bytes()[:size]
}

// BenchmarkRedactor measures throughput with 20 secrets (each with its
// encodings: 20 needles a secret) on 32 KiB writes, the size of a pipe
// read. Compare with BenchmarkBaselineCopy from the same run.
func BenchmarkRedactor(b *testing.B) {
	n, secrets := benchNeedles(b)
	in := benchInput(secrets, benchSize)
	b.ReportMetric(float64(n.Len()), "needles")
	b.SetBytes(int64(len(in)))
	b.ResetTimer()
	for b.Loop() {
		r := NewRedactor(io.Discard, n)
		for i := 0; i < len(in); i += 32 << 10 {
			_, _ = r.Write(in[i:min(i+32<<10, len(in))])
		}
		_ = r.Close()
	}
}

// BenchmarkCompileNeedles is the per-command cost of building the matcher
// for 20 secrets.
func BenchmarkCompileNeedles(b *testing.B) {
	_, secrets := benchNeedles(b)
	for b.Loop() {
		n := &Needles{}
		for i, s := range secrets {
			_ = n.Add(fmt.Sprint(i), s)
		}
		n.compiled()
	}
}

// BenchmarkBaselineCopy is the floor the redactor is compared with in the
// same run: one pass over the same input that touches every byte.
func BenchmarkBaselineCopy(b *testing.B) {
	_, secrets := benchNeedles(b)
	in := benchInput(secrets, benchSize)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		var sum byte
		for _, c := range in {
			sum += c
		}
		_, _ = io.Discard.Write([]byte{sum})
	}
}
