package secrets

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// stdlibExpected lists the findings the built-in rules make in CPython's
// standard library (/usr/lib/python3.N, as libpython3-stdlib installs it on
// Debian and Ubuntu; cloud-init needs it, so every cloud image has it),
// with the reason each is right. Anything else is a false positive, and a
// dangerous one: sanitize would rewrite code (ftplib's `userid = passwd =
// acct = ”` became a syntax error).
var stdlibExpected = map[[2]string]string{
	{"password-assignment", "urllib/request.py"}: "the module docstring's example, passwd='geheim$parole': a quoted literal, which rewriting leaves valid Python",
}

// TestPythonStdlib scans every file of the Python standard libraries
// installed here. It needs none installed: without one it is skipped,
// since nothing of vguard's depends on Python.
func TestPythonStdlib(t *testing.T) {
	dirs, _ := filepath.Glob("/usr/lib/python3.[0-9]*")
	var libs []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "smtplib.py")); err == nil {
			libs = append(libs, d)
		}
	}
	if len(libs) == 0 {
		t.Skip("no Python standard library in /usr/lib/python3.N")
	}
	s, err := NewScanner(Builtin())
	if err != nil {
		t.Fatal(err)
	}
	for _, lib := range libs {
		files := 0
		err := filepath.WalkDir(lib, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // an unreadable directory: not ours to judge
			}
			if d.IsDir() && (d.Name() == "dist-packages" || d.Name() == "site-packages") {
				return filepath.SkipDir // third-party code
			}
			if !d.Type().IsRegular() {
				return nil
			}
			f, err := os.Open(p)
			if err != nil {
				return nil
			}
			defer f.Close()
			files++
			rel := filepath.ToSlash(mustRel(t, lib, p))
			return s.Scan(p, f, func(fd Finding) {
				if _, ok := stdlibExpected[[2]string{fd.RuleID, rel}]; !ok {
					t.Errorf("%s:%d: %s %s: a false positive in the standard library", p, fd.Line, fd.RuleID, fd.Redacted)
				}
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d files", lib, files)
	}
}
