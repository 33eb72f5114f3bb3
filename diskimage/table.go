package diskimage

import (
	"encoding/binary"
	"hash/crc32"
	"unicode/utf16"
)

// sectorWrite is bytes of the partition table at a byte offset.
type sectorWrite struct {
	off int64
	b   []byte
}

// tableWrites encodes the partition table. Everything is computed here
// rather than by go-diskfs, whose v1.9.4 MBR writer leaves the disk
// signature out (it writes from byte 446) and whose GPT writer has a fixed
// 128-entry array (no room for a bootloader at 8 KiB) and a protective MBR
// without CHS values.
func (pl *placement) tableWrites() []sectorWrite {
	if pl.l.Table == MBR {
		return []sectorWrite{{0, pl.mbr()}}
	}
	return pl.gpt()
}

func (pl *placement) mbr() []byte {
	b := make([]byte, sector)
	binary.LittleEndian.PutUint32(b[440:], pl.sig)
	for i, pp := range pl.parts {
		putMBREntry(b[446+16*i:], pp.p.Bootable, pp.mbrType, uint64(pp.start/sector), uint64(pp.size/sector))
	}
	b[510], b[511] = 0x55, 0xaa
	return b
}

func putMBREntry(e []byte, boot bool, typ byte, start, n uint64) {
	if boot {
		e[0] = 0x80
	}
	copy(e[1:4], chs(start))
	e[4] = typ
	copy(e[5:8], chs(start+n-1))
	binary.LittleEndian.PutUint32(e[8:], uint32(min(start, 1<<32-1)))
	binary.LittleEndian.PutUint32(e[12:], uint32(min(n, 1<<32-1)))
}

// chs encodes an LBA as cylinder/head/sector for the 255-head, 63-sector
// geometry fdisk assumes; beyond cylinder 1023 it saturates, as fdisk
// does, and readers use the LBA fields.
func chs(lba uint64) []byte {
	const heads, sectors = 255, 63
	c := lba / (heads * sectors)
	if c > 1023 {
		return []byte{0xfe, 0xff, 0xff}
	}
	h := lba / sectors % heads
	s := lba%sectors + 1
	return []byte{byte(h), byte(s) | byte(c>>8)<<6, byte(c)}
}

func (pl *placement) gpt() []sectorWrite {
	le := binary.LittleEndian
	disk := uint64(pl.size / sector)
	n := uint64(pl.entrySectors())

	pmbr := make([]byte, sector)
	putMBREntry(pmbr[446:], false, mbrProtective, 1, disk-1)
	copy(pmbr[446+1:446+4], []byte{0x00, 0x02, 0x00}) // CHS of LBA 1
	pmbr[510], pmbr[511] = 0x55, 0xaa

	array := make([]byte, n*sector)
	for _, pp := range pl.parts {
		e := array[(pp.num-1)*128:]
		t, g := guidBytes(pp.gptType), guidBytes(pp.guid)
		copy(e[0:16], t[:])
		copy(e[16:32], g[:])
		le.PutUint64(e[32:], uint64(pp.start/sector))
		le.PutUint64(e[40:], uint64(pp.end()/sector)-1)
		if pp.p.Bootable {
			le.PutUint64(e[48:], gptAttrLegacyB)
		}
		for i, u := range utf16.Encode([]rune(pp.p.Name)) {
			le.PutUint16(e[56+2*i:], u)
		}
	}
	arrayCRC := crc32.ChecksumIEEE(array[:pl.entries*128])

	header := func(self, other, arrayLBA uint64) []byte {
		h := make([]byte, sector)
		copy(h, "EFI PART")
		le.PutUint32(h[8:], 0x00010000)
		le.PutUint32(h[12:], 92)
		le.PutUint64(h[24:], self)
		le.PutUint64(h[32:], other)
		le.PutUint64(h[40:], pl.firstUsable)
		le.PutUint64(h[48:], pl.lastUsable)
		d := guidBytes(pl.diskGUID)
		copy(h[56:72], d[:])
		le.PutUint64(h[72:], arrayLBA)
		le.PutUint32(h[80:], uint32(pl.entries))
		le.PutUint32(h[84:], 128)
		le.PutUint32(h[88:], arrayCRC)
		le.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
		return h
	}
	last := disk - 1
	return []sectorWrite{
		{0, pmbr},
		{sector, header(1, last, 2)},
		{2 * sector, array},
		{int64(last-n) * sector, array},
		{int64(last) * sector, header(last, 1, last-n)},
	}
}
