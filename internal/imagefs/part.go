package imagefs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// partition is one partition of a disk: a byte range and what the table
// says it holds.
type partition struct {
	num         int // 1-based: GPT entry index + 1; MBR 1-4 primary, 5+ logical
	start, size int64
	kind        string // "gpt <type-guid>" or "mbr type 0x83"
}

var errNoDiskLayout = errors.New("no ext2/3/4 filesystem, GPT or MBR")

const (
	maxGPTEntries = 4096 // sgdisk writes 128; nothing sane has thousands
	maxLogical    = 256  // logical partitions followed in an MBR extended chain
)

// hasGPT reports whether a GPT header signature lies at byte 512 or 4096.
func hasGPT(ra io.ReaderAt) bool {
	for _, sector := range []int64{512, 4096} {
		b := make([]byte, 8)
		if _, err := ra.ReadAt(b, sector); err == nil && string(b) == "EFI PART" {
			return true
		}
	}
	return false
}

// readPartitions reads the disk's GPT, else its MBR. scheme is "gpt",
// "mbr", or "" when the disk has neither.
func readPartitions(ra io.ReaderAt, size int64) (parts []partition, scheme string, err error) {
	for _, sector := range []int64{512, 4096} {
		hdr := make([]byte, 92)
		if _, err := ra.ReadAt(hdr, sector); err != nil {
			continue
		}
		if string(hdr[:8]) == "EFI PART" {
			parts, err := readGPT(ra, size, sector)
			return parts, "gpt", err
		}
	}
	mbr := make([]byte, 512)
	if _, err := ra.ReadAt(mbr, 0); err != nil {
		return nil, "", nil
	}
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		return nil, "", nil
	}
	parts, err = readMBR(ra, size, mbr)
	if err != nil {
		return nil, "mbr", err
	}
	return parts, "mbr", nil
}

func readGPT(ra io.ReaderAt, size, sector int64) ([]partition, error) {
	hdr := make([]byte, 512)
	if _, err := ra.ReadAt(hdr, sector); err != nil && err != io.EOF {
		return nil, fmt.Errorf("GPT header at byte %d: %w", sector, err)
	}
	le := binary.LittleEndian
	hsize := le.Uint32(hdr[12:])
	if hsize < 92 || hsize > 512 {
		return nil, fmt.Errorf("GPT header at byte %d: header size %d outside 92..512", sector, hsize)
	}
	want := le.Uint32(hdr[16:])
	check := bytes.Clone(hdr[:hsize])
	clear(check[16:20])
	if got := crc32.ChecksumIEEE(check); got != want {
		return nil, fmt.Errorf("GPT header at byte %d: checksum %08x, header says %08x (corrupt table)", sector, got, want)
	}
	entriesLBA := le.Uint64(hdr[72:])
	n := le.Uint32(hdr[80:])
	esize := le.Uint32(hdr[84:])
	if n > maxGPTEntries {
		return nil, fmt.Errorf("GPT header at byte %d: %d partition entries (at most %d read)", sector, n, maxGPTEntries)
	}
	if esize < 128 || esize > 4096 || esize%8 != 0 {
		return nil, fmt.Errorf("GPT header at byte %d: partition entry size %d (want 128..4096, a multiple of 8)", sector, esize)
	}
	tableOff := int64(entriesLBA) * sector
	tableLen := int64(n) * int64(esize)
	if entriesLBA > uint64(size/sector) || tableOff+tableLen > size {
		return nil, fmt.Errorf("GPT header at byte %d: partition table at byte %d (%d bytes) lies beyond the disk's %d bytes", sector, tableOff, tableLen, size)
	}
	table := make([]byte, tableLen)
	if _, err := ra.ReadAt(table, tableOff); err != nil {
		return nil, fmt.Errorf("GPT partition table at byte %d: %w", tableOff, err)
	}
	if got := crc32.ChecksumIEEE(table); got != le.Uint32(hdr[88:]) {
		return nil, fmt.Errorf("GPT partition table at byte %d: checksum %08x, header says %08x (corrupt table)", tableOff, got, le.Uint32(hdr[88:]))
	}
	var parts []partition
	for i := range int(n) {
		e := table[i*int(esize):]
		if allZero(e[:16]) {
			continue
		}
		first, last := le.Uint64(e[32:]), le.Uint64(e[40:])
		if last < first || last >= uint64(size/sector) {
			return nil, fmt.Errorf("GPT partition %d (entry at byte %d): sectors %d..%d do not fit the disk's %d sectors (truncated image?)", i+1, tableOff+int64(i)*int64(esize), first, last, size/sector)
		}
		parts = append(parts, partition{num: i + 1, start: int64(first) * sector, size: int64(last-first+1) * sector, kind: "gpt " + guidString(e[:16])})
	}
	return parts, nil
}

func readMBR(ra io.ReaderAt, size int64, mbr []byte) ([]partition, error) {
	le := binary.LittleEndian
	var parts []partition
	for i := range 4 {
		e := mbr[446+16*i:]
		typ := e[4]
		start, count := int64(le.Uint32(e[8:]))*512, int64(le.Uint32(e[12:]))*512
		if typ == 0 || count == 0 {
			continue
		}
		if typ == 0xee {
			return nil, fmt.Errorf("MBR at byte 0: protective entry for a GPT, but no GPT header at byte 512 or 4096")
		}
		if start+count > size {
			return nil, fmt.Errorf("MBR partition %d (entry at byte %d): bytes %d..%d lie beyond the disk's %d bytes (truncated image?)", i+1, 446+16*i, start, start+count, size)
		}
		if typ == 0x05 || typ == 0x0f || typ == 0x85 {
			logical, err := readEBRChain(ra, size, start, count)
			if err != nil {
				return nil, err
			}
			parts = append(parts, logical...)
			continue
		}
		parts = append(parts, partition{num: i + 1, start: start, size: count, kind: fmt.Sprintf("mbr type 0x%02x", typ)})
	}
	return parts, nil
}

// readEBRChain follows the extended boot records of an extended partition:
// each holds one logical partition (relative to itself) and a link to the
// next record (relative to the extended partition).
func readEBRChain(ra io.ReaderAt, size, base, extSize int64) ([]partition, error) {
	le := binary.LittleEndian
	var parts []partition
	seen := map[int64]bool{}
	at := base
	for n := 0; ; n++ {
		if n >= maxLogical {
			return nil, fmt.Errorf("MBR extended partition at byte %d: more than %d logical partitions", base, maxLogical)
		}
		if seen[at] {
			return nil, fmt.Errorf("MBR extended partition: the chain of boot records loops at byte %d", at)
		}
		seen[at] = true
		ebr := make([]byte, 512)
		if _, err := ra.ReadAt(ebr, at); err != nil {
			return nil, fmt.Errorf("extended boot record at byte %d: %w", at, err)
		}
		if ebr[510] != 0x55 || ebr[511] != 0xaa {
			return nil, fmt.Errorf("extended boot record at byte %d: no 0x55AA signature", at)
		}
		e := ebr[446:]
		if e[4] != 0 && le.Uint32(e[12:]) != 0 {
			start, count := at+int64(le.Uint32(e[8:]))*512, int64(le.Uint32(e[12:]))*512
			if start+count > size {
				return nil, fmt.Errorf("logical partition %d (record at byte %d): bytes %d..%d lie beyond the disk's %d bytes", 5+n, at, start, start+count, size)
			}
			parts = append(parts, partition{num: 5 + n, start: start, size: count, kind: fmt.Sprintf("mbr type 0x%02x", e[4])})
		}
		next := ebr[446+16:]
		if next[4] == 0 || le.Uint32(next[8:]) == 0 {
			return parts, nil
		}
		at = base + int64(le.Uint32(next[8:]))*512
		if at >= base+extSize {
			return nil, fmt.Errorf("extended boot record at byte %d links outside its extended partition", at)
		}
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// guidString formats a GPT GUID (mixed-endian) the way sgdisk prints it.
func guidString(b []byte) string {
	le := binary.LittleEndian
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X", le.Uint32(b), le.Uint16(b[4:]), le.Uint16(b[6:]), b[8:10], b[10:16])
}
