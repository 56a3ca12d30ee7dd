package secrets

import "sort"

// automaton is an Aho-Corasick keyword matcher compiled to a DFA over
// ASCII-case-folded bytes: one table lookup per input byte, whatever the
// number of keywords, which is what keeps the prefilter near memory speed.
//
// Bytes that occur in no keyword share one input class, so the transition
// table has (states × classes) entries rather than (states × 256). State
// numbers are stored pre-multiplied by the class count, so a step is
// delta[state+class], and the states that end a keyword are numbered last,
// so "is this a hit?" is one comparison.
type automaton struct {
	class   [256]uint16
	nclass  int32
	delta   []int32
	outMin  int32     // first pre-multiplied state number with outputs
	out     [][]int32 // keyword indexes ending at state (st-outMin)/nclass
	kwLen   []int32   // length of each keyword
	maxLen  int       // length of the longest keyword
	nstates int
}

// foldASCII maps A-Z to a-z and leaves every other byte alone.
func foldASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// newAutomaton builds the matcher for keywords, which must be non-empty
// strings; matching ignores ASCII case.
func newAutomaton(keywords []string) *automaton {
	a := &automaton{kwLen: make([]int32, len(keywords))}
	// Input classes: one per distinct folded keyword byte, 0 for the rest.
	var used [256]bool
	for i, kw := range keywords {
		a.kwLen[i] = int32(len(kw))
		a.maxLen = max(a.maxLen, len(kw))
		for j := 0; j < len(kw); j++ {
			used[foldASCII(kw[j])] = true
		}
	}
	n := uint16(1)
	var folded [256]uint16
	for b := 0; b < 256; b++ {
		if used[b] {
			folded[b] = n
			n++
		}
	}
	for b := 0; b < 256; b++ {
		a.class[b] = folded[foldASCII(byte(b))]
	}
	a.nclass = int32(n)
	nc := int(n)

	// The trie, with goto edges in a dense table (-1: none).
	type node struct {
		out  []int32
		fail int
	}
	nodes := []node{{}}
	gotoT := make([]int32, nc)
	for i := range gotoT {
		gotoT[i] = -1
	}
	for i, kw := range keywords {
		s := 0
		for j := 0; j < len(kw); j++ {
			c := int(a.class[kw[j]])
			if gotoT[s*nc+c] < 0 {
				nodes = append(nodes, node{})
				for k := 0; k < nc; k++ {
					gotoT = append(gotoT, -1)
				}
				gotoT[s*nc+c] = int32(len(nodes) - 1)
			}
			s = int(gotoT[s*nc+c])
		}
		nodes[s].out = append(nodes[s].out, int32(i))
	}

	// Breadth-first: fail links, inherited outputs, and the full DFA
	// transitions (a missing goto edge follows the fail link's transition).
	delta := make([]int32, len(nodes)*nc)
	queue := []int{}
	for c := 0; c < nc; c++ {
		if t := gotoT[c]; t > 0 {
			delta[c] = t
			nodes[t].fail = 0
			queue = append(queue, int(t))
		} else {
			delta[c] = 0
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		f := nodes[s].fail
		nodes[s].out = append(nodes[s].out, nodes[f].out...)
		for c := 0; c < nc; c++ {
			if t := gotoT[s*nc+c]; t >= 0 {
				nodes[t].fail = int(delta[f*nc+c])
				delta[s*nc+c] = t
				queue = append(queue, int(t))
			} else {
				delta[s*nc+c] = delta[f*nc+c]
			}
		}
	}

	// Renumber so that states with outputs come last.
	order := make([]int, len(nodes))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool {
		return len(nodes[order[i]].out) == 0 && len(nodes[order[j]].out) > 0
	})
	newID := make([]int32, len(nodes))
	firstOut := len(nodes)
	for pos, old := range order {
		newID[old] = int32(pos)
		if len(nodes[old].out) > 0 && pos < firstOut {
			firstOut = pos
		}
	}
	// State 0 must stay the start state; it never has outputs (keywords
	// are non-empty), so it sorts first and keeps number 0.
	a.delta = make([]int32, len(nodes)*nc)
	a.out = make([][]int32, len(nodes)-firstOut)
	for old := range nodes {
		ns := int(newID[old])
		for c := 0; c < nc; c++ {
			a.delta[ns*nc+c] = newID[delta[old*nc+c]] * int32(nc)
		}
		if ns >= firstOut {
			out := append([]int32(nil), nodes[old].out...)
			sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
			a.out[ns-firstOut] = out
		}
	}
	a.outMin = int32(firstOut) * int32(nc)
	a.nstates = len(nodes)
	return a
}

// hitRec is a keyword hit: the index just past its last byte, and the
// automaton state there (which names the keywords ending there).
type hitRec struct {
	end int
	st  int32
}

// keywords returns the indexes of the keywords that end at state st.
func (a *automaton) keywords(st int32) []int32 { return a.out[(st-a.outMin)/a.nclass] }

// scan runs the automaton over buf from state st (pre-multiplied),
// appends every keyword hit to hits in order, and returns them with the
// state after buf, so that a stream can be scanned in consecutive pieces.
//
// A DFA step waits on the previous one (the next state is loaded from an
// address the current state gives), so one lane runs at the latency of a
// cache load per byte. Long buffers are cut in two, and both halves run
// in the same loop: two independent chains, about twice the throughput.
// The second half starts from the start state maxLen bytes early, by
// which point its state is exact: an Aho-Corasick state only depends on
// the last maxLen-1 bytes.
func (a *automaton) scan(buf []byte, st int32, hits []hitRec) ([]hitRec, int32) {
	delta := a.delta
	class := &a.class
	outMin := a.outMin
	n := len(buf)
	if n < 4096 {
		for i := 0; i < n; i++ {
			st = delta[st+int32(class[buf[i]])]
			if st >= outMin {
				hits = append(hits, hitRec{i + 1, st})
			}
		}
		return hits, st
	}
	mid := n / 2
	s2start := mid - a.maxLen
	first, second := buf[:mid], buf[s2start:]
	m := len(first)
	var late []hitRec
	var st2 int32
	for i := 0; i < m; i++ {
		st = delta[st+int32(class[first[i]])]
		st2 = delta[st2+int32(class[second[i]])]
		if st >= outMin || st2 >= outMin {
			if st >= outMin {
				hits = append(hits, hitRec{i + 1, st})
			}
			if st2 >= outMin && s2start+i+1 > mid {
				late = append(late, hitRec{s2start + i + 1, st2})
			}
		}
	}
	hits = append(hits, late...)
	for i := m; i < len(second); i++ {
		st2 = delta[st2+int32(class[second[i]])]
		if st2 >= outMin {
			hits = append(hits, hitRec{s2start + i + 1, st2})
		}
	}
	return hits, st2
}
