package secrets

import (
	"bytes"
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
)

// Rule says what one kind of secret looks like. Built-in rules come from
// Builtin; users add rules in the gitleaks format with LoadGitleaks. A Rule
// must not be changed once it is given to NewScanner.
//
// A rule finds a secret when, in a file its Path admits (every file when
// Path is nil), the Regex matches near one of its Keywords, the secret's
// entropy is above Entropy, and no Allowlist excuses it. A rule with a Path
// and no Regex reports every file the Path admits, whole.
type Rule struct {
	// ID is the stable, kebab-case name reports carry (aws-access-key-id).
	ID string
	// Description says in a sentence what the rule finds.
	Description string
	// Scope says in words which files the rule reads ("every text file",
	// "files named .pgpass"), for the docs.
	Scope string
	// Keywords: the Regex is only run near a place where one of them
	// occurs (ASCII case ignored). A rule without keywords runs its Regex
	// over every file it applies to; built-in rules have keywords unless a
	// Path confines them to a few small files.
	Keywords []string
	// Regex finds the secret. The regex is run on the lines around a
	// keyword, never across more than a line unless it can match a
	// newline (then up to 64 KiB after the keyword's line).
	Regex *regexp.Regexp
	// SecretGroup is the capture group holding the secret. 0 means the
	// first group that matched something, or the whole match when the
	// regex has no groups (the gitleaks convention).
	SecretGroup int
	// Entropy, when not 0, is the Shannon entropy (bits per byte) that a
	// secret must exceed; it drops low-entropy lookalikes such as
	// AKIAXXXXXXXXXXXXXXXX.
	Entropy float64
	// Path, when set, limits the rule to files whose path it matches.
	Path *regexp.Regexp
	// Allowlists excuse matches that look like the secret but are not.
	Allowlists []Allowlist
	// Binary rules also read binary files (those with a NUL byte in their
	// first 8 KiB); other rules skip them.
	Binary bool
	// Generic rules (a password assignment, a JWT) give way to a specific
	// rule that finds an overlapping secret in the same part of a file, so
	// one secret is reported once, under its most telling name.
	Generic bool

	// MustMatch and MustNotMatch are test strings: scanned as the content
	// of a file at TestPath, each of the first must give a finding of this
	// rule and none of the second may. Every built-in rule has both.
	MustMatch    []string
	MustNotMatch []string
	// TestPath is the path the test strings are scanned under; empty means
	// "/test.txt". Rules with a Path need one it admits.
	TestPath string

	// verify, when set, is a further test of a candidate that a regex
	// cannot express (a base64 blob that must decode to "user:password",
	// a placeholder that is not a secret).
	verify func(c *candidate) bool
	// unquoted, when set, is the regex group of an unquoted value, which
	// ends before a '&', ',' or ';' that starts another key=value (a URL
	// query, mount options), or at the quote closing a string that holds
	// the assignment (inStringLen): a regex without lookahead or
	// lookbehind cannot say so, and a password may hold those bytes
	// otherwise.
	unquoted int
	// wholeFile, when set, recognises a file from its first bytes (a
	// Kerberos keytab); the whole file is then the secret.
	wholeFile func(head []byte) bool
	// multiline is set by prepare when the regex can match a newline;
	// such a regex runs from the keyword's line to spanAfter bytes past
	// the keyword (64 KiB for the PEM rules, 4 KiB for user rules).
	multiline bool
	spanAfter int
	// begins is set when the regex has ^ or \A, which would also match
	// at a window's start cut in the middle of a line.
	begins bool
	// anchor says where, relative to a keyword hit, every match of the
	// rule starts; the regex is then run anchored there (anchored, built
	// by prepare) instead of searching the whole line from each position,
	// which is most of the cost of a keyword-dense text.
	anchor   anchorKind
	anchored *regexp.Regexp
	// needByte, when not 0, is a byte that every match contains: a
	// window without it is passed over without running the regex, for a
	// rule whose keywords are common and whose matches are rare (a URL
	// with a user:password@).
	needByte byte
	// pathNeed: literals one of which a path must contain for Path to
	// match it (nil: no such literals known); checked before the regex,
	// since most files are not the few that path rules are about.
	pathNeed []string
}

// needles returns literals of which every string matching expr contains
// at least one, or nil when it cannot tell (a case-folded literal, an
// optional part, a character class...).
func needles(expr string) []string {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	var walk func(*syntax.Regexp) []string
	walk = func(re *syntax.Regexp) []string {
		switch re.Op {
		case syntax.OpLiteral:
			if re.Flags&syntax.FoldCase != 0 {
				return nil
			}
			return []string{string(re.Rune)}
		case syntax.OpCapture, syntax.OpPlus:
			return walk(re.Sub[0])
		case syntax.OpRepeat:
			if re.Min > 0 {
				return walk(re.Sub[0])
			}
		case syntax.OpConcat:
			// Any one part's needles will do; take the part whose
			// shortest needle is longest.
			var best []string
			bestLen := 0
			for _, sub := range re.Sub {
				n := walk(sub)
				if len(n) == 0 {
					continue
				}
				short := len(n[0])
				for _, x := range n {
					short = min(short, len(x))
				}
				if short > bestLen {
					best, bestLen = n, short
				}
			}
			return best
		case syntax.OpAlternate:
			var all []string
			for _, sub := range re.Sub {
				n := walk(sub)
				if len(n) == 0 {
					return nil
				}
				all = append(all, n...)
			}
			return all
		}
		return nil
	}
	return walk(re)
}

// matchPath matches a path regex, trying its needles first.
func matchPath(re *regexp.Regexp, need []string, path string) bool {
	if need != nil {
		found := false
		for _, n := range need {
			if strings.Contains(path, n) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return re.MatchString(path)
}

type anchorKind uint8

const (
	anchorNone  anchorKind = iota // matches may start anywhere on the line
	anchorIdent                   // at the start of the identifier ([A-Za-z0-9_.-]) holding the keyword, which an assignment (= or :) follows
	anchorSep                     // at the byte before the keyword (a separator), or at the keyword at a line start
)

// Allowlist excuses a rule's matches. With the default condition (OR) a
// match is excused when any of the criteria given holds; with MatchAll
// (gitleaks' condition = "AND") only when every criterion given holds.
type Allowlist struct {
	// Description says why, for the reader of the rule.
	Description string
	// MatchAll: every given criterion must hold (gitleaks "AND").
	MatchAll bool
	// RegexTarget is what Regexes are matched against: "secret" (the
	// default), "match" (the whole regex match) or "line".
	RegexTarget string
	// Regexes excuse a match when one of them matches the target.
	Regexes []*regexp.Regexp
	// Paths excuse every match in a file whose path one of them matches.
	Paths []*regexp.Regexp
	// StopWords excuse a secret that contains one of them (ASCII case
	// ignored).
	StopWords []string

	pathNeed [][]string // needles of each of Paths
}

// candidate is a match being judged: the secret, the regex match around
// it, the line (or window) it is in, and which group holds the secret.
type candidate struct {
	secret []byte
	match  []byte
	line   []byte
	group  int
	next   byte   // the byte after the match, or 0 at the end of the window
	rest   []byte // the rest of the match's last line after the match
	lead   []byte // the match's first line before the match
	path   string // the file's path
	grown  int    // how much of rest verify has taken into secret
	// A verify function may set secret to a longer slice of the same
	// bytes, over rest, when the value goes on past where the regex
	// could end it; only a secret that ends where the match ends may.
}

// prepare checks a rule and fills in what is derived from it. Keywords
// are folded to lower case.
func (r *Rule) prepare() error {
	if r.ID == "" {
		return fmt.Errorf("rule without an id")
	}
	if r.Regex == nil && r.Path == nil && r.wholeFile == nil {
		return fmt.Errorf("rule %q: neither a regex nor a path", r.ID)
	}
	if r.Regex != nil && r.SecretGroup > r.Regex.NumSubexp() {
		return fmt.Errorf("rule %q: secretGroup %d, but the regex has only %d groups", r.ID, r.SecretGroup, r.Regex.NumSubexp())
	}
	for i, k := range r.Keywords {
		if k == "" {
			return fmt.Errorf("rule %q: empty keyword", r.ID)
		}
		r.Keywords[i] = strings.ToLower(k)
	}
	if r.Path != nil {
		r.pathNeed = needles(r.Path.String())
	}
	for i := range r.Allowlists {
		a := &r.Allowlists[i]
		a.pathNeed = a.pathNeed[:0]
		for _, p := range a.Paths {
			a.pathNeed = append(a.pathNeed, needles(p.String()))
		}
		for j, w := range r.Allowlists[i].StopWords {
			r.Allowlists[i].StopWords[j] = strings.ToLower(w)
		}
		switch r.Allowlists[i].RegexTarget {
		case "", "secret", "match", "line":
		default:
			return fmt.Errorf("rule %q: allowlist regexTarget %q: want secret, match or line", r.ID, r.Allowlists[i].RegexTarget)
		}
	}
	if r.Regex != nil {
		r.multiline = canMatchNewline(r.Regex.String())
		r.begins = hasBegin(r.Regex.String())
		if r.multiline && r.spanAfter == 0 {
			r.spanAfter = userSpan
		}
		r.spanAfter = min(r.spanAfter, multiWindow)
		if r.anchor != anchorNone && r.anchored == nil {
			a, err := regexp.Compile(`^(?:` + r.Regex.String() + `)`)
			if err != nil {
				return fmt.Errorf("rule %q: anchoring the regex: %w", r.ID, err)
			}
			r.anchored = a
		}
	}
	return nil
}

// canMatchNewline reports whether the regex could match a '\n', which
// decides whether it is run on lines or on a wider window.
func canMatchNewline(expr string) bool {
	return anyNode(expr, func(re *syntax.Regexp) bool {
		switch re.Op {
		case syntax.OpAnyChar:
			return true
		case syntax.OpLiteral:
			return slices.Contains(re.Rune, '\n')
		case syntax.OpCharClass:
			for i := 0; i+1 < len(re.Rune); i += 2 {
				if re.Rune[i] <= '\n' && '\n' <= re.Rune[i+1] {
					return true
				}
			}
		}
		return false
	})
}

// hasBegin reports whether the regex uses ^ or \A.
func hasBegin(expr string) bool {
	return anyNode(expr, func(re *syntax.Regexp) bool {
		return re.Op == syntax.OpBeginLine || re.Op == syntax.OpBeginText
	})
}

// anyNode reports whether pred holds for a node of the parsed regex, or
// true when it does not parse (the cautious answer for both uses).
func anyNode(expr string, pred func(*syntax.Regexp) bool) bool {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return true
	}
	var walk func(*syntax.Regexp) bool
	walk = func(re *syntax.Regexp) bool {
		return pred(re) || slices.ContainsFunc(re.Sub, walk)
	}
	return walk(re)
}

// secretSpan picks the secret out of a match (m from FindSubmatchIndex):
// the SecretGroup, or the first group that matched something, or the
// whole match for a regex without groups. ok is false when the regex has
// groups and none of them holds anything.
func (r *Rule) secretSpan(m []int) (start, end, group int, ok bool) {
	if r.SecretGroup > 0 {
		g := r.SecretGroup
		if m[2*g] < 0 || m[2*g] == m[2*g+1] {
			return 0, 0, 0, false
		}
		return m[2*g], m[2*g+1], g, true
	}
	if len(m) == 2 {
		return m[0], m[1], 0, m[1] > m[0]
	}
	for g := 1; 2*g < len(m); g++ {
		if m[2*g] >= 0 && m[2*g+1] > m[2*g] {
			return m[2*g], m[2*g+1], g, true
		}
	}
	return 0, 0, 0, false
}

// inStringLen returns how much of the unquoted value v, which follows key
// on a line whose bytes before the key are prefix, lies inside the string
// that holds the assignment: up to the quote that closes it, or all of v
// when no string is open there. A string opened anywhere earlier on the
// line counts ("dbname=hr password=x", Environment="JAVA_OPTS=-Dpw=x",
// href="login?password=x"), so that neither the closing quote nor the
// markup after it is taken for part of the secret; a quoted key
// ("password": x) closes its own quote and opens no string.
func inStringLen(prefix, key, v []byte) int {
	open := openQuote(prefix, key)
	if open == 0 {
		return len(v)
	}
	if n := bytes.IndexByte(v, open); n >= 0 {
		return n
	}
	return len(v)
}

// openQuote returns the quote of the string left open at the end of
// prefix followed by key, or 0 when none is.
func openQuote(prefix, key []byte) byte {
	var open byte
	step := func(b []byte) {
		for i := 0; i < len(b); i++ {
			switch c := b[i]; {
			case c == '\\' && open != 0:
				i++ // an escaped byte inside a string
			case open == 0 && (c == '"' || c == '\'' || c == '`'):
				open = c
			case c == open:
				open = 0
			}
		}
	}
	step(prefix)
	step(key)
	return open
}

// unquotedLen returns the length of the unquoted value v up to the first
// '&' (or &amp;), ',' or ';' followed by a key and '=' (the next key=value
// of a list), or all of it.
func unquotedLen(v []byte) int {
	for i, b := range v {
		if b != '&' && b != ',' && b != ';' {
			continue
		}
		j := i + 1
		if b == '&' {
			// An HTML or XML URL writes its '&' as &amp; or &#38;.
			for _, e := range []string{"amp;", "#38;"} {
				if bytes.HasPrefix(v[j:], []byte(e)) {
					j += len(e)
					break
				}
			}
		}
		if j >= len(v) || !(v[j] == '_' || 'a' <= v[j] && v[j] <= 'z' || 'A' <= v[j] && v[j] <= 'Z') {
			continue
		}
		for j < len(v) && isIdentByte(v[j]) {
			j++
		}
		if j < len(v) && v[j] == '=' {
			return i
		}
	}
	return len(v)
}

// accept judges a candidate: entropy, allowlists, then the rule's own test.
func (r *Rule) accept(c *candidate, path string) bool {
	if r.Entropy != 0 && shannon(c.secret) <= r.Entropy {
		return false
	}
	for i := range r.Allowlists {
		if r.Allowlists[i].excuses(c, path) {
			return false
		}
	}
	if r.verify != nil && !r.verify(c) {
		return false
	}
	return true
}

// PathKey tells which of the scanner's rules, and which of their path
// allowlists, apply to path. Two paths of one key get the same findings
// from the same content (but for Finding.Path): a file reached by several
// names (hard links) need only be scanned once per key, however many names
// a crafted image gives it.
func (s *Scanner) PathKey(path string) string {
	b := make([]byte, 0, len(s.rules))
	bit := func(on bool) byte {
		if on {
			return '1'
		}
		return '0'
	}
	for _, r := range s.rules {
		b = append(b, bit((r.Path == nil || matchPath(r.Path, r.pathNeed, path)) && !r.pathExcused(path)))
		for i := range r.Allowlists {
			if a := &r.Allowlists[i]; len(a.Paths) > 0 {
				b = append(b, bit(a.pathMatch(path)))
			}
		}
	}
	return string(b)
}

// pathExcused reports whether an allowlist excuses the whole file, so the
// rule need not run on it at all.
func (r *Rule) pathExcused(path string) bool {
	for i := range r.Allowlists {
		a := &r.Allowlists[i]
		if len(a.Paths) == 0 || !a.pathMatch(path) {
			continue
		}
		if !a.MatchAll || (len(a.Regexes) == 0 && len(a.StopWords) == 0) {
			return true
		}
	}
	return false
}

// pathMatch reports whether one of the allowlist's Paths matches path.
func (a *Allowlist) pathMatch(path string) bool {
	for i, re := range a.Paths {
		var need []string
		if i < len(a.pathNeed) {
			need = a.pathNeed[i]
		}
		if matchPath(re, need, path) {
			return true
		}
	}
	return false
}

// excuses reports whether the allowlist excuses the candidate.
func (a *Allowlist) excuses(c *candidate, path string) bool {
	var results []bool
	if len(a.Paths) > 0 {
		results = append(results, a.pathMatch(path))
	}
	if len(a.Regexes) > 0 {
		target := c.secret
		switch a.RegexTarget {
		case "match":
			target = c.match
		case "line":
			target = c.line
		}
		hit := false
		for _, re := range a.Regexes {
			if re.Match(target) {
				hit = true
				break
			}
		}
		results = append(results, hit)
	}
	if len(a.StopWords) > 0 {
		lower := bytes.ToLower(c.secret)
		hit := false
		for _, w := range a.StopWords {
			if bytes.Contains(lower, []byte(w)) {
				hit = true
				break
			}
		}
		results = append(results, hit)
	}
	if len(results) == 0 {
		return false
	}
	for _, ok := range results {
		if ok && !a.MatchAll {
			return true
		}
		if !ok && a.MatchAll {
			return false
		}
	}
	return a.MatchAll
}

// shannon is the Shannon entropy of b in bits per byte.
func shannon(b []byte) float64 {
	if len(b) == 0 {
		return 0
	}
	var counts [256]int
	for _, c := range b {
		counts[c]++
	}
	n := float64(len(b))
	h := 0.0
	for _, k := range counts {
		if k > 0 {
			p := float64(k) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// Merge returns base with extra appended, where a rule of extra replaces
// the rule of base with the same ID (as a gitleaks config that extends the
// defaults overrides a default rule by reusing its id).
func Merge(base, extra []*Rule) []*Rule {
	replaced := map[string]*Rule{}
	for _, r := range extra {
		replaced[r.ID] = r
	}
	out := make([]*Rule, 0, len(base)+len(extra))
	for _, r := range base {
		if _, ok := replaced[r.ID]; !ok {
			out = append(out, r)
		}
	}
	return append(out, extra...)
}
