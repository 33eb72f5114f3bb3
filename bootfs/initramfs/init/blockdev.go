package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// partUUID returns the PARTUUID Linux gives partition partno of disk: for
// an MBR disk, the disk signature and the partition number
// ("1a2b3c4d-02"); for a GPT disk, the partition's unique GUID.
func partUUID(disk string, partno, sector int) (string, error) {
	f, err := os.Open(disk)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return partUUIDFrom(f, partno, sector)
}

func partUUIDFrom(r io.ReaderAt, partno, sector int) (string, error) {
	mbr := make([]byte, 512)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		return "", err
	}
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		return "", errors.New("no partition table")
	}
	if mbr[446+4] != 0xee { // not a protective MBR: a DOS table
		return fmt.Sprintf("%08x-%02x", binary.LittleEndian.Uint32(mbr[440:]), partno), nil
	}
	hdr := make([]byte, 92)
	if _, err := r.ReadAt(hdr, int64(sector)); err != nil {
		return "", err
	}
	if string(hdr[:8]) != "EFI PART" {
		return "", errors.New("protective MBR without a GPT header")
	}
	lba := binary.LittleEndian.Uint64(hdr[72:])
	n := binary.LittleEndian.Uint32(hdr[80:])
	size := binary.LittleEndian.Uint32(hdr[84:])
	if partno < 1 || uint32(partno) > n || size < 32 {
		return "", fmt.Errorf("GPT has no partition %d", partno)
	}
	ent := make([]byte, 32)
	if _, err := r.ReadAt(ent, int64(lba)*int64(sector)+int64(partno-1)*int64(size)); err != nil {
		return "", err
	}
	return guid(ent[16:32]), nil
}

// guid formats a GPT GUID: its first three fields are little-endian.
func guid(b []byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(b[0:]), binary.LittleEndian.Uint16(b[4:]),
		binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16])
}

// superblock is what identifies a filesystem.
type superblock struct {
	fstype, uuid, label string
}

func readSuperblock(dev string) (superblock, error) {
	f, err := os.Open(dev)
	if err != nil {
		return superblock{}, err
	}
	defer f.Close()
	return superblockFrom(f)
}

// superblockFrom recognises ext2/3/4, FAT, squashfs and erofs.
func superblockFrom(r io.ReaderAt) (superblock, error) {
	b := make([]byte, 2048)
	if n, err := r.ReadAt(b, 0); n < len(b) && err != nil {
		return superblock{}, err
	}
	ext := b[1024:]
	switch {
	case binary.LittleEndian.Uint16(ext[56:]) == 0xef53:
		return superblock{fstype: "ext4", uuid: uuidString(ext[104:120]), label: cstring(ext[120:136])}, nil
	case binary.LittleEndian.Uint32(ext[0:]) == 0xe0f5e1e2:
		return superblock{fstype: "erofs", uuid: uuidString(ext[48:64]), label: cstring(ext[64:80])}, nil
	case string(b[:4]) == "hsqs":
		return superblock{fstype: "squashfs"}, nil
	case b[510] == 0x55 && b[511] == 0xaa && binary.LittleEndian.Uint16(b[11:]) >= 512 && b[16] > 0:
		off := 39 // FAT12/16: the extended BPB follows the 36-byte BPB
		if binary.LittleEndian.Uint16(b[22:]) == 0 {
			off = 67 // FAT32
		}
		if b[off-1] != 0x29 { // no extended boot signature: no ID or label
			return superblock{fstype: "vfat"}, nil
		}
		id := binary.LittleEndian.Uint32(b[off:])
		label := strings.TrimRight(string(b[off+4:off+15]), " ")
		if label == "NO NAME" {
			label = ""
		}
		return superblock{fstype: "vfat", uuid: fmt.Sprintf("%04X-%04X", id>>16, id&0xffff), label: label}, nil
	}
	return superblock{}, errors.New("no filesystem recognised")
}

func uuidString(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
