// Package imagefs reads the file tree of a VM image without root, mounts or
// a helper VM, in pure Go: a directory holding a root filesystem; a tar
// archive (plain, gzip, bzip2 or zstd, told apart by magic bytes); a raw disk
// image holding an ext2/3/4 filesystem directly or in MBR or GPT partitions;
// and a qcow2 image (compressed clusters included, through
// github.com/lima-vm/go-qcow2reader), whose virtual disk then goes through
// the same partition and ext4 path. A qcow2 backing file is followed only
// when the caller allows it (AllowBacking), and then only inside the
// directory of the image that names it.
//
// Every image is read the same way: Open detects the format, Walk visits
// each entry (path, type, mode, owner, size, link target, mtime) and an
// entry opens its content as a stream. How long an entry's content can be
// opened depends on the format, and Image.RandomAccess says which holds:
//
//   - dir, raw and qcow2 (RandomAccess true): Entry.Open works during Walk's
//     callback and afterwards, from any number of goroutines at once, until
//     the Image is closed. Callers collect the entries in Walk and hash or
//     scan them on every core afterwards.
//   - tar (RandomAccess false): the archive is one compressed stream, so
//     Entry.Open works only inside the callback that received the entry,
//     once; afterwards it returns ErrStreamPassed.
//
// ext4 is read by a reader of its own (ext4.go): the libraries evaluated
// return wrong bytes for files with holes (go-diskfs v1.9.4 fails with
// "negative offset" on a file with a hole; go-ext4-filesystem zero-pads
// nothing past a hole in block-mapped files, tests symlinks with
// Mode&0xA000 != 0, which every regular file passes, and reads through one
// shared Seek so no two files can be read at once). Only what a read needs
// is parsed: superblock, group descriptors (32 and 64 bit, meta_bg),
// inodes, extent trees (uninitialized extents and holes read as zeros),
// indirect block maps, inline data, fast and slow symlinks, and directories
// read linearly (htree index blocks look like empty entries and are
// skipped). Checksums are not verified and the journal is not replayed:
// the image is read as it is on disk.
//
// A disk with more than one ext2/3/4 filesystem has each under
// "/partN" (N the partition number: GPT entry index + 1, MBR 1-4 for
// primary and 5 on for logical partitions); a disk with one filesystem has
// its paths at the root. Partitions holding anything else (swap, FAT, LVM)
// are skipped.
//
// Images come from outside and may be truncated or hostile: every size,
// count and offset is checked against the image before it is used, errors
// name the byte offset, memory is bounded (an extent tree is walked with a
// depth limit and strictly increasing keys, directories that loop and
// directory blocks met twice are refused), and nothing panics. Reading is
// bounded too: a block belongs to one file, once (a file block map that
// repeats a block, or two files sharing one, is refused when Walk meets
// the file; see ext4claim.go), and an inode's later names are links to
// its first, so reading every file that is not a link reads at most the
// filesystem's size, plus holes, which read as zeros. A qcow2
// image's backing files are followed only when allowed (AllowBacking).
package imagefs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// Type is the kind of an entry.
type Type uint8

// Entry types. Other covers device nodes, FIFOs and sockets; Entry.Special
// says which.
const (
	File Type = iota + 1
	Dir
	Symlink
	Other
)

func (t Type) String() string {
	switch t {
	case File:
		return "file"
	case Dir:
		return "dir"
	case Symlink:
		return "symlink"
	case Other:
		return "other"
	}
	return fmt.Sprintf("type(%d)", t)
}

// Entry is one path of an image.
type Entry struct {
	// Path is absolute, with '/' separators and no trailing slash
	// ("/etc/passwd"). The image root itself is never visited. Names are
	// the bytes the image holds and need not be valid UTF-8.
	Path string
	Type Type
	// Mode is the permission bits plus setuid (04000), setgid (02000) and
	// sticky (01000), as st_mode & 07777.
	Mode uint32
	UID  uint32
	GID  uint32
	// Size is the content length of a file (0 for other types).
	Size int64
	// Target is a symlink's target.
	Target string
	// Link is set for a hard link: the path of the earlier entry (in
	// Walk's order) whose content this file shares. A tar archive says so
	// in the entry; in a directory, raw or qcow2 image, the second and
	// later paths of a file of several links (same inode; st_dev and
	// st_ino in a directory) are links to the first. An ext4 inode named
	// again is a link whatever its links count says, so its content is
	// read once. Its Size is that entry's. For tar, Open returns
	// ErrStreamPassed, since that content has gone by in the stream;
	// elsewhere it reads the shared content.
	// Writers make it a hard link again, so a copy keeps the tree's links.
	Link string
	// ModTime is the last modification time.
	ModTime time.Time
	// Special is, for Other entries, the kind: fs.ModeDevice (block
	// device), fs.ModeDevice|fs.ModeCharDevice, fs.ModeNamedPipe or
	// fs.ModeSocket; DevMajor and DevMinor number a device.
	Special  fs.FileMode
	DevMajor uint32
	DevMinor uint32
	// Info is set by directory images only: the os.Lstat result, whose Sys
	// carries inode, device and ctime for a stat cache.
	Info fs.FileInfo

	open func() (io.ReadCloser, error)
}

// Open returns the content of a file entry as a stream. See the package
// comment for when it may be called; it fails for entries that are not
// files.
func (e *Entry) Open() (io.ReadCloser, error) {
	if e.Type != File {
		return nil, fmt.Errorf("%s: not a regular file (%s)", e.Path, e.Type)
	}
	if e.open == nil {
		return nil, fmt.Errorf("%s: %w", e.Path, ErrStreamPassed)
	}
	return e.open()
}

// FileMode is the entry's mode as Go's io/fs spells it: type bits and
// permissions, handy for writing the entry out.
func (e *Entry) FileMode() fs.FileMode {
	m := fs.FileMode(e.Mode & 0o777)
	if e.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if e.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if e.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch e.Type {
	case Dir:
		m |= fs.ModeDir
	case Symlink:
		m |= fs.ModeSymlink
	case Other:
		m |= e.Special
	}
	return m
}

// ErrStreamPassed is returned by Entry.Open on a tar image after the
// callback that received the entry has returned (or for a hard link).
var ErrStreamPassed = errors.New("content is only readable while Walk's callback for this entry runs (tar is one stream)")

// ErrUnknownFormat is returned by Open for a file that is none of the
// formats read here.
var ErrUnknownFormat = errors.New("unknown image format")

// Image is an opened image.
type Image interface {
	// Format names the format: "dir", "tar", "tar+gzip", "tar+bzip2",
	// "tar+zstd", "raw" or "qcow2".
	Format() string
	// RandomAccess reports whether entries can be opened after Walk's
	// callback returned and concurrently, until Close.
	RandomAccess() bool
	// Walk calls fn once for each entry, parents before their children
	// (for tar, in archive order). The Entry is fn's to keep. Walk stops
	// at and returns the first error of fn or of the image. A tar image
	// can be walked only once.
	Walk(fn func(*Entry) error) error
	// Close releases the image; entries can no longer be opened.
	Close() error
}

// Option tunes Open.
type Option func(*openOptions)

type openOptions struct {
	allowBacking bool
}

// AllowBacking(true) lets Open follow the backing files of a qcow2 image,
// each of which must resolve (symlinks included) inside the directory of
// the image that names it. By default an image with a backing file is
// refused with ErrBackingFile: a backing file is read as the image's own
// data, and a hostile image can name any file the user can read
// (OpenStack OSSN-0093, CVE-2024-32498).
func AllowBacking(allow bool) Option {
	return func(o *openOptions) { o.allowBacking = allow }
}

// ErrBackingFile is returned (wrapped, with the file's name) by Open for a
// qcow2 image with a backing file, unless AllowBacking(true) is given.
var ErrBackingFile = errors.New("backing files are followed only with --allow-backing, and then only inside the image's directory")

// Open opens the image at path, detecting its format: a directory, or a
// file whose leading bytes say tar (possibly compressed), qcow2, or a raw
// disk with an ext2/3/4 filesystem, a GPT or an MBR.
func Open(path string, opts ...Option) (Image, error) {
	var o openOptions
	for _, opt := range opts {
		opt(&o)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return openDir(path)
	}
	if !fi.Mode().IsRegular() && fi.Mode()&fs.ModeDevice == 0 {
		return nil, fmt.Errorf("%s: not a directory, a regular file or a block device", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	img, err := openFile(f, path, o)
	if err != nil {
		f.Close()
		return nil, err
	}
	return img, nil
}

func openFile(f *os.File, path string, o openOptions) (Image, error) {
	head := make([]byte, 4096)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	head = head[:n]
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case bytes.HasPrefix(head, qcow2Magic):
		return openQcow2(f, path, size, o.allowBacking)
	case compressionOf(head) != "":
		return openTar(f, path, compressionOf(head))
	case isTarHeader(head):
		return openTar(f, path, "")
	}
	img, err := openDisk(f, size, path, "raw", f)
	if err != nil {
		if errors.Is(err, errNoDiskLayout) {
			return nil, fmt.Errorf("%s: %w: not a directory, tar (plain, gzip, bzip2, zstd), qcow2, or raw disk with ext2/3/4, GPT or MBR", path, ErrUnknownFormat)
		}
		return nil, err
	}
	return img, nil
}
