package secrets

import "testing"

// TestPathKey: two paths share a key exactly when the same rules (and path
// allowlists) apply to them.
func TestPathKey(t *testing.T) {
	s := builtinScanner(t)
	same := [][2]string{
		{"/root/.kube/config", "/home/ann/.kube/config"},
		{"/backup/x", "/srv/app/notes.txt"},
	}
	for _, p := range same {
		if s.PathKey(p[0]) != s.PathKey(p[1]) {
			t.Errorf("%s and %s: different keys", p[0], p[1])
		}
	}
	differ := [][2]string{
		{"/root/.kube/config", "/backup/x"},
		{"/etc/shadow", "/backup/x"},
		{"/root/.pgpass", "/root/.kube/config"},
	}
	for _, p := range differ {
		if s.PathKey(p[0]) == s.PathKey(p[1]) {
			t.Errorf("%s and %s: one key, though different rules apply", p[0], p[1])
		}
	}
}
