package secrets

import (
	"strings"
	"testing"
	"time"
)

// TestSeveralOnOneLine: several secrets of one rule on one line are each
// found, whether the rule runs anchored at its keyword or searches the line.
func TestSeveralOnOneLine(t *testing.T) {
	s := builtinScanner(t)
	for _, c := range []struct {
		line string
		rule string
		n    int
	}{
		{"user_password=z2oCtIsjhvNK4p admin_secret=K9vPq2LmX7wRt4 other_passwd=Hq8Zr3Nc5Vx1Lp\n", "password-assignment", 3},
		{"curl -u a:z2oCtIsjhvNK4p https://x/ ; curl -u b:K9vPq2LmX7wRt4 https://y/\n", "curl-user-password", 2},
		{"AKIAHBRPOIGF3CBFNOBM ASIA2O4RAK3VRJNVGFYG\n", "aws-access-key-id", 2},
	} {
		n := 0
		for _, f := range scanString(t, s, "/x.env", c.line) {
			if f.RuleID == c.rule {
				n++
			}
		}
		if n != c.n {
			t.Errorf("%q: %d findings of %s, want %d", c.line, n, c.rule, c.n)
		}
	}
}

// TestLongLineHits: a multi-megabyte line full of keywords (minified
// code, a dump) costs about a pass per rule, not a window per hit.
func TestLongLineHits(t *testing.T) {
	s := builtinScanner(t)
	line := strings.Repeat("curl x password mysql -u storage ", 100000) // 3.3 MB, 400k hits
	start := time.Now()
	scanString(t, s, "/x.js", line+"\n")
	if d := time.Since(start); d > 30*time.Second { // about 1 s on the development machine
		t.Errorf("a %d-byte line with keywords took %v", len(line), d)
	}
	t.Logf("%d bytes in %v", len(line), time.Since(start))
}

// TestSecretInLongLine: a secret deep inside a long line full of the same
// rule's keywords is found, once.
func TestSecretInLongLine(t *testing.T) {
	s := builtinScanner(t)
	for _, c := range []struct{ filler, secret, rule string }{
		{"curl x ", "curl -u admin:z2oCtIsjhvNK4p https://x/ ", "curl-user-password"},
		{"password is ", "db_password=z2oCtIsjhvNK4p ", "password-assignment"},
		{"postgres://h/db ", "postgres://app:z2oCtIsjhvNK4p@db1/hr ", "db-connection-uri"},
	} {
		for _, reps := range []int{10, 300, 3000, 12000} {
			line := strings.Repeat(c.filler, reps) + c.secret + strings.Repeat(c.filler, reps)
			n := 0
			for _, f := range scanString(t, s, "/x.js", line+"\n") {
				if f.RuleID == c.rule {
					n++
					if got := line[f.Offset : f.Offset+f.Length]; got != "z2oCtIsjhvNK4p" {
						t.Errorf("%s in a %d-byte line: span %q", c.rule, len(line), got)
					}
				}
			}
			if n != 1 {
				t.Errorf("%s in a %d-byte line: found %d times", c.rule, len(line), n)
			}
		}
	}
}
