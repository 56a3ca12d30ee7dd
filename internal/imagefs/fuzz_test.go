package imagefs

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func patch(data []byte, off int, b ...byte) []byte {
	out := bytes.Clone(data)
	copy(out[off:], b)
	return out
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func tarBytes(t testing.TB, root string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.AddFS(os.DirFS(root)); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	return buf.Bytes()
}

func qcow2Header(l1Size uint32) []byte {
	h := make([]byte, 4096)
	copy(h, qcow2Magic)
	be := binary.BigEndian
	be.PutUint32(h[4:], 3)
	be.PutUint32(h[20:], 16)
	be.PutUint64(h[24:], 1<<30)
	be.PutUint32(h[36:], l1Size)
	be.PutUint64(h[40:], 512)
	return h
}

func mbrBeyond() []byte {
	d := make([]byte, 64<<10)
	d[510], d[511] = 0x55, 0xaa
	e := d[446:]
	e[4] = 0x83
	binary.LittleEndian.PutUint32(e[8:], 2048)
	binary.LittleEndian.PutUint32(e[12:], 1<<20)
	return d
}

func io_Copy(r io.ReadCloser) (int64, error) {
	defer r.Close()
	return io.Copy(io.Discard, r)
}

// walkAll opens an image file and reads everything in it, as a manifest
// would, but at most 16 MiB of each file: a mutated size can legitimately
// declare terabytes of holes, which read as zeros for as long as they
// last. Fuzzers call it and only care that it returns.
func walkAll(path string) {
	img, err := Open(path)
	if err != nil {
		return
	}
	defer img.Close()
	img.Walk(func(e *Entry) error {
		if e.Type == File {
			if r, err := e.Open(); err == nil {
				io.CopyN(io.Discard, r, 16<<20)
				r.Close()
			}
		}
		return nil
	})
}

// tinyExt4 is a 512 KiB ext4 filesystem (1 KiB blocks, 64 inodes, a few
// files and directories, a hole, a symlink), kept gzipped in testdata so
// the fuzzers need no mke2fs.
func tinyExt4(t testing.TB) []byte {
	f, err := os.Open(filepath.Join("testdata", "tiny.ext4.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzExt4 mutates the metadata of a real filesystem: each 3 bytes of the
// input set one byte in the first 64 KiB (superblock, group descriptors,
// bitmaps, inode table, directory and extent blocks), and the result is
// walked and read in full.
func FuzzExt4(f *testing.F) {
	base := tinyExt4(f)
	f.Add([]byte{})
	f.Add([]byte{0x04, 0x18, 0x05})             // block size
	f.Add([]byte{0x04, 0x28, 0x01})             // inodes per group
	f.Add([]byte{0x04, 0x60, 0xff, 0x04, 0x58}) // features, inode size
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, patches []byte) {
		img := bytes.Clone(base)
		for i := 0; i+2 < len(patches) && i < 3*64; i += 3 {
			off := int(binary.BigEndian.Uint16(patches[i:]))
			img[off] = patches[i+2]
		}
		p := filepath.Join(dir, "img")
		os.WriteFile(p, img, 0o644)
		walkAll(p)
	})
}

// FuzzPartitions feeds arbitrary bytes as the start of a disk: MBR, GPT
// (with checksums fixed up so the parser gets past them), extended boot
// records.
func FuzzPartitions(f *testing.F) {
	f.Add(mbrBeyond()[:1024])
	gpt := make([]byte, 34*512)
	copy(gpt[512:], "EFI PART")
	binary.LittleEndian.PutUint32(gpt[512+12:], 92)
	binary.LittleEndian.PutUint64(gpt[512+72:], 2)
	binary.LittleEndian.PutUint32(gpt[512+80:], 128)
	binary.LittleEndian.PutUint32(gpt[512+84:], 128)
	f.Add(gpt)
	ext := make([]byte, 4096)
	ext[510], ext[511] = 0x55, 0xaa
	ext[446+4] = 0x05
	binary.LittleEndian.PutUint32(ext[446+8:], 1)
	binary.LittleEndian.PutUint32(ext[446+12:], 7)
	f.Add(ext)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		if len(data) >= 1024 && string(data[512:520]) == "EFI PART" {
			fixGPT(data)
		}
		ra := bytes.NewReader(data)
		readPartitions(ra, int64(len(data)))
		openDisk(ra, int64(len(data)), "fuzz", "raw", nil)
	})
}

// fixGPT sets the header's checksums to match, so fuzzing reaches the
// partition entries.
func fixGPT(d []byte) {
	le := binary.LittleEndian
	h := d[512:]
	hsize := le.Uint32(h[12:])
	if hsize < 92 || hsize > 512 {
		return
	}
	off := int64(le.Uint64(h[72:])) * 512
	n, es := int64(le.Uint32(h[80:])), int64(le.Uint32(h[84:]))
	if n <= maxGPTEntries && es <= 4096 && off >= 0 && off+n*es <= int64(len(d)) {
		le.PutUint32(h[88:], crc32IEEE(d[off:off+n*es]))
	}
	le.PutUint32(h[16:], 0)
	le.PutUint32(h[16:], crc32IEEE(h[:hsize]))
}

// FuzzOpen writes arbitrary bytes to a file and opens and walks it: format
// detection, tar headers, gzip, zstd, bzip2 and qcow2 headers.
func FuzzOpen(f *testing.F) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5})
	tw.Write([]byte("root\n"))
	tw.WriteHeader(&tar.Header{Name: "etc/link", Typeflag: tar.TypeLink, Linkname: "etc/passwd"})
	tw.Close()
	f.Add(buf.Bytes())
	f.Add(gzipBytes(buf.Bytes()))
	f.Add(zstdMagic)
	f.Add([]byte("BZh91AY&SY"))
	f.Add(qcow2Header(16)[:512])
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "img")
		os.WriteFile(p, data, 0o644)
		walkAll(p)
	})
}

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }
