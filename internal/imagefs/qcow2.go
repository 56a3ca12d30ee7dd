package imagefs

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/lima-vm/go-qcow2reader"
	"github.com/lima-vm/go-qcow2reader/image/qcow2"
)

var qcow2Magic = []byte{'Q', 'F', 'I', 0xfb}

var registerZstd sync.Once

// openQcow2 opens a qcow2 image through go-qcow2reader, after checking the
// header fields that the library would otherwise trust with allocations
// (an L1 table of 2^32 entries is 32 GiB). Backing files are followed as
// qemu does, relative to the image's directory.
func openQcow2(f *os.File, name string, fileSize int64) (Image, error) {
	hdr := make([]byte, 72)
	if _, err := readFull(f, hdr, 0, fileSize); err != nil {
		return nil, fmt.Errorf("%s: qcow2 header: %w", name, err)
	}
	be := binary.BigEndian
	version := be.Uint32(hdr[4:])
	clusterBits := be.Uint32(hdr[20:])
	virtualSize := be.Uint64(hdr[24:])
	crypt := be.Uint32(hdr[32:])
	l1Size := uint64(be.Uint32(hdr[36:]))
	l1Off := be.Uint64(hdr[40:])
	switch {
	case version != 2 && version != 3:
		return nil, fmt.Errorf("%s: qcow2 version %d (want 2 or 3)", name, version)
	case clusterBits < 9 || clusterBits > 21:
		return nil, fmt.Errorf("%s: qcow2 header byte 20: cluster bits %d (want 9..21)", name, clusterBits)
	case crypt != 0:
		return nil, fmt.Errorf("%s: encrypted qcow2 (method %d) cannot be read", name, crypt)
	case l1Size == 0 || l1Off == 0 || l1Off > uint64(fileSize) || l1Size*8 > uint64(fileSize)-l1Off:
		return nil, fmt.Errorf("%s: qcow2 header byte 36: L1 table of %d entries at byte %d does not fit the %d-byte file (truncated or corrupt image)", name, l1Size, l1Off, fileSize)
	case virtualSize == 0 || virtualSize > 1<<56:
		return nil, fmt.Errorf("%s: qcow2 header byte 24: virtual size %d", name, virtualSize)
	}
	perL1 := uint64(1) << (2*clusterBits - 3)
	if (virtualSize+perL1-1)/perL1 > l1Size {
		return nil, fmt.Errorf("%s: qcow2 L1 table of %d entries covers less than the %d-byte virtual disk", name, l1Size, virtualSize)
	}
	registerZstd.Do(func() {
		qcow2.SetDecompressor(qcow2.CompressionTypeZstd, func(r io.Reader) (io.ReadCloser, error) {
			zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow))
			if err != nil {
				return nil, err
			}
			return zr.IOReadCloser(), nil
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
