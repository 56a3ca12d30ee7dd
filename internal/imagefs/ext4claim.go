package imagefs

import (
	"fmt"
	"math/bits"
)

// Block ownership of file contents. A file's block map is data of the
// image: without a check, a 16 MiB image can map one data block at every
// position of a 4 GiB file (the 12 direct pointers, an indirect and a
// double indirect block all leading to it) and name that inode from every
// entry of a directory, so reading the tree reads terabytes. Walk therefore
// maps each file (and slow symlink) once, at its first name, and claims
// every block its content can read: data blocks within its size, indirect
// blocks and extent tree nodes. A block belongs to one file, once, as in
// every filesystem e2fsck accepts (it reports a block claimed twice as
// "multiply-claimed"). Later names of the inode are links to the first
// (Entry.Link), so its content is read once. The data of all files read
// this way is at most the filesystem's size; holes cost nothing on disk and
// read as zeros.

// blockSet records claimed blocks of one filesystem, one bit per block,
// in chunks allocated on first use: at most blocks/8 bytes, 32 MiB for a
// 1 TiB filesystem of 4 KiB blocks, and little for a sparse one.
type blockSet map[uint64]*[blockChunkWords]uint64

const blockChunkWords = 512 // 32768 blocks a chunk

// claim marks blocks [b, b+n). When one of them was marked already, it
// returns that block and false (blocks before it may stay marked: the walk
// stops at the error).
func (s blockSet) claim(b, n uint64) (uint64, bool) {
	const chunkBits = blockChunkWords * 64
	for n > 0 {
		c := s[b/chunkBits]
		if c == nil {
			c = new([blockChunkWords]uint64)
			s[b/chunkBits] = c
		}
		bit := b % chunkBits
		w, lo := bit/64, bit%64
		k := min(n, 64-lo)
		mask := ^uint64(0) >> (64 - k) << lo
		if hit := c[w] & mask; hit != 0 {
			return b - lo + uint64(bits.TrailingZeros64(hit)), false
		}
		c[w] |= mask
		b, n = b+k, n-k
	}
	return 0, true
}

// claimer claims the blocks of one inode's content. It keeps the runs it
// claimed, so that a block met again can be told apart: mapped twice in
// this file, or also by another.
type claimer struct {
	f     *ext4FS
	in    *inode
	owned blockSet
	runs  []extent // lblk is unused
}

// claim takes blocks [pblk, pblk+n), which the file maps at file block
// lblk on; kind is "" for data, or names the metadata ("indirect ",
// "extent tree "). Errors do not name the inode: callers wrap them.
func (c *claimer) claim(pblk, n uint64, kind string, lblk uint64) error {
	dup, ok := c.owned.claim(pblk, n)
	if ok {
		if l := len(c.runs) - 1; l >= 0 && c.runs[l].pblk+c.runs[l].n == pblk {
			c.runs[l].n += n
		} else {
			c.runs = append(c.runs, extent{pblk: pblk, n: n})
		}
		return nil
	}
	off := int64(lblk) * c.f.bs
	if kind == "" {
		off += int64(dup-pblk) * c.f.bs
	}
	for _, r := range c.runs {
		if dup >= r.pblk && dup < r.pblk+r.n {
			return fmt.Errorf("%sblock %d at file offset %d is mapped twice in the file (a block map that repeats a block; corrupt or crafted filesystem)", kind, dup, off)
		}
	}
	why := "files sharing a block; corrupt or crafted filesystem"
	if c.f.roCompat&roCompatSharedBlocks != 0 {
		why = "the filesystem declares shared_blocks, the deduplication of read-only Android images, which is not read"
	}
	return fmt.Errorf("%sblock %d at file offset %d is also mapped by an earlier file (%s)", kind, dup, off, why)
}

// claimContent claims the blocks of a file or slow symlink met for the
// first time (see the top of this file).
func (f *ext4FS) claimContent(in *inode, owned blockSet) error {
	cl := &claimer{f: f, in: in, owned: owned}
	switch {
	case in.flags&flagInlineData != 0:
		return nil
	case in.flags&flagExtents != 0:
		_, err := f.extents(in, cl)
		return err
	}
	if err := f.claimMap(cl); err != nil {
		return fmt.Errorf("inode %d (at byte %d): %w", in.num, in.diskOff, err)
	}
	return nil
}

// claimMap claims what an indirect block map reaches within the file's
// size: each indirect block, read once, and each data block. Zero
// pointers are holes and skip their whole subtree.
func (f *ext4FS) claimMap(cl *claimer) error {
	in := cl.in
	limit := (uint64(in.size) + uint64(f.bs) - 1) / uint64(f.bs)
	per := uint64(f.bs / 4)
	ptr := func(i int) uint64 { return uint64(le.Uint32(in.block[4*i:])) }
	data := func(p, lblk uint64) error {
		if p >= f.blocks {
			return fmt.Errorf("data block %d at file offset %d is outside the filesystem's %d", p, int64(lblk)*f.bs, f.blocks)
		}
		return cl.claim(p, 1, "", lblk)
	}
	for i := range uint64(min(12, limit)) {
		if p := ptr(int(i)); p != 0 {
			if err := data(p, i); err != nil {
				return err
			}
		}
	}
	var bufs [3][]byte // one per level: the walk is depth first
	// walk claims the indirect block blk of the given level (1: it points
	// at data) and what it reaches, file blocks from first on.
	var walk func(blk uint64, level int, first uint64) error
	walk = func(blk uint64, level int, first uint64) error {
		if blk == 0 || first >= limit {
			return nil
		}
		if blk >= f.blocks {
			return fmt.Errorf("indirect block %d for file offset %d is outside the filesystem's %d", blk, int64(first)*f.bs, f.blocks)
		}
		if err := cl.claim(blk, 1, "indirect ", first); err != nil {
			return err
		}
		if bufs[level-1] == nil {
			bufs[level-1] = make([]byte, f.bs)
		}
		buf := bufs[level-1]
		if err := f.read(buf, int64(blk)*f.bs); err != nil {
			return fmt.Errorf("indirect block %d: %w", blk, err)
		}
		span := uint64(1)
		for range level - 1 {
			span *= per
		}
		for i := range per {
			p, lblk := uint64(le.Uint32(buf[4*i:])), first+i*span
			if lblk >= limit {
				break
			}
			if p == 0 {
				continue
			}
			var err error
			if level == 1 {
				err = data(p, lblk)
			} else {
				err = walk(p, level-1, lblk)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(ptr(12), 1, 12); err != nil {
		return err
	}
	if err := walk(ptr(13), 2, 12+per); err != nil {
		return err
	}
	return walk(ptr(14), 3, 12+per+per*per)
}
