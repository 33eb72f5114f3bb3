package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Growing the last partition of a disk to the disk's end, in the table
// on the disk. An image written to a larger card leaves room behind its
// last partition; for a GPT, the backup header and entries also sit where
// the image ended, not at the end of the card, and must move there: a
// table whose backup is not at the end is one that tools "repair" and
// firmware may distrust.

// tableIO is the disk: the table is read and rewritten in place.
type tableIO interface {
	io.ReaderAt
	io.WriterAt
}

// growth is what growing a partition changed, in bytes.
type growth struct {
	table             string // "mbr" or "gpt"
	start, old, size  int64  // the partition's start, old and new size
	oldBackup, backup int64  // GPT: the backup header's old and new offset
	disk              int64  // the disk size the table now describes
	alreadyAtTheEnd   bool   // nothing to grow
}

// diskWrite is bytes of the table to write at an offset.
type diskWrite struct {
	what string
	off  int64
	b    []byte
}

// growLast grows partition partno (from 1) of the disk, diskSize bytes
// with sectors of ss bytes, to the disk's end rounded down to align
// bytes, rewriting the table. The partition must be the last one on the
// disk.
func growLast(d tableIO, diskSize int64, ss int64, partno int, align int64) (*growth, error) {
	mbr := make([]byte, 512)
	if _, err := d.ReadAt(mbr, 0); err != nil {
		return nil, fmt.Errorf("read the MBR: %w", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		return nil, errors.New("no partition table")
	}
	if mbr[446+4] == 0xee {
		return growGPT(d, diskSize, ss, partno, align, mbr)
	}
	return growMBR(d, diskSize, ss, partno, align, mbr)
}

func growMBR(d tableIO, diskSize, ss int64, partno int, align int64, mbr []byte) (*growth, error) {
	le := binary.LittleEndian
	if partno < 1 || partno > 4 {
		return nil, fmt.Errorf("MBR partition %d: only primary partitions 1-4 can grow", partno)
	}
	e := mbr[446+16*(partno-1):]
	switch e[4] {
	case 0:
		return nil, fmt.Errorf("MBR has no partition %d", partno)
	case 0x05, 0x0f, 0x85:
		return nil, fmt.Errorf("MBR partition %d is an extended partition", partno)
	}
	start, n := int64(le.Uint32(e[8:])), int64(le.Uint32(e[12:]))
	for i := 0; i < 4; i++ {
		o := mbr[446+16*i:]
		if i != partno-1 && o[4] != 0 && int64(le.Uint32(o[8:])) > start {
			return nil, fmt.Errorf("partition %d is not the last on the disk (partition %d follows it)", partno, i+1)
		}
	}
	// An MBR addresses 2^32 sectors.
	end := min(diskSize/ss, 1<<32-1)
	end = end * ss / align * align / ss
	g := &growth{table: "mbr", start: start * ss, old: n * ss, size: n * ss, disk: diskSize}
	if end <= start+n {
		g.alreadyAtTheEnd = true
		return g, nil
	}
	g.size = (end - start) * ss
	le.PutUint32(e[12:], uint32(end-start))
	copy(e[5:8], chs(uint64(end-1)))
	if _, err := d.WriteAt(mbr[:512], 0); err != nil {
		return nil, fmt.Errorf("write the MBR: %w", err)
	}
	return g, nil
}

// chs encodes an LBA for the 255-head, 63-sector geometry fdisk assumes,
// saturating past cylinder 1023 as fdisk does.
func chs(lba uint64) []byte {
	const heads, sectors = 255, 63
	c := lba / (heads * sectors)
	if c > 1023 {
		return []byte{0xfe, 0xff, 0xff}
	}
	return []byte{byte(lba / sectors % heads), byte(lba%sectors+1) | byte(c>>8)<<6, byte(c)}
}

// gptHeader is the fields of a GPT header we read and rewrite.
type gptHeader struct {
	raw                     []byte // the header sector
	self, alternate         uint64
	firstUsable, lastUsable uint64
	entriesLBA              uint64
	entries, entrySize      uint32
}

func readGPTHeader(d io.ReaderAt, lba uint64, ss int64) (*gptHeader, error) {
	le := binary.LittleEndian
	raw := make([]byte, ss)
	if _, err := d.ReadAt(raw, int64(lba)*ss); err != nil {
		return nil, err
	}
	if string(raw[:8]) != "EFI PART" {
		return nil, errors.New("no GPT header")
	}
	size := le.Uint32(raw[12:])
	if size < 92 || int64(size) > ss {
		return nil, fmt.Errorf("GPT header size %d", size)
	}
	c := make([]byte, size)
	copy(c, raw[:size])
	le.PutUint32(c[16:], 0)
	if crc32.ChecksumIEEE(c) != le.Uint32(raw[16:]) {
		return nil, errors.New("GPT header checksum mismatch")
	}
	h := &gptHeader{raw: raw, self: le.Uint64(raw[24:]), alternate: le.Uint64(raw[32:]),
		firstUsable: le.Uint64(raw[40:]), lastUsable: le.Uint64(raw[48:]), entriesLBA: le.Uint64(raw[72:]),
		entries: le.Uint32(raw[80:]), entrySize: le.Uint32(raw[84:])}
	if h.entrySize < 128 || h.entrySize%8 != 0 || h.entries == 0 || h.entries > 4096 {
		return nil, fmt.Errorf("GPT with %d entries of %d bytes", h.entries, h.entrySize)
	}
	return h, nil
}

// encode writes the header fields back into raw with the entries' CRC
// and its own.
func (h *gptHeader) encode(entriesCRC uint32) []byte {
	le := binary.LittleEndian
	b := append([]byte(nil), h.raw...)
	le.PutUint64(b[24:], h.self)
	le.PutUint64(b[32:], h.alternate)
	le.PutUint64(b[48:], h.lastUsable)
	le.PutUint64(b[72:], h.entriesLBA)
	le.PutUint32(b[88:], entriesCRC)
	le.PutUint32(b[16:], 0)
	le.PutUint32(b[16:], crc32.ChecksumIEEE(b[:le.Uint32(b[12:])]))
	return b
}

func growGPT(d tableIO, diskSize, ss int64, partno int, align int64, pmbr []byte) (*growth, error) {
	le := binary.LittleEndian
	h, err := readGPTHeader(d, 1, ss)
	if err != nil {
		return nil, fmt.Errorf("primary GPT: %w", err)
	}
	if partno < 1 || uint32(partno) > h.entries {
		return nil, fmt.Errorf("GPT has no partition %d", partno)
	}
	arrayLen := int64(h.entries) * int64(h.entrySize)
	array := make([]byte, arrayLen)
	if _, err := d.ReadAt(array, int64(h.entriesLBA)*ss); err != nil {
		return nil, fmt.Errorf("read the GPT entries: %w", err)
	}
	if crc32.ChecksumIEEE(array) != le.Uint32(h.raw[88:]) {
		return nil, errors.New("GPT entries checksum mismatch")
	}
	entry := func(i int) []byte { return array[int64(i)*int64(h.entrySize):][:h.entrySize] }
	e := entry(partno - 1)
	if bytes.Equal(e[:16], make([]byte, 16)) {
		return nil, fmt.Errorf("GPT has no partition %d", partno)
	}
	first, last := le.Uint64(e[32:]), le.Uint64(e[40:])
	for i := 0; i < int(h.entries); i++ {
		o := entry(i)
		if i != partno-1 && !bytes.Equal(o[:16], make([]byte, 16)) && le.Uint64(o[32:]) > first {
			return nil, fmt.Errorf("partition %d is not the last on the disk (partition %d follows it)", partno, i+1)
		}
	}

	sectors := uint64(diskSize / ss)
	entrySectors := uint64((arrayLen + ss - 1) / ss)
	if sectors < 1+1+entrySectors+1+entrySectors+1 {
		return nil, fmt.Errorf("disk of %d bytes is too small for its GPT", diskSize)
	}
	lastLBA := sectors - 1
	lastUsable := lastLBA - entrySectors - 1
	newEnd := (lastUsable + 1) * uint64(ss) / uint64(align) * uint64(align) / uint64(ss) // exclusive
	g := &growth{table: "gpt", start: int64(first) * ss, old: int64(last-first+1) * ss, disk: diskSize,
		oldBackup: int64(h.alternate) * ss, backup: int64(lastLBA) * ss}
	g.size = g.old
	if h.alternate == lastLBA && newEnd <= last+1 {
		g.alreadyAtTheEnd = true
		return g, nil
	}
	if newEnd > last+1 {
		le.PutUint64(e[40:], newEnd-1)
		g.size = int64(newEnd-first) * ss
	}
	crc := crc32.ChecksumIEEE(array)

	oldAlt := h.alternate
	h.alternate, h.lastUsable = lastLBA, lastUsable
	backup := *h
	backup.self, backup.alternate, backup.entriesLBA = lastLBA, 1, lastLBA-entrySectors

	// The backup first, into space nothing uses yet; then the primary,
	// which readers trust first; then the old backup goes, which now lies
	// inside the grown partition.
	writes := []diskWrite{
		{"backup GPT entries", int64(backup.entriesLBA) * ss, array},
		{"backup GPT header", int64(lastLBA) * ss, backup.encode(crc)},
		{"GPT entries", int64(h.entriesLBA) * ss, array},
		{"GPT header", ss, h.encode(crc)},
	}
	if oldAlt != lastLBA && oldAlt > 1 && oldAlt < lastLBA {
		if old, err := readGPTHeader(d, oldAlt, ss); err == nil && old.self == oldAlt {
			// The old backup header and its entries go, so that nothing
			// finds a stale GPT inside the data partition.
			n := int64(oldAlt-old.entriesLBA+1) * ss
			if old.entriesLBA < oldAlt && n <= 64<<20 {
				writes = append(writes, diskWrite{"old backup GPT", int64(old.entriesLBA) * ss, make([]byte, n)})
			}
		}
	}
	// The protective MBR covers the whole disk, as far as it can count.
	pm := append([]byte(nil), pmbr[:512]...)
	le.PutUint32(pm[446+12:], uint32(min(sectors-1, 1<<32-1)))
	copy(pm[446+5:446+8], chs(min(sectors-1, 1<<32-1)))
	writes = append(writes, diskWrite{"protective MBR", 0, pm})
	for _, w := range writes {
		if _, err := d.WriteAt(w.b, w.off); err != nil {
			return nil, fmt.Errorf("write the %s: %w", w.what, err)
		}
	}
	return g, nil
}
