package imagefs

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/lima-vm/go-qcow2reader"
	"github.com/lima-vm/go-qcow2reader/image/qcow2"
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
// Backing files are followed as qemu does, relative to the image's
// directory.
func openQcow2(f *os.File, name string, fileSize int64) (Image, error) {
	if err := checkQcow2Chain(f, name, fileSize); err != nil {
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
	img, err := openQcow2Lib(f)
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
func openQcow2Lib(f *os.File) (img interface {
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
	return qcow2reader.OpenWithType(f, qcow2.Type)
}

// maxBackingChain bounds a chain of backing files; qemu has no fixed
// limit, but real chains are a few snapshots deep.
const maxBackingChain = 16

// checkQcow2Chain checks each header of the image's backing chain before
// the library trusts it: fields it would allocate by (an L1 table of 2^32
// entries is 32 GiB), a chain that loops (the library would recurse until
// the stack overflows), and backing files that are not regular files. A
// crafted image naming /dev/sda as its backing file would otherwise have
// vguard read the host's own disk as the image's.
func checkQcow2Chain(f *os.File, name string, size int64) error {
	var seen []os.FileInfo
	cur, curName := f, name
	for depth := 0; ; depth++ {
		fi, err := cur.Stat()
		if err != nil {
			return err
		}
		for _, s := range seen {
			if os.SameFile(s, fi) {
				return fmt.Errorf("%s: the qcow2 backing chain loops back to %s", name, curName)
			}
		}
		seen = append(seen, fi)
		backing, err := checkQcow2Header(cur, curName, fi.Size())
		if depth > 0 {
			cur.Close()
		}
		if err != nil || backing == "" {
			return err
		}
		if depth+1 >= maxBackingChain {
			return fmt.Errorf("%s: qcow2 backing chain deeper than %d", name, maxBackingChain)
		}
		if !filepath.IsAbs(backing) {
			backing = filepath.Join(filepath.Dir(curName), backing)
		}
		bfi, err := os.Stat(backing)
		if err != nil {
			return fmt.Errorf("%s: backing file of %s: %w", name, curName, err)
		}
		if !bfi.Mode().IsRegular() {
			return fmt.Errorf("%s: backing file %s of %s is not a regular file (%s); refusing to read it", name, backing, curName, bfi.Mode().Type())
		}
		next, err := os.Open(backing)
		if err != nil {
			return fmt.Errorf("%s: backing file: %w", name, err)
		}
		head := make([]byte, 4)
		if _, err := next.ReadAt(head, 0); err != nil || !bytes.Equal(head, qcow2Magic) {
			next.Close()
			return nil // a raw backing file: nothing more to follow
		}
		cur, curName = next, backing
	}
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
