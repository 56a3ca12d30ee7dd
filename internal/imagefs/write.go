package imagefs

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Writer writes a file tree out entry by entry: into a directory or a tar
// archive. Entries come in Walk's order (parents first); a file's parent
// directories are made when missing.
type Writer interface {
	// Add writes e. For a File, content yields exactly e.Size bytes (set
	// e.Size when replacing the content); it is ignored for other types.
	// A File with Link set becomes a hard link to that earlier path.
	Add(e *Entry, content io.Reader) error
	// Skipped lists the paths the writer could not represent (device
	// nodes, FIFOs and sockets in a directory: creating them needs mknod,
	// and a sanitized tree has no use for them).
	Skipped() []string
	// Close finishes the output: a directory's modes, owners and times
	// are set last (so a read-only directory can still be filled), a tar
	// archive is flushed.
	Close() error
}

// Create returns a Writer for out, chosen by its name (OutputFormat): a
// tar archive when it ends in .tar, .tar.gz or .tgz (gzip), .tar.zst or
// .tzst (zstd); a directory otherwise, created if missing, and it must then
// be empty. Owners are set only when running as root; otherwise files
// belong to the user running vguard.
func Create(out string) (Writer, error) {
	if f := OutputFormat(out); f != "dir" {
		return newTarWriter(out, f)
	}
	return newDirWriter(out)
}

// OutputFormat names the format Create writes for out, in the words of
// Image.Format: "tar", "tar+gzip", "tar+zstd" or "dir".
func OutputFormat(out string) string {
	lower := strings.ToLower(out)
	for _, s := range []struct{ suffix, format string }{
		{".tar", "tar"}, {".tar.gz", "tar+gzip"}, {".tgz", "tar+gzip"}, {".tar.zst", "tar+zstd"}, {".tzst", "tar+zstd"},
	} {
		if strings.HasSuffix(lower, s.suffix) {
			return s.format
		}
	}
	return "dir"
}

// Edit decides what Copy writes for one entry. It may change e's fields
// (mode, owner, Size with a new content). It returns drop to leave the
// entry (and, for a directory, everything under it) out, or content to
// write instead of the image's; nil content copies the image's. A content
// that is an io.Closer is closed by Copy once written (or on failure).
type Edit func(e *Entry) (drop bool, content io.Reader, err error)

// Copy writes every entry of img to w through edit (nil copies all as
// is). Content is read inside Walk's callback, so Copy works for every
// format, tar included. Hard links to a dropped file are dropped too.
func Copy(img Image, w Writer, edit Edit) error {
	var droppedDirs []string
	dropped := map[string]bool{}
	return img.Walk(func(e *Entry) error {
		for _, d := range droppedDirs {
			if strings.HasPrefix(e.Path, d+"/") {
				if e.Type == File {
					// A later hard link to it would name a path the
					// copy does not hold.
					dropped[e.Path] = true
				}
				return nil
			}
		}
		if e.Link != "" && dropped[e.Link] {
			dropped[e.Path] = true
			return nil
		}
		var content io.Reader
		if edit != nil {
			drop, c, err := edit(e)
			if err != nil {
				return err
			}
			if drop {
				if e.Type == Dir {
					droppedDirs = append(droppedDirs, e.Path)
				}
				dropped[e.Path] = true
				return nil
			}
			content = c
		}
		if e.Type == File && content == nil && e.Link == "" {
			r, err := e.Open()
			if err != nil {
				return err
			}
			defer r.Close()
			content = r
		}
		err := w.Add(e, content)
		// An edited content that is a Closer is closed here, whatever
		// happened: Add reads exactly e.Size bytes and may never see its
		// end, so the reader cannot be trusted to close itself.
		if c, ok := content.(io.Closer); ok && edit != nil {
			if cerr := c.Close(); err == nil {
				err = cerr
			}
		}
		return err
	})
}

// dirWriter writes into a directory through os.Root, so that a symlink in
// the tree (the image's "/etc -> /host/etc") can never lead a write out of
// the output directory.
type dirWriter struct {
	root    *os.Root
	dirs    []*Entry
	skipped []string
	asRoot  bool
}

func newDirWriter(out string) (*dirWriter, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	names, err := os.ReadDir(out)
	if err != nil {
		return nil, err
	}
	if len(names) > 0 {
		return nil, fmt.Errorf("%s: output directory is not empty", out)
	}
	r, err := os.OpenRoot(out)
	if err != nil {
		return nil, err
	}
	return &dirWriter{root: r, asRoot: os.Geteuid() == 0}, nil
}

func (w *dirWriter) Skipped() []string { return w.skipped }

func (w *dirWriter) Add(e *Entry, content io.Reader) error {
	rel := strings.TrimPrefix(path.Clean("/"+e.Path), "/")
	if rel == "" {
		return nil
	}
	if dir := path.Dir(rel); dir != "." {
		if err := w.root.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
	}
	var err error
	switch e.Type {
	case Dir:
		err = w.root.MkdirAll(rel, 0o700)
		w.dirs = append(w.dirs, e)
		return err
	case File:
		w.root.Remove(rel) // an archive may hold a path twice; the last wins
		if e.Link != "" {
			err = w.root.Link(strings.TrimPrefix(e.Link, "/"), rel)
			break
		}
		err = w.writeFile(rel, e, content)
	case Symlink:
		w.root.Remove(rel)
		err = w.root.Symlink(e.Target, rel)
		if err == nil && w.asRoot {
			err = w.root.Lchown(rel, int(e.UID), int(e.GID))
		}
	default:
		w.skipped = append(w.skipped, e.Path)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	return nil
}

func (w *dirWriter) writeFile(rel string, e *Entry, content io.Reader) error {
	f, err := w.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	n, err := io.CopyN(bw, content, e.Size)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("wrote %d of %d bytes: %w", n, e.Size, err)
	}
	if w.asRoot {
		if err := f.Chown(int(e.UID), int(e.GID)); err != nil {
			f.Close()
			return err
		}
	}
	// Chmod after Chown: chown clears the set-id bits.
	if err := f.Chmod(e.FileMode()); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return w.root.Chtimes(rel, e.ModTime, e.ModTime)
}

func (w *dirWriter) Close() error {
	// Deepest first, so setting a parent's time is not undone by a child.
	sort.SliceStable(w.dirs, func(i, j int) bool { return strings.Count(w.dirs[i].Path, "/") > strings.Count(w.dirs[j].Path, "/") })
	var errs []error
	for _, d := range w.dirs {
		rel := strings.TrimPrefix(path.Clean(d.Path), "/")
		if w.asRoot {
			if err := w.root.Chown(rel, int(d.UID), int(d.GID)); err != nil {
				errs = append(errs, err)
			}
		}
		if err := w.root.Chmod(rel, d.FileMode()); err != nil {
			errs = append(errs, err)
		}
		if err := w.root.Chtimes(rel, d.ModTime, d.ModTime); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, w.root.Close())
	return errors.Join(errs...)
}

// tarWriter writes a tar archive (PAX where needed), possibly compressed.
type tarWriter struct {
	f  *os.File
	bw *bufio.Writer
	zw io.WriteCloser // the compressor, if any
	tw *tar.Writer
}

func newTarWriter(out, format string) (*tarWriter, error) {
	f, err := os.Create(out)
	if err != nil {
		return nil, err
	}
	t := &tarWriter{f: f, bw: bufio.NewWriterSize(f, 1<<20)}
	var w io.Writer = t.bw
	switch format {
	case "tar+gzip":
		t.zw = gzip.NewWriter(t.bw)
		w = t.zw
	case "tar+zstd":
		zw, err := zstd.NewWriter(t.bw)
		if err != nil {
			f.Close()
			return nil, err
		}
		t.zw, w = zw, zw
	}
	t.tw = tar.NewWriter(w)
	return t, nil
}

func (t *tarWriter) Skipped() []string { return nil }

func (t *tarWriter) Add(e *Entry, content io.Reader) error {
	name := strings.TrimPrefix(path.Clean("/"+e.Path), "/")
	if name == "" {
		return nil
	}
	h := &tar.Header{
		Name:    name,
		Mode:    int64(e.Mode & 0o7777),
		Uid:     int(e.UID),
		Gid:     int(e.GID),
		ModTime: e.ModTime.Truncate(time.Second),
		Format:  tar.FormatPAX,
	}
	if e.ModTime.IsZero() {
		h.ModTime = time.Unix(0, 0)
	}
	switch e.Type {
	case Dir:
		h.Typeflag, h.Name = tar.TypeDir, name+"/"
	case File:
		if e.Link != "" {
			h.Typeflag, h.Linkname = tar.TypeLink, strings.TrimPrefix(e.Link, "/")
			break
		}
		h.Typeflag, h.Size = tar.TypeReg, e.Size
	case Symlink:
		h.Typeflag, h.Linkname = tar.TypeSymlink, e.Target
	default:
		switch {
		case e.Special&fs.ModeCharDevice != 0:
			h.Typeflag = tar.TypeChar
		case e.Special&fs.ModeDevice != 0:
			h.Typeflag = tar.TypeBlock
		case e.Special&fs.ModeNamedPipe != 0:
			h.Typeflag = tar.TypeFifo
		default:
			return nil // sockets have no tar form
		}
		h.Devmajor, h.Devminor = int64(e.DevMajor), int64(e.DevMinor)
	}
	if err := t.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	if h.Typeflag == tar.TypeReg {
		if n, err := io.CopyN(t.tw, content, e.Size); err != nil {
			return fmt.Errorf("%s: wrote %d of %d bytes: %w", e.Path, n, e.Size, err)
		}
	}
	return nil
}

func (t *tarWriter) Close() error {
	errs := []error{t.tw.Close()}
	if t.zw != nil {
		errs = append(errs, t.zw.Close())
	}
	errs = append(errs, t.bw.Flush(), t.f.Close())
	return errors.Join(errs...)
}
