package imagefs

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vguard-dev/vguard/internal/testdeps"
)

// TestCopy copies the small tree out of an ext4 image and out of a tar,
// into a directory and into compressed tars, and reads the copies back:
// everything survives but what a directory cannot hold (FIFOs, devices).
func TestCopy(t *testing.T) {
	testdeps.Program(t, "mke2fs")
	root := smallTree(t)
	src := readSource(t, root)
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.img")
	mkfs(t, root, raw, 0)
	tarFile := filepath.Join(dir, "in.tar")
	run(t, testdeps.Program(t, "tar"), "--numeric-owner", "-C", root, "-cf", tarFile, ".")
	noLostFound := func(e *Entry) (bool, io.Reader, error) {
		return e.Path == "/lost+found", nil, nil
	}
	for _, in := range []string{raw, tarFile} {
		for _, out := range []string{"out-dir", "out.tar.zst", "out.tgz", "out.tar"} {
			t.Run(filepath.Base(in)+"-to-"+out, func(t *testing.T) {
				img := openT(t, in, map[string]string{raw: "raw", tarFile: "tar"}[in])
				dst := filepath.Join(t.TempDir(), out)
				w, err := Create(dst)
				if err != nil {
					t.Fatal(err)
				}
				if err := Copy(img, w, noLostFound); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				want := src
				if out == "out-dir" {
					want = maps.Clone(src)
					skipped := map[string]bool{}
					for _, p := range w.Skipped() {
						skipped[p] = true
						delete(want, p)
					}
					for p, e := range src {
						if e.typ == Other && !skipped[p] {
							t.Errorf("%s: special file neither written nor reported skipped", p)
						}
					}
					compare(t, readSource(t, dst), want, "")
					return
				}
				compare(t, readImage(t, openT(t, dst, map[string]string{"out.tar.zst": "tar+zstd", "out.tgz": "tar+gzip", "out.tar": "tar"}[out])), want, "")
			})
		}
	}
}

// TestCopyEdit: an edit drops a directory with its contents and replaces a
// file's content (and size).
func TestCopyEdit(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/ssh"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/ssh/ssh_host_rsa_key"), []byte("KEY"), 0o600)
	os.WriteFile(filepath.Join(root, "etc/machine-id"), []byte("0123456789abcdef\n"), 0o444)
	os.WriteFile(filepath.Join(root, "etc/app.conf"), []byte("password=hunter2\n"), 0o640)
	img := openT(t, root, "dir")
	out := filepath.Join(t.TempDir(), "out")
	w, err := Create(out)
	if err != nil {
		t.Fatal(err)
	}
	err = Copy(img, w, func(e *Entry) (bool, io.Reader, error) {
		switch e.Path {
		case "/etc/ssh":
			return true, nil, nil
		case "/etc/machine-id":
			e.Size = 0
			return false, strings.NewReader(""), nil
		case "/etc/app.conf":
			s := "password=[REMOVED]\n"
			e.Size = int64(len(s))
			return false, strings.NewReader(s), nil
		}
		return false, nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := readSource(t, out)
	if _, ok := got["/etc/ssh"]; ok {
		t.Error("dropped directory written")
	}
	if _, ok := got["/etc/ssh/ssh_host_rsa_key"]; ok {
		t.Error("file under a dropped directory written")
	}
	if b, _ := os.ReadFile(filepath.Join(out, "etc/app.conf")); string(b) != "password=[REMOVED]\n" {
		t.Errorf("app.conf = %q", b)
	}
	if g := got["/etc/machine-id"]; g.typ != File || g.size != 0 || g.mode != 0o444 {
		t.Errorf("machine-id = %+v, want an empty file with mode 0444", g)
	}
}

// TestDirWriterStaysInside: an archive whose symlink points out of the
// tree cannot make the directory writer write outside the output.
func TestDirWriterStaysInside(t *testing.T) {
	outside := t.TempDir()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "etc", Typeflag: tar.TypeSymlink, Linkname: outside})
	tw.WriteHeader(&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644, Size: 4})
	tw.Write([]byte("evil"))
	tw.WriteHeader(&tar.Header{Name: "../../escape", Typeflag: tar.TypeReg, Mode: 0o644, Size: 4})
	tw.Write([]byte("evil"))
	tw.Close()
	in := filepath.Join(t.TempDir(), "hostile.tar")
	os.WriteFile(in, buf.Bytes(), 0o644)
	out := filepath.Join(t.TempDir(), "out")
	w, err := Create(out)
	if err != nil {
		t.Fatal(err)
	}
	err = Copy(openT(t, in, "tar"), w, nil)
	w.Close()
	if err == nil {
		t.Error("writing through a symlink that leaves the tree did not fail")
	}
	filepath.WalkDir(outside, func(p string, d fs.DirEntry, err error) error {
		if p != outside {
			t.Errorf("written outside the output: %s", p)
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(filepath.Dir(out), "escape")); err == nil {
		t.Error("../../escape written outside the output")
	}
}
