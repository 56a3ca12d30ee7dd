package imagefs

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"strconv"

	"github.com/klauspost/compress/zstd"
)

var (
	gzipMagic  = []byte{0x1f, 0x8b}
	bzip2Magic = []byte("BZh")
	zstdMagic  = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// compressionOf names the compression a file starts with, or "".
func compressionOf(head []byte) string {
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return "gzip"
	case bytes.HasPrefix(head, zstdMagic):
		return "zstd"
	case len(head) >= 4 && bytes.HasPrefix(head, bzip2Magic) && head[3] >= '1' && head[3] <= '9':
		return "bzip2"
	}
	return ""
}

// isTarHeader reports whether head starts with a tar header: the ustar or
// GNU magic, or (for old V7 archives) a header whose checksum is right.
func isTarHeader(head []byte) bool {
	if len(head) < 512 {
		return false
	}
	if bytes.Equal(head[257:262], []byte("ustar")) {
		return true
	}
	field := bytes.TrimRight(bytes.TrimLeft(head[148:156], " \x00"), " \x00")
	want, err := strconv.ParseUint(string(field), 8, 32)
	if err != nil || len(field) == 0 {
		return false
	}
	var sum uint64
	for i, b := range head[:512] {
		if i >= 148 && i < 156 {
			b = ' '
		}
		sum += uint64(b)
	}
	// An all-zero block sums to 256 (the spaces) and is no header.
	return sum == want && sum != 8*' '
}

// tarImage is a tar archive, read as one stream each Walk.
type tarImage struct {
	f           *os.File
	name        string
	compression string
}

func openTar(f *os.File, name, compression string) (*tarImage, error) {
	t := &tarImage{f: f, name: name, compression: compression}
	// Reading the first header now turns "this is not a tar inside the
	// gzip" into an error at Open rather than at Walk.
	r, closeFn, err := t.stream()
	if err != nil {
		return nil, err
	}
	defer closeFn()
	head := make([]byte, 512)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, fmt.Errorf("%s: %s stream: %w", name, compression, err)
	}
	if !isTarHeader(head) {
		return nil, fmt.Errorf("%s: %w: %s-compressed, but the content is not a tar archive", name, ErrUnknownFormat, compression)
	}
	return t, nil
}

func (t *tarImage) Format() string {
	if t.compression == "" {
		return "tar"
	}
	return "tar+" + t.compression
}

func (t *tarImage) RandomAccess() bool { return false }
func (t *tarImage) Close() error       { return t.f.Close() }

// Decompressed streams are bounded: a zstd frame may not ask for a window
// above 128 MiB (zstd -19 uses 8 MiB; --long=27 128 MiB).
const zstdMaxWindow = 128 << 20

// stream opens the archive's (decompressed) byte stream from its start.
func (t *tarImage) stream() (io.Reader, func(), error) {
	sr := io.NewSectionReader(t.f, 0, math.MaxInt64)
	br := bufio.NewReaderSize(sr, 1<<20)
	switch t.compression {
	case "":
		return br, func() {}, nil
	case "gzip":
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: gzip: %w", t.name, err)
		}
		return zr, func() { zr.Close() }, nil
	case "bzip2":
		return bzip2.NewReader(br), func() {}, nil
	case "zstd":
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: zstd: %w", t.name, err)
		}
		return zr, zr.Close, nil
	}
	return nil, nil, fmt.Errorf("%s: unknown compression %q", t.name, t.compression)
}

// countingReader counts the bytes of the (decompressed) archive read so
// far, so errors can say where in it they happened.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Walk reads the archive from its start. An entry's content is readable
// only inside fn.
func (t *tarImage) Walk(fn func(*Entry) error) error {
	r, closeFn, err := t.stream()
	if err != nil {
		return err
	}
	defer closeFn()
	cr := &countingReader{r: r}
	tr := tar.NewReader(cr)
	sizes := map[string]int64{} // files seen, for the size of hard links to them
	for n := 0; ; n++ {
		at := cr.n
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: tar entry %d at byte %d of the archive%s: %w", t.name, n, at, t.uncompressedNote(), err)
		}
		e, err := tarEntry(hdr)
		if err != nil {
			return fmt.Errorf("%s: tar entry %d (%q) at byte %d%s: %w", t.name, n, cut(hdr.Name), at, t.uncompressedNote(), err)
		}
		if e == nil {
			continue
		}
		if e.Type == File {
			if e.Link != "" {
				e.Size = sizes[e.Link]
			} else {
				sizes[e.Path] = e.Size
				c := &tarContent{tr: tr}
				e.open = func() (io.ReadCloser, error) {
					if c.done || c.opened {
						return nil, fmt.Errorf("%s: %w", e.Path, ErrStreamPassed)
					}
					c.opened = true
					return c, nil
				}
				err = fn(e)
				c.done = true
				if err != nil {
					return err
				}
				continue
			}
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}

func (t *tarImage) uncompressedNote() string {
	if t.compression == "" {
		return ""
	}
	return " (decompressed)"
}

// tarContent reads the current entry while its callback runs.
type tarContent struct {
	tr           *tar.Reader
	opened, done bool
}

func (c *tarContent) Read(p []byte) (int, error) {
	if c.done {
		return 0, ErrStreamPassed
	}
	return c.tr.Read(p)
}

func (c *tarContent) Close() error { return nil }

// tarEntry converts a header; nil for the archive root ("./").
func tarEntry(hdr *tar.Header) (*Entry, error) {
	p := cleanTarPath(hdr.Name)
	if p == "/" {
		return nil, nil
	}
	if hdr.Uid < 0 || hdr.Uid > math.MaxUint32 || hdr.Gid < 0 || hdr.Gid > math.MaxUint32 {
		return nil, fmt.Errorf("owner %d:%d out of range", hdr.Uid, hdr.Gid)
	}
	if hdr.Size < 0 {
		return nil, fmt.Errorf("negative size %d", hdr.Size)
	}
	e := &Entry{Path: p, Mode: uint32(hdr.Mode) & 0o7777, UID: uint32(hdr.Uid), GID: uint32(hdr.Gid), ModTime: hdr.ModTime}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeCont:
		e.Type, e.Size = File, hdr.Size
	case tar.TypeLink:
		e.Type, e.Link = File, cleanTarPath(hdr.Linkname)
	case tar.TypeDir:
		e.Type = Dir
	case tar.TypeSymlink:
		if hdr.Linkname == "" {
			return nil, errors.New("symlink without a target")
		}
		e.Type, e.Target = Symlink, hdr.Linkname
	case tar.TypeChar:
		e.Type, e.Special = Other, fs.ModeDevice|fs.ModeCharDevice
		e.DevMajor, e.DevMinor = uint32(hdr.Devmajor), uint32(hdr.Devminor)
	case tar.TypeBlock:
		e.Type, e.Special = Other, fs.ModeDevice
		e.DevMajor, e.DevMinor = uint32(hdr.Devmajor), uint32(hdr.Devminor)
	case tar.TypeFifo:
		e.Type, e.Special = Other, fs.ModeNamedPipe
	default:
		// Vendor extensions (Solaris ACLs, GNU volume labels...) carry no
		// file of the tree.
		return nil, nil
	}
	return e, nil
}

// cleanTarPath makes an archive name absolute and clean: "./etc/" and
// "etc" are "/etc"; ".." cannot climb above the root.
func cleanTarPath(name string) string {
	return path.Clean("/" + name)
}

// cut shortens a name from the input for an error message.
func cut(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
