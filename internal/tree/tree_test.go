package tree

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/vguard-dev/vguard/internal/manifest"
)

func TestManifestDir(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "etc/nginx"), 0o755))
	body := []byte("worker_processes 4;\n")
	must(os.WriteFile(filepath.Join(root, "etc/nginx/nginx.conf"), body, 0o640))
	must(os.WriteFile(filepath.Join(root, "etc/machine-id"), []byte("abc\n"), 0o444))
	must(os.Symlink("nginx/nginx.conf", filepath.Join(root, "etc/link")))
	must(os.Chmod(filepath.Join(root, "etc"), 0o755|os.ModeSticky))

	m, err := ManifestDir(root)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	for _, c := range []struct {
		path string
		want manifest.Entry
	}{
		{"/etc", manifest.Entry{Type: manifest.Dir, Mode: 0o1755}},
		{"/etc/nginx/nginx.conf", manifest.Entry{Type: manifest.File, Mode: 0o640, Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:])}},
		{"/etc/link", manifest.Entry{Type: manifest.Symlink, Mode: 0o777, Target: "nginx/nginx.conf"}},
	} {
		e := m.Lookup(c.path)
		if e == nil {
			t.Fatalf("%s missing from %+v", c.path, m.Entries)
		}
		c.want.Path, c.want.UID, c.want.GID = c.path, e.UID, e.GID
		if *e != c.want {
			t.Errorf("%s = %+v, want %+v", c.path, *e, c.want)
		}
	}
	if m.Lookup("/") != nil {
		t.Error("the root itself is listed")
	}

	// A copy that differs only in what the ignore list covers does not drift;
	// a patched file does.
	other, _ := ManifestDir(root)
	must(os.WriteFile(filepath.Join(root, "etc/machine-id"), []byte("def\n"), 0o444))
	again, err := ManifestDir(root)
	must(err)
	if d := manifest.Diff(other, again); !d.Empty() {
		t.Errorf("machine-id change drifts: %+v", d)
	}
	must(os.WriteFile(filepath.Join(root, "etc/nginx/nginx.conf"), []byte("worker_processes 8;\n"), 0o640))
	patched, err := ManifestDir(root)
	must(err)
	if d := manifest.Diff(other, patched); len(d.Modified) != 1 || d.Modified[0].Path != "/etc/nginx/nginx.conf" {
		t.Errorf("patch not seen: %+v", d)
	}
}
