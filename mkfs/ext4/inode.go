package ext4

import (
	"encoding/binary"
	"time"
)

// Inode flags and mode bits this writer sets.
const (
	flagIndex   = 0x1000  // EXT4_INDEX_FL: hashed (htree) directory
	flagExtents = 0x80000 // EXT4_EXTENTS_FL

	extentMagic    = 0xf30a
	extentsPerBlk  = (blockSize - 12) / 12 // 340; the tail takes the rest
	maxExtentLen   = 32768                 // longest initialized extent
	inodeExtents   = 4                     // extents or index entries in i_block
	xattrInodeSize = inodeSize - 128 - extraIsize
)

// extent maps n blocks of a file, from logical block lblk, to physical
// block pblk.
type extent struct {
	lblk uint32
	n    uint16
	pblk int64
}

// extentList collects a file's extents as its blocks are placed, merging
// neighbours.
type extentList []extent

func (l *extentList) add(lblk uint32, pblk, n int64) {
	for n > 0 {
		if k := len(*l); k > 0 {
			e := &(*l)[k-1]
			if e.lblk+uint32(e.n) == lblk && e.pblk+int64(e.n) == pblk && int64(e.n) < maxExtentLen {
				m := min(n, maxExtentLen-int64(e.n))
				e.n += uint16(m)
				lblk += uint32(m)
				pblk += m
				n -= m
				continue
			}
		}
		m := min(n, maxExtentLen)
		*l = append(*l, extent{lblk, uint16(m), pblk})
		lblk += uint32(m)
		pblk += m
		n -= m
	}
}

// extentTreeBlocks returns how many tree blocks (leaves and index
// blocks) a file with e extents needs.
func extentTreeBlocks(e int64) int64 {
	if e <= inodeExtents {
		return 0
	}
	var total int64
	for lvl := e; lvl > inodeExtents; {
		lvl = (lvl + extentsPerBlk - 1) / extentsPerBlk
		total += lvl
	}
	return total
}

// maxExtents bounds the extents of a file of b blocks: every other block
// may be a hole, and runs split at the extent length limit. Splits at
// metadata are accounted for filesystem-wide.
func maxExtents(b int64) int64 {
	return min(b, (b+1)/2+b/maxExtentLen+1)
}

func putExtentHeader(p []byte, entries, max, depth int) {
	binary.LittleEndian.PutUint16(p[0:], extentMagic)
	binary.LittleEndian.PutUint16(p[2:], uint16(entries))
	binary.LittleEndian.PutUint16(p[4:], uint16(max))
	binary.LittleEndian.PutUint16(p[6:], uint16(depth))
	binary.LittleEndian.PutUint32(p[8:], 0)
}

func putExtent(p []byte, e extent) {
	binary.LittleEndian.PutUint32(p[0:], e.lblk)
	binary.LittleEndian.PutUint16(p[4:], e.n)
	binary.LittleEndian.PutUint16(p[6:], uint16(e.pblk>>32))
	binary.LittleEndian.PutUint32(p[8:], uint32(e.pblk))
}

func putIndex(p []byte, lblk uint32, leaf int64) {
	binary.LittleEndian.PutUint32(p[0:], lblk)
	binary.LittleEndian.PutUint32(p[4:], uint32(leaf))
	binary.LittleEndian.PutUint16(p[8:], uint16(leaf>>32))
	binary.LittleEndian.PutUint16(p[10:], 0)
}

// encodeTime splits t into ext4's 32-bit seconds field and the extra field
// (two epoch bits above the signed 32-bit range, then nanoseconds), clamped
// to the range the format holds: the kernel reads the seconds as a signed
// 32-bit number plus the epoch bits times 2^32, so from -2^31 (1901-12-13)
// to 3*2^32 + 2^31-1 (2446-05-10). A time beyond would wrap (2500 would
// read as 1955).
func encodeTime(t time.Time) (lo, extra uint32) {
	sec := t.Unix()
	nsec := uint32(t.Nanosecond())
	const minSec, maxSec = -1 << 31, 3<<32 + 1<<31 - 1
	if sec < minSec {
		sec, nsec = minSec, 0
	} else if sec > maxSec {
		sec, nsec = maxSec, 999999999
	}
	epoch := uint32((sec-int64(int32(sec)))>>32) & 3
	return uint32(sec), epoch | nsec<<2
}

// inode is the part of an on-disk inode this writer fills in.
type inode struct {
	mode          uint16
	uid, gid      uint32
	size          int64
	links         uint16
	blocks        int64 // filesystem blocks, including tree and xattr blocks
	flags         uint32
	block         [60]byte
	xattrBlock    int64
	inlineXattrs  []byte // xattrInodeSize bytes or nil
	atime, ctime  time.Time
	mtime, crtime time.Time
}

// encode writes in as inode number ino into p (inodeSize bytes) and sets
// its checksum.
func (in *inode) encode(p []byte, ino uint32, csumSeed uint32) {
	clear(p)
	le := binary.LittleEndian
	le.PutUint16(p[0x00:], in.mode)
	le.PutUint16(p[0x02:], uint16(in.uid))
	le.PutUint32(p[0x04:], uint32(in.size))
	le.PutUint16(p[0x18:], uint16(in.gid))
	le.PutUint16(p[0x1a:], in.links)
	sectors := in.blocks * (blockSize / 512)
	le.PutUint32(p[0x1c:], uint32(sectors))
	le.PutUint32(p[0x20:], in.flags)
	copy(p[0x28:0x64], in.block[:])
	le.PutUint32(p[0x68:], uint32(in.xattrBlock))
	le.PutUint32(p[0x6c:], uint32(in.size>>32))
	le.PutUint16(p[0x74:], uint16(sectors>>32))
	le.PutUint16(p[0x76:], uint16(in.xattrBlock>>32))
	le.PutUint16(p[0x78:], uint16(in.uid>>16))
	le.PutUint16(p[0x7a:], uint16(in.gid>>16))
	le.PutUint16(p[0x80:], extraIsize)
	for _, f := range []struct {
		t         time.Time
		lo, extra int
	}{{in.atime, 0x08, 0x8c}, {in.ctime, 0x0c, 0x84}, {in.mtime, 0x10, 0x88}, {in.crtime, 0x90, 0x94}} {
		lo, extra := encodeTime(f.t)
		le.PutUint32(p[f.lo:], lo)
		le.PutUint32(p[f.extra:], extra)
	}
	if in.inlineXattrs != nil {
		copy(p[128+extraIsize:], in.inlineXattrs)
	}
	c := crc32cU32(csumSeed, ino)
	c = crc32cU32(c, 0) // generation
	c = crc32c(c, p)    // checksum fields are still zero
	le.PutUint16(p[0x7c:], uint16(c))
	le.PutUint16(p[0x82:], uint16(c>>16))
}

// inodeSeed is the per-inode checksum seed for directory, extent and
// other blocks owned by inode ino.
func inodeSeed(fsSeed, ino uint32) uint32 {
	return crc32cU32(crc32cU32(fsSeed, ino), 0)
}

// Directory entry file types (EXT4_FT_*).
func fileType(mode uint16) uint8 {
	switch mode & 0xf000 {
	case 0x8000:
		return 1
	case 0x4000:
		return 2
	case 0x2000:
		return 3
	case 0x6000:
		return 4
	case 0x1000:
		return 5
	case 0xc000:
		return 6
	case 0xa000:
		return 7
	}
	return 0
}
