// Package ptable reads MBR and GPT partition tables from a disk image,
// checking them as a careful reader must: signatures, GPT header and
// entry-array CRCs (falling back to the backup GPT), partitions inside
// the image and not overlapping.
package ptable

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strings"
	"unicode/utf16"
)

const sector = 512

// Table is a partition table.
type Table struct {
	// Type is "mbr" or "gpt".
	Type string
	// DiskID is the MBR disk signature ("1a2b3c4d") or the GPT disk GUID.
	DiskID     string
	Partitions []Partition
	// Warnings are problems that did not stop the read, such as a damaged
	// primary GPT read from its backup.
	Warnings []string
}

// Partition is one entry of a table.
type Partition struct {
	Number      int
	Start, Size int64 // bytes
	// Type is the MBR type byte in hex ("0c") or the GPT type GUID;
	// TypeName says what it means, when known.
	Type, TypeName string
	// Name is the GPT partition name.
	Name string
	// PartUUID is what Linux calls PARTUUID: "1a2b3c4d-02" on MBR, the
	// partition GUID on GPT.
	PartUUID string
	Bootable bool
}

// ErrNoTable is returned when sector 0 holds no partition table.
var ErrNoTable = errors.New("no partition table")

// Read reads the partition table of an image of size bytes.
func Read(r io.ReaderAt, size int64) (*Table, error) {
	if size < sector {
		return nil, fmt.Errorf("%d bytes is too small to hold a partition table", size)
	}
	mbr := make([]byte, sector)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		return nil, fmt.Errorf("sector 0: %w", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		return nil, ErrNoTable
	}
	le := binary.LittleEndian
	t := &Table{Type: "mbr", DiskID: fmt.Sprintf("%08x", le.Uint32(mbr[440:]))}
	for i := range 4 {
		e := mbr[446+16*i:]
		if e[0] != 0 && e[0] != 0x80 {
			return nil, fmt.Errorf("%w: MBR entry %d has boot flag %#02x, neither 0 nor 0x80", ErrNoTable, i+1, e[0])
		}
		typ, start, n := e[4], int64(le.Uint32(e[8:])), int64(le.Uint32(e[12:]))
		if typ == 0 || n == 0 {
			continue
		}
		if typ == 0xee {
			return readGPT(r, size)
		}
		t.Partitions = append(t.Partitions, Partition{
			Number: i + 1, Start: start * sector, Size: n * sector,
			Type: fmt.Sprintf("%02x", typ), TypeName: mbrTypes[typ],
			PartUUID: fmt.Sprintf("%s-%02x", t.DiskID, i+1), Bootable: e[0] == 0x80,
		})
	}
	if len(t.Partitions) == 0 {
		return nil, ErrNoTable
	}
	return t, t.check(size)
}

var mbrTypes = map[byte]string{
	0x01: "FAT12", 0x04: "FAT16 <32M", 0x05: "Extended", 0x06: "FAT16", 0x07: "NTFS/exFAT",
	0x0b: "FAT32", 0x0c: "FAT32 (LBA)", 0x0e: "FAT16 (LBA)", 0x0f: "Extended (LBA)",
	0x82: "Linux swap", 0x83: "Linux", 0x8e: "Linux LVM", 0xda: "Non-FS data",
	0xef: "EFI System", 0xfd: "Linux RAID",
}

var gptTypes = map[string]string{
	"c12a7328-f81f-11d2-ba4b-00a0c93ec93b": "EFI System",
	"ebd0a0a2-b9e5-4433-87c0-68b6b72699c7": "Microsoft basic data",
	"0fc63daf-8483-4772-8e79-3d69d8477de4": "Linux filesystem",
	"b921b045-1df0-41c3-af44-4c6f280d3fae": "Linux root (ARM-64)",
	"69dad710-2ce4-4e3c-b16c-21a1d49abed3": "Linux root (ARM)",
	"4f68bce3-e8cd-4db1-96e7-fbcaf984b709": "Linux root (x86-64)",
	"0657fd6d-a4ab-43c4-84e5-0933c84b4f4f": "Linux swap",
	"933ac7e1-2eb4-4f13-b844-0e14e2aef915": "Linux home",
	"3b8f8425-20e0-4f3b-907f-1a25a76f98e8": "Linux server data",
	"bc13c2ff-59e6-4262-a352-b275fd6f7172": "Linux extended boot",
	"21686148-6449-6e6f-744e-656564454649": "BIOS boot",
}

func (t *Table) check(size int64) error {
	ps := slices.Clone(t.Partitions)
	slices.SortFunc(ps, func(a, b Partition) int { return int(a.Start - b.Start) })
	for i, p := range ps {
		if p.Start+p.Size > size {
			return fmt.Errorf("partition %d (bytes %d-%d) extends past the end of the image (%d bytes): truncated image?",
				p.Number, p.Start, p.Start+p.Size-1, size)
		}
		if p.Start < sector {
			return fmt.Errorf("partition %d starts at byte %d, inside the partition table", p.Number, p.Start)
		}
		if i > 0 && ps[i-1].Start+ps[i-1].Size > p.Start {
			return fmt.Errorf("partitions %d and %d overlap", ps[i-1].Number, p.Number)
		}
	}
	return nil
}

// readGPT reads the primary GPT, or the backup when the primary is
// damaged.
func readGPT(r io.ReaderAt, size int64) (*Table, error) {
	t, err := readGPTAt(r, size, 1)
	if err == nil {
		return t, t.check(size)
	}
	last := size/sector - 1
	bt, berr := readGPTAt(r, size, last)
	if berr != nil {
		return nil, fmt.Errorf("GPT: primary: %v; backup at sector %d: %v", err, last, berr)
	}
	bt.Warnings = append(bt.Warnings, fmt.Sprintf("primary GPT damaged (%v): read the backup", err))
	return bt, bt.check(size)
}

func readGPTAt(r io.ReaderAt, size, lba int64) (*Table, error) {
	le := binary.LittleEndian
	h := make([]byte, sector)
	if _, err := r.ReadAt(h, lba*sector); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if string(h[:8]) != "EFI PART" {
		return nil, errors.New("no header signature")
	}
	hsize := le.Uint32(h[12:])
	if hsize < 92 || hsize > sector {
		return nil, fmt.Errorf("header size %d", hsize)
	}
	want := le.Uint32(h[16:])
	hc := slices.Clone(h[:hsize])
	le.PutUint32(hc[16:], 0)
	if crc32.ChecksumIEEE(hc) != want {
		return nil, errors.New("header CRC mismatch")
	}
	arrayLBA, count, esize := int64(le.Uint64(h[72:])), int64(le.Uint32(h[80:])), int64(le.Uint32(h[84:]))
	if esize < 128 || esize > 4096 || count > 1024 || arrayLBA*sector+count*esize > size {
		return nil, fmt.Errorf("entry array of %d entries of %d bytes at sector %d does not fit the image", count, esize, arrayLBA)
	}
	array := make([]byte, count*esize)
	if _, err := r.ReadAt(array, arrayLBA*sector); err != nil {
		return nil, fmt.Errorf("entry array: %w", err)
	}
	if crc32.ChecksumIEEE(array) != le.Uint32(h[88:]) {
		return nil, errors.New("entry array CRC mismatch")
	}
	t := &Table{Type: "gpt", DiskID: guid(h[56:72])}
	for i := range count {
		e := array[i*esize:]
		typ := guid(e[0:16])
		if typ == "00000000-0000-0000-0000-000000000000" {
			continue
		}
		first, last := int64(le.Uint64(e[32:])), int64(le.Uint64(e[40:]))
		if last < first {
			return nil, fmt.Errorf("entry %d ends (sector %d) before it starts (sector %d)", i+1, last, first)
		}
		var name []uint16
		for j := 56; j+1 < 128; j += 2 {
			c := le.Uint16(e[j:])
			if c == 0 {
				break
			}
			name = append(name, c)
		}
		t.Partitions = append(t.Partitions, Partition{
			Number: int(i) + 1, Start: first * sector, Size: (last - first + 1) * sector,
			Type: typ, TypeName: gptTypes[typ], Name: string(utf16.Decode(name)),
			PartUUID: guid(e[16:32]), Bootable: le.Uint64(e[48:])&4 != 0,
		})
	}
	return t, nil
}

// guid formats a GPT GUID, whose first three fields are little-endian.
func guid(b []byte) string {
	le, be := binary.LittleEndian, binary.BigEndian
	return strings.ToLower(fmt.Sprintf("%08x-%04x-%04x-%04x-%012x",
		le.Uint32(b[0:]), le.Uint16(b[4:]), le.Uint16(b[6:]), be.Uint16(b[8:]), b[10:16]))
}
