package imagefs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/vguard-dev/vguard/internal/testdeps"
)

// want is what the source tree says of one path.
type want struct {
	typ      Type
	mode     uint32
	uid, gid uint32
	size     int64
	sum      string
	target   string
	special  fs.FileMode
}

// readSource reads a tree with os.Lstat, the reference images are
// compared with.
func readSource(t testing.TB, root string) map[string]want {
	t.Helper()
	out := map[string]want{}
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		w := want{mode: modeBits(fi.Mode())}
		st := fi.Sys().(*syscall.Stat_t)
		w.uid, w.gid = st.Uid, st.Gid
		switch m := fi.Mode(); {
		case m.IsRegular():
			w.typ, w.size = File, fi.Size()
			files = append(files, "/"+rel)
		case m.IsDir():
			w.typ = Dir
		case m&fs.ModeSymlink != 0:
			w.typ = Symlink
			w.target, err = os.Readlink(p)
		default:
			w.typ, w.special = Other, m.Type()
		}
		out["/"+rel] = w
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	work := make(chan string)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for p := range work {
				f, err := os.Open(filepath.Join(root, p))
				if err != nil {
					t.Error(err)
					continue
				}
				h := sha256.New()
				io.Copy(h, f)
				f.Close()
				mu.Lock()
				w := out[p]
				w.sum = hex.EncodeToString(h.Sum(nil))
				out[p] = w
				mu.Unlock()
			}
		})
	}
	for _, p := range files {
		work <- p
	}
	close(work)
	wg.Wait()
	return out
}

// readImage reads every entry of an image, hashing files the way the
// format allows: inside Walk for tar, on every core afterwards otherwise.
func readImage(t testing.TB, img Image) map[string]want {
	t.Helper()
	out := map[string]want{}
	var entries []*Entry
	hash := func(e *Entry) (string, error) {
		r, err := e.Open()
		if err != nil {
			return "", err
		}
		defer r.Close()
		h := sha256.New()
		n, err := io.Copy(h, r)
		if err != nil {
			return "", fmt.Errorf("%s: %w", e.Path, err)
		}
		if n != e.Size {
			return "", fmt.Errorf("%s: read %d bytes, size says %d", e.Path, n, e.Size)
		}
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	sums := map[string]string{}
	err := img.Walk(func(e *Entry) error {
		if _, dup := out[e.Path]; dup {
			return fmt.Errorf("%s visited twice", e.Path)
		}
		out[e.Path] = want{typ: e.Type, mode: e.Mode, uid: e.UID, gid: e.GID, size: e.Size, target: e.Target, special: e.Special}
		if e.Type == File {
			if e.Link != "" {
				sums[e.Path] = "link:" + e.Link
			} else if !img.RandomAccess() {
				s, err := hash(e)
				if err != nil {
					return err
				}
				sums[e.Path] = s
			} else {
				entries = append(entries, e)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	var mu sync.Mutex
	work := make(chan *Entry)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for e := range work {
				s, err := hash(e)
				if err != nil {
					t.Error(err)
					continue
				}
				mu.Lock()
				sums[e.Path] = s
				mu.Unlock()
			}
		})
	}
	for _, e := range entries {
		work <- e
	}
	close(work)
	wg.Wait()
	for p, s := range sums {
		if l, ok := strings.CutPrefix(s, "link:"); ok {
			s = sums[l]
		}
		w := out[p]
		w.sum = s
		out[p] = w
	}
	return out
}

// compare checks an image against its source, path by path: type, mode,
// owner, size, SHA-256, symlink target. prefix is where the source's root
// sits in the image ("" or "/part2"). lost+found, which mkfs adds, is
// allowed extra.
func compare(t *testing.T, got, src map[string]want, prefix string) {
	t.Helper()
	bad := 0
	report := func(format string, args ...any) {
		t.Helper()
		if bad++; bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	for p, w := range src {
		g, ok := got[prefix+p]
		if !ok {
			report("%s: missing from the image", prefix+p)
			continue
		}
		if g != w {
			report("%s: image has %+v, source %+v", prefix+p, g, w)
		}
	}
	for p := range got {
		rel, ok := strings.CutPrefix(p, prefix)
		if !ok || rel == "" {
			continue
		}
		if _, ok := src[rel]; !ok && !strings.HasPrefix(rel, "/lost+found") {
			report("%s: in the image, not in the source", p)
		}
	}
	if bad > 20 {
		t.Errorf("... and %d more differences", bad-20)
	}
	if len(src) == 0 {
		t.Fatal("empty source tree")
	}
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
}

// treeSize is the bytes and entries of a tree, to size images for it.
func treeSize(t testing.TB, root string) (bytes int64, entries int) {
	t.Helper()
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		entries++
		if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
			bytes += (fi.Size() + 4095) &^ 4095
		}
		return nil
	})
	return bytes, entries
}

// mkfs builds an ext4 (or ext2/3, per args) filesystem from root into
// file at byte offset off, sized for the tree; it returns the filesystem's
// size in bytes.
func mkfs(t testing.TB, root, file string, off int64, extra ...string) int64 {
	t.Helper()
	bytes, entries := treeSize(t, root)
	perEntry := int64(4096)
	if slices.Contains(extra, "65536") {
		perEntry = 65536
	}
	size := (bytes*14/10 + int64(entries)*perEntry + 16<<20) &^ (1<<20 - 1)
	args := []string{"-q", "-F", "-d", root, "-N", fmt.Sprint(entries*2 + 1024)}
	if !slices.Contains(extra, "-t") {
		// mke2fs alone makes ext2.
		args = append(args, "-t", "ext4")
	}
	args = append(args, extra...)
	if off > 0 {
		args = append(args, "-E", fmt.Sprintf("offset=%d", off))
	}
	// mke2fs takes the size in KiB units with a 'k' suffix.
	args = append(args, file, fmt.Sprintf("%dk", size>>10))
	run(t, testdeps.Program(t, "mke2fs"), args...)
	return size
}

// buildGPT writes a GPT disk: partition 1 a small non-ext4 partition of
// junk, partition 2 (and more per extra) ext4 from the roots.
func buildGPT(t testing.TB, file string, roots ...string) {
	t.Helper()
	sgdisk := testdeps.Program(t, "sgdisk")
	var sizes []int64
	for _, r := range roots {
		b, n := treeSize(t, r)
		sizes = append(sizes, (b*14/10+int64(n)*4096+16<<20)&^(1<<20-1))
	}
	total := int64(4 << 20)
	for _, s := range sizes {
		total += s + 1<<20
	}
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(total)
	f.Close()
	args := []string{"-n", "1:2048:+1M", "-t", "1:EF02"}
	for i, s := range sizes {
		args = append(args, "-n", fmt.Sprintf("%d:0:+%dK", i+2, s>>10), "-t", fmt.Sprintf("%d:8300", i+2))
	}
	run(t, sgdisk, append(args, file)...)
	f, _ = os.OpenFile(file, os.O_RDWR, 0)
	f.WriteAt([]byte(strings.Repeat("not a filesystem ", 1000)), 2048*512)
	f.Close()
	parts := partitionStarts(t, file)
	for i, r := range roots {
		mkfs(t, r, file, parts[i+1])
	}
}

// partitionStarts reads the partition table back with our own reader,
// which the tests of this package check against sfdisk's view below.
func partitionStarts(t testing.TB, file string) []int64 {
	t.Helper()
	out, err := exec.Command(testdeps.Program(t, "sfdisk"), "--dump", file).Output()
	if err != nil {
		t.Fatalf("sfdisk --dump %s: %v", file, err)
	}
	var starts []int64
	for _, line := range strings.Split(string(out), "\n") {
		_, rest, ok := strings.Cut(line, "start=")
		if !ok {
			continue
		}
		var s int64
		fmt.Sscanf(strings.TrimSpace(rest), "%d", &s)
		starts = append(starts, s*512)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	return starts
}

// buildMBR writes an MBR disk with one ext4 partition per root, each
// after a small partition of junk (type 0x0c, FAT32 LBA). With logical,
// the ext4 partitions are logical ones in an extended partition.
func buildMBR(t testing.TB, file string, logical bool, roots ...string) {
	t.Helper()
	var sizes []int64
	for _, r := range roots {
		b, n := treeSize(t, r)
		sizes = append(sizes, (b*14/10+int64(n)*4096+16<<20)&^(1<<20-1))
	}
	total := int64(4 << 20)
	for _, s := range sizes {
		total += s + 2<<20
	}
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(total)
	f.Close()
	script := "label: dos\nstart=2048, size=2048, type=c\n"
	if logical {
		script += "type=5\n"
	}
	for _, s := range sizes {
		script += fmt.Sprintf("size=%d, type=83\n", s/512)
	}
	cmd := exec.Command(testdeps.Program(t, "sfdisk"), "--quiet", file)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	parts := partitionStarts(t, file)
	skip := 1
	if logical {
		skip = 2
	}
	for i, r := range roots {
		mkfs(t, r, file, parts[skip+i])
	}
}

// cachedBuild returns path under the test image cache, building it with
// build when it is not there yet. key must change whenever what build
// makes would; a marker written last keeps a half-built file from being
// used.
func cachedBuild(t testing.TB, key, name string, build func(path string)) string {
	t.Helper()
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "vguard-test", "images-"+key)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	syscall.Flock(int(lock.Fd()), syscall.LOCK_EX)
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(path + ".complete"); err == nil {
		return path
	}
	os.Remove(path)
	build(path)
	if err := os.WriteFile(path+".complete", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// debianKey names the Debian image cache after the tree it was built
// from (the debootstrap marker's time) and this recipe's version.
func debianKey(t testing.TB, root string) string {
	t.Helper()
	fi, err := os.Stat(root + ".complete")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(fmt.Appendf(nil, "recipe-v2 %s %d", root, fi.ModTime().UnixNano()))
	return hex.EncodeToString(h[:8])
}

// smallTree writes a tree with what the Debian tree lacks: sparse files
// with holes in the middle and at the end, a large directory, long and
// short symlinks, set-id bits, owners, a FIFO, a hard link, an empty file.
func smallTree(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(p string, data []byte, mode os.FileMode) {
		t.Helper()
		full := filepath.Join(root, p)
		must(os.MkdirAll(filepath.Dir(full), 0o755))
		must(os.WriteFile(full, data, mode))
		must(os.Chmod(full, mode))
	}
	pattern := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7) ^ seed ^ byte(i>>9)
		}
		return b
	}
	write("etc/app.conf", []byte("db=postgres\n"), 0o640)
	write("empty", nil, 0o600)
	write("tiny", []byte("x"), 0o644)
	write("medium.bin", pattern(300_000, 3), 0o644)
	write("usr/bin/su", pattern(5000, 9), 0o4755)
	write("usr/bin/wall", pattern(6000, 11), 0o2755)
	must(os.Mkdir(filepath.Join(root, "tmp"), 0o1777))
	must(os.Chmod(filepath.Join(root, "tmp"), 0o1777|os.ModeSticky))
	// Sparse: data, a hole, data, and a hole at the end; another that is
	// all hole; another with a hole at the start.
	must(os.MkdirAll(filepath.Join(root, "var"), 0o755))
	sparse := func(p string, size int64, chunks map[int64][]byte) {
		f, err := os.Create(filepath.Join(root, p))
		must(err)
		for off, b := range chunks {
			_, err := f.WriteAt(b, off)
			must(err)
		}
		must(f.Truncate(size))
		must(f.Close())
	}
	sparse("var/sparse-middle", 6<<20, map[int64][]byte{0: pattern(70_000, 1), 3 << 20: pattern(10_000, 2)})
	sparse("var/sparse-all", 4<<20, nil)
	sparse("var/sparse-start", 2<<20+123, map[int64][]byte{1<<20 + 5: pattern(9000, 4)})
	for i := range 600 {
		write(fmt.Sprintf("usr/share/many/file-%04d.txt", i), fmt.Appendf(nil, "entry %d\n", i), 0o644)
	}
	must(os.Symlink("app.conf", filepath.Join(root, "etc/short-link")))
	long := strings.Repeat("long-directory-name/", 8) + "target"
	must(os.Symlink(long, filepath.Join(root, "etc/long-link")))
	must(os.Link(filepath.Join(root, "tiny"), filepath.Join(root, "tiny-hardlink")))
	must(syscall.Mkfifo(filepath.Join(root, "var/fifo"), 0o620))
	if os.Geteuid() == 0 {
		must(os.Lchown(filepath.Join(root, "etc/app.conf"), 1000, 1001))
		must(os.Lchown(filepath.Join(root, "etc/short-link"), 33, 34))
		must(os.Lchown(filepath.Join(root, "usr/share/many"), 70000, 70001))
		must(syscall.Mknod(filepath.Join(root, "null"), syscall.S_IFCHR|0o666, int(0x103)))
	}
	return root
}
