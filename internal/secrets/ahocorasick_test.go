package secrets

import (
	"bytes"
	"math/rand"
	"reflect"
	"sort"
	"strings"
	"testing"
)

type kwHit struct{ end, kw int }

// naiveHits finds every occurrence of every keyword, ASCII case ignored.
func naiveHits(text []byte, kws []string) []kwHit {
	lower := asciiLower(text)
	var out []kwHit
	for i := range lower {
		for k, kw := range kws {
			if bytes.HasPrefix(lower[i:], asciiLower([]byte(kw))) {
				out = append(out, kwHit{i + len(kw), k})
			}
		}
	}
	sortHits(out)
	return out
}

// asciiLower folds A-Z only, as the automaton does (bytes.ToLower would
// also rewrite invalid UTF-8).
func asciiLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = foldASCII(c)
	}
	return out
}

func sortHits(h []kwHit) {
	sort.Slice(h, func(i, j int) bool {
		if h[i].end != h[j].end {
			return h[i].end < h[j].end
		}
		return h[i].kw < h[j].kw
	})
}

// acHits scans text in pieces of the given sizes, carrying the state.
func acHits(a *automaton, text []byte, piece int) []kwHit {
	var out []kwHit
	var st int32
	var hits []hitRec
	for off := 0; off < len(text); off += piece {
		end := min(off+piece, len(text))
		hits, st = a.scan(text[off:end], st, hits[:0])
		for _, h := range hits {
			for _, k := range a.keywords(h.st) {
				out = append(out, kwHit{off + h.end, int(k)})
			}
		}
	}
	sortHits(out)
	return out
}

// TestAutomaton compares the automaton with a naive search on random
// texts over a small alphabet (so keywords overlap and nest), in one
// piece (both lanes) and in small pieces (state carried across).
func TestAutomaton(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for trial := 0; trial < 200; trial++ {
		alpha := "abAB-_x\x00"
		var kws []string
		for k := 1 + r.Intn(8); k > 0; k-- {
			kws = append(kws, rnd(r, alpha[:6], 1+r.Intn(6)))
		}
		text := []byte(rnd(r, alpha, r.Intn(20000)))
		a := newAutomaton(kws)
		want := naiveHits(text, kws)
		for _, piece := range []int{len(text) + 1, 5000, 4096, 97, 1} {
			if piece == 0 {
				continue
			}
			if got := acHits(a, text, piece); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Fatalf("keywords %q, %d bytes, pieces of %d: %d hits, want %d", kws, len(text), piece, len(got), len(want))
			}
		}
	}
}

func FuzzAutomaton(f *testing.F) {
	f.Add("abc,b,bc", []byte("xxabcbcABC"))
	f.Fuzz(func(t *testing.T, kwList string, text []byte) {
		var kws []string
		for _, k := range strings.Split(kwList, ",") {
			if k != "" && len(k) < 20 {
				kws = append(kws, k)
			}
		}
		if len(kws) == 0 || len(kws) > 20 {
			return
		}
		a := newAutomaton(kws)
		want := naiveHits(text, kws)
		if got := acHits(a, text, len(text)+1); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("%d hits, want %d", len(got), len(want))
		}
	})
}
