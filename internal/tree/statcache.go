package tree

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vguard-dev/vguard/internal/imagefs"
	"github.com/vguard-dev/vguard/internal/manifest"
)

// The stat cache of a directory remembers, for each regular file, its stat
// (size, mtime and ctime in ns, inode, device, mode) and SHA-256. A file
// whose stat is unchanged keeps its hash without being read, as git's
// index does.
//
// Racily clean entries: a file written in the same timestamp tick as it
// was hashed can change again without its stat changing (ext4 timestamps
// move in kernel ticks of a few ms; some filesystems keep seconds). Git
// re-checks entries whose mtime is not older than the index file; here the
// cache records the time its run started, before any file was read, and an
// entry whose mtime or ctime is not at least cacheSlack older than that is
// re-hashed. Taking the run's start rather than the cache file's own
// mtime closes the window between reading a file and writing the cache;
// the slack covers timestamps truncated to whole seconds (2 s for FAT).
//
// The file is os.UserCacheDir()/vguard/statcache/<first 16 bytes of
// SHA-256 of the directory's absolute path, hex>: a small binary format
// (encode/decode below; gob took a quarter of a cached run). A missing,
// unreadable or foreign cache is ignored and rebuilt; an unchanged one is
// not rewritten.

const (
	statCacheVersion = 1
	cacheSlack       = 2 * time.Second
)

type statKey struct {
	Size, Mtime, Ctime int64
	Ino, Dev           uint64
	Mode               uint32
}

type statRecord struct {
	Key statKey
	Sum [32]byte
}

type statCacheFile struct {
	Version int
	Root    string
	Started int64 // Unix ns, when the run that wrote the cache began
	Files   map[string]statRecord
}

type statCache struct {
	file        string
	granularity time.Duration
	threshold   int64         // entries changed at or after this (ns) are racy
	old         statCacheFile // as loaded
	next        statCacheFile // being built for the next run
	changed     bool          // next differs from old beyond Started
}

// StatCachePath is where the stat cache of directory root lives by
// default.
func StatCachePath(root string) (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return statCacheFileIn(filepath.Join(dir, "vguard", "statcache"), root), nil
}

func statCacheFileIn(dir, root string) string {
	abs, err := filepath.Abs(root)
	if err != nil {
		abs = root
	}
	h := sha256.Sum256([]byte(abs))
	return filepath.Join(dir, hex.EncodeToString(h[:16]))
}

func openStatCache(root string, opts Options) *statCache {
	abs, _ := filepath.Abs(root)
	c := &statCache{granularity: opts.granularity}
	if opts.CacheDir != "" {
		c.file = statCacheFileIn(opts.CacheDir, root)
	} else if p, err := StatCachePath(root); err == nil {
		c.file = p
	} else {
		return nil
	}
	c.next = statCacheFile{Version: statCacheVersion, Root: abs, Started: c.coarse(time.Now().UnixNano()), Files: map[string]statRecord{}}
	if f, err := os.Open(c.file); err == nil {
		old, err := decodeStatCache(bufio.NewReaderSize(f, 1<<16))
		if err == nil && old.Version == statCacheVersion && old.Root == abs {
			c.old = old
			c.threshold = old.Started - int64(cacheSlack)
			if opts.noSlack {
				c.threshold = old.Started
			}
		}
		f.Close()
	}
	return c
}

func (c *statCache) coarse(ns int64) int64 {
	if c.granularity <= 0 {
		return ns
	}
	return ns - ns%int64(c.granularity)
}

func (c *statCache) key(e *imagefs.Entry) (statKey, bool) {
	if e.Info == nil {
		return statKey{}, false
	}
	st, ok := e.Info.Sys().(*syscall.Stat_t)
	if !ok {
		return statKey{}, false
	}
	return statKey{
		Size:  st.Size,
		Mtime: c.coarse(st.Mtim.Nano()),
		Ctime: c.coarse(st.Ctim.Nano()),
		Ino:   st.Ino,
		Dev:   uint64(st.Dev),
		Mode:  st.Mode,
	}, true
}

// lookup fills in me's hash from the cache when the file's stat matches
// and the entry is not racily clean, and carries the record over to the
// next cache.
func (c *statCache) lookup(e *imagefs.Entry, me *manifest.Entry) bool {
	k, ok := c.key(e)
	if !ok || c.old.Files == nil {
		return false
	}
	rec, ok := c.old.Files[e.Path]
	if !ok || rec.Key != k || max(k.Mtime, k.Ctime) >= c.threshold {
		return false
	}
	me.SHA256 = hex.EncodeToString(rec.Sum[:])
	c.next.Files[e.Path] = rec
	return true
}

// store records a freshly hashed file for the next run.
func (c *statCache) store(e *imagefs.Entry, sum string) {
	k, ok := c.key(e)
	if !ok {
		return
	}
	var rec statRecord
	rec.Key = k
	if b, err := hex.DecodeString(sum); err == nil && len(b) == 32 {
		copy(rec.Sum[:], b)
		c.next.Files[e.Path] = rec
		c.changed = true
	}
}

// save writes the cache atomically (a temporary file renamed over it),
// unless every file was reused from it and none went away: then the old
// file, whose earlier start time keeps the racy rule as strict, stays.
func (c *statCache) save() error {
	if !c.changed && len(c.next.Files) == len(c.old.Files) && c.old.Files != nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(c.file), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.file), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<16)
	encodeStatCache(w, &c.next)
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), c.file)
}

const statCacheMagic = "vguard-statcache\n"

// encodeStatCache writes: magic, version, root, start time, count, then
// per file its path, stat key and hash; integers are little-endian
// uvarints (int64s as their two's complement bits).
func encodeStatCache(w *bufio.Writer, f *statCacheFile) {
	var tmp [binary.MaxVarintLen64]byte
	u := func(v uint64) { w.Write(tmp[:binary.PutUvarint(tmp[:], v)]) }
	str := func(s string) { u(uint64(len(s))); w.WriteString(s) }
	w.WriteString(statCacheMagic)
	u(uint64(f.Version))
	str(f.Root)
	u(uint64(f.Started))
	u(uint64(len(f.Files)))
	for p, r := range f.Files {
		str(p)
		k := r.Key
		for _, v := range []uint64{uint64(k.Size), uint64(k.Mtime), uint64(k.Ctime), k.Ino, k.Dev, uint64(k.Mode)} {
			u(v)
		}
		w.Write(r.Sum[:])
	}
}

func decodeStatCache(r *bufio.Reader) (statCacheFile, error) {
	var f statCacheFile
	magic := make([]byte, len(statCacheMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != statCacheMagic {
		return f, errors.New("not a stat cache")
	}
	var err error
	u := func() uint64 {
		if err != nil {
			return 0
		}
		var v uint64
		v, err = binary.ReadUvarint(r)
		return v
	}
	str := func() string {
		n := u()
		if err != nil || n > 1<<16 {
			err = errors.New("corrupt stat cache")
			return ""
		}
		b := make([]byte, n)
		_, err = io.ReadFull(r, b)
		return string(b)
	}
	f.Version = int(u())
	f.Root = str()
	f.Started = int64(u())
	n := u()
	if err != nil || n > 1<<26 {
		return f, errors.New("corrupt stat cache")
	}
	f.Files = make(map[string]statRecord, n)
	for range n {
		p := str()
		var rec statRecord
		rec.Key = statKey{Size: int64(u()), Mtime: int64(u()), Ctime: int64(u()), Ino: u(), Dev: u(), Mode: uint32(u())}
		if err == nil {
			_, err = io.ReadFull(r, rec.Sum[:])
		}
		if err != nil {
			return f, err
		}
		f.Files[p] = rec
	}
	return f, nil
}
