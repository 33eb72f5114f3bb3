package erofs

import (
	"encoding/binary"
	"hash/crc32"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
)

// The on-disk format, as Linux's fs/erofs/erofs_fs.h defines it. All
// numbers are little-endian.
const (
	blockSize = 4096 // Linux before 6.4 mounts only blocks of PAGE_SIZE
	blockBits = 12

	superOffset = 1024 // the superblock's place in block 0
	superSize   = 128
	magic       = 0xE0F5E1E2

	featureSBChecksum = 0x1 // feature_compat: crc32c of block 0 from the superblock on
	featureMtime      = 0x2 // feature_compat: inodes carry their own mtime

	slotSize     = 32 // inodes sit at 32-byte slots: nid = position / 32
	compactSize  = 32 // struct erofs_inode_compact
	extendedSize = 64 // struct erofs_inode_extended

	// i_format: bit 0 the inode version, bits 1-3 the data layout.
	formatExtended = 1
	layoutPlain    = 0 // EROFS_INODE_FLAT_PLAIN: data in consecutive blocks
	layoutInline   = 2 // EROFS_INODE_FLAT_INLINE: the last block's part after the inode

	nullAddr = 0xffffffff // raw_blkaddr of an inode without data blocks

	direntSize = 12 // struct erofs_dirent: nid, nameoff, file_type, reserved

	xattrHeaderSize = 12 // struct erofs_xattr_ibody_header
	xattrEntrySize  = 4  // struct erofs_xattr_entry, before name and value
)

// fileType is a dirent's file_type (EROFS_FT_*).
func fileType(t fstree.Type) uint8 {
	switch t {
	case fstree.TypeRegular:
		return 1
	case fstree.TypeDir:
		return 2
	case fstree.TypeCharDev:
		return 3
	case fstree.TypeBlockDev:
		return 4
	case fstree.TypeFIFO:
		return 5
	case fstree.TypeSocket:
		return 6
	case fstree.TypeSymlink:
		return 7
	}
	return 0
}

// encodeDev packs a device number as Linux's new_encode_dev does, the form
// EROFS stores in i_u.rdev.
func encodeDev(major, minor uint32) uint32 {
	return minor&0xff | major<<8 | (minor&^0xff)<<12
}

// superblock is what the superblock says beyond constants.
type superblock struct {
	rootNid    uint16
	inodes     uint64
	buildTime  time.Time
	blocks     uint32
	xattrBlock uint32
	uuid       [16]byte
	label      string
}

// putSuperblock writes the superblock into block 0 (a whole block) and
// checksums it: Linux checks the crc32c of everything from the superblock
// to the end of block 0 (the first inodes included), taken with the
// checksum field zero.
func putSuperblock(block0 []byte, sb superblock) {
	le := binary.LittleEndian
	b := block0[superOffset : superOffset+superSize]
	clear(b)
	le.PutUint32(b[0:], magic)
	le.PutUint32(b[8:], featureSBChecksum|featureMtime)
	b[12] = blockBits
	le.PutUint16(b[14:], sb.rootNid)
	le.PutUint64(b[16:], sb.inodes)
	le.PutUint64(b[24:], uint64(sb.buildTime.Unix()))
	le.PutUint32(b[32:], uint32(sb.buildTime.Nanosecond()))
	le.PutUint32(b[36:], sb.blocks)
	le.PutUint32(b[40:], 0) // meta_blkaddr: nids count from the start
	le.PutUint32(b[44:], sb.xattrBlock)
	copy(b[48:64], sb.uuid[:])
	copy(b[64:80], sb.label)
	// feature_incompat and the rest stay zero: no compression, no chunks,
	// no extra devices.
	le.PutUint32(b[4:], crc32c(block0[superOffset:]))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c is Linux's crc32c(~0, p): the CRC register seeded with all ones
// and not inverted at the end, unlike hash/crc32's Checksum.
func crc32c(p []byte) uint32 { return ^crc32.Checksum(p, castagnoli) }

// appendInode appends the on-disk inode of in (compact or extended).
func appendInode(b []byte, in *inode, build time.Time) []byte {
	le := binary.LittleEndian
	n := in.n
	format := uint16(in.layout) << 1
	var icount uint16
	if len(in.xattr) > 0 {
		icount = uint16((len(in.xattr)-xattrHeaderSize)/4 + 1)
	}
	var u uint32 // i_u: raw_blkaddr, or rdev
	switch n.Type {
	case fstree.TypeCharDev, fstree.TypeBlockDev:
		u = encodeDev(n.Major, n.Minor)
	case fstree.TypeFIFO, fstree.TypeSocket:
		u = 0
	default:
		u = in.blk
	}
	mode := uint16(n.UnixMode())
	if !in.extended {
		b = le.AppendUint16(b, format)
		b = le.AppendUint16(b, icount)
		b = le.AppendUint16(b, mode)
		b = le.AppendUint16(b, uint16(in.nlink))
		b = le.AppendUint32(b, uint32(in.size))
		b = le.AppendUint32(b, 0) // i_reserved
		b = le.AppendUint32(b, u)
		b = le.AppendUint32(b, in.ino)
		b = le.AppendUint16(b, uint16(n.UID))
		b = le.AppendUint16(b, uint16(n.GID))
		return le.AppendUint32(b, 0) // i_reserved2
	}
	mt := mtime(n, build)
	b = le.AppendUint16(b, format|formatExtended)
	b = le.AppendUint16(b, icount)
	b = le.AppendUint16(b, mode)
	b = le.AppendUint16(b, 0) // i_reserved
	b = le.AppendUint64(b, uint64(in.size))
	b = le.AppendUint32(b, u)
	b = le.AppendUint32(b, in.ino)
	b = le.AppendUint32(b, n.UID)
	b = le.AppendUint32(b, n.GID)
	b = le.AppendUint64(b, uint64(mt.Unix()))
	b = le.AppendUint32(b, uint32(mt.Nanosecond()))
	b = le.AppendUint32(b, in.nlink)
	return append(b, make([]byte, 16)...) // i_reserved2
}

// mtime is the time an inode of n records: the build time for nodes
// without one, and nothing before 1970 (EROFS's seconds are unsigned).
func mtime(n *fstree.Node, build time.Time) time.Time {
	t := n.Mtime
	if t.IsZero() {
		return build
	}
	if t.Unix() < 0 {
		return time.Unix(0, 0)
	}
	return t
}
