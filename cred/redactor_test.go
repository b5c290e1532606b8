package cred

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// redact runs input through a fresh Redactor in the given chunk sizes
// (cycled; nil means one write) and returns the output.
func redact(t *testing.T, n *Needles, input []byte, chunks []int) string {
	t.Helper()
	var out bytes.Buffer
	r := NewRedactor(&out, n)
	for i, k := 0, 0; i < len(input); k++ {
		size := len(input) - i
		if len(chunks) > 0 {
			size = min(max(chunks[k%len(chunks)], 1), len(input)-i)
		}
		if _, err := r.Write(input[i : i+size]); err != nil {
			t.Fatalf("Write: %v", err)
		}
		i += size
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return out.String()
}

func mustNeedles(t *testing.T, pairs ...string) *Needles {
	t.Helper()
	n := &Needles{}
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := n.Add(pairs[i], []byte(pairs[i+1])); err != nil {
			t.Fatalf("Add(%q): %v", pairs[i], err)
		}
	}
	return n
}

func TestRedactorEncodings(t *testing.T) {
	const tok = `s3cr3t/T0k+n&"q"$x\y`
	const mark = "[REDACTED:tok]"
	n := mustNeedles(t, "tok", tok)
	jsonBody := func(s string) string { b, _ := json.Marshal(s); return string(b[1 : len(b)-1]) }
	goQuote := strconv.Quote(tok)
	cases := []struct{ name, in, want string }{
		{"raw", "token=" + tok + ".", "token=" + mark + "."},
		{"raw twice adjacent", tok + tok, mark + mark},
		{"query escape", "?t=" + url.QueryEscape(tok) + "&x", "?t=" + mark + "&x"},
		{"path escape", "/p/" + url.PathEscape(tok) + "/", "/p/" + mark + "/"},
		{"query escape lower hex", "?t=" + lowerPercent(url.QueryEscape(tok)), "?t=" + mark},
		{"json", `{"t":"` + jsonBody(tok) + `"}`, `{"t":"` + mark + `"}`},
		{"go quote", "v=" + goQuote, `v="` + mark + `"`},
		{"shell double quote", `export T="` + shellDoubleQuote(tok) + `"`, `export T="` + mark + `"`},
		{"printf %q", "T=" + shellBackslash(tok), "T=" + mark},
		{"html", "<b>" + strings.ReplaceAll(strings.ReplaceAll(tok, "&", "&amp;"), `"`, "&#34;") + "</b>", "<b>" + mark + "</b>"},
		{"hex lower", "x " + hex.EncodeToString([]byte(tok)) + " y", "x " + mark + " y"},
		{"hex upper", strings.ToUpper(hex.EncodeToString([]byte(tok))), mark},
	}
	for k := 0; k < 3; k++ {
		for _, enc := range []struct {
			name string
			e    *base64.Encoding
		}{{"std", base64.StdEncoding}, {"url", base64.URLEncoding}} {
			// The value at offset k inside a longer encoded blob: the
			// bytes before it and the last partial group stay.
			pre := strings.Repeat("P", k)
			full := enc.e.EncodeToString([]byte(pre + tok + "SUFFIX!"))
			skip := (k + 2) / 3 * 3 // first group boundary at or after the value
			nd := enc.e.Strict().EncodeToString([]byte(tok[skip-k:]))
			nd = strings.TrimRight(nd, "=")
			if (len(tok)-(skip-k))%3 != 0 {
				nd = nd[:len(nd)-1]
			}
			at := strings.Index(full, nd)
			if at < 0 {
				t.Fatalf("test setup: needle not in encoding")
			}
			cases = append(cases, struct{ name, in, want string }{
				fmt.Sprintf("base64 %s offset %d", enc.name, k), full, full[:at] + mark + full[at+len(nd):],
			})
		}
	}
	// HTTP Basic: base64("user:" + token), the token at offset 5.
	basic := base64.StdEncoding.EncodeToString([]byte("user:" + tok))
	nd := strings.TrimRight(base64.StdEncoding.EncodeToString([]byte(tok[1:])), "=")
	if (len(tok)-1)%3 != 0 {
		nd = nd[:len(nd)-1]
	}
	cases = append(cases, struct{ name, in, want string }{
		"basic auth header", "Authorization: Basic " + basic + "\r\n",
		"Authorization: Basic " + basic[:8] + mark + basic[8+len(nd):] + "\r\n",
	})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, chunks := range [][]int{nil, {1}, {2, 3}, {7}} {
				if got := redact(t, n, []byte(c.in), chunks); got != c.want {
					t.Errorf("chunks %v: got %q, want %q", chunks, got, c.want)
				}
			}
		})
	}
}

func TestRedactorNonASCIIJSON(t *testing.T) {
	const tok = "pässwörd-🔑-secret"
	n := mustNeedles(t, "p", tok)
	// Python's json.dumps escapes every non-ASCII rune, with surrogate pairs.
	py := `"p\u00e4ssw\u00f6rd-\ud83d\udd11-secret"`
	if got, want := redact(t, n, []byte(py), nil), `"[REDACTED:p]"`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	goJSON, _ := json.Marshal(tok)
	if got, want := redact(t, n, goJSON, []int{1}), `"[REDACTED:p]"`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRedactorWrapped(t *testing.T) {
	tok := strings.Repeat("ghs_Wrapped0123456789", 4) // 84 bytes
	n := mustNeedles(t, "gh", tok)
	hexTok := hex.EncodeToString([]byte(tok))
	xxd := "" // xxd -p: 60 hex digits per line
	for i := 0; i < len(hexTok); i += 60 {
		xxd += hexTok[i:min(i+60, len(hexTok))] + "\n"
	}
	b64 := base64.StdEncoding.EncodeToString([]byte(tok)) // coreutils base64: 76 columns
	wrapped := ""
	for i := 0; i < len(b64); i += 76 {
		wrapped += b64[i:min(i+76, len(b64))] + "\n"
	}
	od := ""
	for i := 0; i < len(tok); i++ {
		od += fmt.Sprintf(" %02x", tok[i])
		if i%16 == 15 {
			od += "\n"
		}
	}
	cases := []struct{ name, in, want string }{
		{"xxd -p", xxd, "[REDACTED:gh]\n"},
		{"base64 76 columns", wrapped, "[REDACTED:gh]\n"},
		{"od -An -tx1 style", od + "\n", " [REDACTED:gh]\n"},
		{"crlf", strings.ReplaceAll(xxd, "\n", "\r\n"), "[REDACTED:gh]\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, chunks := range [][]int{nil, {1}, {5, 1}} {
				got := redact(t, n, []byte(c.in), chunks)
				// The final partial base64 character of an unpadded value
				// may survive; only the value-derived text must not.
				got = strings.TrimRight(got, "=\n")
				want := strings.TrimRight(c.want, "\n")
				if strings.HasPrefix(c.name, "base64") {
					if !strings.HasPrefix(got, "[REDACTED:gh]") || len(got) > len("[REDACTED:gh]")+1 {
						t.Errorf("chunks %v: got %q, want %q and at most one trailing character", chunks, got, want)
					}
					continue
				}
				if got != want {
					t.Errorf("chunks %v: got %q, want %q", chunks, got, want)
				}
			}
		})
	}
}

func TestRedactorMultiline(t *testing.T) {
	key := "-----BEGIN KEY-----\nAAAAline1secret\nBBBBline2secret\n-----END KEY-----"
	n := mustNeedles(t, "key", key)
	in := "first: BBBBline2secret\nall:\n" + key + "\n"
	want := "first: [REDACTED:key]\nall:\n[REDACTED:key]\n"
	if got := redact(t, n, []byte(in), []int{3}); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRedactorHoldsOnlyPossiblePrefixes(t *testing.T) {
	n := mustNeedles(t, "tok", "ghs_secretvalue")
	var out bytes.Buffer
	r := NewRedactor(&out, n)
	steps := []struct{ write, want string }{
		{"$ prompt> ", "$ prompt> "},              // nothing held: no needle starts here
		{"token ghs_sec", "$ prompt> token "},     // "ghs_sec" could be the token
		{"ond\n", "$ prompt> token ghs_second\n"}, // resolved: not the token
		{"ghs_secretvalue", "$ prompt> token ghs_second\n[REDACTED:tok]"},
		{"!", "$ prompt> token ghs_second\n[REDACTED:tok]!"},
	}
	for i, s := range steps {
		if _, err := r.Write([]byte(s.write)); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != s.want {
			t.Errorf("after write %d (%q): got %q, want %q", i, s.write, got, s.want)
		}
	}
	if _, err := r.Write([]byte("ghs")); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), steps[len(steps)-1].want+"ghs"; got != want {
		t.Errorf("after Close: got %q, want %q", got, want)
	}
	if got, want := r.Count(), 1; got != want {
		t.Errorf("Count: got %d, want %d", got, want)
	}
	if _, err := r.Write([]byte("x")); err != ErrClosed {
		t.Errorf("Write after Close: got %v, want ErrClosed", err)
	}
}

func TestRedactorNeedlesAddedLater(t *testing.T) {
	n := mustNeedles(t, "a", "alpha-secret")
	var out bytes.Buffer
	r := NewRedactor(&out, n)
	_, _ = r.Write([]byte("x alpha-sec")) // held
	if err := n.Add("b", []byte("beta-secret")); err != nil {
		t.Fatal(err)
	}
	_, _ = r.Write([]byte("ret beta-secret y"))
	_ = r.Close()
	if got, want := out.String(), "x [REDACTED:a] [REDACTED:b] y"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestNeedlesAddRefusesShort(t *testing.T) {
	n := &Needles{}
	err := n.Add("pin", []byte("12345"))
	var tse *TooShortError
	if !errorsAs(err, &tse) || tse.Len != 5 {
		t.Fatalf("got %v, want *TooShortError with Len 5", err)
	}
	if got := n.Len(); got != 0 {
		t.Errorf("needles after refused Add: got %d, want 0", got)
	}
}

// refRedact is a brute-force model of the redactor's semantics, written
// without the automaton: it keeps the scanned stream (input minus skipped
// whitespace) and, for every byte, recomputes by exhaustive comparison
// (1) whether a whitespace byte is skipped: no needle prefix ends with it,
// and the longest suffix that is a proper prefix of some needle is long
// enough; (2) the longest needle ending here. Overlapping matches merge
// and take the name of the earliest (then longest) one.
func refRedact(input []byte, ns []needle, names []string) string {
	type match struct {
		start, end int
		name       int32
	}
	var scanned []byte
	var realPos []int
	var ms []match
	isPrefix := func(x []byte, proper bool) bool {
		for _, n := range ns {
			if bytes.HasPrefix(n.s, x) && (!proper || len(n.s) > len(x)) {
				return true
			}
		}
		return false
	}
	// longestSuffix is the longest suffix of s (possibly empty) for which
	// ok holds.
	longestSuffix := func(s []byte, ok func([]byte) bool) int {
		for l := len(s); l > 0; l-- {
			if ok(s[len(s)-l:]) {
				return l
			}
		}
		return 0
	}
	run := 0 // whitespace skipped since the last scanned byte
	for i, b := range input {
		next := append(bytes.Clone(scanned), b)
		if (b == ' ' || b == '\t' || b == '\n' || b == '\r') && run < maxSkipRun {
			need := blankDepth
			if b == '\n' || b == '\r' {
				need = wrapDepth
			}
			grows := longestSuffix(next, func(x []byte) bool { return isPrefix(x, false) })
			hold := longestSuffix(scanned, func(x []byte) bool { return isPrefix(x, true) })
			if grows == 0 && hold >= need {
				run++
				continue
			}
		}
		run = 0
		scanned, realPos = next, append(realPos, i)
		best := -1
		for k, n := range ns {
			if bytes.HasSuffix(scanned, n.s) && (best < 0 || len(n.s) > len(ns[best].s)) {
				best = k
			}
		}
		if best >= 0 {
			start := realPos[len(scanned)-len(ns[best].s)]
			ms = append(ms, match{start, i + 1, ns[best].name})
		}
	}
	sort.Slice(ms, func(a, b int) bool {
		if ms[a].start != ms[b].start {
			return ms[a].start < ms[b].start
		}
		if ms[a].end != ms[b].end {
			return ms[a].end > ms[b].end
		}
		return ms[a].name < ms[b].name
	})
	var out strings.Builder
	pos := 0
	for i := 0; i < len(ms); {
		g := ms[i]
		end := g.end
		j := i + 1
		for j < len(ms) && ms[j].start < end {
			end = max(end, ms[j].end)
			j++
		}
		out.Write(input[pos:g.start])
		out.WriteString("[REDACTED:" + names[g.name] + "]")
		pos = end
		i = j
	}
	out.Write(input[pos:])
	return out.String()
}

// rawNeedles builds a set of plain needles directly (no encodings, any
// length), for testing the matcher against the model.
func rawNeedles(ns []needle, names []string) *Needles {
	return &Needles{needles: ns, names: names}
}

func randomNeedles(rng *rand.Rand, alphabet string) ([]needle, []string) {
	names := []string{"n0", "n1", "n2"}
	seen := map[string]bool{}
	var ns []needle
	for range 1 + rng.IntN(6) {
		b := make([]byte, 1+rng.IntN(7))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		if seen[string(b)] {
			continue
		}
		seen[string(b)] = true
		ns = append(ns, needle{s: b, name: int32(rng.IntN(len(names)))})
	}
	return ns, names
}

func TestRedactorMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 3000 {
		alphabet := "abc"
		if iter%3 == 0 {
			alphabet = "ab\n c"
		}
		ns, names := randomNeedles(rng, alphabet)
		input := make([]byte, rng.IntN(120))
		for i := range input {
			input[i] = alphabet[rng.IntN(len(alphabet))]
		}
		want := refRedact(input, ns, names)
		n := rawNeedles(ns, names)
		chunkings := [][]int{nil, {1}, {1 + rng.IntN(5)}, {rng.IntN(9) + 1, rng.IntN(3) + 1, 1}}
		for _, ch := range chunkings {
			if got := redact(t, n, input, ch); got != want {
				t.Fatalf("iteration %d, needles %q, input %q, chunks %v:\ngot  %q\nwant %q",
					iter, needleStrings(ns), input, ch, got, want)
			}
		}
	}
}

func needleStrings(ns []needle) []string {
	var s []string
	for _, n := range ns {
		s = append(s, string(n.s))
	}
	return s
}

func TestRedactorWrappedModel(t *testing.T) {
	// Wrappable needles over "0-9a-f", broken at random places at or after
	// wrapDepth by whitespace, inside text from a disjoint alphabet.
	rng := rand.New(rand.NewPCG(3, 4))
	for iter := range 2000 {
		nd := make([]byte, 8+rng.IntN(40))
		for i := range nd {
			nd[i] = "0123456789abcdef"[rng.IntN(16)]
		}
		n := rawNeedles([]needle{{s: bytes.Clone(nd)}}, []string{"h"})
		var mid []byte
		for i, c := range nd {
			if i >= wrapDepth && rng.IntN(6) == 0 {
				mid = append(mid, []string{"\n", "\r\n", " ", "\t", "\n\n"}[rng.IntN(5)]...)
			}
			mid = append(mid, c)
		}
		pre := strings.Repeat("xyz \n", rng.IntN(4))
		post := strings.Repeat(" zyx\n", rng.IntN(4))
		want := pre + "[REDACTED:h]" + post
		for _, ch := range [][]int{nil, {1}, {1 + rng.IntN(7)}} {
			if got := redact(t, n, []byte(pre+string(mid)+post), ch); got != want {
				t.Fatalf("iteration %d, needle %q, input %q, chunks %v: got %q, want %q",
					iter, nd, pre+string(mid)+post, ch, got, want)
			}
		}
	}
}

func TestRedactStringEveryChunking(t *testing.T) {
	n := mustNeedles(t, "t", "topsecret-value")
	in := []byte("a topsecret-value b dG9wc2VjcmV0LXZhbHVl c")
	want := n.RedactString(string(in))
	if strings.Contains(want, "topsecret") || strings.Contains(want, "dG9wc2VjcmV0LXZhbH") {
		t.Fatalf("RedactString leaked: %q", want)
	}
	// Every split point, and every pair of split points.
	for i := 0; i <= len(in); i++ {
		for j := i; j <= len(in); j++ {
			var out bytes.Buffer
			r := NewRedactor(&out, n)
			for _, part := range [][]byte{in[:i], in[i:j], in[j:]} {
				_, _ = r.Write(part)
			}
			_ = r.Close()
			if out.String() != want {
				t.Fatalf("split at %d,%d: got %q, want %q", i, j, out.String(), want)
			}
		}
	}
}

// TestRedactorsShareNeedles runs a stdout and a stderr redactor on one
// set in parallel while values are added, as exec does; run with -race.
func TestRedactorsShareNeedles(t *testing.T) {
	n := mustNeedles(t, "a", "first-secret-value")
	done := make(chan string, 2)
	for range 2 {
		go func() {
			var out bytes.Buffer
			r := NewRedactor(&out, n)
			for range 200 {
				_, _ = r.Write([]byte("x first-secret-value y "))
			}
			_ = r.Close()
			done <- out.String()
		}()
	}
	for i := range 20 {
		_ = n.Add(fmt.Sprintf("n%d", i), []byte(fmt.Sprintf("later-secret-%02d", i)))
	}
	for range 2 {
		if got := <-done; strings.Contains(got, "first-secret") || strings.Count(got, "[REDACTED:a]") != 200 {
			t.Errorf("got %d replacements and leaks=%v, want 200 and none", strings.Count(got, "[REDACTED:a]"), strings.Contains(got, "first-secret"))
		}
	}
}

func TestRedactorBoundedHold(t *testing.T) {
	t.Run("self-overlapping value repeated", func(t *testing.T) {
		n := mustNeedles(t, "rep", "aaaaaa")
		var out bytes.Buffer
		r := NewRedactor(&out, n)
		for range 3 * maxRangeHold {
			_, _ = r.Write([]byte("a"))
		}
		if out.Len() == 0 {
			t.Errorf("nothing written after %d bytes: the run is held whole", 3*maxRangeHold)
		}
		_ = r.Close()
		if got := strings.ReplaceAll(out.String(), "[REDACTED:rep]", ""); got != "" {
			t.Errorf("left after removing placeholders: %q, want nothing", got)
		}
	})
	t.Run("whitespace run after a partial match", func(t *testing.T) {
		n := mustNeedles(t, "hex", "wrapped-secret-value")
		hexv := hex.EncodeToString([]byte("wrapped-secret-value"))
		var out bytes.Buffer
		r := NewRedactor(&out, n)
		_, _ = r.Write([]byte(hexv[:10]))
		_, _ = r.Write([]byte("\n\n\n\n\n\n\n\n"))
		if got, want := out.String(), hexv[:10]+"\n\n\n\n\n\n\n\n"; got != want {
			t.Errorf("got %q, want %q written: runs longer than %d end a partial match", got, want, maxSkipRun)
		}
		_ = r.Close()
	})
}
