package hygiene

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/vguard-dev/vguard/internal/secrets"
)

// TestSanitizeEveryRule: for every built-in rule and each of its test
// secrets, a file holding it is sanitized and the copy scans clean. This
// is what makes the marker safe: no rule takes a redacted value for a
// secret, and no secret survives its redaction.
func TestSanitizeEveryRule(t *testing.T) {
	s := newScanner(t)
	for _, r := range secrets.Builtin() {
		for i, content := range r.MustMatch {
			p := r.TestPath
			if p == "" {
				p = "/test.txt"
			}
			root := t.TempDir()
			full := filepath.Join(root, filepath.FromSlash(p))
			os.MkdirAll(filepath.Dir(full), 0o755)
			if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			rep, err := s.Sanitize(open(t, root), root, filepath.Join(t.TempDir(), "copy"), SanitizeOptions{})
			if errors.Is(err, ErrNotClean) {
				t.Errorf("%s test %d: the sanitized copy still holds %+v", r.ID, i, rep.Rescan.Secrets)
				continue
			}
			if err != nil {
				t.Fatalf("%s test %d: %v", r.ID, i, err)
			}
			if len(rep.Actions) == 0 {
				t.Errorf("%s test %d: nothing was sanitized", r.ID, i)
			}
		}
	}
}
