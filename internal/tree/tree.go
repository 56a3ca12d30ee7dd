// Package tree reads file trees into manifests (the file-tree manifest of
// cli.md that drift is judged on). It reads directories today; disk images
// (tar, raw ext4, qcow2) come with the image readers.
package tree

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"

	"github.com/vguard-dev/vguard/internal/manifest"
)

// ManifestDir walks the directory root and returns the manifest of the tree
// under it: every entry but root itself, with paths from root ("/etc/passwd"),
// regular files hashed on all cores. Symlinks are recorded, not followed.
func ManifestDir(root string) (*manifest.Manifest, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s: not a directory", root)
	}
	var entries []manifest.Entry
	var files []int // indexes of regular files, hashed afterwards
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		e := manifest.Entry{Path: "/" + filepath.ToSlash(rel), Mode: unixMode(info.Mode())}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			e.UID, e.GID = st.Uid, st.Gid
		}
		switch {
		case info.Mode().IsRegular():
			e.Type, e.Size = manifest.File, info.Size()
			files = append(files, len(entries))
		case info.IsDir():
			e.Type = manifest.Dir
		case info.Mode()&fs.ModeSymlink != 0:
			e.Type = manifest.Symlink
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
		default:
			e.Type = manifest.Other
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := hashAll(root, entries, files); err != nil {
		return nil, err
	}
	return manifest.New(entries)
}

// unixMode is the permission and set-id bits of a mode, as stat shows them.
func unixMode(m fs.FileMode) manifest.Mode {
	u := manifest.Mode(m.Perm())
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

// hashAll fills in the SHA-256 of the regular files, on every core.
func hashAll(root string, entries []manifest.Entry, files []int) error {
	work := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			buf := make([]byte, 1<<20)
			for i := range work {
				sum, err := hashFile(filepath.Join(root, filepath.FromSlash(entries[i].Path)), buf)
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				entries[i].SHA256 = sum
			}
		})
	}
	for _, i := range files {
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func hashFile(path string, buf []byte) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, buf); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
