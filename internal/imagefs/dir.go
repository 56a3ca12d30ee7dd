package imagefs

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// dirImage is a directory holding a root filesystem, read through the OS.
type dirImage struct {
	root string
}

func openDir(root string) (*dirImage, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	return &dirImage{root: abs}, nil
}

func (d *dirImage) Format() string     { return "dir" }
func (d *dirImage) RandomAccess() bool { return true }
func (d *dirImage) Close() error       { return nil }

// Walk visits the tree in lexical order. Symlinks are recorded, never
// followed. A file of several links is a hard link (Entry.Link) to the
// path of it met first.
func (d *dirImage) Walk(fn func(*Entry) error) error {
	type fileID struct{ dev, ino uint64 }
	firstName := map[fileID]string{}
	return filepath.WalkDir(d.root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == d.root {
			return nil
		}
		info, err := de.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		e := &Entry{Path: "/" + filepath.ToSlash(rel), Mode: modeBits(info.Mode()), ModTime: info.ModTime(), Info: info}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			e.UID, e.GID = st.Uid, st.Gid
			e.DevMajor, e.DevMinor = devMajor(uint64(st.Rdev)), devMinor(uint64(st.Rdev))
		}
		m := info.Mode()
		switch {
		case m.IsRegular():
			e.Type, e.Size = File, info.Size()
			full := p
			e.open = func() (io.ReadCloser, error) { return os.Open(full) }
			if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
				id := fileID{uint64(st.Dev), st.Ino}
				if first, ok := firstName[id]; ok {
					e.Link = first
				} else {
					firstName[id] = e.Path
				}
			}
		case m.IsDir():
			e.Type = Dir
		case m&fs.ModeSymlink != 0:
			e.Type = Symlink
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
		default:
			e.Type, e.Special = Other, m.Type()
		}
		if e.Type != Other {
			e.DevMajor, e.DevMinor = 0, 0
		}
		if err := fn(e); err != nil {
			return err
		}
		return nil
	})
}

// modeBits is the permission and set-id bits of a Go mode, as stat shows
// them.
func modeBits(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// devMajor and devMinor split a Linux dev_t (glibc's encoding).
func devMajor(dev uint64) uint32 {
	return uint32((dev>>8)&0xfff | (dev>>32)&^0xfff)
}

func devMinor(dev uint64) uint32 {
	return uint32(dev&0xff | (dev>>12)&^0xff)
}

// String names the image in messages.
func (d *dirImage) String() string { return fmt.Sprintf("directory %s", d.root) }
