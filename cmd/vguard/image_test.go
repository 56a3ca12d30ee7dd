package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/vguard-dev/vguard/internal/testdeps"
)

// imageTools are the programs `mkimage` runs; the condition [imagetools]
// holds when all are installed (and fails the script, rather than
// skipping it, under scripts/test, which installs them).
var imageTools = []string{"mke2fs", "sfdisk", "qemu-img", "tar", "zstd"}

func scriptCondition(cond string) (bool, error) {
	if cond != "imagetools" {
		return false, fmt.Errorf("unknown condition %q", cond)
	}
	for _, p := range imageTools {
		if _, ok := testdeps.Look(p); !ok {
			if os.Getenv(testdeps.RequireEnv) != "" {
				return false, fmt.Errorf("%s is not installed (required: %s is set)", p, testdeps.RequireEnv)
			}
			return false, nil
		}
	}
	return true, nil
}

// cmdMkimage builds a small image from a directory of the script:
//
//	mkimage FORMAT DIR OUT
//
// FORMAT is ext4 (a raw disk that is one filesystem), gpt (ext4 in
// partition 2, after a partition of junk), mbr (likewise, MBR), qcow2,
// qcow2c (compressed), tar, tar.gz, tar.zst, or ext4-truncated (the first
// 64 KiB of an ext4 disk).
//
//	mkimage overlay BACKING OUT
//
// writes a qcow2 overlay OUT (16 MiB, nothing allocated) whose backing
// file is named BACKING, as written: relative to OUT's directory, as qemu
// resolves it, or absolute. Reading it needs --allow-backing.
func cmdMkimage(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: mkimage FORMAT DIR OUT")
	}
	format, dir, out := args[0], ts.MkAbs(args[1]), ts.MkAbs(args[2])
	run := func(stdin string, name string, args ...string) {
		p, ok := testdeps.Look(name)
		if !ok {
			ts.Fatalf("%s is not installed", name)
		}
		cmd := exec.Command(p, args...)
		cmd.Stdin = strings.NewReader(stdin)
		if b, err := cmd.CombinedOutput(); err != nil {
			ts.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
		}
	}
	const fsSize = 8 << 20
	ext4 := func(file string, off int64) {
		run("", "mke2fs", "-q", "-F", "-t", "ext4", "-d", dir, "-E", fmt.Sprintf("offset=%d", off), file, fmt.Sprint(fsSize>>10)+"k")
	}
	create := func(file string, size int64) {
		f, err := os.Create(file)
		ts.Check(err)
		ts.Check(f.Truncate(size))
		ts.Check(f.Close())
	}
	tmp := filepath.Join(ts.Getenv("WORK"), ".mkimage-"+filepath.Base(out))
	switch format {
	case "ext4":
		ext4(out, 0)
	case "ext4-truncated":
		ext4(tmp, 0)
		b, err := os.ReadFile(tmp)
		ts.Check(err)
		ts.Check(os.WriteFile(out, b[:64<<10], 0o644))
	case "gpt", "mbr":
		create(out, fsSize+4<<20)
		if format == "gpt" {
			run("label: gpt\nstart=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649\nstart=4096, size=16384, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n", "sfdisk", "--quiet", out)
		} else {
			run("label: dos\nstart=2048, size=2048, type=c\nstart=4096, size=16384, type=83\n", "sfdisk", "--quiet", out)
		}
		f, err := os.OpenFile(out, os.O_RDWR, 0)
		ts.Check(err)
		f.WriteAt([]byte(strings.Repeat("junk ", 200)), 2048*512)
		f.Close()
		ext4(out, 4096*512)
	case "qcow2", "qcow2c":
		ext4(tmp, 0)
		args := []string{"convert", "-f", "raw", "-O", "qcow2"}
		if format == "qcow2c" {
			args = append(args, "-c")
		}
		run("", "qemu-img", append(args, tmp, out)...)
	case "tar", "tar.gz", "tar.zst":
		args := []string{"--numeric-owner", "-C", dir, "-cf", out, "."}
		switch format {
		case "tar.gz":
			args = append([]string{"--gzip"}, args...)
		case "tar.zst":
			args = append([]string{"--zstd"}, args...)
		}
		run("", "tar", args...)
	case "overlay":
		backing := args[1]
		resolved := backing
		if !filepath.IsAbs(backing) {
			resolved = filepath.Join(filepath.Dir(out), backing)
		}
		b, err := os.ReadFile(resolved)
		ts.Check(err)
		backingFormat := "raw"
		if strings.HasPrefix(string(b), "QFI\xfb") {
			backingFormat = "qcow2"
		}
		// -u: the backing file is not opened, so the name stays as given.
		run("", "qemu-img", "create", "-q", "-u", "-f", "qcow2", "-b", backing, "-F", backingFormat, out, "16M")
	default:
		ts.Fatalf("mkimage: unknown format %q", format)
	}
	os.Remove(tmp)
}
