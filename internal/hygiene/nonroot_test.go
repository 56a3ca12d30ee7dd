package hygiene

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vguard-dev/vguard/internal/testdeps"
)

// unreadableTar writes a tar whose /etc/shadow has mode 0000 and whose
// /etc/private is a directory of mode 0000, as RHEL and Fedora ship them
// (the directory is rarer, and harder: nothing below it can be reached).
func unreadableTar(t *testing.T, file string) {
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	now := time.Now()
	for _, e := range []struct {
		name    string
		mode    int64
		content string
	}{
		{"etc/", 0o755, ""},
		{"etc/shadow", 0o000, "root:*:19700:0:99999:7:::\nhr:!:19700:0:99999:7:::\n"},
		{"etc/private/", 0o000, ""},
		{"etc/private/app.env", 0o000, "APP_ENV=prod\nAWS_ACCESS_KEY_ID=" + fakeAWS() + "\n"},
		{"etc/hosts", 0o644, "127.0.0.1 localhost\n"},
	} {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: now, Typeflag: tar.TypeReg, Size: int64(len(e.content))}
		if strings.HasSuffix(e.name, "/") {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.content)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestSanitizeUnreadableAsUser: a user other than root sanitizes an image
// holding files and a directory of mode 0000 into a directory. The copy
// keeps those modes, which close it to its owner too; the re-scan reads
// it anyway, and the modes are the image's again afterwards.
//
// The tests run as root here: the test then runs itself again as nobody
// (setpriv), so that the permissions are those a user meets.
func TestSanitizeUnreadableAsUser(t *testing.T) {
	if img := os.Getenv("VGUARD_TEST_NONROOT_IMAGE"); img != "" {
		sanitizeUnreadable(t, img, os.Getenv("VGUARD_TEST_NONROOT_OUT"))
		return
	}
	if os.Geteuid() != 0 {
		dir := t.TempDir()
		unreadableTar(t, filepath.Join(dir, "img.tar"))
		sanitizeUnreadable(t, filepath.Join(dir, "img.tar"), filepath.Join(dir, "out"))
		return
	}
	setpriv := testdeps.Program(t, "setpriv")
	// A place nobody can reach: the test binary, the image, the output.
	dir, err := os.MkdirTemp("", "vguard-nonroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "hygiene.test")
	run(t, "cp", self, bin)
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "img.tar")
	unreadableTar(t, img)
	os.Chmod(img, 0o644)
	out := filepath.Join(dir, "out")
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
		bin, "-test.run=^TestSanitizeUnreadableAsUser$", "-test.count=1", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "VGUARD_TEST_NONROOT_IMAGE="+img, "VGUARD_TEST_NONROOT_OUT="+out, "HOME="+dir, "TMPDIR="+dir)
	b, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(b), "--- PASS: TestSanitizeUnreadableAsUser") {
		t.Fatalf("as nobody: %v\n%s", err, b)
	}
	// The copy belongs to nobody, with the image's modes.
	fi, err := os.Lstat(filepath.Join(out, "etc/shadow"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 || fi.Mode().Perm() != 0 {
		t.Fatalf("the copy's /etc/shadow: owner %d, mode %v", st.Uid, fi.Mode())
	}
	// (RemoveAll, as root, gets through the 0000 directory.)
}

func sanitizeUnreadable(t *testing.T, img, out string) {
	rep, err := newScanner(t).Sanitize(open(t, img), img, out, SanitizeOptions{})
	if err != nil {
		t.Fatalf("Sanitize as uid %d: %v", os.Geteuid(), err)
	}
	redacted := false
	for _, a := range rep.Actions {
		redacted = redacted || a.Path == "/etc/private/app.env" && a.Action == "redact"
	}
	if !redacted || rep.Rescan == nil || rep.Rescan.Summary.Files != 3 {
		t.Fatalf("actions %+v, re-scan %+v: want app.env redacted and 3 files read back", rep.Actions, rep.Rescan)
	}
	for p, want := range map[string]os.FileMode{"etc/shadow": 0, "etc/private": os.ModeDir, "etc/hosts": 0o644} {
		fi, err := os.Lstat(filepath.Join(out, p))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s in the copy: mode %v after the re-scan, want %v", p, fi.Mode(), want)
		}
	}
	// The directory's entries were put back too: open it to look.
	os.Chmod(filepath.Join(out, "etc/private"), 0o700)
	defer os.Chmod(filepath.Join(out, "etc/private"), 0)
	if fi, err := os.Lstat(filepath.Join(out, "etc/private/app.env")); err != nil || fi.Mode() != 0 {
		t.Errorf("etc/private/app.env in the copy: %v, %v; want mode 0", fi.Mode(), err)
	}
}

// TestSanitizeReportsRestoreFailure: when the modes of the directory copy
// cannot be put back after the re-scan, Sanitize says so instead of
// leaving the copy's /etc/shadow readable without a word.
func TestSanitizeReportsRestoreFailure(t *testing.T) {
	defer func(orig func(string) (func() error, error)) { readable = orig }(readable)
	readable = func(out string) (func() error, error) {
		restore, err := readableCopy(out)
		return func() error { return errors.Join(restore(), errors.New("chmod etc/shadow: read-only file system")) }, err
	}
	img := filepath.Join(t.TempDir(), "img.tar")
	unreadableTar(t, img)
	_, err := newScanner(t).Sanitize(open(t, img), img, filepath.Join(t.TempDir(), "out"), SanitizeOptions{})
	if err == nil || !strings.Contains(err.Error(), "putting back the modes of the copy") {
		t.Fatalf("Sanitize with a failing restore: %v", err)
	}
}
