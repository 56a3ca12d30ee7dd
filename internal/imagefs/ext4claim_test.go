package imagefs

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vguard-dev/vguard/internal/testdeps"
)

// debugfsRun runs debugfs commands on an image, writable.
func debugfsRun(t *testing.T, file string, cmds ...string) string {
	t.Helper()
	cmd := exec.Command(testdeps.Program(t, "debugfs"), "-w", "-f", "-", file)
	cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs %v: %v\n%s", cmds, err, out)
	}
	return string(out)
}

// debugfsNumber is the number that follows after in debugfs output.
func debugfsNumber(t *testing.T, out, after string) uint32 {
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

// writeBlock fills a 4 KiB block of an image with 1024 copies of a block
// number (an indirect block pointing at one block everywhere), or with
// ptr then zeros when once is set.
func writeBlock(t *testing.T, file string, blk, ptr uint32, once bool) {
	t.Helper()
	b := make([]byte, 4096)
	for i := 0; i < len(b); i += 4 {
		binary.LittleEndian.PutUint32(b[i:], ptr)
		if once {
			break
		}
	}
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, int64(blk)*4096); err != nil {
		t.Fatal(err)
	}
}

// TestExt4FileBlockRepeats: a file's block map is checked like a
// directory's, built as the review's attacker did (mke2fs, then debugfs
// and written indirect blocks). A block met twice in one file, or shared
// by two files, is refused with the inode and the file offset; an inode
// named by many entries with a links count of 1 is one file, its later
// names links to the first, so its content is read once. Before, a 16 MiB
// image with 21 names of a 4 GiB file mapping one block everywhere read
// 90 GB.
func TestExt4FileBlockRepeats(t *testing.T) {
	testdeps.Program(t, "debugfs")
	mke2fs := testdeps.Program(t, "mke2fs")
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "d"), 0o755)
	os.WriteFile(filepath.Join(root, "f"), []byte("secret-ish content of f\n"), 0o644)
	os.WriteFile(filepath.Join(root, "g"), []byte("content of g\n"), 0o644)
	os.Symlink("/"+strings.Repeat("long/", 20)+"target", filepath.Join(root, "s")) // a slow symlink
	build := func(t *testing.T, fstype string) (file string, f, g, fBlock, free uint32) {
		file = filepath.Join(t.TempDir(), "disk.img")
		run(t, mke2fs, "-q", "-F", "-t", fstype, "-b", "4096", "-d", root, file, "16M")
		out := debugfsRun(t, file, "stat /f", "stat /g", "bmap /f 0", "ffb 1 3000")
		f, g = debugfsNumber(t, out, "Inode: "), debugfsNumber(t, out[strings.Index(out, "stat /g"):], "Inode: ")
		fBlock = debugfsNumber(t, out[strings.Index(out, "bmap /f 0"):], "\n")
		free = debugfsNumber(t, out, "Free blocks found: ")
		return file, f, g, fBlock, free
	}
	// links names /f again from /d, 20 times, leaving its links count.
	links := func() []string {
		var cmds []string
		for i := range 20 {
			cmds = append(cmds, fmt.Sprintf("ln /f /d/l%d", i))
		}
		return cmds
	}

	t.Run("one-block-everywhere", func(t *testing.T) {
		// The review's image: 12 direct pointers, the indirect block and
		// every indirect block of the double indirect one lead to one
		// data block; size 4 GiB; 21 names.
		file, f, _, b, ind := build(t, "ext2")
		dind := ind + 1
		writeBlock(t, file, ind, b, false)
		writeBlock(t, file, dind, ind, false)
		cmds := links()
		for i := 1; i < 12; i++ {
			cmds = append(cmds, fmt.Sprintf("sif /f block[%d] %d", i, b))
		}
		cmds = append(cmds, fmt.Sprintf("sif /f block[IND] %d", ind), fmt.Sprintf("sif /f block[DIND] %d", dind), "sif /f size 4299210752")
		debugfsRun(t, file, cmds...)
		walkRefused(t, file, fmt.Sprintf(`/f: inode %d \(at byte \d+\): block %d at file offset 4096 is mapped twice in the file`, f, b))
	})
	t.Run("indirect-block-everywhere", func(t *testing.T) {
		// Distinct data can come only through distinct indirect blocks:
		// every entry of the double indirect block naming one indirect
		// block is refused at the second.
		file, f, _, _, ind := build(t, "ext2")
		dind, data := ind+1, ind+2
		writeBlock(t, file, ind, data, true)
		writeBlock(t, file, dind, ind, false)
		debugfsRun(t, file, fmt.Sprintf("sif /f block[DIND] %d", dind), "sif /f size 4299210752")
		off := (12 + 1024 + 1024) * 4096
		walkRefused(t, file, fmt.Sprintf(`/f: inode %d \(at byte \d+\): indirect block %d at file offset %d is mapped twice in the file`, f, ind, off))
	})
	for _, fstype := range []string{"ext2", "ext4"} {
		t.Run("shared-"+fstype, func(t *testing.T) {
			// Files of their own names, one block map each, one block:
			// each would read the whole of it.
			file, f, g, b, _ := build(t, fstype)
			field := "block[0]"
			if fstype == "ext4" {
				field = "block[5]" // the first extent's start (low 32 bits)
			}
			debugfsRun(t, file, fmt.Sprintf("sif /g %s %d", field, b))
			walkRefused(t, file, fmt.Sprintf(`: inode (%d|%d) \(at byte \d+\): block %d at file offset 0 is also mapped by an earlier file \(files sharing a block`, f, g, b))
		})
	}
	t.Run("symlink-shares", func(t *testing.T) {
		// A slow symlink's target is data too, read from its blocks.
		file, f, _, b, _ := build(t, "ext2")
		out := debugfsRun(t, file, fmt.Sprintf("sif /s block[0] %d", b), "stat /s")
		s := debugfsNumber(t, out, "Inode: ")
		walkRefused(t, file, fmt.Sprintf(`: inode (%d|%d) \(at byte \d+\): block %d at file offset 0 is also mapped by an earlier file`, f, s, b))
	})
	t.Run("extent-repeats-block", func(t *testing.T) {
		// Two extents of one file, file blocks 0 and 1, on one block.
		file, f, _, b, _ := build(t, "ext4")
		debugfsRun(t, file,
			fmt.Sprintf("sif /f block[0] %d", 0xf30a|2<<16),
			"sif /f block[6] 1", "sif /f block[7] 1", fmt.Sprintf("sif /f block[8] %d", b),
			"sif /f size 8192")
		walkRefused(t, file, fmt.Sprintf(`/f: inode %d \(at byte \d+\): block %d at file offset 4096 is mapped twice in the file`, f, b))
	})
	t.Run("names-of-one-inode", func(t *testing.T) {
		// A sound file, named 21 times, links count 1: one file, read
		// once, its other names links to the first.
		file, _, _, _, _ := build(t, "ext2")
		debugfsRun(t, file, links()...)
		img := openT(t, file, "raw")
		var first string
		names, read := 0, 0
		err := img.Walk(func(e *Entry) error {
			if e.Type != File || e.Path == "/g" {
				return nil
			}
			names++
			if e.Link == "" {
				if first != "" {
					return fmt.Errorf("%s and %s are both first names of /f's inode", first, e.Path)
				}
				first = e.Path
				r, err := e.Open()
				if err != nil {
					return err
				}
				defer r.Close()
				b, err := io.ReadAll(r)
				if err != nil || string(b) != "secret-ish content of f\n" {
					return fmt.Errorf("%s: %q, %v", e.Path, b, err)
				}
				read++
			} else if e.Link != first {
				return fmt.Errorf("%s: Link %q, want %q", e.Path, e.Link, first)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if names != 21 || read != 1 {
			t.Errorf("%d names, %d read; want 21 names, 1 read", names, read)
		}
	})
}
