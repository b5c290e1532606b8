package cred

import (
	"bytes"
	"testing"
)

// FuzzRedactor checks the streaming matcher against the model for plain
// needles, and that the real needle set (with every encoding) gives the
// same output however the input is split.
func FuzzRedactor(f *testing.F) {
	f.Add([]byte("abcab"), []byte("bca"), []byte("xxabcabcaxx"), []byte{1, 2, 3})
	f.Add([]byte("secret-one"), []byte("one-two"), []byte("secret-one-two secret-on"), []byte{1})
	f.Add([]byte("aaaaaa"), []byte("aaab"), []byte("aaaaaaaaaab"), []byte{5, 1})
	f.Add([]byte("ghs_token123"), []byte("Z2hzX3Rva2VuMTIz"), []byte("Z2hz\nX3Rva2VuMTIz ghs_token123"), []byte{2})
	f.Fuzz(func(t *testing.T, n1, n2, input, splits []byte) {
		if len(n1) == 0 || len(n2) == 0 || len(n1) > 64 || len(n2) > 64 || len(input) > 4096 {
			return
		}
		ns := []needle{{s: n1, name: 0}}
		if !bytes.Equal(n1, n2) {
			ns = append(ns, needle{s: n2, name: 1})
		}
		names := []string{"a", "b"}
		want := refRedact(input, ns, names)
		chunks := make([]int, 0, len(splits))
		for _, s := range splits {
			chunks = append(chunks, int(s%16)+1)
		}
		if got := redact(t, rawNeedles(ns, names), input, chunks); got != want {
			t.Fatalf("plain: got %q, want %q", got, want)
		}

		full := &Needles{}
		for i, v := range [][]byte{n1, n2} {
			if full.Add(names[i], v) != nil {
				return
			}
		}
		whole := redact(t, full, input, nil)
		if got := redact(t, full, input, chunks); got != whole {
			t.Fatalf("encodings: chunked output %q differs from one write %q", got, whole)
		}
	})
}
