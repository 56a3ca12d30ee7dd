package imagefs

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
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

// TestHardLinks: a file of several links in a directory, ext4 or qcow2
// image is one file under several paths: the paths after the first are
// hard links to it (Entry.Link), as in a tar, and a copy into a directory
// or a tar keeps them links instead of writing the content again. A file
// whose other link lies outside a directory image is a plain file.
func TestHardLinks(t *testing.T) {
	testdeps.Program(t, "mke2fs")
	root := t.TempDir()
	for _, d := range []string{"a", "b", "c"} {
		os.Mkdir(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "a/f"), []byte(strings.Repeat("shared content\n", 1000)), 0o644)
	os.Link(filepath.Join(root, "a/f"), filepath.Join(root, "b/g"))
	os.Link(filepath.Join(root, "a/f"), filepath.Join(root, "c/h"))
	os.WriteFile(filepath.Join(root, "solo"), []byte("one path here\n"), 0o644)
	os.Link(filepath.Join(root, "solo"), filepath.Join(t.TempDir(), "outside"))
	group := []string{"/a/f", "/b/g", "/c/h"}

	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.img")
	mkfs(t, root, raw, 0)
	qcow := filepath.Join(dir, "disk.qcow2")
	run(t, testdeps.Program(t, "qemu-img"), "convert", "-f", "raw", "-O", "qcow2", raw, qcow)

	for _, in := range []struct{ path, format string }{{root, "dir"}, {raw, "raw"}, {qcow, "qcow2"}} {
		t.Run(in.format, func(t *testing.T) {
			links := map[string]string{}
			img := openT(t, in.path, in.format)
			img.Walk(func(e *Entry) error {
				if e.Type == File {
					links[e.Path] = e.Link
				}
				return nil
			})
			first := ""
			for _, p := range group {
				if links[p] == "" {
					if first != "" {
						t.Fatalf("%s and %s are both first of the same file: %v", first, p, links)
					}
					first = p
				}
			}
			for _, p := range group {
				if p != first && links[p] != first {
					t.Errorf("%s: Link %q, want %q", p, links[p], first)
				}
			}
			if links["/solo"] != "" {
				t.Errorf("/solo: Link %q, want none (its other link is outside the image)", links["/solo"])
			}

			out := filepath.Join(t.TempDir(), "out")
			w, err := Create(out)
			if err != nil {
				t.Fatal(err)
			}
			if err := Copy(img, w, nil); err != nil {
				t.Fatal(err)
			}
			w.Close()
			fi0, _ := os.Stat(filepath.Join(out, first))
			for _, p := range group {
				fi, err := os.Stat(filepath.Join(out, p))
				if err != nil || !os.SameFile(fi0, fi) {
					t.Errorf("copy into a directory: %s is not %s (%v)", p, first, err)
				}
			}

			tarFile := filepath.Join(t.TempDir(), "out.tar")
			w, err = Create(tarFile)
			if err != nil {
				t.Fatal(err)
			}
			if err := Copy(img, w, nil); err != nil {
				t.Fatal(err)
			}
			w.Close()
			f, _ := os.Open(tarFile)
			defer f.Close()
			tr := tar.NewReader(f)
			n := 0
			for {
				h, err := tr.Next()
				if err != nil {
					break
				}
				if h.Typeflag == tar.TypeLink {
					n++
					if "/"+h.Linkname != first {
						t.Errorf("tar: %s links to %s, want %s", h.Name, h.Linkname, first)
					}
				}
			}
			if n != 2 {
				t.Errorf("tar: %d hard links, want 2", n)
			}

			// Links to a file in a dropped directory go with it, as
			// links to a dropped file do.
			out = filepath.Join(t.TempDir(), "out")
			if w, err = Create(out); err != nil {
				t.Fatal(err)
			}
			dropDir := path.Dir(first)
			err = Copy(img, w, func(e *Entry) (bool, io.Reader, error) { return e.Path == dropDir, nil, nil })
			if cerr := w.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatalf("copy without %s: %v", dropDir, err)
			}
			for _, p := range group {
				if _, err := os.Lstat(filepath.Join(out, p)); err == nil {
					t.Errorf("copy without %s holds %s", dropDir, p)
				}
			}
		})
	}
}
