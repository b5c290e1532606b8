package cred

import (
	"io"
)

// Redactor is an io.WriteCloser that copies its input to another writer
// with every needle replaced by "[REDACTED:<name>]", however the input is
// split across Write calls.
//
// It holds back only bytes that could still be the start of a needle:
// everything before the earliest possible match start is written out
// before Write returns, so interactive output is delayed only while it
// ends in a prefix of some needle. Close (or Flush) at end of stream
// treats the held bytes as non-matches and writes them. Held bytes are
// never released on a timer: that would leak the prefix of a secret.
//
// Overlapping matches are merged into one replacement, named after the
// match that starts first (the longest one if several start together).
// Adjacent matches are replaced separately.
//
// Needles also match when line breaks interrupt them after their first
// wrapDepth characters, or blanks after blankDepth (base64 wraps at 76
// columns, xxd -p at 60, od groups bytes with blanks), provided no needle
// continues with that whitespace and the run is at most maxSkipRun bytes;
// the whole span, whitespace included, is replaced.
//
// What it holds is bounded: the longest needle, plus skipped whitespace,
// plus at most maxRangeHold bytes of a run of overlapping matches.
//
// A Redactor is not safe for concurrent use; use one per stream.
type Redactor struct {
	w   io.Writer
	set *Needles
	m   *matcher
	gen uint64

	buf  []byte // input not yet written out
	base int64  // stream offset of buf[0]
	out  []byte // scratch for one write to w

	state int32 // the automaton's encoded state
	// The automaton sees the stream without the whitespace it skipped
	// (the "scanned stream"). skips[i] is the number of scanned bytes
	// before the i-th skipped byte still held, so that a scanned offset
	// maps back to a stream offset.
	skips     []int64
	skipsBase int64 // stream offset of scanned offset 0, plus skips dropped since
	vpos      int64 // scanned bytes consumed

	ranges []span // pending matches, sorted, disjoint

	count  int
	closed bool
	err    error
}

// Bounds on what a Redactor holds, whatever the input.
const (
	// maxSkipRun is the longest run of whitespace skipped inside a
	// partial match: layouts insert one or two ("\r\n", " "), and an
	// unbounded run would hold output back for as long as it lasted.
	maxSkipRun = 4
	// maxRangeHold is how far a growing run of overlapping matches is
	// held before its start is replaced and written out.
	maxRangeHold = 4096
)

// span is a matched range [start, end) in stream offsets, with the match
// that names it.
type span struct {
	start, end int64
	bestStart  int64
	bestLen    int64
	name       int32
}

// NewRedactor returns a Redactor writing to w. Needles added to n later
// apply to the bytes not yet written out.
func NewRedactor(w io.Writer, n *Needles) *Redactor {
	r := &Redactor{w: w, set: n}
	if n == nil {
		n = &Needles{}
		r.set = n
	}
	r.m, r.gen = n.compiled()
	return r
}

// Count is the number of replacements written so far.
func (r *Redactor) Count() int { return r.count }

// Write implements io.Writer. It reports len(p) unless the underlying
// writer failed; after a failure every later call returns that error.
func (r *Redactor) Write(p []byte) (int, error) {
	if r.closed {
		return 0, ErrClosed
	}
	if r.err != nil {
		return 0, r.err
	}
	if r.set.gen.Load() != r.gen {
		r.recompile()
	}
	start := len(r.buf)
	r.buf = append(r.buf, p...)
	r.scan(start)
	if err := r.emit(r.boundary()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes out every held byte, treating partial matches as
// non-matches. Use it only at the end of a stream (Close calls it):
// bytes written after a Flush are matched afresh.
func (r *Redactor) Flush() error {
	if r.err != nil {
		return r.err
	}
	if err := r.emit(r.base + int64(len(r.buf))); err != nil {
		return err
	}
	r.state = 0
	r.skips, r.skipsBase, r.vpos = r.skips[:0], r.base, 0
	return nil
}

// Close flushes and makes later writes fail. It does not close the
// underlying writer.
func (r *Redactor) Close() error {
	if r.closed {
		return nil
	}
	err := r.Flush()
	r.closed = true
	clear(r.buf)
	clear(r.out)
	return err
}

// recompile switches to a newer needle set and rescans the held bytes
// with it; bytes already written out are not revisited.
func (r *Redactor) recompile() {
	r.m, r.gen = r.set.compiled()
	r.state = 0
	r.ranges = r.ranges[:0]
	r.skips, r.skipsBase, r.vpos = r.skips[:0], r.base, 0
	r.scan(0)
}

// scan runs the automaton over buf[from:].
func (r *Redactor) scan(from int) {
	a := r.m.a
	table, cls, lim, match := a.table, &a.class, a.limit, a.match
	buf := r.buf
	// st and vpos stay in registers: the inner loop calls nothing, so
	// nothing spills them onto each byte's chain of dependent loads.
	st, vpos := r.state, r.vpos
	i := from
	for i < len(buf) {
		// Fast path: a dense state, no needle ending, and no whitespace
		// that might be skipped.
		for i < len(buf) && st < lim {
			b := buf[i]
			next := table[st+cls[b]]
			if match[next] || next == 0 && b <= ' ' && st != 0 {
				break
			}
			st = next
			vpos++
			i++
		}
		if i >= len(buf) {
			break
		}
		// Slow path, one byte: a sparse state, a match, or whitespace
		// that would end a long enough partial match. That whitespace is
		// skipped when no needle continues with it.
		b := buf[i]
		var next int32
		if st < lim {
			next = table[st+cls[b]]
		} else {
			next = a.stepSparse(st, cls[b])
		}
		if next == 0 && b <= ' ' && st != 0 && r.skipBlank(b, st) && r.skipRun(vpos) < maxSkipRun {
			r.skips = append(r.skips, vpos)
			i++
			continue
		}
		st = next
		vpos++
		if match[st] {
			n := a.needles[a.out[a.dec(st)]-1]
			end := r.base + int64(i) + 1
			r.addRange(r.realOf(vpos-int64(len(n.s))), end, n.name)
		}
		i++
	}
	r.state, r.vpos = st, vpos
}

// skipBlank says whether whitespace byte b is skipped in encoded state st:
// only inside a partial match long enough that the blank or line break is
// more likely a dump's layout than text.
func (r *Redactor) skipBlank(b byte, st int32) bool {
	var need int32
	switch b {
	case ' ', '\t':
		need = blankDepth
	case '\n', '\r':
		need = wrapDepth
	default:
		return false
	}
	return r.m.a.holdOf(st) >= need
}

// realOf maps a scanned offset to a stream offset: the position of
// that byte, after any whitespace skipped before it.
func (r *Redactor) realOf(v int64) int64 {
	// Count skips recorded at scanned offsets <= v.
	lo, hi := 0, len(r.skips)
	for lo < hi {
		mid := (lo + hi) / 2
		if r.skips[mid] <= v {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return v + r.skipsBase + int64(lo)
}

// addRange records a match, merging it with pending overlapping ones.
func (r *Redactor) addRange(start, end int64, name int32) {
	nw := span{start: start, end: end, bestStart: start, bestLen: end - start, name: name}
	// Matches arrive roughly in order: look from the back for the first
	// pending range that ends after start.
	i := len(r.ranges)
	for i > 0 && r.ranges[i-1].end > start {
		i--
	}
	j := i
	for j < len(r.ranges) && r.ranges[j].start < end {
		o := r.ranges[j]
		nw.start = min(nw.start, o.start)
		nw.end = max(nw.end, o.end)
		if better(o, nw) {
			nw.bestStart, nw.bestLen, nw.name = o.bestStart, o.bestLen, o.name
		}
		j++
	}
	if i == j {
		r.ranges = append(r.ranges, span{})
		copy(r.ranges[i+1:], r.ranges[i:])
		r.ranges[i] = nw
		return
	}
	r.ranges[i] = nw
	r.ranges = append(r.ranges[:i+1], r.ranges[j:]...)
}

// better reports whether a's naming match wins over b's: earlier start,
// then longer, then the name registered first.
func better(a, b span) bool {
	if a.bestStart != b.bestStart {
		return a.bestStart < b.bestStart
	}
	if a.bestLen != b.bestLen {
		return a.bestLen > b.bestLen
	}
	return a.name < b.name
}

// boundary is the stream offset before which nothing can change any more.
func (r *Redactor) boundary() int64 {
	end := r.base + int64(len(r.buf))
	b := end
	if d := r.m.a.holdOf(r.state); d > 0 {
		b = r.realOf(r.vpos - int64(d))
	}
	// A pending match that straddles the boundary may still grow, so it
	// is held whole, unless it has grown past maxRangeHold (a value that
	// overlaps itself, repeated: "aaaaaa" in a run of a's). Then the part
	// before b is replaced now: no later match can start before b, so
	// the split costs only an extra placeholder.
	for k, s := range r.ranges {
		if s.end > b {
			if s.start < b && b-s.start >= maxRangeHold {
				head := s
				head.end = b
				r.ranges[k].start, r.ranges[k].bestStart, r.ranges[k].bestLen = b, b, s.end-b
				r.ranges = append(r.ranges, span{})
				copy(r.ranges[k+1:], r.ranges[k:])
				r.ranges[k] = head
			} else {
				b = min(b, s.start)
			}
			break
		}
	}
	return b
}

// skipRun is how many whitespace bytes were skipped since the last
// scanned byte (at most maxSkipRun).
func (r *Redactor) skipRun(vpos int64) int {
	n := 0
	for i := len(r.skips) - 1; i >= 0 && r.skips[i] == vpos && n < maxSkipRun; i-- {
		n++
	}
	return n
}

// emit writes out everything before stream offset b and drops it from
// the buffer.
func (r *Redactor) emit(b int64) error {
	if b <= r.base {
		return nil
	}
	out := r.out[:0]
	pos := r.base
	k := 0
	for ; k < len(r.ranges) && r.ranges[k].end <= b; k++ {
		s := r.ranges[k]
		out = append(out, r.buf[pos-r.base:s.start-r.base]...)
		out = append(out, "[REDACTED:"...)
		out = append(out, r.m.names[s.name]...)
		out = append(out, ']')
		pos = s.end
		r.count++
	}
	r.ranges = append(r.ranges[:0], r.ranges[k:]...)
	var err error
	if k == 0 {
		// Nothing replaced: write straight from the buffer.
		_, err = r.w.Write(r.buf[:b-r.base])
	} else {
		out = append(out, r.buf[pos-r.base:b-r.base]...)
		_, err = r.w.Write(out)
		clear(out)
		r.out = out[:0]
	}
	if err != nil {
		r.err = err
		return err
	}
	n := copy(r.buf, r.buf[b-r.base:])
	clear(r.buf[n:])
	r.buf = r.buf[:n]
	r.base = b
	r.trimSkips()
	return nil
}

// trimSkips forgets skipped whitespace that lies before the buffer.
func (r *Redactor) trimSkips() {
	k := 0
	// The k-th skipped byte sits at stream offset skips[k]+skipsBase+k.
	for k < len(r.skips) && r.skips[k]+r.skipsBase+int64(k) < r.base {
		k++
	}
	if k > 0 {
		r.skipsBase += int64(k)
		r.skips = append(r.skips[:0], r.skips[k:]...)
	}
}
