package hygiene

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/vguard-dev/vguard/internal/imagefs"
)

// TestSanitizeClosesFiles: every file sanitize opens to redact is closed
// once written, without waiting for the collector (which may never run
// when the data is on disk, not on the heap).
func TestSanitizeClosesFiles(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	root := t.TempDir()
	for i := range 50 {
		p := filepath.Join(root, "etc", "app", "c"+strings.Repeat("x", i%5)+string(rune('a'+i%26))+".env")
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("AWS_ACCESS_KEY_ID="+fakeAWS()+"\n"), 0o644)
	}
	fds := func() int { n, _ := os.ReadDir("/proc/self/fd"); return len(n) }
	before := fds()
	if _, err := newScanner(t).Sanitize(open(t, root), root, filepath.Join(t.TempDir(), "copy"), SanitizeOptions{}); err != nil {
		t.Fatal(err)
	}
	if after := fds(); after > before+2 {
		t.Fatalf("%d file descriptors open before sanitizing, %d after", before, after)
	}
}

// TestLargeLoginRecords: login records larger than the catalogue reads are
// still clone identity (a busy server's wtmp runs to megabytes).
func TestLargeLoginRecords(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "var/log"), 0o755)
	rec := bytes.Repeat([]byte("\x07\x00\x00\x00pts/0 root 10.0.0.9 "), (3<<20)/32)
	os.WriteFile(filepath.Join(root, "var/log/wtmp"), rec, 0o664)
	s := newScanner(t)
	if got := found(t, s, root); len(got) != 1 || got[0] != "identity login-records /var/log/wtmp" {
		t.Fatalf("scan of a 3 MB wtmp: %q", got)
	}
	dst := filepath.Join(t.TempDir(), "copy")
	if _, err := s.Sanitize(open(t, root), root, dst, SanitizeOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dst, "var/log/wtmp")); err == nil {
		t.Fatal("the wtmp is still in the copy")
	}
}

// TestTarHardLinkIdentity: a machine-id that is a hard link, in a tar, to a
// file holding an ID is identity; the sealed tar holds an empty machine-id.
func TestTarHardLinkIdentity(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/x"), []byte("4c4c4544004a3510804bb8c04f384d32\n"), 0o444)
	if err := os.Link(filepath.Join(root, "etc/x"), filepath.Join(root, "etc/machine-id")); err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(t.TempDir(), "in.tar")
	if out, err := exec.Command("tar", "-cf", tarPath, "-C", root, "etc/x", "etc/machine-id").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	s := newScanner(t)
	if got := found(t, s, tarPath); len(got) != 1 || got[0] != "identity machine-id /etc/machine-id" {
		t.Fatalf("scan: %q", got)
	}
	dst := filepath.Join(t.TempDir(), "out.tar")
	if _, err := s.Sanitize(open(t, tarPath), tarPath, dst, SanitizeOptions{}); err != nil {
		t.Fatal(err)
	}
	files := readTree(t, dst)
	if f := files["/etc/machine-id"]; f.kind != imagefs.File.String() || f.content != "" {
		t.Fatalf("machine-id in the sealed tar: %+v", f)
	}
	// An archive that exists is not replaced.
	if _, err := s.Sanitize(open(t, tarPath), tarPath, dst, SanitizeOptions{}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("sanitize onto an existing archive: %v", err)
	}
}
