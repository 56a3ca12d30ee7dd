package secrets

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestLoadGitleaks(t *testing.T) {
	data, err := os.ReadFile("testdata/gitleaks.toml")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := LoadGitleaks("gitleaks.toml", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 3 {
		t.Fatalf("%d rules, want 3", len(rules))
	}
	s, err := NewScanner(Merge(Builtin(), rules))
	if err != nil {
		t.Fatal(err)
	}
	tok := "acme_" + "k3j9x0v7q2m5n8b1c4z6l0p9r2t5w8y1"
	for _, c := range []struct {
		path, content, want string
	}{
		{"/etc/acme/env", "TOKEN=" + tok + "\n", "acme-internal-token"},
		{"/etc/acme/env", "TOKEN=acme_00000000000000000000000000000000\n", ""},                 // allowlisted regex (and low entropy)
		{"/etc/acme/env", "TOKEN=acme_docsk3j9x0v7q2m5n8b1c4z6l0p9r2t5\n", ""},                 // allowlisted regex
		{"/src/testdata/t.env", "TOKEN=acme_fixturek3j9x0v7q2m5n8b1c4z6l0p9r\n", ""},           // AND: path and stopword
		{"/src/t.env", "TOKEN=acme_fixturek3j9x0v7q2m5n8b1c4z6l0p9r\n", "acme-internal-token"}, // AND: stopword alone is not enough
		{"/srv/vendor/x/env", "TOKEN=" + tok + "\n", ""},                                       // global path allowlist
		{"/opt/hr/hr.ini", "HR_PASS = z2oCtIsjhvNK4p\n", "acme-legacy-password"},
		{"/opt/hr/hr.ini", "HR_PASS = z2oCtIsjhvNK4p # example\n", ""},
		{"/opt/hr/other.ini", "HR_PASS = z2oCtIsjhvNK4p\n", ""},
		{"/root/cert.p12", "\x30\x82\x0a\x00binary", "acme-pkcs12"},
	} {
		var got []string
		if err := s.Scan(c.path, strings.NewReader(c.content), func(f Finding) {
			if strings.HasPrefix(f.RuleID, "acme-") {
				got = append(got, f.RuleID)
			}
		}); err != nil {
			t.Fatal(err)
		}
		if c.want == "" && len(got) > 0 || c.want != "" && (len(got) != 1 || got[0] != c.want) {
			t.Errorf("%s %q: got %v, want %q", c.path, c.content, got, c.want)
		}
	}
}

func TestLoadGitleaksErrors(t *testing.T) {
	for _, c := range []struct {
		name, toml string
		want       []string // substrings of the error
		rules      int      // rules that still load
	}{
		{"syntax", "[[rules]]\nid = \"a\"\nregex = '''x\n", []string{"syntax.toml:"}, 0},
		{"type", "[[rules]]\nid = \"a\"\nregex = 5\n", []string{"type.toml:3"}, 0},
		{"lookahead", `[[rules]]
id = "good"
regex = '''good_[a-z]{8}'''

[[rules]]
id = "pcre"
description = "uses a lookahead"
regex = '''(?=.*[A-Z])secret_[a-z]+'''
`, []string{`lookahead.toml:8: rules[1].regex: rules[1] (id "pcre")`, "lookahead", "RE2"}, 1},
		{"backref", "[[rules]]\nid = \"b\"\nkeywords = [\"x\"]\nregex = '''(a)\\1'''\n", []string{"backref.toml:4", "rules[0].regex", "backreferences"}, 0},
		{"noid", "[[rules]]\nregex = 'x'\n", []string{"noid.toml:1: rules[0]: rule without an id"}, 0},
		{"group", "[[rules]]\nid = \"g\"\nregex = '(a)'\nsecretGroup = 3\n", []string{"group.toml:4: rules[0].secretGroup"}, 0},
		{"allow", "[[rules]]\nid = \"a\"\nregex = 'x'\n[[rules.allowlists]]\nregexes = ['ok', '(?<=x)y']\n", []string{"allow.toml:5: rules[0].allowlists[0].regexes[1]", "lookbehind"}, 0},
		{"global", "[allowlist]\npaths = ['(?!x)']\n[[rules]]\nid = \"a\"\nregex = 'x'\n", []string{"global.toml:2: allowlist.paths[0]"}, 1},
		{"cond", "[[rules]]\nid = \"a\"\nregex = 'x'\n[rules.allowlist]\ncondition = \"XOR\"\n", []string{"cond.toml:5: rules[0].allowlist.condition"}, 0},
		{"dup", "[[rules]]\nid = \"a\"\nregex = 'x'\n[[rules]]\nid = \"a\"\nregex = 'y'\n", []string{"dup.toml:5: rules[1].id", "already used"}, 1},
		{"empty", "[[rules]]\nid = \"a\"\n", []string{"neither a regex nor a path"}, 0},
		{"norules", "[[rule]]\nid = \"a\"\nregex = 'x'\n", []string{"norules.toml: no [[rules]]"}, 0},
		{"inline", "rules = [{id = \"a\", regex = '(?!x)'}]\n", []string{"inline.toml:1: rules[0].regex"}, 0},
	} {
		rules, err := LoadGitleaks(c.name+".toml", []byte(c.toml))
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		var le *LoadError
		if !errors.As(err, &le) {
			t.Errorf("%s: error %T is not a *LoadError", c.name, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", c.name, err, w)
			}
		}
		if len(rules) != c.rules {
			t.Errorf("%s: %d rules loaded, want %d", c.name, len(rules), c.rules)
		}
		if strings.Contains(err.Error(), "\n\n") || strings.Contains(err.Error(), "goroutine") {
			t.Errorf("%s: messy error %q", c.name, err)
		}
	}
}

// FuzzLoadGitleaks: any bytes load or fail with an error, never a panic;
// what loads makes a working scanner.
func FuzzLoadGitleaks(f *testing.F) {
	data, _ := os.ReadFile("testdata/gitleaks.toml")
	f.Add(data)
	f.Add([]byte("rules = [{id = \"a\", regex = '(a)', secretGroup = 1, keywords = ['a']}]"))
	f.Add([]byte("[[rules]]\nid = \"x\"\nregex = '''(?=a)'''\n[allowlist]\nstopwords = ['a']"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := LoadGitleaks("f.toml", data)
		if err != nil {
			if strings.Contains(err.Error(), "goroutine ") {
				t.Fatal(err)
			}
		}
		if len(rules) == 0 {
			return
		}
		s, err := NewScanner(rules)
		if err != nil {
			// Loaded rules must be valid rules.
			t.Fatalf("loaded rules rejected by NewScanner: %v", err)
		}
		s.Scan("/x/y", strings.NewReader("a secret acme_token=abcdefgh\n"), func(Finding) {})
	})
}

// TestUserRuleWindows: a user regex that spans lines sees the next lines;
// one without keywords runs on the whole file, across chunks, once per
// secret.
func TestUserRuleWindows(t *testing.T) {
	rules, err := LoadGitleaks("w.toml", []byte(`
[[rules]]
id = "split-key"
regex = '''acme_key\s*=\s*\\?\s*([a-z0-9]{12})'''
keywords = ["acme_key"]

[[rules]]
id = "no-keywords"
regex = '''zz-([0-9]{10})-zz'''
`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewScanner(rules)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("acme_key = \\\n    k3j9x0v7q2m5\n")
	want := 1
	for b.Len() < 3*chunkSize {
		b.WriteString("filler line of a long file\n")
		if b.Len()%100000 < 30 {
			b.WriteString("x zz-0123456789-zz y\n")
			want++
		}
	}
	got := map[string]int{}
	if err := s.Scan("/etc/x", strings.NewReader(b.String()), func(f Finding) { got[f.RuleID]++ }); err != nil {
		t.Fatal(err)
	}
	if got["split-key"] != 1 || got["no-keywords"] != want-1 || want < 3 {
		t.Errorf("got %v, want split-key 1, no-keywords %d", got, want-1)
	}
}

// TestMerge: a user rule with a built-in rule's ID replaces it, in the
// gitleaks manner of overriding a default.
func TestMerge(t *testing.T) {
	user, err := LoadGitleaks("u.toml", []byte("[[rules]]\nid = \"jwt\"\nregex = '''tok_([a-z]{8})'''\nkeywords = [\"tok_\"]\n[[rules]]\nid = \"extra\"\nregex = 'x(y)'\nkeywords = ['xy']\n"))
	if err != nil {
		t.Fatal(err)
	}
	base := Builtin()
	merged := Merge(base, user)
	if len(merged) != len(base)+1 {
		t.Fatalf("%d rules, want %d", len(merged), len(base)+1)
	}
	s, err := NewScanner(merged)
	if err != nil {
		t.Fatal(err)
	}
	fs := scanString(t, s, "/x", "Authorization: Bearer "+testJWT+"\nt = tok_abcdefgh\n")
	if len(fs) != 1 || fs[0].RuleID != "jwt" || fs[0].Line != 2 {
		t.Errorf("got %v, want the user's jwt rule on line 2 only", fs)
	}
}
