package hygiene

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/vguard-dev/vguard/internal/imagefs"
)

// sink receives the sanitized tree, parents before children.
type sink interface {
	dir(e *imagefs.Entry) error
	// file writes a regular file of the given size from r.
	file(e *imagefs.Entry, size int64, r io.Reader) error
	symlink(e *imagefs.Entry) error
	// hardlink makes e another name of the file written earlier at target.
	hardlink(e *imagefs.Entry, target string) error
	// special writes a device, pipe or socket; ok is false when the sink
	// cannot hold one.
	special(e *imagefs.Entry) (ok bool, err error)
	close() error
}

// openSink makes the sink for out: a tar archive when out ends in .tar,
// .tar.gz, .tgz or .tar.zst, a directory otherwise (which must not exist,
// or be empty, so that nothing of an earlier run is mixed in).
func openSink(out string) (sink, string, error) {
	switch {
	case strings.HasSuffix(out, ".tar"):
		return newTarSink(out, "")
	case strings.HasSuffix(out, ".tar.gz"), strings.HasSuffix(out, ".tgz"):
		return newTarSink(out, "gzip")
	case strings.HasSuffix(out, ".tar.zst"), strings.HasSuffix(out, ".tar.zstd"):
		return newTarSink(out, "zstd")
	}
	return newDirSink(out)
}

// dirSink writes a directory tree through an os.Root, so that no path of
// the image, and no symlink it plants, can make a write land outside OUT.
type dirSink struct {
	root  *os.Root
	owner bool // set owners: only root may
	// Directory times are set last: writing their children changes them.
	dirTimes []dirTime
}

type dirTime struct {
	name string
	mode fs.FileMode
	t    time.Time
}

func newDirSink(out string) (sink, string, error) {
	if err := os.Mkdir(out, 0o755); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return nil, "", err
		}
		entries, err := os.ReadDir(out)
		if err != nil {
			return nil, "", err
		}
		if len(entries) > 0 {
			return nil, "", fmt.Errorf("%s: the output directory exists and is not empty", out)
		}
	}
	root, err := os.OpenRoot(out)
	if err != nil {
		return nil, "", err
	}
	return &dirSink{root: root, owner: os.Geteuid() == 0}, "dir", nil
}

// rel turns an image path into a name within the root.
func rel(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

func (d *dirSink) dir(e *imagefs.Entry) error {
	name := rel(e.Path)
	if name == "" {
		return nil
	}
	if err := d.root.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	// A directory's mode and times are set last: a read-only directory
	// could not take its children, and writing them changes its times.
	d.dirTimes = append(d.dirTimes, dirTime{name, modeBits(e), e.ModTime})
	if d.owner {
		return d.root.Lchown(name, int(e.UID), int(e.GID))
	}
	return nil
}

func modeBits(e *imagefs.Entry) fs.FileMode {
	return e.FileMode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

// finish sets a file's owner, mode and times.
func (d *dirSink) finish(name string, e *imagefs.Entry) error {
	if d.owner {
		if err := d.root.Lchown(name, int(e.UID), int(e.GID)); err != nil {
			return err
		}
	}
	// After chown, which clears setuid and setgid.
	if err := d.root.Chmod(name, modeBits(e)); err != nil {
		return err
	}
	if !e.ModTime.IsZero() {
		return d.root.Chtimes(name, e.ModTime, e.ModTime)
	}
	return nil
}

func (d *dirSink) file(e *imagefs.Entry, size int64, r io.Reader) error {
	name := rel(e.Path)
	f, err := d.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%s: wrote %d bytes, expected %d", e.Path, n, size)
	}
	return d.finish(name, e)
}

func (d *dirSink) symlink(e *imagefs.Entry) error {
	name := rel(e.Path)
	if err := d.root.Symlink(e.Target, name); err != nil {
		return err
	}
	if d.owner {
		return d.root.Lchown(name, int(e.UID), int(e.GID))
	}
	return nil
}

func (d *dirSink) hardlink(e *imagefs.Entry, target string) error {
	return d.root.Link(rel(target), rel(e.Path))
}

func (d *dirSink) special(*imagefs.Entry) (bool, error) { return false, nil }

func (d *dirSink) close() error {
	var errs []error
	for _, dt := range slices.Backward(d.dirTimes) {
		errs = append(errs, d.root.Chmod(dt.name, dt.mode))
		if !dt.t.IsZero() {
			errs = append(errs, d.root.Chtimes(dt.name, dt.t, dt.t))
		}
	}
	errs = append(errs, d.root.Close())
	return errors.Join(errs...)
}

// tarSink writes a tar archive (PAX, so that long names, large IDs and
// sub-second times survive), optionally compressed, to a temporary file
// renamed into place when complete.
type tarSink struct {
	out, tmp string
	f        *os.File
	z        io.WriteCloser // the compressor, or nil
	tw       *tar.Writer
}

func newTarSink(out, compress string) (sink, string, error) {
	f, err := os.CreateTemp(path.Dir(out), ".vguard-sanitize-*")
	if err != nil {
		return nil, "", err
	}
	t := &tarSink{out: out, tmp: f.Name(), f: f}
	var w io.Writer = f
	format := "tar"
	switch compress {
	case "gzip":
		t.z = gzip.NewWriter(f)
		w, format = t.z, "tar+gzip"
	case "zstd":
		z, err := zstd.NewWriter(f)
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, "", err
		}
		t.z = z
		w, format = z, "tar+zstd"
	}
	t.tw = tar.NewWriter(w)
	return t, format, nil
}

func (t *tarSink) header(e *imagefs.Entry, typ byte) *tar.Header {
	name := rel(e.Path)
	if typ == tar.TypeDir {
		name += "/"
	}
	return &tar.Header{
		Typeflag: typ, Name: name, Mode: int64(e.Mode & 0o7777),
		Uid: int(e.UID), Gid: int(e.GID), ModTime: e.ModTime, Format: tar.FormatPAX,
	}
}

func (t *tarSink) dir(e *imagefs.Entry) error {
	if rel(e.Path) == "" {
		return nil
	}
	return t.tw.WriteHeader(t.header(e, tar.TypeDir))
}

func (t *tarSink) file(e *imagefs.Entry, size int64, r io.Reader) error {
	h := t.header(e, tar.TypeReg)
	h.Size = size
	if err := t.tw.WriteHeader(h); err != nil {
		return err
	}
	_, err := io.Copy(t.tw, r) // tar.Writer refuses more or fewer bytes than Size
	return err
}

func (t *tarSink) symlink(e *imagefs.Entry) error {
	h := t.header(e, tar.TypeSymlink)
	h.Linkname = e.Target
	return t.tw.WriteHeader(h)
}

func (t *tarSink) hardlink(e *imagefs.Entry, target string) error {
	h := t.header(e, tar.TypeLink)
	h.Linkname = rel(target)
	return t.tw.WriteHeader(h)
}

func (t *tarSink) special(e *imagefs.Entry) (bool, error) {
	var typ byte
	switch {
	case e.Special&fs.ModeCharDevice != 0:
		typ = tar.TypeChar
	case e.Special&fs.ModeDevice != 0:
		typ = tar.TypeBlock
	case e.Special&fs.ModeNamedPipe != 0:
		typ = tar.TypeFifo
	default:
		return false, nil // sockets have no tar form
	}
	h := t.header(e, typ)
	h.Devmajor, h.Devminor = int64(e.DevMajor), int64(e.DevMinor)
	return true, t.tw.WriteHeader(h)
}

func (t *tarSink) close() error {
	err := t.tw.Close()
	if t.z != nil {
		err = errors.Join(err, t.z.Close())
	}
	err = errors.Join(err, t.f.Sync(), t.f.Close())
	if err == nil {
		err = os.Rename(t.tmp, t.out)
	}
	if err != nil {
		os.Remove(t.tmp)
	}
	return err
}

// abort discards a sink after a failure.
func abort(s sink) {
	if t, ok := s.(*tarSink); ok {
		t.f.Close()
		os.Remove(t.tmp)
		return
	}
	s.close()
}
