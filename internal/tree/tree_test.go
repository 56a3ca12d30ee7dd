package tree

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vguard-dev/vguard/internal/imagefs"
	"github.com/vguard-dev/vguard/internal/manifest"
	"github.com/vguard-dev/vguard/internal/testdeps"
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

func write(t testing.TB, root, p, data string) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestManifestImages: the manifest of an ext4 image, its qcow2 and a tar
// of a tree equals the directory's own (mke2fs adds only /lost+found).
func TestManifestImages(t *testing.T) {
	mke2fs := testdeps.Program(t, "mke2fs")
	root := t.TempDir()
	write(t, root, "etc/app.conf", "db=1\n")
	write(t, root, "usr/bin/tool", strings.Repeat("binary", 100000))
	os.Symlink("app.conf", filepath.Join(root, "etc/link"))
	os.Link(filepath.Join(root, "etc/app.conf"), filepath.Join(root, "etc/hard"))
	want, err := ManifestDir(root)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.img")
	out, err := exec.Command(mke2fs, "-q", "-F", "-t", "ext4", "-d", root, raw, "16m").CombinedOutput()
	if err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	tarFile := filepath.Join(dir, "root.tar.gz")
	if out, err := exec.Command(testdeps.Program(t, "tar"), "-czf", tarFile, "--numeric-owner", "-C", root, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	for _, c := range []struct{ path, format string }{{raw, "raw"}, {tarFile, "tar+gzip"}} {
		m, st, err := ManifestPath(c.path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		// etc/hard is a hard link in every format: its hash is
		// etc/app.conf's, read once.
		if st.Format != c.format || st.Files != 3 || st.Hashed != 2 && c.format == "raw" {
			t.Errorf("%s: stats %+v", c.format, st)
		}
		if h, f := m.Lookup("/etc/hard"), m.Lookup("/etc/app.conf"); h == nil || f == nil || h.SHA256 == "" || h.SHA256 != f.SHA256 || h.Size != f.Size {
			t.Errorf("%s: /etc/hard %+v, /etc/app.conf %+v: want one content", c.format, h, f)
		}
		d := manifest.DiffIgnoring(want, m, nil)
		if len(d.Removed) != 0 || len(d.Modified) != 0 || len(d.Added) > 1 || len(d.Added) == 1 && d.Added[0] != "/lost+found" {
			t.Errorf("%s differs from the directory: %+v", c.format, d)
		}
	}
}

// cacheOpts keeps tests' caches in their temp dir.
func cacheOpts(t *testing.T) Options {
	return Options{CacheDir: t.TempDir(), noSlack: true}
}

// TestStatCache: an unchanged tree is re-manifested from the cache; a
// changed, added or removed file is seen.
func TestStatCache(t *testing.T) {
	root := t.TempDir()
	for i := range 20 {
		write(t, root, fmt.Sprintf("f%02d", i), strings.Repeat("x", i*100))
	}
	opts := cacheOpts(t)
	time.Sleep(10 * time.Millisecond) // files older than the run's start
	first, st, err := ManifestPath(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	if st.Hashed != 20 || st.Reused != 0 {
		t.Fatalf("first run: %+v", st)
	}
	second, st, err := ManifestPath(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	if st.Hashed != 0 || st.Reused != 20 {
		t.Fatalf("second run of an unchanged tree: %+v", st)
	}
	if d := manifest.DiffIgnoring(first, second, nil); !d.Empty() {
		t.Fatalf("cached manifest differs: %+v", d)
	}
	write(t, root, "f03", "changed content, other size")
	write(t, root, "new", "n")
	os.Remove(filepath.Join(root, "f04"))
	third, st, err := ManifestPath(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	if st.Hashed != 2 || st.Reused != 18 {
		t.Errorf("third run: %+v", st)
	}
	d := manifest.DiffIgnoring(first, third, nil)
	if fmt.Sprint(d.Added, d.Removed, len(d.Modified)) != "[/new] [/f04] 1" || d.Modified[0].Path != "/f03" {
		t.Errorf("drift after changes: %+v", d)
	}
	if _, st, _ := ManifestPath(root, Options{NoCache: true, CacheDir: opts.CacheDir}); st.Reused != 0 {
		t.Errorf("NoCache reused %d hashes", st.Reused)
	}
}

// TestStatCacheRacy: on a filesystem whose timestamps are coarse (acted
// out here with timestamps that never tick), a file rewritten with the same size in
// the same tick as it was hashed has an unchanged stat. The racy rule
// re-hashes it, so the next manifest sees the new content.
func TestStatCacheRacy(t *testing.T) {
	root := t.TempDir()
	write(t, root, "app.conf", "version=1\n")
	opts := cacheOpts(t)
	opts.granularity = 1 << 62 // timestamps that never tick
	first, _, err := ManifestPath(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	write(t, root, "app.conf", "version=2\n") // same size, same (coarse) times
	// The stat alone cannot tell: with the racy rule off (every entry
	// taken as older than the cache), the stale hash would be reused.
	img, err := imagefs.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	c := openStatCache(root, opts)
	c.threshold = 1 << 62
	stale := false
	img.Walk(func(e *imagefs.Entry) error {
		var me manifest.Entry
		if e.Path == "/app.conf" && c.lookup(e, &me) && me.SHA256 == first.Lookup("/app.conf").SHA256 {
			stale = true
		}
		return nil
	})
	if !stale {
		t.Fatal("the stat changed: the test did not act out a racy entry")
	}
	second, st, err := ManifestPath(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	if d := manifest.DiffIgnoring(first, second, nil); len(d.Modified) != 1 {
		t.Fatalf("the rewrite within one timestamp tick was not seen (stats %+v)", st)
	}
}

// TestNonUTF8Names: names that are not UTF-8 (legal on Linux) still make
// a valid manifest, with U+FFFD for the bad bytes.
func TestNonUTF8Names(t *testing.T) {
	root := t.TempDir()
	write(t, root, "caf\xe9.txt", "latin-1 name")
	m, err := ManifestDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if m.Lookup("/caf\uFFFD.txt") == nil {
		t.Errorf("entries: %+v", m.Entries)
	}
}
