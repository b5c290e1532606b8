package cred

// The matcher is an Aho-Corasick automaton. Shallow states (depth up to
// denseDepth) and states with several children get a dense row of next
// states over byte classes (only bytes that occur in some needle get a
// class of their own), so that ordinary output, which rarely gets past a
// few bytes into a needle, costs one table load per byte. Deeper states,
// which in a set of random secrets almost always have a single child,
// store only that child and their failure link. States are numbered dense
// first, in breadth-first order, which keeps the hot rows together in
// the cache and the whole automaton small enough to build per command.
//
// One automaton holds every needle, so that scanning is a single chain of
// dependent loads per byte (see Redactor for how whitespace inside a
// partial match is skipped).
type matcher struct {
	names []string
	a     *automaton
}

const denseDepth = 3

type automaton struct {
	class  [256]int32
	nclass int32
	nDense int32
	// width is nclass+1: a dense row ends with the state's hold, so the
	// scan loop reads it without decoding the state.
	width int32
	// limit is nDense*width: encoded offsets below it are dense rows.
	limit int32
	// table holds nDense rows of nclass next states, each encoded as
	// enc(id) = the row's offset in table for a dense state, and
	// limit+(id-nDense) for a sparse one, so the scan loop needs no
	// multiply. match[enc(id)] says whether a needle ends in state id; it
	// is read off the chain of dependent loads.
	table []int32
	match []bool
	// Per state:
	child      []int32 // sparse states: the only child
	childClass []int32 // sparse states: its class
	fail       []int32
	out        []int32 // longest needle ending here: index+1, or 0
	// hold: length of the longest suffix of the input so far that is a
	// prefix of some needle and can still grow. A complete needle that
	// no needle extends is not held: its match is already recorded.
	hold    []int32
	needles []needle
}

func compile(all []needle, names []string) *matcher {
	return &matcher{names: names, a: build(all)}
}

func (m *matcher) destroy() {
	a := m.a
	clear(a.table)
	clear(a.child)
	clear(a.childClass)
	for _, n := range a.needles {
		clear(n.s)
	}
}

// trie is the construction-time form: children as sibling lists.
type trie struct {
	first, next, class, depth, term []int32
}

func (t *trie) add() int32 {
	t.first = append(t.first, -1)
	t.next = append(t.next, -1)
	t.class = append(t.class, 0)
	t.depth = append(t.depth, 0)
	t.term = append(t.term, 0)
	return int32(len(t.first) - 1)
}

func (t *trie) find(s, c int32) int32 {
	for ch := t.first[s]; ch >= 0; ch = t.next[ch] {
		if t.class[ch] == c {
			return ch
		}
	}
	return -1
}

func build(needles []needle) *automaton {
	a := &automaton{needles: needles}
	nc := int32(0)
	total := 1
	for _, n := range needles {
		total += len(n.s)
		for _, c := range n.s {
			if a.class[c] == 0 {
				nc++
				a.class[c] = nc
			}
		}
	}
	nc++ // class 0: bytes in no needle
	a.nclass = nc

	t := &trie{}
	for _, f := range []*[]int32{&t.first, &t.next, &t.class, &t.depth, &t.term} {
		*f = make([]int32, 0, total)
	}
	t.add()
	for i, n := range needles {
		s := int32(0)
		for _, c := range n.s {
			cl := a.class[c]
			ch := t.find(s, cl)
			if ch < 0 {
				ch = t.add()
				t.class[ch] = cl
				t.depth[ch] = t.depth[s] + 1
				t.next[ch] = t.first[s]
				t.first[s] = ch
			}
			s = ch
		}
		if t.term[s] == 0 {
			t.term[s] = int32(i + 1)
		}
	}
	states := int32(len(t.first))

	// Breadth-first order, then dense states first.
	order := make([]int32, 0, states)
	order = append(order, 0)
	for i := 0; i < len(order); i++ {
		for ch := t.first[order[i]]; ch >= 0; ch = t.next[ch] {
			order = append(order, ch)
		}
	}
	isDense := func(s int32) bool {
		return t.depth[s] <= denseDepth || (t.first[s] >= 0 && t.next[t.first[s]] >= 0)
	}
	id := make([]int32, states)
	n := int32(0)
	for _, s := range order {
		if isDense(s) {
			id[s] = n
			n++
		}
	}
	a.nDense = n
	for _, s := range order {
		if !isDense(s) {
			id[s] = n
			n++
		}
	}

	w := nc + 1
	a.width = w
	a.table = make([]int32, int(a.nDense)*int(w))
	a.child = make([]int32, states)
	a.childClass = make([]int32, states)
	a.fail = make([]int32, states)
	a.out = make([]int32, states)
	a.hold = make([]int32, states)

	// delta is the full transition function for a state already
	// finished (all states of lower depth are).
	delta := func(s, c int32) int32 {
		for {
			if s < a.nDense {
				return a.table[s*w+c]
			}
			if a.childClass[s] == c {
				return a.child[s]
			}
			s = a.fail[s]
		}
	}
	for _, ts := range order {
		s := id[ts]
		// Failure link of each child, from this state's own failure.
		if ts == 0 {
			a.fail[s] = 0
		}
		f := a.fail[s]
		if t.term[ts] != 0 {
			a.out[s] = t.term[ts]
		} else if ts != 0 {
			a.out[s] = a.out[f]
		}
		switch {
		case t.first[ts] >= 0:
			a.hold[s] = t.depth[ts]
		case ts != 0:
			a.hold[s] = a.hold[f]
		}
		if s < a.nDense {
			row := a.table[s*w : s*w+nc]
			for c := range nc {
				if ts == 0 {
					row[c] = 0
				} else {
					row[c] = delta(f, c)
				}
			}
		} else {
			a.childClass[s] = -1
		}
		for ch := t.first[ts]; ch >= 0; ch = t.next[ch] {
			c, cs := t.class[ch], id[ch]
			if ts == 0 {
				a.fail[cs] = 0
			} else {
				a.fail[cs] = delta(f, c)
			}
			if s < a.nDense {
				a.table[s*w+c] = cs
			} else {
				a.childClass[s], a.child[s] = c, cs
			}
		}
	}
	// Encode the dense rows' entries.
	a.limit = a.nDense * w
	a.match = make([]bool, int(a.limit)+int(states-a.nDense))
	for id := range states {
		if a.out[id] != 0 {
			a.match[a.enc(id)] = true
		}
	}
	for s := range a.nDense {
		row := a.table[s*w : s*w+nc]
		for i, v := range row {
			row[i] = a.enc(v)
		}
		a.table[s*w+nc] = a.hold[s]
	}
	return a
}

// enc encodes state id for the scan loop.
func (a *automaton) enc(id int32) int32 {
	off := id * a.width
	if id >= a.nDense {
		off = a.limit + id - a.nDense
	}
	return off
}

// dec is the inverse of enc.
func (a *automaton) dec(off int32) int32 {
	if off < a.limit {
		return off / a.width
	}
	return off - a.limit + a.nDense
}

// holdOf is the hold of encoded state v.
func (a *automaton) holdOf(off int32) int32 {
	if off < a.limit {
		return a.table[off+a.nclass]
	}
	return a.hold[off-a.limit+a.nDense]
}

// stepSparse is the encoded transition from a sparse state on class c.
func (a *automaton) stepSparse(v, c int32) int32 {
	s := a.dec(v)
	for {
		if s < a.nDense {
			return a.table[s*a.width+c]
		}
		if a.childClass[s] == c {
			return a.enc(a.child[s])
		}
		s = a.fail[s]
	}
}
