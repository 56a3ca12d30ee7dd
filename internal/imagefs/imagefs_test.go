package imagefs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/vguard-dev/vguard/internal/testdeps"
)

func openT(t testing.TB, path, format string, opts ...Option) Image {
	t.Helper()
	img, err := Open(path, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", filepath.Base(path), err)
	}
	t.Cleanup(func() { img.Close() })
	if img.Format() != format {
		t.Fatalf("%s: format %q, want %q", filepath.Base(path), img.Format(), format)
	}
	return img
}

// TestExt4Variants reads the small tree (holes, a large directory, set-id
// bits, owners, special files) through every ext2/3/4 layout mke2fs makes:
// extents and indirect block maps, 1 KiB to 64 KiB blocks, 32- and 64-bit
// descriptors, meta_bg, inline data, bigalloc, and hash-indexed
// directories (e2fsck -D).
func TestExt4Variants(t *testing.T) {
	testdeps.Program(t, "mke2fs")
	root := smallTree(t)
	src := readSource(t, root)
	for _, v := range []struct {
		name string
		args []string
		fsck bool
		// mke2fs 1.47.0 -d with inline_data writes a sparse file's size
		// as the end of its last data block, losing a trailing hole
		// (debugfs's stat shows the same size we read), so those files
		// are left out of that comparison.
		mkfsLosesTrailingHoles bool
	}{
		{"ext4", nil, false, false},
		{"ext4-htree", nil, true, false},
		{"ext4-1k-inline", []string{"-b", "1024", "-O", "inline_data"}, false, true},
		{"ext4-32bit-128-byte-inodes", []string{"-O", "^64bit", "-I", "128"}, false, false},
		{"ext4-meta-bg", []string{"-O", "meta_bg,^resize_inode", "-b", "1024"}, false, false},
		{"ext4-64k-blocks", []string{"-b", "65536"}, false, false},
		{"ext4-bigalloc", []string{"-O", "bigalloc", "-C", "16384"}, false, false},
		{"ext3", []string{"-t", "ext3"}, false, false},
		{"ext2", []string{"-t", "ext2"}, false, false},
	} {
		t.Run(v.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "disk.img")
			mkfs(t, root, file, 0, v.args...)
			if v.fsck {
				// -D rebuilds every directory, indexing the large ones.
				out, err := exec.Command(testdeps.Program(t, "e2fsck"), "-fyD", file).CombinedOutput()
				var ee *exec.ExitError
				if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
					t.Fatalf("e2fsck: %v\n%s", err, out)
				}
			}
			got, want := readImage(t, openT(t, file, "raw")), src
			if v.mkfsLosesTrailingHoles {
				want = maps.Clone(src)
				for _, p := range []string{"/var/sparse-middle", "/var/sparse-start", "/var/sparse-all"} {
					delete(want, p)
					delete(got, p)
				}
			}
			compare(t, got, want, "")
		})
	}
}

// TestSmallFormats reads the small tree through partition tables, qcow2
// (plain, zlib- and zstd-compressed, and through a backing file) and tar.
func TestSmallFormats(t *testing.T) {
	testdeps.Program(t, "mke2fs")
	root := smallTree(t)
	other := smallTree(t)
	os.WriteFile(filepath.Join(other, "second-fs"), []byte("the other filesystem\n"), 0o644)
	src, src2 := readSource(t, root), readSource(t, other)
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.img")
	mkfs(t, root, raw, 0)

	t.Run("dir", func(t *testing.T) {
		compare(t, readImage(t, openT(t, root, "dir")), src, "")
	})
	t.Run("gpt-two-filesystems", func(t *testing.T) {
		file := filepath.Join(dir, "gpt.img")
		buildGPT(t, file, root, other)
		got := readImage(t, openT(t, file, "raw"))
		compare(t, got, src, "/part2")
		compare(t, got, src2, "/part3")
		if _, ok := got["/part1"]; ok {
			t.Error("the non-ext4 partition 1 is listed")
		}
	})
	t.Run("mbr-logical", func(t *testing.T) {
		file := filepath.Join(dir, "mbr.img")
		buildMBR(t, file, true, root, other)
		got := readImage(t, openT(t, file, "raw"))
		compare(t, got, src, "/part5")
		compare(t, got, src2, "/part6")
	})
	qemu := func(t *testing.T, out string, args ...string) {
		run(t, testdeps.Program(t, "qemu-img"), append(append([]string{"convert", "-f", "raw", "-O", "qcow2"}, args...), raw, out)...)
	}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"qcow2", nil},
		{"qcow2-zlib", []string{"-c"}},
		{"qcow2-zstd", []string{"-c", "-o", "compression_type=zstd"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(dir, c.name+".qcow2")
			qemu(t, file, c.args...)
			compare(t, readImage(t, openT(t, file, "qcow2")), src, "")
		})
	}
	t.Run("qcow2-backing-file", func(t *testing.T) {
		base := filepath.Join(dir, "base.qcow2")
		qemu(t, base)
		overlay := filepath.Join(dir, "overlay.qcow2")
		run(t, testdeps.Program(t, "qemu-img"), "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", overlay)
		compare(t, readImage(t, openT(t, overlay, "qcow2", AllowBacking(true))), src, "")
	})
	for _, c := range []struct{ name, flag, format string }{
		{"tar", "", "tar"},
		{"tar.gz", "--gzip", "tar+gzip"},
		{"tar.bz2", "--bzip2", "tar+bzip2"},
		{"tar.zst", "--zstd", "tar+zstd"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The suffix is deliberately wrong: formats are told by magic.
			if c.name == "tar.bz2" {
				testdeps.Program(t, "bzip2")
			}
			file := filepath.Join(dir, "archive-"+c.name+".img")
			args := []string{"--numeric-owner", "--sparse", "-C", root, "-cf", file, "."}
			if c.flag != "" {
				args = append([]string{c.flag}, args...)
			}
			run(t, testdeps.Program(t, "tar"), args...)
			img := openT(t, file, c.format)
			compare(t, readImage(t, img), src, "")
			// A file-backed archive can be walked again.
			compare(t, readImage(t, img), src, "")
		})
	}
}

// TestDebian is the proof of the readers: a real Debian root filesystem,
// built into ext4 with mke2fs -d (which copies owners and modes), read
// back through every format and compared path by path with the tree
// itself. Images are built once and cached beside the tree.
func TestDebian(t *testing.T) {
	if testing.Short() {
		t.Skip("reads a 170 MB tree through every format")
	}
	root := testdeps.DebianRoot(t)
	for _, p := range []string{"mke2fs", "sgdisk", "sfdisk", "qemu-img", "tar", "zstd"} {
		testdeps.Program(t, p)
	}
	key := debianKey(t, root)
	raw := cachedBuild(t, key, "ext4.img", func(p string) { mkfs(t, root, p, 0) })
	images := []struct{ name, format, prefix string }{
		{raw, "raw", ""},
		{cachedBuild(t, key, "gpt.img", func(p string) { buildGPT(t, p, root) }), "raw", ""},
		{cachedBuild(t, key, "mbr.img", func(p string) { buildMBR(t, p, false, root) }), "raw", ""},
		{cachedBuild(t, key, "disk.qcow2", func(p string) {
			run(t, testdeps.Program(t, "qemu-img"), "convert", "-f", "raw", "-O", "qcow2", raw, p)
		}), "qcow2", ""},
		{cachedBuild(t, key, "disk-compressed.qcow2", func(p string) {
			run(t, testdeps.Program(t, "qemu-img"), "convert", "-c", "-f", "raw", "-O", "qcow2", raw, p)
		}), "qcow2", ""},
		{cachedBuild(t, key, "root.tar", func(p string) {
			run(t, testdeps.Program(t, "tar"), "--numeric-owner", "-C", root, "-cf", p, ".")
		}), "tar", ""},
		{cachedBuild(t, key, "root.tar.gz", func(p string) {
			run(t, testdeps.Program(t, "tar"), "--gzip", "--numeric-owner", "-C", root, "-cf", p, ".")
		}), "tar+gzip", ""},
		{cachedBuild(t, key, "root.tar.zst", func(p string) {
			run(t, testdeps.Program(t, "tar"), "--zstd", "--numeric-owner", "-C", root, "-cf", p, ".")
		}), "tar+zstd", ""},
	}
	src := readSource(t, root)
	if len(src) < 5000 {
		t.Fatalf("the Debian tree has only %d entries", len(src))
	}
	for _, im := range images {
		t.Run(filepath.Base(im.name), func(t *testing.T) {
			compare(t, readImage(t, openT(t, im.name, im.format)), src, im.prefix)
		})
	}
}

// TestEntryOpenAfterWalk: tar content is gone once the callback returned;
// disk content stays readable until Close.
func TestEntryOpenAfterWalk(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "f"), []byte("data"), 0o644)
	file := filepath.Join(t.TempDir(), "a.tar")
	run(t, testdeps.Program(t, "tar"), "-C", root, "-cf", file, ".")
	img := openT(t, file, "tar")
	var kept *Entry
	img.Walk(func(e *Entry) error {
		if e.Type == File {
			kept = e
		}
		return nil
	})
	if kept == nil {
		t.Fatal("no file entry")
	}
	if _, err := kept.Open(); !errors.Is(err, ErrStreamPassed) {
		t.Fatalf("Open after the callback: %v, want ErrStreamPassed", err)
	}
	if img.RandomAccess() {
		t.Error("tar claims random access")
	}
}

// TestBadImages: unknown, truncated and corrupt images give an error that
// says what and where, never a panic.
func TestBadImages(t *testing.T) {
	testdeps.Program(t, "mke2fs")
	dir := t.TempDir()
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "f"), []byte(strings.Repeat("data", 5000)), 0o644)
	good := filepath.Join(dir, "good.img")
	mkfs(t, root, good, 0)
	data, _ := os.ReadFile(good)
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "unknown image format"},
		{"text", []byte("hello, this is not an image\n"), "unknown image format"},
		{"truncated-ext4", data[:len(data)/2], "truncated"},
		{"bad-block-size", patch(data, 1024+0x18, 9, 0, 0, 0), "block size"},
		{"bad-inode-size", patch(data, 1024+0x58, 0x33, 0), "inode size"},
		{"encrypted-feature", patch(data, 1024+0x60+2, 0x01|data[1024+0x60+2]), "encryption"},
		{"gzip-not-tar", gzipBytes([]byte(strings.Repeat("plain text ", 100))), "not a tar archive"},
		{"truncated-gzip-tar", gzipBytes(tarBytes(t, root))[:100], "unexpected EOF"},
		{"qcow2-huge-l1", qcow2Header(0xffffffff), "L1 table"},
		{"mbr-beyond-disk", mbrBeyond(), "beyond the disk"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name)
			os.WriteFile(p, c.data, 0o644)
			img, err := Open(p)
			if err == nil {
				err = img.Walk(func(e *Entry) error {
					if e.Type == File {
						r, err := e.Open()
						if err != nil {
							return err
						}
						_, err = io_Copy(r)
						return err
					}
					return nil
				})
				img.Close()
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
}

// TestQcow2BackingChain: a backing file that is a device (the host's own
// disk, in an attack) or a chain that loops is refused before the library
// follows it.
func TestQcow2BackingChain(t *testing.T) {
	qemu := testdeps.Program(t, "qemu-img")
	dir := t.TempDir()
	pipe := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(pipe, 0o600); err != nil {
		t.Fatal(err)
	}
	dev := filepath.Join(dir, "dev.qcow2")
	run(t, qemu, "create", "-q", "-u", "-f", "qcow2", "-b", "pipe", "-F", "raw", dev, "1M")
	a, b := filepath.Join(dir, "a.qcow2"), filepath.Join(dir, "b.qcow2")
	run(t, qemu, "create", "-q", "-f", "qcow2", b, "1M")
	run(t, qemu, "create", "-q", "-u", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", a, "1M")
	run(t, qemu, "rebase", "-q", "-u", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", b)
	for file, want := range map[string]string{dev: "is not a regular file", a: "backing chain loops"} {
		_, err := Open(file, AllowBacking(true))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", filepath.Base(file), err, want)
		}
	}
}

// TestQcow2BackingConfined: a backing file is not read unless allowed
// (an uploaded image naming another VM's disk would otherwise be read as
// that disk: OSSN-0093), and when allowed, only inside the directory of
// the image naming it, symlinks resolved.
func TestQcow2BackingConfined(t *testing.T) {
	qemu := testdeps.Program(t, "qemu-img")
	testdeps.Program(t, "mke2fs")
	victim := smallTree(t)
	os.WriteFile(filepath.Join(victim, "notes.txt"), []byte("the victim's private file\n"), 0o600)
	host := t.TempDir()
	disk := filepath.Join(host, "other-vm.img")
	mkfs(t, victim, disk, 0)
	base := t.TempDir()
	uploads := filepath.Join(base, "uploads")
	sub := filepath.Join(uploads, "sub")
	os.MkdirAll(sub, 0o755)
	overlay := func(name, backing string) string {
		p := filepath.Join(uploads, name)
		run(t, qemu, "create", "-q", "-u", "-f", "qcow2", "-b", backing, "-F", "raw", p, "64M")
		return p
	}
	os.Symlink(disk, filepath.Join(uploads, "link-out.img"))
	os.Symlink("../../"+filepath.Base(host)+"/other-vm.img", filepath.Join(uploads, "rel-link-out.img"))
	copyFile(t, disk, filepath.Join(sub, "inside.img"))
	os.Symlink("sub/inside.img", filepath.Join(uploads, "link-in.img"))

	for _, c := range []struct {
		name, backing string
		allow         bool
		want          string // "" when the image must read as the victim's tree
	}{
		{"absolute.qcow2", disk, false, "not read"},
		{"absolute-allowed.qcow2", disk, true, "outside the image's directory"},
		{"dotdot.qcow2", "../../" + filepath.Base(host) + "/other-vm.img", true, "outside the image's directory"},
		{"symlink-out.qcow2", "link-out.img", true, "outside the image's directory"},
		{"rel-symlink-out.qcow2", "rel-link-out.img", true, "outside the image's directory"},
		{"inside.qcow2", "sub/inside.img", false, "not read"},
		{"inside-allowed.qcow2", "sub/inside.img", true, ""},
		{"symlink-in.qcow2", "link-in.img", true, ""},
		{"absolute-in.qcow2", filepath.Join(sub, "inside.img"), true, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := overlay(c.name, c.backing)
			img, err := Open(p, AllowBacking(c.allow))
			if c.want == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer img.Close()
				compare(t, readImage(t, img), readSource(t, victim), "")
				return
			}
			if err == nil {
				img.Close()
				t.Fatal("Open succeeded: the backing file was read")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.backing) && !strings.Contains(err.Error(), filepath.Base(c.backing)) {
				t.Errorf("err = %v, want %q naming the backing file %q", err, c.want, c.backing)
			}
			if !c.allow && !errors.Is(err, ErrBackingFile) {
				t.Errorf("err = %v, want ErrBackingFile", err)
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBackingOpenerRefusesUnvetted: the library opens backing files by
// name again after the check; a file other than the one checked (a name
// switched in between) is refused with an error, not read or panicked on.
func TestBackingOpenerRefusesUnvetted(t *testing.T) {
	dir := t.TempDir()
	checked, other := filepath.Join(dir, "checked.img"), filepath.Join(dir, "other.img")
	os.WriteFile(checked, make([]byte, 4096), 0o644)
	os.WriteFile(other, make([]byte, 4096), 0o644)
	fi, err := os.Stat(checked)
	if err != nil {
		t.Fatal(err)
	}
	open := backingOpener([]os.FileInfo{fi})
	f, _ := os.Open(other)
	img, err := open(f, "raw")
	if err == nil || !strings.Contains(err.Error(), "not the file checked") {
		t.Fatalf("other file: err = %v, want a refusal", err)
	}
	img.Close() // what the library does with it
	f, _ = os.Open(checked)
	img, err = open(f, "vmdk")
	if err == nil || !strings.Contains(err.Error(), `format "vmdk"`) {
		t.Fatalf("vmdk: err = %v, want a refusal", err)
	}
	img.Close()
	f, _ = os.Open(checked)
	img, err = open(f, "")
	if err != nil || img.Size() != 4096 {
		t.Fatalf("checked file: %v", err)
	}
	img.Close()
}

// TestExt4DirectoryBlockRepeats: a directory whose block map points many
// logical blocks at one block of entries, built as an attacker would
// (mke2fs, then debugfs and a written indirect block), or two directories
// sharing a block, is refused with the inode and its byte offset, instead
// of listing the same entries once per block of declared size.
func TestExt4DirectoryBlockRepeats(t *testing.T) {
	mke2fs, debugfs := testdeps.Program(t, "mke2fs"), testdeps.Program(t, "debugfs")
	root := t.TempDir()
	for _, d := range []string{"d", "e"} {
		os.Mkdir(filepath.Join(root, d), 0o755)
	}
	for i := range 300 {
		os.WriteFile(filepath.Join(root, "d", fmt.Sprintf("file-%03d", i)), []byte("x"), 0o644)
	}
	base := filepath.Join(t.TempDir(), "base.img")
	run(t, mke2fs, "-q", "-F", "-t", "ext2", "-b", "4096", "-d", root, base, "16M")
	debug := func(file string, cmds ...string) string {
		t.Helper()
		cmd := exec.Command(debugfs, "-w", "-f", "-", file)
		cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("debugfs %v: %v\n%s", cmds, err, out)
		}
		return string(out)
	}
	number := func(out, after string) uint32 {
		t.Helper()
		_, rest, ok := strings.Cut(out, after)
		if !ok {
			t.Fatalf("no %q in debugfs output:\n%s", after, out)
		}
		var n uint32
		if _, err := fmt.Sscan(rest, &n); err != nil {
			t.Fatalf("after %q: %v\n%s", after, err, out)
		}
		return n
	}
	out := debug(base, "blocks /d", "ffb 2 3000")
	lines := strings.Split(out, "\n")
	var b uint32 // the block of /d's entries
	for i, l := range lines {
		if strings.HasPrefix(l, "debugfs: blocks /d") {
			fmt.Sscan(lines[i+1], &b)
		}
	}
	ind := number(out, "Free blocks found: ")
	if b == 0 {
		t.Fatalf("no block of /d in:\n%s", out)
	}

	t.Run("one-directory", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "disk.img")
		copyFile(t, base, file)
		// The indirect block: 1024 pointers to b.
		ptrs := make([]byte, 4096)
		for i := 0; i < len(ptrs); i += 4 {
			binary.LittleEndian.PutUint32(ptrs[i:], b)
		}
		f, err := os.OpenFile(file, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt(ptrs, int64(ind)*4096)
		f.Close()
		cmds := []string{}
		for i := 1; i < 12; i++ {
			cmds = append(cmds, fmt.Sprintf("sif /d block[%d] %d", i, b))
		}
		cmds = append(cmds, fmt.Sprintf("sif /d block[IND] %d", ind), fmt.Sprintf("sif /d size %d", (12+1024)*4096))
		debug(file, cmds...)
		dNum := number(debug(file, "stat /d"), "Inode: ")
		want := fmt.Sprintf(`directory inode %d \(at byte \d+\): block %d at file offset 4096 is mapped twice`, dNum, b)
		walkRefused(t, file, want)
	})
	t.Run("two-directories", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "disk.img")
		copyFile(t, base, file)
		debug(file, fmt.Sprintf("sif /e block[0] %d", b))
		out := debug(file, "stat /d", "stat /e")
		dNum, eNum := number(out, "Inode: "), number(out[strings.Index(out, "stat /e"):], "Inode: ")
		want := fmt.Sprintf(`directory inode %d \(at byte \d+\): block %d at file offset 0 is also a block of directory inode %d`, eNum, b, dNum)
		walkRefused(t, file, want)
	})
}

// walkRefused walks an image that must fail with an error matching want,
// having listed no more entries than the filesystem really holds.
func walkRefused(t *testing.T, file, want string) {
	t.Helper()
	img := openT(t, file, "raw")
	n := 0
	err := img.Walk(func(*Entry) error { n++; return nil })
	if err == nil || !regexp.MustCompile(want).MatchString(err.Error()) {
		t.Fatalf("walk after %d entries: err = %v, want %q", n, err, want)
	}
	if n > 400 {
		t.Errorf("%d entries listed before the error", n)
	}
}
