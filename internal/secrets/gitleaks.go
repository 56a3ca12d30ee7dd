package secrets

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// The gitleaks configuration format (gitleaks v8), as far as it concerns
// scanning files: rules with id, description, regex, secretGroup, entropy,
// keywords, path and allowlists; a global [allowlist] or [[allowlists]].
// Git-only fields (commits) and [extend] are accepted and ignored: the
// built-in rules play the part of gitleaks' defaults.
type glConfig struct {
	Title      string        `toml:"title"`
	Extend     any           `toml:"extend"`
	Rules      []glRule      `toml:"rules"`
	Allowlist  *glAllowlist  `toml:"allowlist"`
	Allowlists []glAllowlist `toml:"allowlists"`
}

type glRule struct {
	ID          string        `toml:"id"`
	Description string        `toml:"description"`
	Regex       string        `toml:"regex"`
	SecretGroup int           `toml:"secretGroup"`
	Entropy     float64       `toml:"entropy"`
	Keywords    []string      `toml:"keywords"`
	Path        string        `toml:"path"`
	Tags        []string      `toml:"tags"`
	Allowlist   *glAllowlist  `toml:"allowlist"`
	Allowlists  []glAllowlist `toml:"allowlists"`
}

type glAllowlist struct {
	Description string   `toml:"description"`
	Condition   string   `toml:"condition"`
	RegexTarget string   `toml:"regexTarget"`
	Regexes     []string `toml:"regexes"`
	Paths       []string `toml:"paths"`
	StopWords   []string `toml:"stopwords"`
	Commits     []string `toml:"commits"`
	TargetRules []string `toml:"targetRules"`
}

var goFieldRe = regexp.MustCompile(`cannot decode TOML (\w+) into struct field \S+ of type (\S+)`)

// LoadError is one problem in a gitleaks rule file, with the line it is on
// (0 when unknown) and the field path (rules[3].regex).
type LoadError struct {
	File  string
	Line  int
	Field string
	Err   error
}

func (e *LoadError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %v", loc, e.Field, e.Err)
	}
	return fmt.Sprintf("%s: %v", loc, e.Err)
}

func (e *LoadError) Unwrap() error { return e.Err }

// LoadGitleaks reads rules in the gitleaks TOML format from data; name is
// the file's name, for errors. A global allowlist applies to the rules of
// this file (those its targetRules name, when it names any).
//
// Each problem is a *LoadError with line and field (errors.Join of them
// when there are several): bad TOML, a missing id, a regex Go cannot
// compile (gitleaks configs written for other engines may use lookaheads
// or backreferences, which RE2 lacks). The rules without problems are
// returned too, so a caller may warn and go on with them.
func LoadGitleaks(name string, data []byte) ([]*Rule, error) {
	var cfg glConfig
	if err := toml.Unmarshal(data, &cfg); err != nil {
		le := &LoadError{File: name, Err: err}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			le.Line, _ = de.Position()
			le.Field = strings.Join(de.Key(), ".")
			msg := strings.TrimPrefix(de.Error(), "toml: ")
			// "cannot decode TOML integer into struct field
			// secrets.glRule.Regex of type string" names our Go types;
			// say it in the file's terms.
			msg = goFieldRe.ReplaceAllString(msg, "cannot use a TOML $1 where a $2 is wanted")
			le.Err = errors.New(msg)
		}
		return nil, le
	}
	if len(cfg.Rules) == 0 {
		// Most likely [[rule]] for [[rules]]: say so rather than load
		// nothing without a word.
		return nil, &LoadError{File: name, Err: errors.New("no [[rules]] in the file")}
	}
	lines := tomlLines(data)
	var errs []error
	fail := func(field string, err error) {
		line, ok := lines[field]
		for f := field; !ok && f != ""; {
			i := strings.LastIndexAny(f, ".[")
			if i < 0 {
				break
			}
			f = f[:i]
			line, ok = lines[f]
		}
		errs = append(errs, &LoadError{File: name, Line: line, Field: field, Err: err})
	}

	type global struct {
		al      Allowlist
		targets []string
	}
	var globals []global
	addGlobal := func(field string, g *glAllowlist) {
		al, ok := convertAllowlist(field, g, fail)
		if ok {
			globals = append(globals, global{al, g.TargetRules})
		}
	}
	if cfg.Allowlist != nil {
		addGlobal("allowlist", cfg.Allowlist)
	}
	for i := range cfg.Allowlists {
		addGlobal(fmt.Sprintf("allowlists[%d]", i), &cfg.Allowlists[i])
	}

	var rules []*Rule
	seen := map[string]string{}
	for i, gr := range cfg.Rules {
		field := fmt.Sprintf("rules[%d]", i)
		if gr.ID == "" {
			fail(field, errors.New("rule without an id"))
			continue
		}
		what := fmt.Sprintf("%s (id %q)", field, gr.ID)
		if prev, dup := seen[gr.ID]; dup {
			fail(field+".id", fmt.Errorf("id %q is already used by %s", gr.ID, prev))
			continue
		}
		seen[gr.ID] = field
		r := &Rule{
			ID: gr.ID, Description: gr.Description, SecretGroup: gr.SecretGroup, Entropy: gr.Entropy,
			Scope: "user rule", MustMatch: nil,
		}
		if r.Description == "" {
			r.Description = "user rule " + gr.ID
		}
		ok := true
		if gr.Regex == "" && gr.Path == "" {
			fail(field, fmt.Errorf("%s: neither a regex nor a path", what))
			continue
		}
		if gr.Regex != "" {
			rx, err := compileUser(gr.Regex)
			if err != nil {
				fail(field+".regex", fmt.Errorf("%s: %v", what, err))
				ok = false
			} else {
				r.Regex = rx
				if gr.SecretGroup < 0 || gr.SecretGroup > rx.NumSubexp() {
					fail(field+".secretGroup", fmt.Errorf("%s: secretGroup %d, but the regex has %d groups", what, gr.SecretGroup, rx.NumSubexp()))
					ok = false
				}
			}
		}
		if gr.Path != "" {
			rx, err := compileUser(gr.Path)
			if err != nil {
				fail(field+".path", fmt.Errorf("%s: %v", what, err))
				ok = false
			}
			r.Path = rx
			if gr.Regex == "" {
				r.Binary = true // a path-only rule judges files by name alone
				r.Scope = "user rule: files whose path matches " + gr.Path
			}
		}
		if gr.Entropy < 0 {
			fail(field+".entropy", fmt.Errorf("%s: negative entropy %v", what, gr.Entropy))
			ok = false
		}
		for k, kw := range gr.Keywords {
			if kw == "" {
				fail(fmt.Sprintf("%s.keywords[%d]", field, k), fmt.Errorf("%s: empty keyword", what))
				ok = false
			}
			r.Keywords = append(r.Keywords, strings.ToLower(kw))
		}
		if gr.Allowlist != nil {
			if al, good := convertAllowlist(field+".allowlist", gr.Allowlist, fail); good {
				r.Allowlists = append(r.Allowlists, al)
			} else {
				ok = false
			}
		}
		for j := range gr.Allowlists {
			if al, good := convertAllowlist(fmt.Sprintf("%s.allowlists[%d]", field, j), &gr.Allowlists[j], fail); good {
				r.Allowlists = append(r.Allowlists, al)
			} else {
				ok = false
			}
		}
		if ok {
			rules = append(rules, r)
		}
	}
	for _, g := range globals {
		for _, r := range rules {
			if len(g.targets) == 0 || contains(g.targets, r.ID) {
				r.Allowlists = append(r.Allowlists, g.al)
			}
		}
	}
	return rules, errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// compileUser compiles a regex from a rule file, explaining the usual
// cause of failure: syntax RE2 does not have.
func compileUser(expr string) (*regexp.Regexp, error) {
	rx, err := regexp.Compile(expr)
	if err == nil {
		return rx, nil
	}
	msg := err.Error()
	for _, p := range []string{"(?=", "(?!", "(?<=", "(?<!"} {
		if strings.Contains(expr, p) {
			return nil, fmt.Errorf("%s (lookahead and lookbehind assertions are not supported: Go's regexp is RE2)", msg)
		}
	}
	if strings.Contains(msg, "escape sequence") && strings.ContainsAny(expr, `\`) {
		return nil, fmt.Errorf("%s (backreferences and some PCRE escapes are not supported: Go's regexp is RE2)", msg)
	}
	return nil, err
}

// convertAllowlist checks and compiles one allowlist.
func convertAllowlist(field string, g *glAllowlist, fail func(string, error)) (Allowlist, bool) {
	al := Allowlist{Description: g.Description, RegexTarget: g.RegexTarget, StopWords: g.StopWords}
	ok := true
	switch strings.ToUpper(g.Condition) {
	case "", "OR":
	case "AND":
		al.MatchAll = true
	default:
		fail(field+".condition", fmt.Errorf("condition %q: want OR or AND", g.Condition))
		ok = false
	}
	switch g.RegexTarget {
	case "", "secret", "match", "line":
	default:
		fail(field+".regexTarget", fmt.Errorf("regexTarget %q: want secret, match or line", g.RegexTarget))
		ok = false
	}
	for i, e := range g.Regexes {
		rx, err := compileUser(e)
		if err != nil {
			fail(fmt.Sprintf("%s.regexes[%d]", field, i), err)
			ok = false
			continue
		}
		al.Regexes = append(al.Regexes, rx)
	}
	for i, e := range g.Paths {
		rx, err := compileUser(e)
		if err != nil {
			fail(fmt.Sprintf("%s.paths[%d]", field, i), err)
			ok = false
			continue
		}
		al.Paths = append(al.Paths, rx)
	}
	for i, w := range al.StopWords {
		al.StopWords[i] = strings.ToLower(w)
	}
	return al, ok
}

// tomlLines maps field paths (rules[2].regex, rules[2].allowlists[0].regexes[1],
// allowlist.paths[0]) to the line they are on, for errors. It walks the
// document with go-toml's parser, which keeps positions; a document that
// decoded cleanly also parses here.
func tomlLines(data []byte) map[string]int {
	lines := map[string]int{}
	var p unstable.Parser
	p.Reset(data)
	counters := map[string]int{} // array-of-tables path → elements so far
	prefix := ""
	line := func(n *unstable.Node) int {
		if n == nil || n.Raw.Length == 0 && n.Raw.Offset == 0 {
			return 0
		}
		return p.Shape(n.Raw).Start.Line
	}
	var record func(path string, v *unstable.Node, fallback int)
	record = func(path string, v *unstable.Node, fallback int) {
		l := line(v)
		if l == 0 {
			l = fallback
		}
		if _, ok := lines[path]; !ok {
			lines[path] = l
		}
		switch v.Kind {
		case unstable.Array:
			it := v.Children()
			for k := 0; it.Next(); k++ {
				record(fmt.Sprintf("%s[%d]", path, k), it.Node(), l)
			}
		case unstable.InlineTable:
			it := v.Children()
			for it.Next() {
				kv := it.Node()
				record(path+"."+keyPath(kv.Key()), kv.Value(), l)
			}
		}
	}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			parts := keyParts(e.Key())
			path := ""
			for i, part := range parts {
				if path != "" {
					path += "."
				}
				path += part
				if n, isArray := counters[path]; isArray {
					if i == len(parts)-1 && e.Kind == unstable.ArrayTable {
						counters[path] = n + 1
						path = fmt.Sprintf("%s[%d]", path, n)
					} else {
						path = fmt.Sprintf("%s[%d]", path, n-1)
					}
				} else if i == len(parts)-1 && e.Kind == unstable.ArrayTable {
					counters[path] = 1
					path += "[0]"
				}
			}
			prefix = path
			if it := e.Key(); it.Next() {
				if _, ok := lines[path]; !ok {
					lines[path] = line(it.Node())
				}
			}
		case unstable.KeyValue:
			path := keyPath(e.Key())
			if prefix != "" {
				path = prefix + "." + path
			}
			record(path, e.Value(), 0)
		}
	}
	return lines
}

func keyParts(it unstable.Iterator) []string {
	var parts []string
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return parts
}

func keyPath(it unstable.Iterator) string { return strings.Join(keyParts(it), ".") }
