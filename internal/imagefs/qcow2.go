package imagefs

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/lima-vm/go-qcow2reader/image"
	"github.com/lima-vm/go-qcow2reader/image/qcow2"
	"github.com/lima-vm/go-qcow2reader/image/raw"
	qcow2log "github.com/lima-vm/go-qcow2reader/log"
)

var qcow2Magic = []byte{'Q', 'F', 'I', 0xfb}

var registerDecompressors sync.Once

// go-qcow2reader decompresses a cluster from its start on every read and
// reads the decompressor once per call, so a read the decompressor
// answers short is retried from the cluster's start again. Decompressing
// the whole cluster into a buffer up front makes that once per read; the
// flate readers and buffers are pooled.
var (
	flatePool   = sync.Pool{New: func() any { return flate.NewReader(bytes.NewReader(nil)) }}
	clusterPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}
)

// maxCluster is the largest qcow2 cluster (cluster bits ≤ 21).
const maxCluster = 2 << 20

// inflateCluster reads a decompressed cluster whole. The compressed data
// is followed by padding up to a sector, which a decompressor may report
// as an error after the cluster's bytes: the bytes count, and a short
// cluster shows as a short read to the library.
func inflateCluster(r io.Reader) (io.ReadCloser, error) {
	bp := clusterPool.Get().(*[]byte)
	buf := (*bp)[:0]
	for len(buf) < maxCluster {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), maxCluster)])
		buf = buf[:len(buf)+n]
		if err != nil {
			if len(buf) == 0 && err != io.EOF {
				*bp = buf
				clusterPool.Put(bp)
				return nil, err
			}
			break
		}
	}
	*bp = buf
	return &cluster{Reader: bytes.NewReader(buf), buf: bp}, nil
}

type cluster struct {
	*bytes.Reader
	buf *[]byte
}

func (c *cluster) Close() error {
	clusterPool.Put(c.buf)
	return nil
}

// openQcow2 opens a qcow2 image through go-qcow2reader, after checking
// the headers of the image and of its backing chain (see checkQcow2Chain).
// An image with a backing file is refused unless allowBacking; then
// backing files are followed as qemu does, relative to the directory of
// the image naming them, but only within it.
func openQcow2(f *os.File, name string, fileSize int64, allowBacking bool) (Image, error) {
	vetted, err := checkQcow2Chain(f, name, fileSize, allowBacking)
	if err != nil {
		return nil, err
	}
	registerDecompressors.Do(func() {
		// The library's warnings (an unreadable header extension) would
		// go to the standard logger, through a progress bar; what matters
		// of them surfaces as read errors.
		qcow2log.SetWarnFunc(nil)
		qcow2.SetDecompressor(qcow2.CompressionTypeZlib, func(r io.Reader) (io.ReadCloser, error) {
			fr := flatePool.Get().(io.ReadCloser)
			defer flatePool.Put(fr)
			if err := fr.(flate.Resetter).Reset(r, nil); err != nil {
				return nil, err
			}
			return inflateCluster(fr)
		})
		qcow2.SetDecompressor(qcow2.CompressionTypeZstd, func(r io.Reader) (io.ReadCloser, error) {
			zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow))
			if err != nil {
				return nil, err
			}
			defer zr.Close()
			return inflateCluster(zr)
		})
	})
	img, err := openQcow2Lib(f, backingOpener(vetted))
	if err != nil {
		return nil, fmt.Errorf("%s: qcow2: %w", name, err)
	}
	if err := img.Readable(); err != nil {
		img.Close()
		return nil, fmt.Errorf("%s: qcow2: %w", name, err)
	}
	d, err := openDisk(img, img.Size(), name, "qcow2", img)
	if err != nil {
		img.Close()
		if err == errNoDiskLayout {
			return nil, fmt.Errorf("%s: the qcow2 disk holds no ext2/3/4 filesystem, GPT or MBR", name)
		}
		return nil, err
	}
	return d, nil
}

// openQcow2Lib turns a panic of the library on a hostile header into an
// error.
func openQcow2Lib(f *os.File, openBacking image.OpenWithType) (img interface {
	io.ReaderAt
	io.Closer
	Size() int64
	Readable() error
}, err error) {
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, fmt.Errorf("corrupt image: %v", r)
		}
	}()
	return qcow2.Open(f, openBacking)
}

// backingOpener opens the backing files the library asks for (it opens
// them by name itself): only files checkQcow2Chain vetted, compared by
// device and inode, so a name switched to another file after the check
// is refused; and only as qcow2 or raw, the formats the check read.
func backingOpener(vetted []os.FileInfo) image.OpenWithType {
	var open image.OpenWithType
	open = func(ra io.ReaderAt, t image.Type) (image.Image, error) {
		f, ok := ra.(*os.File)
		if !ok {
			return refusedImage{}, fmt.Errorf("backing file of type %T", ra)
		}
		fail := func(err error) (image.Image, error) {
			f.Close()
			// The library closes what it is given even on an error.
			return refusedImage{}, fmt.Errorf("backing file %s: %w", f.Name(), err)
		}
		fi, err := f.Stat()
		if err != nil {
			return fail(err)
		}
		if !slices.ContainsFunc(vetted, func(v os.FileInfo) bool { return os.SameFile(v, fi) }) {
			return fail(errors.New("not the file checked before (replaced in between?); refusing to read it"))
		}
		if t == "" {
			head := make([]byte, len(qcow2Magic))
			t = raw.Type
			if _, err := f.ReadAt(head, 0); err == nil && bytes.Equal(head, qcow2Magic) {
				t = qcow2.Type
			}
		}
		switch t {
		case qcow2.Type:
			img, err := qcow2.Open(f, open)
			if err != nil {
				if img == nil {
					return fail(err)
				}
				img.Close() // closes f
				return refusedImage{}, fmt.Errorf("backing file %s: %w", f.Name(), err)
			}
			return img, nil
		case raw.Type:
			return raw.Open(f)
		}
		return fail(fmt.Errorf("format %q is not read (qcow2 and raw are)", t))
	}
	return open
}

// refusedImage stands for a backing file that was not opened: the library
// calls Close on what it got back, even with an error.
type refusedImage struct{ image.Image }

func (refusedImage) Close() error { return nil }

// maxBackingChain bounds a chain of backing files; qemu has no fixed
// limit, but real chains are a few snapshots deep.
const maxBackingChain = 16

// checkQcow2Chain checks each header of the image's backing chain before
// the library trusts it: fields it would allocate by (an L1 table of 2^32
// entries is 32 GiB), a chain that loops (the library would recurse until
// the stack overflows), and the backing files themselves. A backing file
// is read as part of the image, so a crafted image naming
// /var/lib/libvirt/images/other-vm.img, ~/.ssh/id_rsa or /dev/sda would
// have vguard read that file as the image's own data (the qcow2 backing
// file disclosure of OpenStack OSSN-0093, CVE-2024-32498). So a backing
// file is refused unless allow, and even then must resolve, after
// symlinks, inside the directory of the image naming it, and be a regular
// file. It returns the backing files' FileInfos, for backingOpener.
func checkQcow2Chain(f *os.File, name string, size int64, allow bool) ([]os.FileInfo, error) {
	var seen []os.FileInfo
	cur, curName := f, name
	for depth := 0; ; depth++ {
		fi, err := cur.Stat()
		if err != nil {
			return nil, err
		}
		for _, s := range seen {
			if os.SameFile(s, fi) {
				return nil, fmt.Errorf("%s: the qcow2 backing chain loops back to %s", name, curName)
			}
		}
		seen = append(seen, fi)
		backing, err := checkQcow2Header(cur, curName, fi.Size())
		if depth > 0 {
			cur.Close()
		}
		if err != nil {
			return nil, err
		}
		if backing == "" {
			return seen[1:], nil
		}
		if !allow {
			return nil, fmt.Errorf("%s: qcow2 image with the backing file %q, which is not read: an image can name any file on the host as its backing file; %w", curName, backing, ErrBackingFile)
		}
		if depth+1 >= maxBackingChain {
			return nil, fmt.Errorf("%s: qcow2 backing chain deeper than %d", name, maxBackingChain)
		}
		next, nextName, err := openBacking(curName, backing)
		if err != nil {
			if depth > 0 {
				err = fmt.Errorf("%s: %w", name, err)
			}
			return nil, err
		}
		head := make([]byte, 4)
		if _, err := next.ReadAt(head, 0); err != nil || !bytes.Equal(head, qcow2Magic) {
			// A raw backing file: nothing more to follow.
			fi, err := next.Stat()
			next.Close()
			if err != nil {
				return nil, err
			}
			return append(seen[1:], fi), nil
		}
		cur, curName = next, nextName
	}
}

// openBacking opens the backing file named backing by the qcow2 image at
// img, resolved as the library and qemu do (relative to img's directory),
// if it lies inside that directory once symlinks are resolved and is a
// regular file. It returns the file and the absolute name the library
// will give it.
func openBacking(img, backing string) (*os.File, string, error) {
	dir, err := filepath.Abs(filepath.Dir(img))
	if err != nil {
		return nil, "", err
	}
	p := backing
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, "", fmt.Errorf("%s: its directory: %w", img, err)
	}
	resolved, err := filepath.EvalSymlinks(p)
	if err != nil {
		return nil, "", fmt.Errorf("%s: backing file %q: %w", img, backing, err)
	}
	if rel, err := filepath.Rel(realDir, resolved); err != nil || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
		return nil, "", fmt.Errorf("%s: backing file %q resolves to %s, outside the image's directory %s; refusing to read it (backing files are followed only within the directory of the image naming them)", img, backing, resolved, realDir)
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return nil, "", fmt.Errorf("%s: backing file %q: %w", img, backing, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, "", fmt.Errorf("%s: backing file %s is not a regular file (%s); refusing to read it", img, resolved, fi.Mode().Type())
	}
	f, err := os.Open(resolved)
	if err != nil {
		return nil, "", fmt.Errorf("%s: backing file: %w", img, err)
	}
	if ofi, err := f.Stat(); err != nil || !os.SameFile(fi, ofi) {
		f.Close()
		return nil, "", fmt.Errorf("%s: backing file %s changed while it was checked; refusing to read it", img, resolved)
	}
	return f, p, nil
}

// checkQcow2Header validates one qcow2 header and returns its backing
// file name ("" for none).
func checkQcow2Header(f *os.File, name string, fileSize int64) (string, error) {
	hdr := make([]byte, 72)
	if _, err := readFull(f, hdr, 0, fileSize); err != nil {
		return "", fmt.Errorf("%s: qcow2 header: %w", name, err)
	}
	be := binary.BigEndian
	version := be.Uint32(hdr[4:])
	backingOff, backingLen := be.Uint64(hdr[8:]), be.Uint32(hdr[16:])
	clusterBits := be.Uint32(hdr[20:])
	virtualSize := be.Uint64(hdr[24:])
	crypt := be.Uint32(hdr[32:])
	l1Size := uint64(be.Uint32(hdr[36:]))
	l1Off := be.Uint64(hdr[40:])
	switch {
	case version != 2 && version != 3:
		return "", fmt.Errorf("%s: qcow2 version %d (want 2 or 3)", name, version)
	case clusterBits < 9 || clusterBits > 21:
		return "", fmt.Errorf("%s: qcow2 header byte 20: cluster bits %d (want 9..21)", name, clusterBits)
	case crypt != 0:
		return "", fmt.Errorf("%s: encrypted qcow2 (method %d) cannot be read", name, crypt)
	case l1Size == 0 || l1Off == 0 || l1Off > uint64(fileSize) || l1Size*8 > uint64(fileSize)-l1Off:
		return "", fmt.Errorf("%s: qcow2 header byte 36: L1 table of %d entries at byte %d does not fit the %d-byte file (truncated or corrupt image)", name, l1Size, l1Off, fileSize)
	case virtualSize == 0 || virtualSize > 1<<56:
		return "", fmt.Errorf("%s: qcow2 header byte 24: virtual size %d", name, virtualSize)
	}
	perL1 := uint64(1) << (2*clusterBits - 3)
	if (virtualSize+perL1-1)/perL1 > l1Size {
		return "", fmt.Errorf("%s: qcow2 L1 table of %d entries covers less than the %d-byte virtual disk", name, l1Size, virtualSize)
	}
	if backingOff == 0 {
		return "", nil
	}
	if backingLen == 0 || backingLen > 1023 || backingOff > uint64(fileSize) || uint64(backingLen) > uint64(fileSize)-backingOff {
		return "", fmt.Errorf("%s: qcow2 header byte 8: backing file name of %d bytes at byte %d", name, backingLen, backingOff)
	}
	b := make([]byte, backingLen)
	if _, err := readFull(f, b, int64(backingOff), fileSize); err != nil {
		return "", fmt.Errorf("%s: qcow2 backing file name: %w", name, err)
	}
	return string(b), nil
}
