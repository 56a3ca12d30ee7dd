package secrets

import (
	"regexp"
	"strings"
	"testing"
)

// scanString scans content as the file path and returns the findings.
func scanString(t testing.TB, s *Scanner, path, content string) []Finding {
	t.Helper()
	var out []Finding
	if err := s.Scan(path, strings.NewReader(content), func(f Finding) { out = append(out, f) }); err != nil {
		t.Fatal(err)
	}
	return out
}

func hasRule(fs []Finding, id string) bool {
	for _, f := range fs {
		if f.RuleID == id {
			return true
		}
	}
	return false
}

var kebab = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

// TestBuiltinRules holds every built-in rule to its own test strings: each
// MustMatch string gives a finding of the rule, no MustNotMatch string
// does, and every rule has both kinds.
func TestBuiltinRules(t *testing.T) {
	all := Builtin()
	if len(all) < 30 {
		t.Fatalf("only %d built-in rules", len(all))
	}
	allScanner, err := NewScanner(Builtin())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		t.Run(r.ID, func(t *testing.T) {
			if !kebab.MatchString(r.ID) {
				t.Errorf("ID %q is not kebab-case", r.ID)
			}
			if r.Description == "" || r.Scope == "" {
				t.Errorf("description or scope missing")
			}
			if len(r.MustMatch) == 0 || len(r.MustNotMatch) == 0 {
				t.Fatalf("needs test strings that must match (%d) and must not (%d)", len(r.MustMatch), len(r.MustNotMatch))
			}
			if r.Regex != nil && len(r.Keywords) == 0 && r.Path == nil {
				t.Errorf("a rule without keywords must be confined by a path")
			}
			s, err := NewScanner([]*Rule{r})
			if err != nil {
				t.Fatal(err)
			}
			path := r.TestPath
			if path == "" {
				path = "/test.txt"
			}
			for i, m := range r.MustMatch {
				if !hasRule(scanString(t, s, path, m), r.ID) {
					t.Errorf("MustMatch[%d] %q: not found", i, m)
				}
				// Among all rules, a specific rule still reports it, or
				// another specific rule does (a GitHub token in
				// .git-credentials is a github-token); a generic rule may
				// give way to a specific one.
				if fs := scanString(t, allScanner, path, m); !r.Generic && !hasRule(fs, r.ID) {
					specific := false
					for _, f := range fs {
						specific = specific || !ruleByID(f.RuleID).Generic
					}
					if !specific {
						t.Errorf("MustMatch[%d] %q: not found with all rules loaded (%v)", i, m, fs)
					}
				}
			}
			for i, m := range r.MustNotMatch {
				if fs := scanString(t, s, path, m); len(fs) > 0 {
					t.Errorf("MustNotMatch[%d] %q: reported as %v", i, m, fs)
				}
			}
		})
	}
}

func TestBuiltinIDsUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Builtin() {
		if seen[r.ID] {
			t.Errorf("duplicate rule ID %s", r.ID)
		}
		seen[r.ID] = true
	}
}

func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"AKIAIOSFODNN7EXAMPLE", "AKIA************MPLE"},
		{"hunter2", "*******"},
		{"", ""},
		{"abcdefgh", "a******h"},
		{"abcdefghijkl", "ab********kl"},
		{strings.Repeat("k", 2000), "kkkk" + strings.Repeat("*", 32) + "kkkk"},
		{"\x05\x02\x00\x01binary\x00\x00", strings.Repeat("*", 12)},
	} {
		if got := redactValue([]byte(c.in)); got != c.want {
			t.Errorf("redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestBuiltinLineRules: a built-in regex that can match a newline runs on
// a 64 KiB window per keyword hit instead of a line, so only the PEM
// rules, whose secrets span lines, may.
func TestBuiltinLineRules(t *testing.T) {
	multi := map[string]bool{"private-key": true, "pgp-private-key": true}
	for _, r := range Builtin() {
		if err := r.prepare(); err != nil {
			t.Fatal(err)
		}
		if r.multiline != multi[r.ID] {
			t.Errorf("%s: multiline = %v, want %v", r.ID, r.multiline, multi[r.ID])
		}
	}
}

func TestNeedles(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string
	}{
		{`(?:^|/)(?:\.pgpass|pgpass\.conf)$`, []string{".pgpass", "pgpass.conf"}},
		{`(?:^|/)etc/g?shadow-?$`, []string{"shadow"}},
		{`\.p12$`, []string{".p12"}},
		{`(?i)\.p12$`, nil},
		{`a*`, nil},
		{`(?:^|/)nsswitch\.conf$`, []string{"nsswitch.conf"}},
	} {
		if got := needles(c.expr); strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("needles(%s) = %q, want %q", c.expr, got, c.want)
		}
	}
	// Every built-in path regex has needles, and they never reject a
	// path the regex accepts.
	for _, r := range Builtin() {
		if r.Path == nil {
			continue
		}
		n := needles(r.Path.String())
		if n == nil {
			t.Errorf("%s: no needles for %s", r.ID, r.Path)
		}
		if !matchPath(r.Path, n, r.TestPath) {
			t.Errorf("%s: TestPath %s rejected", r.ID, r.TestPath)
		}
	}
}
