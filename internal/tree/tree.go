// Package tree reads file trees into manifests (the file-tree manifest of
// cli.md that drift is judged on): from any image internal/imagefs reads
// (a directory, tar, raw disk, qcow2), hashing regular files on every core
// where the format allows random access (all but tar, which is hashed as
// it streams by).
//
// For directories a stat cache (statcache.go) lets an unchanged tree be
// re-manifested without re-reading its files, with git's index rule for
// racily clean entries.
package tree

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vguard-dev/vguard/internal/imagefs"
	"github.com/vguard-dev/vguard/internal/manifest"
	"github.com/vguard-dev/vguard/internal/progress"
)

// Options tune a manifest run. The zero value hashes everything, uses the
// stat cache for directories in the default place, and shows no progress.
type Options struct {
	// NoCache turns the directory stat cache off: every file is hashed
	// and no cache file is read or written.
	NoCache bool
	// CacheDir is where stat cache files live; "" means
	// os.UserCacheDir()/vguard/statcache.
	CacheDir string
	// Progress, if not nil, is told the totals and each file hashed.
	Progress *progress.Bar
	// AllowBacking lets ManifestPath read a qcow2 image's backing files
	// (imagefs.AllowBacking); an image with one is refused otherwise.
	AllowBacking bool

	// granularity coarsens the timestamps the cache sees, so tests can
	// act out a filesystem with 1 s (or coarser) timestamps.
	granularity time.Duration
	// noSlack drops cacheSlack, so tests need not wait seconds between
	// writing files and seeing them reused.
	noSlack bool
}

// Stats say how a manifest was made.
type Stats struct {
	Format string
	Files  int
	// Hashed files were read; Reused ones took their hash from the stat
	// cache.
	Hashed, Reused int
	HashedBytes    int64
	// CacheFile is the stat cache used, if any.
	CacheFile string
}

// ManifestDir returns the manifest of the directory tree under root,
// without the stat cache.
func ManifestDir(root string) (*manifest.Manifest, error) {
	m, _, err := ManifestPath(root, Options{NoCache: true})
	return m, err
}

// ManifestPath opens the image at path (any format imagefs reads) and
// returns its manifest. For a directory, unless opts.NoCache, files whose
// stat matches the stat cache keep their cached hash and the cache is
// rewritten afterwards.
func ManifestPath(path string, opts Options) (*manifest.Manifest, Stats, error) {
	img, err := imagefs.Open(path, imagefs.AllowBacking(opts.AllowBacking))
	if err != nil {
		return nil, Stats{}, err
	}
	defer img.Close()
	var cache *statCache
	if img.Format() == "dir" && !opts.NoCache {
		cache = openStatCache(path, opts)
	}
	m, st, err := build(img, opts, cache)
	if err != nil {
		return nil, st, err
	}
	if cache != nil {
		st.CacheFile = cache.file
		// A cache that cannot be written only costs time next run.
		_ = cache.save()
	}
	return m, st, nil
}

// Manifest returns the manifest of an opened image.
func Manifest(img imagefs.Image, opts Options) (*manifest.Manifest, Stats, error) {
	return build(img, opts, nil)
}

// job is a file to hash after the walk.
type job struct {
	i int // index in entries
	e *imagefs.Entry
}

func build(img imagefs.Image, opts Options, cache *statCache) (*manifest.Manifest, Stats, error) {
	st := Stats{Format: img.Format()}
	bar := opts.Progress
	var (
		entries []manifest.Entry
		index   = map[string]int{} // path -> entries index, for archives that repeat a path
		jobs    []job
		links   = map[int]string{} // tar hard links: entry index -> target path
		total   int64
		buf     = make([]byte, 1<<20)
	)
	err := img.Walk(func(e *imagefs.Entry) error {
		me := manifest.Entry{Path: validUTF8(e.Path), Mode: manifest.Mode(e.Mode), UID: e.UID, GID: e.GID}
		switch e.Type {
		case imagefs.File:
			me.Type, me.Size = manifest.File, e.Size
		case imagefs.Dir:
			me.Type = manifest.Dir
		case imagefs.Symlink:
			me.Type, me.Target = manifest.Symlink, validUTF8(e.Target)
		default:
			me.Type = manifest.Other
		}
		i, seen := index[me.Path]
		if seen {
			entries[i] = me // the later copy in an archive wins, as on extraction
			delete(links, i)
		} else {
			i = len(entries)
			index[me.Path] = i
			entries = append(entries, me)
		}
		if e.Type != imagefs.File {
			return nil
		}
		st.Files++
		switch {
		case e.Link != "":
			links[i] = validUTF8(e.Link)
		case !img.RandomAccess():
			sum, _, err := hashEntry(e, buf, bar, true)
			if err != nil {
				return err
			}
			entries[i].SHA256 = sum
			st.Hashed++
			st.HashedBytes += e.Size
		case cache != nil && cache.lookup(e, &entries[i]):
			st.Reused++
			bar.Add(e.Size, 1)
		default:
			jobs = append(jobs, job{i, e})
			total += e.Size
		}
		return nil
	})
	if err != nil {
		return nil, st, err
	}
	if len(jobs) > 0 {
		bar.SetTotal(total, int64(len(jobs)))
		// A live directory may change under the walk: a file's content
		// is what was read. An image that disagrees with itself is
		// corrupt.
		if err := hashAll(entries, jobs, bar, img.Format() != "dir"); err != nil {
			return nil, st, err
		}
		st.Hashed += len(jobs)
		st.HashedBytes += total
		if cache != nil {
			for _, j := range jobs {
				cache.store(j.e, entries[j.i].SHA256)
			}
		}
	}
	for i, target := range links {
		t, ok := index[target]
		if !ok || entries[t].Type != manifest.File {
			return nil, st, fmt.Errorf("%s: hard link to %s, which the archive does not hold before it", entries[i].Path, target)
		}
		entries[i].SHA256, entries[i].Size = entries[t].SHA256, entries[t].Size
	}
	bar.Done()
	m, err := manifest.New(entries)
	return m, st, err
}

// hashAll hashes the jobs on every core (imagefs.ForEach: largest files
// first), each goroutine reading through a buffer of its own.
func hashAll(entries []manifest.Entry, jobs []job, bar *progress.Bar, strictSize bool) error {
	files := make([]*imagefs.Entry, len(jobs))
	for k, j := range jobs {
		files[k] = j.e
	}
	bufs := make([][]byte, imagefs.Workers())
	return imagefs.ForEach(files, func(w, k int) error {
		if bufs[w] == nil {
			bufs[w] = make([]byte, 1<<20)
		}
		sum, n, err := hashEntry(files[k], bufs[w], bar, strictSize)
		if err != nil {
			return err
		}
		i := jobs[k].i
		entries[i].SHA256, entries[i].Size = sum, n
		return nil
	})
}

// hashEntry reads a file's content through buf (a plain read loop: no
// io.Copy, which would pick a 32 KiB buffer for *os.File's WriteTo) and
// returns its hash and length. With strictSize, a length other than the
// entry's size is an error.
func hashEntry(e *imagefs.Entry, buf []byte, bar *progress.Bar, strictSize bool) (string, int64, error) {
	r, err := e.Open()
	if err != nil {
		return "", 0, err
	}
	defer r.Close()
	h := sha256.New()
	var n int64
	for {
		k, err := r.Read(buf)
		if k > 0 {
			h.Write(buf[:k])
			n += int64(k)
			bar.Add(int64(k), 0)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", n, fmt.Errorf("%s: %w", e.Path, err)
		}
	}
	if strictSize && n != e.Size {
		return "", n, fmt.Errorf("%s: read %d bytes, but its size is %d", e.Path, n, e.Size)
	}
	bar.Add(0, 1)
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// validUTF8 makes a name from the image fit the manifest format, which
// holds UTF-8: invalid bytes become U+FFFD.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
