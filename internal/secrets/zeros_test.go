package secrets

import (
	"bytes"
	"math/rand"
	"reflect"
	"strings"
	"testing"
)

// TestZeroRuns: runs of zero bytes are stepped over without changing what
// is found: secrets after megabytes of zeros keep their line and offset, a
// secret ending at a zero run is found whole, and a keyword cut by a zero
// run is no keyword.
func TestZeroRuns(t *testing.T) {
	s := builtinScanner(t)
	text := strings.Repeat("# a comment line of a text file\n", 400) // past the binary sniff
	zeros := string(make([]byte, 3<<20))
	cases := []struct {
		name, path, content string
		rule                string
		line                int
		offset              int
	}{
		{"after zeros", "/etc/app.env", text + zeros + "\nDB_PASSWORD=Tr0ub4dor-and-3\n", "password-assignment", 402, len(text) + len(zeros) + len("\nDB_PASSWORD=")},
		{"before zeros", "/etc/app.env", text + "DB_PASSWORD=Tr0ub4dor-and-3" + zeros, "password-assignment", 401, len(text) + len("DB_PASSWORD=")},
		{"binary, after zeros", "/var/lib/blob", zeros + testPrivateKey, "private-key", 2, len(zeros) + len("-----BEGIN RSA PRIVATE KEY-----\n")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := scanString(t, s, c.path, c.content)
			if len(fs) != 1 || fs[0].RuleID != c.rule || fs[0].Line != c.line || fs[0].Offset != int64(c.offset) {
				t.Fatalf("got %v, want one %s at line %d, offset %d", fs, c.rule, c.line, c.offset)
			}
		})
	}
	// "-----BEGIN", zeros, "RSA PRIVATE KEY-----": the automaton must not
	// resume mid-keyword after the run.
	cut := zeros + testPrivateKey[:8] + zeros + testPrivateKey[8:]
	if fs := scanString(t, s, "/var/lib/blob", cut); len(fs) != 0 {
		t.Errorf("a key header cut by zeros was found: %v", fs)
	}
}

// TestZeroRunsMatchFeeding: the corpus with zero runs of random lengths
// put between its lines gives the same findings with the shortcut as when
// every byte is fed to the automaton.
func TestZeroRunsMatchFeeding(t *testing.T) {
	files, _, decoys := genCorpus(7, 1)
	plain, err := NewScannerWithKey(Builtin(), []byte(strings.Repeat("z", 32)))
	if err != nil {
		t.Fatal(err)
	}
	fed, err := NewScannerWithKey(Builtin(), []byte(strings.Repeat("z", 32)))
	if err != nil {
		t.Fatal(err)
	}
	fed.feedZeros = true
	r := rand.New(rand.NewSource(1))
	for _, f := range append(files, decoys...) {
		lines := bytes.SplitAfter(f.data, []byte("\n"))
		var b bytes.Buffer
		for _, l := range lines {
			if r.Intn(16) == 0 {
				b.Write(make([]byte, r.Intn(700<<10)))
			}
			b.Write(l)
		}
		collect := func(s *Scanner) []Finding {
			var out []Finding
			if err := s.Scan(f.path, bytes.NewReader(b.Bytes()), func(fd Finding) { out = append(out, fd) }); err != nil {
				t.Fatal(err)
			}
			return out
		}
		if got, want := collect(plain), collect(fed); !reflect.DeepEqual(got, want) {
			t.Errorf("%s with zero runs: %d findings with the shortcut, %d feeding every byte\n got %v\nwant %v", f.path, len(got), len(want), got, want)
		}
	}
}

// testPrivateKey is a PEM private key the private-key rule reports.
var testPrivateKey = "-----BEGIN RSA PRIVATE KEY-----\n" + pemBody + "\n-----END RSA PRIVATE KEY-----\n"
