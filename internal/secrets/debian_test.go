package secrets

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/vguard-dev/vguard/internal/testdeps"
)

// debianExpected lists every finding the built-in rules make on a Debian
// minbase root filesystem, each with the reason it is right. Anything
// else found there is a false positive to fix in the rules; anything
// listed and not found means a rule lost its reach.
//
// On bookworm minbase the list is empty, and that is the point: a stock
// system holds no secret. The rules were fixed for what the first scans
// reported (nsswitch.conf's "passwd: files", dpkg.log's
// "base-passwd:amd64", lintian overrides, Perl's Config.pm
// d_pwpasswd='define'); the one real find, the keys of GnuTLS's self-tests
// compiled into libgnutls, is allowlisted in the private-key rule, and the
// control at the end of the test proves the rule still sees them.
var debianExpected = []struct {
	rule, path, reason string
}{}

// TestDebianRoot scans every regular file of a real Debian system.
func TestDebianRoot(t *testing.T) {
	root := testdeps.DebianRoot(t)
	s, err := NewScanner(Builtin())
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ rule, path string }
	got := map[key]int{}
	var files, bytes int64
	start := time.Now()
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		rel := "/" + filepath.ToSlash(mustRel(t, root, p))
		files++
		if st, err := f.Stat(); err == nil {
			bytes += st.Size()
		}
		return s.Scan(rel, f, func(fd Finding) {
			got[key{fd.RuleID, fd.Path}]++
			t.Logf("finding: %v", fd)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d files, %d MB in %v", files, bytes>>20, time.Since(start))
	if files < 1000 {
		t.Fatalf("only %d files in the Debian root", files)
	}
	// A control: without its allowlist, the private-key rule does find
	// the self-test keys in libgnutls, so binary files are really read.
	var pk *Rule
	for _, r := range Builtin() {
		if r.ID == "private-key" {
			pk = r
		}
	}
	pk.Allowlists = nil
	ctl, err := NewScanner([]*Rule{pk})
	if err != nil {
		t.Fatal(err)
	}
	libs, _ := filepath.Glob(filepath.Join(root, "usr/lib/*/libgnutls.so.30.*"))
	if len(libs) == 0 {
		t.Fatal("no libgnutls in the Debian root")
	}
	f, err := os.Open(libs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := 0
	if err := ctl.Scan(libs[0], f, func(Finding) { keys++ }); err != nil {
		t.Fatal(err)
	}
	if keys == 0 {
		t.Errorf("the private-key rule found none of GnuTLS's self-test keys in %s", libs[0])
	}
	want := map[key]bool{}
	for _, e := range debianExpected {
		want[key{e.rule, e.path}] = true
		if got[key{e.rule, e.path}] == 0 {
			t.Errorf("expected %s in %s (%s), not found", e.rule, e.path, e.reason)
		}
	}
	var unexpected []string
	for k, n := range got {
		if !want[k] {
			unexpected = append(unexpected, k.rule+" "+k.path+" ×"+itoa(n))
		}
	}
	sort.Strings(unexpected)
	for _, u := range unexpected {
		t.Errorf("unexpected finding: %s", u)
	}
}

func itoa(n int) string { return fmtInt(n) }

func mustRel(t *testing.T, root, p string) string {
	rel, err := filepath.Rel(root, p)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

func fmtInt(n int) string { return strconv.Itoa(n) }
