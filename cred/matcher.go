package cred

// The matcher is an Aho-Corasick automaton compiled to a dense transition
// table over byte classes (only bytes that occur in some needle get their
// own column), so that scanning costs one table load per byte whatever
// the number of needles. Row layout, W = classes+2 int32 per state:
//
//	row[0:classes]   next state's row offset for each class
//	row[classes]     longest needle ending here: index+1, or 0
//	row[classes+1]   hold: length of the longest suffix of the input so
//	                 far that is a prefix of some needle and can still
//	                 grow (a complete needle that no needle extends is
//	                 not held: its match is already recorded)
//
// Two automata are kept: one for needles matched byte for byte, one for
// hex and base64 needles, in which whitespace inside a partial match of at
// least wrapDepth characters is skipped (see Redactor).
type matcher struct {
	names []string
	plain *automaton
	wrap  *automaton
	// maxLen is the longest needle, for sizing nothing in particular but
	// useful in tests.
	maxLen int
}

type automaton struct {
	class   [256]int32
	width   int32 // classes + 2
	outCol  int32 // classes
	table   []int32
	needles []needle
}

func compile(all []needle, names []string) *matcher {
	m := &matcher{names: names}
	var plain, wrap []needle
	for _, n := range all {
		if len(n.s) > m.maxLen {
			m.maxLen = len(n.s)
		}
		if n.wrap {
			wrap = append(wrap, n)
		} else {
			plain = append(plain, n)
		}
	}
	m.plain = build(plain)
	m.wrap = build(wrap)
	return m
}

func (m *matcher) destroy() {
	for _, a := range []*automaton{m.plain, m.wrap} {
		clear(a.table)
		for _, n := range a.needles {
			clear(n.s)
		}
	}
}

func build(needles []needle) *automaton {
	a := &automaton{needles: needles}
	nc := int32(0)
	for _, n := range needles {
		for _, c := range n.s {
			if a.class[c] == 0 {
				nc++
				a.class[c] = nc
			}
		}
	}
	nc++ // class 0: bytes in no needle
	a.width = nc + 2
	a.outCol = nc
	w := a.width
	newState := func() int32 {
		row := int32(len(a.table))
		for range w {
			a.table = append(a.table, -1)
		}
		a.table[row+a.outCol] = 0
		return row
	}
	root := newState()
	a.table[root+a.outCol+1] = 0
	// Trie.
	for i, n := range needles {
		s := root
		for d, c := range n.s {
			cl := a.class[c]
			next := a.table[s+cl]
			if next < 0 {
				next = newState()
				a.table[next+a.outCol+1] = int32(d + 1)
				a.table[s+cl] = next
			}
			s = next
		}
		// Keep the first needle at a node; duplicates were removed when
		// they were added, so this only matters for equal strings.
		if a.table[s+a.outCol] == 0 {
			a.table[s+a.outCol] = int32(i + 1)
		}
	}
	states := len(a.table) / int(w)
	leaf := make([]bool, states)
	for st := range states {
		row := int32(st) * w
		leaf[st] = true
		for c := range nc {
			if a.table[row+c] >= 0 {
				leaf[st] = false
				break
			}
		}
	}
	// Breadth-first: failure links, then dense transitions and the
	// longest-needle-ending-here column.
	fail := make([]int32, len(a.table)/int(w))
	queue := make([]int32, 0, len(a.table)/int(w))
	for c := range nc {
		next := a.table[root+c]
		if next < 0 {
			a.table[root+c] = root
		} else {
			fail[next/w] = root
			queue = append(queue, next)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		f := fail[s/w]
		if a.table[s+a.outCol] == 0 {
			a.table[s+a.outCol] = a.table[f+a.outCol]
		}
		if leaf[s/w] {
			a.table[s+a.outCol+1] = a.table[f+a.outCol+1]
		}
		for c := range nc {
			next := a.table[s+c]
			if next < 0 {
				a.table[s+c] = a.table[f+c]
			} else {
				fail[next/w] = a.table[f+c]
				queue = append(queue, next)
			}
		}
	}
	return a
}

// hold is how many of the last bytes might still start a match.
func (a *automaton) hold(row int32) int { return int(a.table[row+a.outCol+1]) }
