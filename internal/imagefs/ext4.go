package imagefs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"time"
)

// A read-only reader of ext2/3/4, for what a file-tree walk needs. Layout
// references: the kernel's ext4.h and Documentation/filesystems/ext4.

var le = binary.LittleEndian

const (
	ext4Magic     = 0xef53
	ext4RootInode = 2

	// feature_incompat bits.
	incompatCompression = 0x1
	incompatFiletype    = 0x2
	incompatRecover     = 0x4
	incompatJournalDev  = 0x8
	incompatMetaBG      = 0x10
	incompatExtents     = 0x40
	incompat64bit       = 0x80
	incompatMMP         = 0x100
	incompatFlexBG      = 0x200
	incompatEAInode     = 0x400
	incompatDirData     = 0x1000
	incompatCsumSeed    = 0x2000
	incompatLargeDir    = 0x4000
	incompatInlineData  = 0x8000
	incompatEncrypt     = 0x10000
	incompatCasefold    = 0x20000
	incompatSupported   = incompatFiletype | incompatRecover | incompatMetaBG | incompatExtents |
		incompat64bit | incompatMMP | incompatFlexBG | incompatEAInode | incompatCsumSeed |
		incompatLargeDir | incompatInlineData | incompatCasefold

	roCompatSparseSuper  = 0x1
	roCompatSharedBlocks = 0x4000

	// inode flags.
	flagExtents    = 0x80000
	flagInlineData = 0x10000000
	flagHugeFile   = 0x40000

	extentMagic    = 0xf30a
	maxExtentDepth = 5
	// Bounds that keep a hostile extent tree from taking unbounded memory
	// or time; real files stay far below them.
	maxExtentNodes = 1 << 18
	maxExtents     = 1 << 22
	maxDirSize     = 1 << 31
	maxSymlinkSize = 1 << 16
)

// ext4FS is one filesystem on a disk. Safe for concurrent reads.
type ext4FS struct {
	r      io.ReaderAt // the whole disk
	base   int64       // where the filesystem starts on the disk
	size   int64       // bytes of its partition (or disk)
	bs     int64
	blocks uint64

	inodesCount, ipg uint32
	inodeSize        int64
	descSize         int64
	firstDataBlock   uint64
	bpg              uint64
	firstMetaBG      uint64
	incompat         uint32
	roCompat         uint32
}

// isExt4 reports whether an ext2/3/4 superblock lies at base+1024.
func isExt4(ra io.ReaderAt, base int64) bool {
	b := make([]byte, 2)
	if _, err := ra.ReadAt(b, base+1024+0x38); err != nil {
		return false
	}
	return le.Uint16(b) == ext4Magic
}

func openExt4(ra io.ReaderAt, base, size int64) (*ext4FS, error) {
	sb := make([]byte, 1024)
	if _, err := readFull(ra, sb, base+1024, base+size); err != nil {
		return nil, fmt.Errorf("ext4 superblock at byte %d: %w", base+1024, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("ext4 superblock at byte %d: %s", base+1024, fmt.Sprintf(format, args...))
	}
	f := &ext4FS{r: ra, base: base, size: size}
	logBS := le.Uint32(sb[0x18:])
	if logBS > 6 {
		return nil, bad("block size 2^(10+%d) (at most 64 KiB)", logBS)
	}
	f.bs = 1024 << logBS
	f.inodesCount = le.Uint32(sb[0x0:])
	f.ipg = le.Uint32(sb[0x28:])
	f.bpg = uint64(le.Uint32(sb[0x20:]))
	f.firstDataBlock = uint64(le.Uint32(sb[0x14:]))
	f.incompat = le.Uint32(sb[0x60:])
	f.roCompat = le.Uint32(sb[0x64:])
	f.firstMetaBG = uint64(le.Uint32(sb[0x104:]))
	f.blocks = uint64(le.Uint32(sb[0x4:]))
	if f.incompat&incompat64bit != 0 {
		f.blocks |= uint64(le.Uint32(sb[0x150:])) << 32
	}
	if un := f.incompat &^ incompatSupported; un != 0 {
		var what []string
		for bit, name := range map[uint32]string{incompatCompression: "compression", incompatJournalDev: "external journal device", incompatDirData: "dirdata", incompatEncrypt: "encryption"} {
			if un&bit != 0 {
				what = append(what, name)
			}
		}
		return nil, bad("unsupported incompatible features 0x%x %v", un, what)
	}
	f.inodeSize = 128
	if le.Uint32(sb[0x4c:]) >= 1 {
		f.inodeSize = int64(le.Uint16(sb[0x58:]))
	}
	if f.inodeSize < 128 || f.inodeSize > f.bs || f.inodeSize&(f.inodeSize-1) != 0 {
		return nil, bad("inode size %d (want a power of two from 128 to the block size)", f.inodeSize)
	}
	f.descSize = 32
	if f.incompat&incompat64bit != 0 {
		f.descSize = int64(le.Uint16(sb[0xfe:]))
		if f.descSize < 64 || f.descSize > 1024 || f.descSize&(f.descSize-1) != 0 {
			return nil, bad("group descriptor size %d (want a power of two from 64 to 1024)", f.descSize)
		}
	}
	if f.ipg == 0 || f.ipg > uint32(8*f.bs) || f.inodesCount == 0 || f.inodesCount%f.ipg != 0 {
		return nil, bad("%d inodes in groups of %d", f.inodesCount, f.ipg)
	}
	if f.bpg == 0 || f.bpg > uint64(8*f.bs) && le.Uint32(sb[0x1c:]) == logBS {
		return nil, bad("%d blocks per group", f.bpg)
	}
	if f.firstDataBlock > 1 {
		return nil, bad("first data block %d", f.firstDataBlock)
	}
	if f.blocks == 0 || f.blocks > uint64(size/f.bs) {
		return nil, bad("the filesystem has %d blocks of %d bytes, but its partition holds %d bytes (truncated image?)", f.blocks, f.bs, size)
	}
	return f, nil
}

// read reads len(p) bytes at byte off of the filesystem.
func (f *ext4FS) read(p []byte, off int64) error {
	if off < 0 || off+int64(len(p)) > f.size {
		return fmt.Errorf("read of %d bytes at byte %d is outside the filesystem (%d bytes)", len(p), f.base+off, f.size)
	}
	_, err := readFull(f.r, p, f.base+off, f.base+f.size)
	return err
}

func (f *ext4FS) hasSuper(group uint64) bool {
	if f.roCompat&roCompatSparseSuper == 0 || group <= 1 {
		return true
	}
	for _, b := range []uint64{3, 5, 7} {
		n := b
		for n < group {
			n *= b
		}
		if n == group {
			return true
		}
	}
	return false
}

// inodeTable returns the first block of group g's inode table.
func (f *ext4FS) inodeTable(g uint64) (uint64, error) {
	perBlock := uint64(f.bs / f.descSize)
	var blk uint64
	if f.incompat&incompatMetaBG != 0 && g/perBlock >= f.firstMetaBG {
		// The kernel's descriptor_loc: the first block of the meta
		// group's first group, after its superblock backup if any.
		first := g / perBlock * perBlock
		blk = f.firstDataBlock + first*f.bpg
		if f.hasSuper(first) {
			blk++
		}
		if f.bs == 1024 && first == 0 && f.firstDataBlock == 0 {
			blk++
		}
	} else {
		// The table follows the block holding the superblock (byte
		// 1024), whatever first_data_block says (bigalloc with 1 KiB
		// blocks has it 0).
		blk = uint64(1024/f.bs) + 1 + g/perBlock
	}
	if blk >= f.blocks {
		return 0, fmt.Errorf("group descriptor %d would lie in block %d, beyond the filesystem's %d blocks", g, blk, f.blocks)
	}
	off := int64(blk)*f.bs + int64(g%perBlock)*f.descSize
	d := make([]byte, f.descSize)
	if err := f.read(d, off); err != nil {
		return 0, fmt.Errorf("group descriptor %d: %w", g, err)
	}
	t := uint64(le.Uint32(d[0x8:]))
	if f.descSize >= 64 {
		t |= uint64(le.Uint32(d[0x28:])) << 32
	}
	return t, nil
}

// inode is the part of an on-disk inode a walk needs.
type inode struct {
	num     uint32
	mode    uint16
	uid     uint32
	gid     uint32
	size    int64
	flags   uint32
	links   uint16
	block   [60]byte
	mtime   time.Time
	inline  []byte // the system.data xattr of an inline-data inode
	diskOff int64  // where the inode lies on the disk, for messages
}

func (f *ext4FS) readInode(num uint32) (*inode, error) {
	if num == 0 || num > f.inodesCount {
		return nil, fmt.Errorf("inode number %d out of range 1..%d", num, f.inodesCount)
	}
	g, idx := uint64(num-1)/uint64(f.ipg), uint64(num-1)%uint64(f.ipg)
	table, err := f.inodeTable(g)
	if err != nil {
		return nil, fmt.Errorf("inode %d: %w", num, err)
	}
	off := int64(table)*f.bs + int64(idx)*f.inodeSize
	if table >= f.blocks || off+f.inodeSize > int64(f.blocks)*f.bs {
		return nil, fmt.Errorf("inode %d: inode table of group %d at block %d lies beyond the filesystem", num, g, table)
	}
	raw := make([]byte, f.inodeSize)
	if err := f.read(raw, off); err != nil {
		return nil, fmt.Errorf("inode %d: %w", num, err)
	}
	in := &inode{num: num, diskOff: f.base + off}
	in.mode = le.Uint16(raw[0:])
	in.uid = uint32(le.Uint16(raw[2:])) | uint32(le.Uint16(raw[0x78:]))<<16
	in.gid = uint32(le.Uint16(raw[0x18:])) | uint32(le.Uint16(raw[0x7a:]))<<16
	in.links = le.Uint16(raw[0x1a:])
	in.flags = le.Uint32(raw[0x20:])
	copy(in.block[:], raw[0x28:0x64])
	size := uint64(le.Uint32(raw[0x4:])) | uint64(le.Uint32(raw[0x6c:]))<<32
	// Block numbers within a file are 32 bits, so no file is larger than
	// 2^32 blocks. A larger size is corruption; one below it is read in
	// full (holes as zeros), so time stays proportional to what the
	// format allows (16 TiB at 4 KiB blocks: hours of hashing for a
	// hostile sparse file, never an endless loop).
	if size > uint64(f.bs)<<32 {
		return nil, fmt.Errorf("inode %d (at byte %d): size %d is beyond the 2^32 blocks a file can have", num, in.diskOff, size)
	}
	in.size = int64(size)
	sec := int64(int32(le.Uint32(raw[0x10:])))
	var nsec int64
	extra := int64(0)
	if f.inodeSize > 128 {
		extra = int64(le.Uint16(raw[0x80:]))
		if 128+extra > f.inodeSize {
			return nil, fmt.Errorf("inode %d (at byte %d): extra size %d overflows the %d-byte inode", num, in.diskOff, extra, f.inodeSize)
		}
	}
	if extra >= 12 {
		x := le.Uint32(raw[0x88:])
		sec += int64(x&3) << 32
		nsec = int64(x >> 2)
		if nsec > 999999999 {
			nsec = 0
		}
	}
	in.mtime = time.Unix(sec, nsec)
	if in.flags&flagInlineData != 0 {
		v, err := inlineXattr(raw, 128+extra)
		if err != nil {
			return nil, fmt.Errorf("inode %d (at byte %d): inline data: %w", num, in.diskOff, err)
		}
		in.inline = v
	}
	return in, nil
}

// inlineXattr finds the value of system.data among the extended attributes
// kept in the inode after its extra fields.
func inlineXattr(raw []byte, start int64) ([]byte, error) {
	if start+4 > int64(len(raw)) || le.Uint32(raw[start:]) != 0xea020000 {
		return nil, nil
	}
	first := start + 4
	for at := first; at+16 <= int64(len(raw)); {
		if le.Uint32(raw[at:]) == 0 {
			return nil, nil
		}
		nameLen, index := int64(raw[at]), raw[at+1]
		voff, inum, vsize := int64(le.Uint16(raw[at+2:])), le.Uint32(raw[at+4:]), int64(le.Uint32(raw[at+8:]))
		if at+16+nameLen > int64(len(raw)) {
			return nil, fmt.Errorf("xattr entry at byte %d of the inode overflows it", at)
		}
		name := raw[at+16 : at+16+nameLen]
		if index == 7 && string(name) == "data" {
			if inum != 0 {
				return nil, errors.New("system.data in an EA inode")
			}
			if first+voff+vsize > int64(len(raw)) {
				return nil, fmt.Errorf("system.data value (%d bytes at %d) overflows the inode", vsize, voff)
			}
			return raw[first+voff : first+voff+vsize], nil
		}
		at += (16 + nameLen + 3) &^ 3
	}
	return nil, nil
}

// extent maps file blocks [lblk, lblk+n) to disk blocks [pblk, pblk+n) of
// the filesystem; uninit extents read as zeros.
type extent struct {
	lblk   uint64
	n      uint64
	pblk   uint64
	uninit bool
}

// extents reads an inode's extent tree into a sorted list of the extents
// that lie within its size. Keys must strictly increase and each level's
// depth be its parent's minus one, so a tree that loops or shares nodes
// fails instead of multiplying. With a claimer (Walk's pass over a file
// met for the first time), every tree node and every block mapped within
// the size is claimed; reads pass nil.
func (f *ext4FS) extents(in *inode, cl *claimer) ([]extent, error) {
	limit := (uint64(in.size) + uint64(f.bs) - 1) / uint64(f.bs)
	var out []extent
	var next uint64 // the lowest logical block the next extent may start at
	nodes := 0
	var walk func(node []byte, depth int, where string) error
	walk = func(node []byte, depth int, where string) error {
		nodes++
		if nodes > maxExtentNodes {
			return fmt.Errorf("more than %d extent tree nodes", maxExtentNodes)
		}
		if len(node) < 12 || le.Uint16(node) != extentMagic {
			return fmt.Errorf("extent node %s: bad magic", where)
		}
		entries, max, d := int(le.Uint16(node[2:])), int(le.Uint16(node[4:])), int(le.Uint16(node[6:]))
		if entries > max || 12+12*max > len(node) {
			return fmt.Errorf("extent node %s: %d entries of %d fit a %d-byte node", where, entries, max, len(node))
		}
		if depth >= 0 && d != depth || d > maxExtentDepth {
			return fmt.Errorf("extent node %s: depth %d (want %d, at most %d)", where, d, depth, maxExtentDepth)
		}
		for i := range entries {
			e := node[12+12*i:]
			lblk := uint64(le.Uint32(e))
			if lblk < next {
				return fmt.Errorf("extent node %s: entry %d starts at file block %d, before %d (overlapping or looping tree)", where, i, lblk, next)
			}
			if d == 0 {
				n := uint64(le.Uint16(e[4:]))
				uninit := n > 32768
				if uninit {
					n -= 32768
				}
				pblk := uint64(le.Uint16(e[6:]))<<32 | uint64(le.Uint32(e[8:]))
				if n == 0 || pblk+n > f.blocks {
					return fmt.Errorf("extent node %s: entry %d maps %d blocks at block %d, outside the filesystem's %d", where, i, n, pblk, f.blocks)
				}
				next = lblk + n
				if lblk < limit {
					if len(out) >= maxExtents {
						return fmt.Errorf("more than %d extents", maxExtents)
					}
					out = append(out, extent{lblk: lblk, n: n, pblk: pblk, uninit: uninit})
					if cl != nil {
						if err := cl.claim(pblk, min(n, limit-lblk), "", lblk); err != nil {
							return err
						}
					}
				}
				continue
			}
			child := uint64(le.Uint16(e[8:]))<<32 | uint64(le.Uint32(e[4:]))
			if child == 0 || child >= f.blocks {
				return fmt.Errorf("extent node %s: entry %d points at block %d, outside the filesystem", where, i, child)
			}
			next = lblk
			if cl != nil {
				if err := cl.claim(child, 1, "extent tree ", lblk); err != nil {
					return err
				}
			}
			buf := make([]byte, f.bs)
			if err := f.read(buf, int64(child)*f.bs); err != nil {
				return err
			}
			if err := walk(buf, d-1, fmt.Sprintf("at block %d", child)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(in.block[:], -1, "in the inode"); err != nil {
		return nil, fmt.Errorf("inode %d (at byte %d): %w", in.num, in.diskOff, err)
	}
	return out, nil
}

// content reads the data of an inode (file, directory or slow symlink):
// extents, an indirect block map, or inline data. Holes and uninitialized
// extents read as zeros. Safe for concurrent use.
type content struct {
	f       *ext4FS
	in      *inode
	extents []extent
	inline  []byte
	bmap    bool
}

func (f *ext4FS) content(in *inode) (*content, error) {
	c := &content{f: f, in: in}
	switch {
	case in.flags&flagInlineData != 0:
		c.inline = append(bytes.Clone(in.block[:]), in.inline...)
		if int64(len(c.inline)) < in.size {
			// Inline files are at most 60 bytes plus the xattr; the rest
			// would be a corrupt size, read as zeros like a hole.
			c.inline = append(c.inline, make([]byte, min(in.size-int64(len(c.inline)), 1<<16))...)
		}
	case in.flags&flagExtents != 0:
		ex, err := f.extents(in, nil)
		if err != nil {
			return nil, err
		}
		c.extents = ex
	default:
		c.bmap = true
	}
	return c, nil
}

// ReadAt reads file bytes [off, off+len(p)) clipped to the size.
func (c *content) ReadAt(p []byte, off int64) (int, error) {
	if off >= c.in.size {
		return 0, io.EOF
	}
	if rest := c.in.size - off; int64(len(p)) > rest {
		p = p[:rest]
	}
	if c.inline != nil {
		n := copy(p, c.inline[min(int64(len(c.inline)), off):])
		clear(p[n:])
		return len(p), nil
	}
	bs := c.f.bs
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		lblk := uint64(pos / bs)
		pblk, run, hole, err := c.lookup(lblk)
		if err != nil {
			return done, err
		}
		want := min(int64(len(p)-done), int64(run)*bs-pos%bs)
		chunk := p[done : done+int(want)]
		if hole {
			clear(chunk)
		} else if err := c.f.read(chunk, int64(pblk)*bs+pos%bs); err != nil {
			return done, fmt.Errorf("inode %d, file byte %d: %w", c.in.num, pos, err)
		}
		done += int(want)
	}
	return done, nil
}

// lookup maps file block lblk to a disk block and how many blocks from
// there stay contiguous (or stay a hole).
func (c *content) lookup(lblk uint64) (pblk, run uint64, hole bool, err error) {
	if c.bmap {
		return c.lookupMap(lblk)
	}
	ex := c.extents
	i := sort.Search(len(ex), func(i int) bool { return ex[i].lblk+ex[i].n > lblk })
	if i == len(ex) {
		return 0, 1 << 32, true, nil
	}
	e := ex[i]
	if lblk < e.lblk {
		return 0, e.lblk - lblk, true, nil
	}
	return e.pblk + lblk - e.lblk, e.n - (lblk - e.lblk), e.uninit, nil
}

// lookupMap walks the ext2/3 indirect block map: 12 direct blocks, then
// single, double and triple indirect blocks; 0 is a hole.
func (c *content) lookupMap(lblk uint64) (pblk, run uint64, hole bool, err error) {
	per := uint64(c.f.bs / 4)
	ptr := func(i int) uint64 { return uint64(le.Uint32(c.in.block[4*i:])) }
	var root uint64
	var path []uint64
	switch {
	case lblk < 12:
		p := ptr(int(lblk))
		if p == 0 {
			return 0, 1, true, nil
		}
		return c.checkBlock(p)
	case lblk-12 < per:
		root, path = ptr(12), []uint64{lblk - 12}
	case lblk-12-per < per*per:
		x := lblk - 12 - per
		root, path = ptr(13), []uint64{x / per, x % per}
	case lblk-12-per-per*per < per*per*per:
		x := lblk - 12 - per - per*per
		root, path = ptr(14), []uint64{x / (per * per), x / per % per, x % per}
	default:
		return 0, 1 << 32, true, nil
	}
	blk := root
	buf := make([]byte, 4)
	for _, idx := range path {
		if blk == 0 {
			return 0, 1, true, nil
		}
		if blk >= c.f.blocks {
			return 0, 0, false, fmt.Errorf("inode %d: indirect block %d outside the filesystem", c.in.num, blk)
		}
		if err := c.f.read(buf, int64(blk)*c.f.bs+int64(idx)*4); err != nil {
			return 0, 0, false, err
		}
		blk = uint64(le.Uint32(buf))
	}
	if blk == 0 {
		return 0, 1, true, nil
	}
	return c.checkBlock(blk)
}

func (c *content) checkBlock(p uint64) (uint64, uint64, bool, error) {
	if p >= c.f.blocks {
		return 0, 0, false, fmt.Errorf("inode %d: data block %d outside the filesystem's %d", c.in.num, p, c.f.blocks)
	}
	return p, 1, false, nil
}

// sequential reads a content front to back.
type sequential struct {
	c   *content
	off int64
}

func (s *sequential) Read(p []byte) (int, error) {
	n, err := s.c.ReadAt(p, s.off)
	s.off += int64(n)
	return n, err
}

func (s *sequential) Close() error { return nil }

// file type bits of i_mode.
const (
	sIFMT   = 0xf000
	sIFSOCK = 0xc000
	sIFLNK  = 0xa000
	sIFREG  = 0x8000
	sIFBLK  = 0x6000
	sIFDIR  = 0x4000
	sIFCHR  = 0x2000
	sIFIFO  = 0x1000
)

// walk visits every entry under the root directory, with paths under
// prefix, parents before children. A directory reached twice (a loop or a
// directory hard link, which ext4 never makes) is an error.
func (f *ext4FS) walk(prefix string, fn func(*Entry) error) error {
	root, err := f.readInode(ext4RootInode)
	if err != nil {
		return err
	}
	if root.mode&sIFMT != sIFDIR {
		return fmt.Errorf("root inode (at byte %d) is not a directory (mode 0%o)", root.diskOff, root.mode)
	}
	if prefix != "" {
		e, err := f.entry(prefix, root, nil)
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	type pending struct {
		path string
		in   *inode
	}
	seen := map[uint32]bool{ext4RootInode: true}
	dirBlocks := map[uint64]uint32{}
	// Each file's content is mapped and its blocks claimed once, at its
	// first name (ext4claim.go); firstName keeps that path, targets the
	// target of each symlink met.
	owned := blockSet{}
	firstName := map[uint32]string{}
	targets := map[uint32]string{}
	stack := []pending{{prefix, root}}
	block := make([]byte, f.bs)
	for len(stack) > 0 {
		dir := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		var subdirs []pending
		err := f.readDir(dir.in, block, dirBlocks, func(name []byte, num uint32) error {
			in, err := f.readInode(num)
			if err != nil {
				return fmt.Errorf("%s/%s: %w", dir.path, name, err)
			}
			p := dir.path + "/" + string(name)
			if in.mode == 0 || in.links == 0 && in.mode&sIFMT != sIFDIR {
				return fmt.Errorf("%s: directory entry names inode %d, which is free (corrupt filesystem)", p, num)
			}
			first, again := firstName[num]
			if t := in.mode & sIFMT; !again && (t == sIFREG || t == sIFLNK && f.slowSymlink(in)) {
				if err := f.claimContent(in, owned); err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
			}
			e, err := f.entry(p, in, targets)
			if err != nil {
				return err
			}
			if !again {
				firstName[num] = p
			} else if e.Type == File {
				// One file, whatever its links count says: a count
				// left at 1 must not make each name read it again.
				e.Link = first
			}
			if e.Type == Dir {
				if seen[num] {
					return fmt.Errorf("%s: directory inode %d is reached twice (the tree loops)", p, num)
				}
				seen[num] = true
				subdirs = append(subdirs, pending{p, in})
			}
			return fn(e)
		})
		if err != nil {
			return err
		}
		for i := len(subdirs) - 1; i >= 0; i-- {
			stack = append(stack, subdirs[i])
		}
	}
	return nil
}

// entry converts an inode found at path p. targets caches the target of
// each symlink inode read, so a symlink of many names is read once.
func (f *ext4FS) entry(p string, in *inode, targets map[uint32]string) (*Entry, error) {
	e := &Entry{Path: p, Mode: uint32(in.mode) & 0o7777, UID: in.uid, GID: in.gid, ModTime: in.mtime}
	switch in.mode & sIFMT {
	case sIFREG:
		e.Type, e.Size = File, in.size
		e.open = func() (io.ReadCloser, error) {
			c, err := f.content(in)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			return &sequential{c: c}, nil
		}
	case sIFDIR:
		e.Type = Dir
	case sIFLNK:
		e.Type = Symlink
		t, ok := targets[in.num]
		if !ok {
			var err error
			if t, err = f.symlink(in); err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			if targets != nil {
				targets[in.num] = t
			}
		}
		e.Target = t
	case sIFCHR, sIFBLK:
		e.Type, e.Special = Other, fs.ModeDevice
		if in.mode&sIFMT == sIFCHR {
			e.Special |= fs.ModeCharDevice
		}
		if old := le.Uint32(in.block[0:]); old != 0 {
			e.DevMajor, e.DevMinor = old>>8&0xff, old&0xff
		} else {
			dev := le.Uint32(in.block[4:])
			e.DevMajor, e.DevMinor = (dev&0xfff00)>>8, dev&0xff|(dev>>12)&0xfff00
		}
	case sIFIFO:
		e.Type, e.Special = Other, fs.ModeNamedPipe
	case sIFSOCK:
		e.Type, e.Special = Other, fs.ModeSocket
	default:
		return nil, fmt.Errorf("%s: inode %d (at byte %d) has unknown file type in mode 0%o", p, in.num, in.diskOff, in.mode)
	}
	return e, nil
}

// symlink reads a link target: in the inode itself when short (a "fast"
// symlink), else from its data.
func (f *ext4FS) symlink(in *inode) (string, error) {
	if in.size == 0 || in.size > maxSymlinkSize {
		return "", fmt.Errorf("inode %d (at byte %d): symlink of %d bytes", in.num, in.diskOff, in.size)
	}
	if !f.slowSymlink(in) {
		return string(in.block[:in.size]), nil
	}
	c, err := f.content(in)
	if err != nil {
		return "", err
	}
	buf := make([]byte, in.size)
	if _, err := c.ReadAt(buf, 0); err != nil {
		return "", err
	}
	return string(buf), nil
}

// slowSymlink reports whether a symlink inode of a valid size keeps its
// target in data blocks (or inline data) rather than in i_block.
func (f *ext4FS) slowSymlink(in *inode) bool {
	return in.size > 0 && in.size <= maxSymlinkSize && (in.size >= 60 || in.flags&(flagExtents|flagInlineData) != 0)
}

// readDir calls fn for each entry of a directory but "." and "..", in the
// order they are stored. Hash-indexed directories are read linearly: their
// index blocks hold one empty entry spanning the block, skipped like any
// deleted entry.
//
// A directory block belongs to one directory, once: owners records the
// directory inode of each block read so far in the filesystem, and a block
// met again is an error. Without it, a block map pointing every logical
// block at one block of 300 entries (three blocks of metadata: the direct
// pointers, an indirect and a double indirect block) lists its entries
// once per 4 KiB of declared directory size: 78 million entries per GiB,
// from a 16 MiB image (a 200 KB qcow2).
func (f *ext4FS) readDir(dir *inode, block []byte, owners map[uint64]uint32, fn func(name []byte, ino uint32) error) error {
	if dir.size > maxDirSize {
		return fmt.Errorf("directory inode %d (at byte %d): size %d", dir.num, dir.diskOff, dir.size)
	}
	c, err := f.content(dir)
	if err != nil {
		return err
	}
	if c.inline != nil {
		// Inline directories start with the parent's inode number, then
		// entries fill the rest of i_block and the system.data xattr.
		data := c.inline[:min(int64(len(c.inline)), dir.size)]
		if len(data) < 4 {
			return fmt.Errorf("inline directory inode %d is %d bytes", dir.num, len(data))
		}
		if err := f.dirBlock(dir, data[4:min(60, len(data))], -1, fn); err != nil {
			return err
		}
		if len(data) > 60 {
			return f.dirBlock(dir, data[60:], -1, fn)
		}
		return nil
	}
	for off := int64(0); off < dir.size; off += f.bs {
		lblk := uint64(off / f.bs)
		pblk, _, hole, err := c.lookup(lblk)
		if err != nil {
			return err
		}
		if hole {
			continue
		}
		if owner, ok := owners[pblk]; ok {
			if owner == dir.num {
				return fmt.Errorf("directory inode %d (at byte %d): block %d at file offset %d is mapped twice in the directory (a block map that repeats a block; corrupt or crafted filesystem)", dir.num, dir.diskOff, pblk, off)
			}
			return fmt.Errorf("directory inode %d (at byte %d): block %d at file offset %d is also a block of directory inode %d (directories sharing a block; corrupt or crafted filesystem)", dir.num, dir.diskOff, pblk, off, owner)
		}
		owners[pblk] = dir.num
		n := min(f.bs, dir.size-off)
		if _, err := c.ReadAt(block[:n], off); err != nil {
			return err
		}
		if err := f.dirBlock(dir, block[:n], off, fn); err != nil {
			return err
		}
	}
	return nil
}

// dirBlock parses the entries of one directory block (at file offset off,
// -1 for inline data).
func (f *ext4FS) dirBlock(dir *inode, b []byte, off int64, fn func(name []byte, ino uint32) error) error {
	for pos := 0; pos+8 <= len(b); {
		num := le.Uint32(b[pos:])
		recLen := int(le.Uint16(b[pos+4:]))
		if f.bs >= 65536 && (recLen == 65535 || recLen == 0) {
			recLen = 65536
		}
		nameLen := int(b[pos+6])
		if f.incompat&incompatFiletype == 0 {
			nameLen = int(le.Uint16(b[pos+6:]))
		}
		if recLen < 8 || recLen%4 != 0 || pos+recLen > len(b) || 8+nameLen > recLen {
			return fmt.Errorf("directory inode %d (at byte %d): corrupt entry at byte %d of block at file offset %d (record length %d, name length %d)", dir.num, dir.diskOff, pos, off, recLen, nameLen)
		}
		name := b[pos+8 : pos+8+nameLen]
		pos += recLen
		if num == 0 || nameLen == 0 || string(name) == "." || string(name) == ".." {
			continue
		}
		if bytes.IndexByte(name, '/') >= 0 || bytes.IndexByte(name, 0) >= 0 {
			return fmt.Errorf("directory inode %d (at byte %d): entry name %q holds '/' or NUL (corrupt filesystem)", dir.num, dir.diskOff, name)
		}
		if err := fn(name, num); err != nil {
			return err
		}
	}
	return nil
}
