package imagefs

import (
	"container/list"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/vguard-dev/vguard/internal/fspath"
)

// diskImage is a virtual disk (a raw file, or qcow2's view) holding one or
// more ext2/3/4 filesystems.
type diskImage struct {
	format string
	name   string
	fss    []*ext4FS
	prefix []string // "" for a single filesystem, else "/partN"
	closer io.Closer
}

// openDisk finds the filesystems of a disk: ext2/3/4 on the whole disk,
// else in each GPT or MBR partition.
func openDisk(ra io.ReaderAt, size int64, name, format string, closer io.Closer) (*diskImage, error) {
	ra = newChunkCache(ra, size)
	d := &diskImage{format: format, name: name, closer: closer}
	// A GPT's first partition entry (bytes 1024-1151) holds a random
	// GUID where an ext4 superblock would keep its magic, so the GPT
	// signature is looked for first.
	if !hasGPT(ra) && isExt4(ra, 0) {
		fs, err := openExt4(ra, 0, size)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		d.fss, d.prefix = []*ext4FS{fs}, []string{""}
		return d, nil
	}
	parts, scheme, err := readPartitions(ra, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if scheme == "" {
		return nil, errNoDiskLayout
	}
	var nums []int
	var skipped []string
	for _, p := range parts {
		if !isExt4(ra, p.start) {
			skipped = append(skipped, fmt.Sprintf("%d (%s, at byte %d)", p.num, p.kind, p.start))
			continue
		}
		fs, err := openExt4(ra, p.start, p.size)
		if err != nil {
			return nil, fmt.Errorf("%s: partition %d: %w", name, p.num, err)
		}
		d.fss = append(d.fss, fs)
		nums = append(nums, p.num)
	}
	if len(d.fss) == 0 {
		if len(skipped) == 0 {
			return nil, fmt.Errorf("%s: the %s partition table lists no partition", name, strings.ToUpper(scheme))
		}
		return nil, fmt.Errorf("%s: no ext2/3/4 filesystem in any %s partition (partitions %s)", name, strings.ToUpper(scheme), strings.Join(skipped, ", "))
	}
	for _, n := range nums {
		if len(nums) == 1 {
			d.prefix = append(d.prefix, "")
		} else {
			d.prefix = append(d.prefix, fspath.Partition(n))
		}
	}
	return d, nil
}

func (d *diskImage) Format() string     { return d.format }
func (d *diskImage) RandomAccess() bool { return true }

func (d *diskImage) Close() error {
	if d.closer != nil {
		return d.closer.Close()
	}
	return nil
}

func (d *diskImage) Walk(fn func(*Entry) error) error {
	for i, fs := range d.fss {
		if err := fs.walk(d.prefix[i], fn); err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
	}
	return nil
}

// chunkCache keeps recently read 64 KiB chunks of a disk for small reads
// (superblock, descriptors, inodes, directory blocks, small files): one
// pread instead of many, and, for qcow2, one decompression of a cluster
// instead of one per 4 KiB block. Large reads bypass it. Safe for
// concurrent use.
type chunkCache struct {
	ra   io.ReaderAt
	size int64

	mu    sync.Mutex
	items map[int64]*list.Element
	lru   list.List
}

const (
	chunkSize   = 64 << 10
	chunkCached = 256 // 16 MiB
)

type chunk struct {
	off  int64
	data []byte
}

func newChunkCache(ra io.ReaderAt, size int64) *chunkCache {
	return &chunkCache{ra: ra, size: size, items: map[int64]*list.Element{}}
}

func (c *chunkCache) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at negative offset %d", off)
	}
	if len(p) >= chunkSize/2 || off/chunkSize != (off+int64(len(p))-1)/chunkSize {
		return readFull(c.ra, p, off, c.size)
	}
	base := off - off%chunkSize
	data, err := c.get(base)
	if err != nil {
		return 0, err
	}
	n := copy(p, data[min(int64(len(data)), off-base):])
	if n < len(p) {
		return n, io.ErrUnexpectedEOF
	}
	return n, nil
}

func (c *chunkCache) get(base int64) ([]byte, error) {
	c.mu.Lock()
	if el, ok := c.items[base]; ok {
		c.lru.MoveToFront(el)
		data := el.Value.(*chunk).data
		c.mu.Unlock()
		return data, nil
	}
	c.mu.Unlock()
	n := min(int64(chunkSize), c.size-base)
	if n <= 0 {
		return nil, io.ErrUnexpectedEOF
	}
	data := make([]byte, n)
	if _, err := readFull(c.ra, data, base, c.size); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[base]; !ok {
		c.items[base] = c.lru.PushFront(&chunk{off: base, data: data})
		if c.lru.Len() > chunkCached {
			old := c.lru.Remove(c.lru.Back()).(*chunk)
			delete(c.items, old.off)
		}
	}
	return data, nil
}

// readFull reads len(p) bytes at off or says why not; reading past the end
// of the disk is an error, never a short read taken for data. A panic in
// the reader below (a library parsing hostile qcow2 metadata) becomes an
// error.
func readFull(ra io.ReaderAt, p []byte, off, size int64) (n int, err error) {
	if off+int64(len(p)) > size {
		return 0, fmt.Errorf("read of %d bytes at byte %d goes past the end of the disk (%d bytes): truncated or corrupt image", len(p), off, size)
	}
	defer func() {
		if r := recover(); r != nil {
			n, err = 0, fmt.Errorf("reading %d bytes at byte %d: %v", len(p), off, r)
		}
	}()
	n, err = ra.ReadAt(p, off)
	if n == len(p) {
		return n, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return n, fmt.Errorf("reading %d bytes at byte %d: %w", len(p), off, err)
}
