package secrets

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sort"
	"sync"
)

// Sizes of the streaming window. A file is read in chunks; each chunk is
// kept together with the bytes before it (lookbehind) and after it
// (lookahead) that a regex window around a keyword may need, so a secret
// across a chunk boundary is seen whole, and found once: keyword hits are
// only taken in the chunk's own bytes, and a rule never reports a secret
// that starts before the end of the last one it reported.
const (
	chunkSize   = 256 << 10
	lineCap     = 8 << 10  // a line window reaches at most this far either side of a keyword
	multiWindow = 64 << 10 // the widest window of a multi-line rule after its keyword
	userSpan    = 4 << 10  // a user rule's regex that can match a newline: its window after the keyword
	// anchoredSpan bounds an anchored rule's window after its keyword
	// (the longest value it can report), reuseMargin the overlap kept when
	// a line rule's windows on one long line follow each other: a match
	// longer than that across a window's end could be missed.
	anchoredSpan = 2 << 10
	reuseMargin  = 2 << 10
	lookbehind   = lineCap + 256
	lookahead    = multiWindow + lineCap
	bufSize      = lookbehind + chunkSize + lookahead
	sniffSize    = 8 << 10 // a NUL byte in this much of the start makes a file binary
)

// Scanner finds secrets with a fixed set of rules. It is safe for
// concurrent use: Scan may be called from several goroutines at once, and
// each call borrows its own buffers from a pool.
type Scanner struct {
	rules  []*Rule
	text   *prefilter // keywords of every rule
	binary *prefilter // keywords of the rules that read binary files
	kwless []int      // rules with a regex and no keywords
	// key keys the fingerprints (HMAC-SHA256): see NewScannerWithKey.
	key []byte
	// feedZeros turns off the zero-run shortcut, for the test that holds
	// it to the same findings as the plain path.
	feedZeros bool
	pool      sync.Pool
}

// prefilter is the keyword automaton and, for each keyword, the rules
// that listed it.
type prefilter struct {
	ac    *automaton
	rules [][]int32
}

func newPrefilter(rules []*Rule, want func(*Rule) bool) *prefilter {
	index := map[string]int{}
	var kws []string
	var byKw [][]int32
	for i, r := range rules {
		if !want(r) || r.Regex == nil {
			continue
		}
		for _, k := range r.Keywords {
			j, ok := index[k]
			if !ok {
				j = len(kws)
				index[k] = j
				kws = append(kws, k)
				byKw = append(byKw, nil)
			}
			if n := len(byKw[j]); n == 0 || byKw[j][n-1] != int32(i) {
				byKw[j] = append(byKw[j], int32(i))
			}
		}
	}
	if len(kws) == 0 {
		return nil
	}
	return &prefilter{ac: newAutomaton(kws), rules: byKw}
}

// NewScanner checks the rules and compiles their keywords into one
// automaton. Rule IDs must be unique. NewScanner completes each rule's
// derived, unexported fields, so the same *Rule values must not be given
// to two NewScanner calls running at once (Builtin returns fresh ones).
// Its fingerprints are keyed by a random key: they tell the secrets of one
// scanner's findings apart and match nothing else (NewScannerWithKey).
func NewScanner(rules []*Rule) (*Scanner, error) {
	return NewScannerWithKey(rules, nil)
}

// MinKeyLen is the shortest fingerprint key NewScannerWithKey accepts.
const MinKeyLen = 16

// NewScannerWithKey is NewScanner with the key of the fingerprints. A
// fingerprint is the HMAC-SHA256 of the value under that key, not a bare
// hash: a bare SHA-256 of a weak password is the password again, one
// dictionary lookup away, and a report travels further than the image.
// Scanners given one key give one secret one fingerprint, across files,
// images and runs; a nil key is a random one, good for this scanner only.
func NewScannerWithKey(rules []*Rule, key []byte) (*Scanner, error) {
	if key == nil {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("making a fingerprint key: %w", err)
		}
	} else if len(key) < MinKeyLen {
		return nil, fmt.Errorf("a fingerprint key must have at least %d bytes, this one has %d", MinKeyLen, len(key))
	}
	s := &Scanner{rules: rules, key: bytes.Clone(key)}
	seen := map[string]bool{}
	var errs []error
	for i, r := range rules {
		if r == nil {
			errs = append(errs, fmt.Errorf("rule %d is nil", i))
			continue
		}
		if err := r.prepare(); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[r.ID] {
			errs = append(errs, fmt.Errorf("rule %q is defined twice", r.ID))
		}
		seen[r.ID] = true
		if r.Regex != nil && len(r.Keywords) == 0 {
			s.kwless = append(s.kwless, i)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s.text = newPrefilter(rules, func(*Rule) bool { return true })
	s.binary = newPrefilter(rules, func(r *Rule) bool { return r.Binary })
	n := len(rules)
	s.pool.New = func() any {
		return &scanState{
			buf:      make([]byte, bufSize),
			active:   make([]bool, n),
			winStart: make([]int64, n),
			winEnd:   make([]int64, n),
			lastEnd:  make([]int64, n),
		}
	}
	return s, nil
}

// Rules returns the scanner's rules, in the order given to NewScanner.
func (s *Scanner) Rules() []*Rule { return s.rules }

// scanState is one Scan call's working memory, pooled.
type scanState struct {
	s        *Scanner
	buf      []byte
	active   []bool
	winStart []int64 // per rule: the last window its regex ran on
	winEnd   []int64
	lastEnd  []int64 // per rule: end of the last secret it reported
	// lsPos is the start of the line found for the last keyword hit, and
	// no newline lies between it and lsChecked (file offsets).
	lsPos, lsChecked int64
	batch            []pending
	carry            []span // findings of the previous chunk
	specs            []span
	order            []int

	path     string
	base     int64 // file offset of buf[0]
	dataEnd  int
	ownStart int
	lineOwn  int // line number at ownStart
	pf       *prefilter
	hits     []hitRec
}

type pending struct {
	rule       int
	start, end int // in buf
	dropped    bool
}

type span struct{ start, end int64 }

// Scan reads one file and calls fn for each secret in it, in the order of
// their offsets (a whole-file secret comes last). The spans of one file's
// findings never overlap (but for a whole-file secret, which covers the
// file), so a sanitizer can overwrite each as it comes. path is the file's path
// in the image; it is matched by the rules' Path and allowlist regexes and
// copied into each Finding. A binary file that no rule reads is not read
// past its first block. fn is called from the calling goroutine only.
// The error is a read error; a file's content is never an error.
func (s *Scanner) Scan(path string, r io.Reader, fn func(Finding)) error {
	st := s.pool.Get().(*scanState)
	defer s.pool.Put(st)
	st.s = s
	st.path = path
	st.base, st.ownStart, st.lineOwn = 0, 0, 1
	st.lsPos, st.lsChecked = -1, -1
	st.batch, st.carry = st.batch[:0], st.carry[:0]
	for i := range st.winStart {
		st.winStart[i], st.winEnd[i], st.lastEnd[i] = -1, -1, 0
	}

	n, eof, err := fill(r, st.buf)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	st.dataEnd = n
	binary := bytes.IndexByte(st.buf[:min(n, sniffSize)], 0) >= 0

	// Decide per rule, from the path and the first block alone, whether
	// it applies: most files are done with here for most rules.
	var whole []int
	anyKw, anyActive := false, false
	for i, rule := range s.rules {
		ok := (rule.Binary || !binary) &&
			(rule.Path == nil || matchPath(rule.Path, rule.pathNeed, path)) &&
			!rule.pathExcused(path)
		if ok && rule.Regex == nil {
			if rule.wholeFile == nil || rule.wholeFile(st.buf[:n]) {
				whole = append(whole, i)
			}
			ok = false
		}
		st.active[i] = ok
		if ok {
			anyActive = true
			if len(rule.Keywords) > 0 {
				anyKw = true
			}
		}
	}
	if !anyActive && len(whole) == 0 {
		return nil
	}
	st.pf = nil
	if anyKw {
		st.pf = s.text
		if binary {
			st.pf = s.binary
		}
	}
	var h hash.Hash
	var head [4]byte
	if len(whole) > 0 {
		h = hmac.New(sha256.New, s.key)
		h.Write(st.buf[:n])
		copy(head[:], st.buf[:n])
	}

	// A run of zero bytes (a preallocated swap file, a disk image's empty
	// space, a hole) holds no keyword and no line: it is stepped over at
	// memory speed instead of being fed to the automaton, when no keyword
	// holds a NUL (so the automaton is back at its start after one) and no
	// keyword-less rule reads this file.
	skipZeros := !s.feedZeros && (st.pf == nil || st.pf.ac.class[0] == 0)
	for _, ri := range s.kwless {
		skipZeros = skipZeros && !st.active[ri]
	}
	var acState int32
	for {
		limit := st.dataEnd
		if !eof {
			limit = st.dataEnd - lookahead
		}
		ownEnd := limit
		zeros := skipZeros && limit > st.ownStart && allZero(st.buf[st.ownStart:limit])
		if !eof && !zeros {
			if nl := bytes.LastIndexByte(st.buf[st.ownStart:limit], '\n'); nl >= 0 {
				ownEnd = st.ownStart + nl + 1
			}
		}
		if zeros {
			acState = 0
		} else {
			if st.pf != nil {
				st.hits, acState = st.pf.ac.scan(st.buf[st.ownStart:ownEnd], acState, st.hits[:0])
				for _, h := range st.hits {
					st.onHit(h.end, st.pf.ac.keywords(h.st))
				}
			}
			for _, ri := range s.kwless {
				if st.active[ri] {
					end := ownEnd + lineCap
					if s.rules[ri].multiline {
						end = ownEnd + s.rules[ri].spanAfter
					}
					st.matchWindow(ri, st.ownStart, min(end, st.dataEnd), ownEnd)
				}
			}
		}
		st.flush(fn)
		st.lineOwn += bytes.Count(st.buf[st.ownStart:ownEnd], []byte{'\n'})
		if eof {
			break
		}
		keep := max(ownEnd-lookbehind, 0)
		copy(st.buf, st.buf[keep:st.dataEnd])
		st.dataEnd -= keep
		st.base += int64(keep)
		st.ownStart = ownEnd - keep
		m, e, err := fill(r, st.buf[st.dataEnd:])
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		if h != nil {
			h.Write(st.buf[st.dataEnd : st.dataEnd+m])
		}
		st.dataEnd += m
		eof = e
	}

	if len(whole) > 0 {
		size := st.base + int64(st.dataEnd)
		var tail []byte
		if st.dataEnd >= 4 {
			tail = st.buf[st.dataEnd-4 : st.dataEnd]
		} else {
			tail = st.buf[:st.dataEnd]
		}
		k := min(int(size), 4)
		sum := h.Sum(nil)
		for _, ri := range whole {
			fn(Finding{
				RuleID: s.rules[ri].ID, Path: path, Line: 1, Offset: 0, Length: size,
				Redacted:    redact(head[:k], tail[len(tail)-k:], size),
				Fingerprint: "sha256:" + hex.EncodeToString(sum),
			})
		}
	}
	return nil
}

// zeroBlock is compared against to tell a run of zero bytes.
var zeroBlock [16 << 10]byte

// allZero tells whether b holds only zero bytes, at memequal's speed.
func allZero(b []byte) bool {
	for len(b) > 0 {
		k := min(len(b), len(zeroBlock))
		if !bytes.Equal(b[:k], zeroBlock[:k]) {
			return false
		}
		b = b[k:]
	}
	return true
}

// fill reads into p until it is full or the reader ends.
func fill(r io.Reader, p []byte) (int, bool, error) {
	n, err := io.ReadFull(r, p)
	switch err {
	case nil:
		return n, false, nil
	case io.EOF, io.ErrUnexpectedEOF:
		return n, true, nil
	}
	return n, false, err
}

// onHit handles a keyword occurrence ending at st.ownStart+end.
func (st *scanState) onHit(end int, kws []int32) {
	end += st.ownStart
	for _, k := range kws {
		ks := max(end-int(st.pf.ac.kwLen[k]), 0)
		for _, ri := range st.pf.rules[k] {
			if st.active[ri] {
				st.window(int(ri), ks, end)
			}
		}
	}
}

// assignmentAhead reports whether b, the bytes after a keyword, goes on
// with the rest of an identifier, an optional closing quote or bracket and
// blanks, then '=' or ':' (=, :, :=, =>): the shape every anchorIdent rule's
// regex requires.
func assignmentAhead(b []byte) bool {
	i := 0
	for i < len(b) && isIdentByte(b[i]) {
		i++
	}
	if i < len(b) && (b[i] == '"' || b[i] == '\'' || b[i] == ']') {
		i++
	}
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i < len(b) && (b[i] == '=' || b[i] == ':')
}

// lineStart returns the start of the line holding buf[i], looking back
// at most lineCap bytes. Keyword hits come in order, so what was searched
// for the last hit is not searched again: a long line full of keywords
// costs one pass, not one per keyword.
func (st *scanState) lineStart(i int) int {
	ai := st.base + int64(i)
	if ai < st.lsChecked || st.lsChecked < st.base {
		st.lsPos, st.lsChecked = -1, st.base
	}
	from := max(int(st.lsChecked-st.base), i-lineCap, 0)
	if nl := bytes.LastIndexByte(st.buf[from:i], '\n'); nl >= 0 {
		st.lsPos = st.base + int64(from+nl+1)
	} else if st.lsPos < 0 || int64(from) > st.lsChecked-st.base {
		st.lsPos = st.base + int64(from) // no newline within lineCap
	}
	st.lsChecked = ai
	return max(int(st.lsPos-st.base), i-lineCap, 0)
}

// window runs rule ri on the window around a keyword at buf[ks:ke]: the
// keyword's line (capped at lineCap either side), or for a multi-line
// rule from the line's start to multiWindow past the keyword.
func (st *scanState) window(ri, ks, ke int) {
	buf := st.buf
	rule := st.s.rules[ri]
	ws := st.lineStart(ks)
	switch rule.anchor {
	case anchorIdent:
		if !assignmentAhead(buf[ke:min(ke+256, st.dataEnd)]) {
			return // "the password is", "password string": no regex needed
		}
		i := ks
		for i > ws && isIdentByte(buf[i-1]) {
			i--
		}
		ws = i
	case anchorSep:
		ws = max(ws, ks-1)
	}
	var we int
	if rule.multiline {
		we = min(ke+rule.spanAfter, st.dataEnd)
	} else {
		lim := min(ke+lineCap, st.dataEnd)
		if rule.anchored != nil {
			lim = min(ke+anchoredSpan, st.dataEnd)
		}
		if nl := bytes.IndexByte(buf[ke:lim], '\n'); nl >= 0 {
			we = ke + nl
		} else {
			we = lim
		}
	}
	as, ae := st.base+int64(ws), st.base+int64(we)
	prevStart, prevEnd := st.winStart[ri], st.winEnd[ri]
	switch {
	case rule.anchored != nil:
		// An anchored regex only looks at its window's start: the same
		// start is the same search (two keywords in one key).
		if as == prevStart {
			return
		}
	case rule.multiline:
		if as >= prevStart && ae <= prevEnd {
			return
		}
	default:
		// The last window already searched around this keyword, unless
		// the keyword is within reuseMargin of its end. Otherwise the
		// window starts at most reuseMargin before the keyword, so that a
		// long line full of keywords is searched about twice, not once
		// per keyword. (Not for a regex with ^, which would match at a
		// window start cut in the middle of a line.)
		aks := st.base + int64(ks)
		if aks >= prevStart && st.base+int64(ke)+reuseMargin <= prevEnd {
			return
		}
		if !rule.begins && as < aks-reuseMargin {
			as = aks - reuseMargin
			ws = int(as - st.base)
		}
	}
	st.winStart[ri], st.winEnd[ri] = as, ae
	st.matchWindow(ri, ws, we, -1)
}

// matchWindow runs rule ri's regex on buf[ws:we] and queues what it
// accepts. With ownEnd >= 0, matches starting at or past ownEnd are left
// to the next chunk.
func (st *scanState) matchWindow(ri, ws, we, ownEnd int) {
	rule := st.s.rules[ri]
	w := st.buf[ws:we]
	rx := rule.Regex
	if rule.anchored != nil && ownEnd < 0 {
		rx = rule.anchored
	}
	if rule.needByte != 0 && bytes.IndexByte(w, rule.needByte) < 0 {
		return
	}
	if !rx.Match(w) {
		return
	}
	for _, m := range rx.FindAllSubmatchIndex(w, -1) {
		if ownEnd >= 0 && ws+m[0] >= ownEnd {
			break
		}
		s, e, g, ok := rule.secretSpan(m)
		if !ok || st.base+int64(ws+s) < st.lastEnd[ri] {
			continue
		}
		if g != 0 && g == rule.unquoted {
			at := ws + m[0]
			ls := max(at-lineCap, 0)
			if nl := bytes.LastIndexByte(st.buf[ls:at], '\n'); nl >= 0 {
				ls += nl + 1
			}
			if n := inStringLen(st.buf[ls:at], w[m[0]:s], w[s:e]); n < e-s {
				e = s + n
				m[1] = e
			}
			// A value in escaped quotes (vnc_password = \"x\" inside a
			// string) is what they hold: the escapes are the syntax around it.
			if e-s > 2 && w[s] == '\\' && (w[s+1] == '"' || w[s+1] == '\'') {
				if n := bytes.Index(w[s+2:e], []byte{'\\', w[s+1]}); n >= 0 {
					s, e = s+2, s+2+n
					m[1] = e
				}
			}
			if n := unquotedLen(w[s:e]); n < e-s {
				e = s + n
				m[1] = e // the match ends with its value
			}
			// A cut value ends, as the regex ends one, before a trailing
			// ',', ';' or closing bracket ('x.secret = secret;'); verify
			// takes back a closer that is the value's (takeClosers).
			for e > s && (w[e-1] == ',' || w[e-1] == ';' || w[e-1] == ')' || w[e-1] == ']' || w[e-1] == '}') {
				e--
			}
			m[1] = e
			if e == s {
				continue
			}
		}
		c := candidate{secret: w[s:e], match: w[m[0]:m[1]], group: g, line: st.lineAround(ws+s, ws+e), path: st.path}
		at := ws + m[0]
		ls := max(at-lineCap, 0)
		if nl := bytes.LastIndexByte(st.buf[ls:at], '\n'); nl >= 0 {
			ls += nl + 1
		}
		c.lead = st.buf[ls:at]
		if m[1] < len(w) {
			c.next = w[m[1]]
			c.rest = w[m[1]:]
			if nl := bytes.IndexByte(c.rest, '\n'); nl >= 0 {
				c.rest = c.rest[:nl]
			}
		}
		if !rule.accept(&c, st.path) {
			continue
		}
		// verify may have taken the value on over c.rest (an INI value
		// holding blanks, which the regex ends at the first one).
		if n := len(c.secret); n > e-s && e == m[1] && n <= e-s+len(c.rest) {
			e = s + n
		}
		st.lastEnd[ri] = st.base + int64(ws+e)
		st.batch = append(st.batch, pending{rule: ri, start: ws + s, end: ws + e})
	}
}

// lineAround returns the line(s) holding buf[s:e], capped at lineCap
// either side.
func (st *scanState) lineAround(s, e int) []byte {
	ls := max(s-lineCap, 0)
	if nl := bytes.LastIndexByte(st.buf[ls:s], '\n'); nl >= 0 {
		ls += nl + 1
	}
	lim := min(e+lineCap, st.dataEnd)
	le := lim
	if nl := bytes.IndexByte(st.buf[e:lim], '\n'); nl >= 0 {
		le = e + nl
	}
	return st.buf[ls:le]
}

// flush reports the chunk's findings in offset order. A file's findings
// never overlap, so a sanitizer can overwrite each span as it is: where
// spans overlap, a specific rule wins over a generic one (a password
// assignment holding a PyPI token is reported as the token), of two
// specific ones the first to start (then the first listed: a GitHub token
// in .git-credentials is a github-token), of two generic ones the first
// listed.
func (st *scanState) flush(fn func(Finding)) {
	if len(st.batch) == 0 {
		st.carry = st.carry[:0]
		return
	}
	rules := st.s.rules
	batch := st.batch
	sort.Slice(batch, func(i, j int) bool {
		if batch[i].start != batch[j].start {
			return batch[i].start < batch[j].start
		}
		return batch[i].rule < batch[j].rule
	})
	// kept: the spans kept so far, sorted and disjoint, starting with those
	// of the previous chunk.
	kept := append(st.specs[:0], st.carry...)
	for i := range batch {
		p := &batch[i]
		p.dropped = rules[p.rule].Generic || !st.keep(&kept, p)
	}
	order := st.order[:0]
	for i := range batch {
		if rules[batch[i].rule].Generic {
			order = append(order, i)
		}
	}
	sort.Slice(order, func(a, b int) bool {
		p, q := batch[order[a]], batch[order[b]]
		if p.rule != q.rule {
			return p.rule < q.rule
		}
		return p.start < q.start
	})
	for _, i := range order {
		batch[i].dropped = !st.keep(&kept, &batch[i])
	}
	st.specs, st.order = kept, order

	line, at := st.lineOwn, st.ownStart
	carry := st.carry[:0]
	for _, p := range batch {
		if p.dropped {
			continue
		}
		rule := rules[p.rule]
		as, ae := st.base+int64(p.start), st.base+int64(p.end)
		carry = append(carry, span{as, ae})
		var ln int
		if p.start < st.ownStart {
			ln = st.lineOwn - bytes.Count(st.buf[p.start:st.ownStart], []byte{'\n'})
		} else {
			line += bytes.Count(st.buf[at:p.start], []byte{'\n'})
			at = p.start
			ln = line
		}
		v := st.buf[p.start:p.end]
		fn(Finding{
			RuleID: rule.ID, Path: st.path, Line: ln,
			Offset: as, Length: ae - as,
			Redacted: redactValue(v), Fingerprint: st.s.fingerprint(v),
		})
	}
	st.carry = carry
	st.batch = batch[:0]
}

// keep adds p's span to kept (sorted, disjoint) unless it overlaps one
// there, and reports whether it did.
func (st *scanState) keep(kept *[]span, p *pending) bool {
	as, ae := st.base+int64(p.start), st.base+int64(p.end)
	k := *kept
	i := sort.Search(len(k), func(i int) bool { return k[i].end > as })
	if i < len(k) && k[i].start < ae {
		return false
	}
	k = append(k, span{})
	copy(k[i+1:], k[i:])
	k[i] = span{as, ae}
	*kept = k
	return true
}
