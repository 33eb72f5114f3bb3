package ext4

import (
	"encoding/binary"
	"fmt"
)

// Feature flags (EXT4_FEATURE_*), as mke2fs -t ext4 sets them less
// resize_inode.
const (
	compatHasJournal = 0x4
	compatExtAttr    = 0x8
	compatDirIndex   = 0x20

	incompatFiletype = 0x2
	incompatExtents  = 0x40
	incompat64bit    = 0x80
	incompatFlexBG   = 0x200

	roSparseSuper  = 0x1
	roLargeFile    = 0x2
	roHugeFile     = 0x8
	roDirNlink     = 0x20
	roExtraIsize   = 0x40
	roMetadataCsum = 0x400

	bgInodeUninit  = 0x1
	bgBlockUninit  = 0x2
	bgItableZeroed = 0x4
)

// journal places the journal (inode 8) and writes its superblock: an
// empty jbd2 journal, as mke2fs makes it. The rest of its blocks are left
// as they are (zero): with s_start 0 nothing in them is ever replayed.
func (wr *writer) journal() error {
	n := wr.g.journal
	var ext extentList
	if err := wr.allocRun(&ext, 0, n); err != nil {
		return err
	}
	clear(wr.blk)
	be := binary.BigEndian
	be.PutUint32(wr.blk[0x00:], 0xc03b3998) // JBD2 magic
	be.PutUint32(wr.blk[0x04:], 4)          // superblock v2
	be.PutUint32(wr.blk[0x0c:], blockSize)
	be.PutUint32(wr.blk[0x10:], uint32(n))
	be.PutUint32(wr.blk[0x14:], 1) // s_first
	be.PutUint32(wr.blk[0x18:], 1) // s_sequence
	copy(wr.blk[0x30:], wr.uuid[:])
	be.PutUint32(wr.blk[0x40:], 1) // s_nr_users
	if err := wr.out.write(ext[0].pblk, wr.blk); err != nil {
		return err
	}
	in := &inode{mode: 0o100600, links: 1, size: n * blockSize,
		atime: wr.now, ctime: wr.now, mtime: wr.now, crtime: wr.now}
	if err := wr.mapExtents(in, journalIno, ext, n); err != nil {
		return err
	}
	wr.jnlBlock = in.block
	return wr.putInode(journalIno, in, false)
}

// finish writes what depends on everything else: the last inode table,
// the bitmaps, the group descriptors and the superblocks.
func (wr *writer) finish() error {
	if err := wr.out.sync(); err != nil {
		return err
	}
	if err := wr.flushInodes(); err != nil {
		return err
	}
	g := wr.g
	le := binary.LittleEndian
	gdt := make([]byte, g.gdtBlocks*blockSize)
	bitmap := make([]byte, blockSize)
	var freeBlocks, freeInodes int64
	for gr := int64(0); gr < g.groups; gr++ {
		first := gr * blocksPerGroup
		n := min(blocksPerGroup, g.blocks-first)
		used := g.used.count(first, n)
		free := n - used
		freeBlocks += free
		usedInodes := wr.grpInos[gr]
		freeInodes += g.inodesPerGrp - usedInodes
		flags := uint16(bgItableZeroed)
		var bsum, isum uint32
		sb := int64(0)
		if hasSuper(gr) {
			sb = 1 + g.gdtBlocks
		}
		if gr != g.groups-1 && used == sb {
			flags |= bgBlockUninit
		} else {
			clear(bitmap)
			for i := int64(0); i < blocksPerGroup; i++ {
				if i >= n || g.used.get(first+i) {
					bitmap[i/8] |= 1 << (i % 8)
				}
			}
			bsum = crc32c(wr.csumSeed, bitmap)
			if _, err := wr.w.WriteAt(bitmap, wr.off+g.blockBitmap[gr]*blockSize); err != nil {
				return fmt.Errorf("write block bitmap of group %d: %w", gr, err)
			}
		}
		if usedInodes == 0 {
			flags |= bgInodeUninit
		} else {
			clear(bitmap)
			for i := int64(0); i < blockSize*8; i++ {
				if i < usedInodes || i >= g.inodesPerGrp {
					bitmap[i/8] |= 1 << (i % 8)
				}
			}
			isum = crc32c(wr.csumSeed, bitmap[:g.inodesPerGrp/8])
			if _, err := wr.w.WriteAt(bitmap, wr.off+g.inodeBitmap[gr]*blockSize); err != nil {
				return fmt.Errorf("write inode bitmap of group %d: %w", gr, err)
			}
		}
		d := gdt[gr*descSize : (gr+1)*descSize]
		put64 := func(lo, hi int, v int64) {
			le.PutUint32(d[lo:], uint32(v))
			le.PutUint32(d[hi:], uint32(v>>32))
		}
		put32 := func(lo, hi int, v int64) {
			le.PutUint16(d[lo:], uint16(v))
			le.PutUint16(d[hi:], uint16(v>>16))
		}
		put64(0x00, 0x20, g.blockBitmap[gr])
		put64(0x04, 0x24, g.inodeBitmap[gr])
		put64(0x08, 0x28, g.inodeTable[gr])
		put32(0x0c, 0x2c, free)
		put32(0x0e, 0x2e, g.inodesPerGrp-usedInodes)
		put32(0x10, 0x30, int64(wr.grpDirs[gr]))
		le.PutUint16(d[0x12:], flags)
		put32(0x18, 0x38, int64(bsum))
		put32(0x1a, 0x3a, int64(isum))
		put32(0x1c, 0x32, g.inodesPerGrp-usedInodes)
		c := crc32cU32(wr.csumSeed, uint32(gr))
		c = crc32c(c, d) // bg_checksum is still zero
		le.PutUint16(d[0x1e:], uint16(c))
	}
	sb := make([]byte, 1024)
	for gr := int64(0); gr < g.groups; gr++ {
		if !hasSuper(gr) {
			continue
		}
		wr.superblock(sb, gr, freeBlocks, freeInodes)
		pos := gr * blocksPerGroup * blockSize
		if gr == 0 {
			pos = 1024
		}
		if _, err := wr.w.WriteAt(sb, wr.off+pos); err != nil {
			return fmt.Errorf("write superblock copy in group %d: %w", gr, err)
		}
		if _, err := wr.w.WriteAt(gdt, wr.off+(gr*blocksPerGroup+1)*blockSize); err != nil {
			return fmt.Errorf("write group descriptors in group %d: %w", gr, err)
		}
	}
	return nil
}

// superblock fills p (1024 bytes) with the superblock copy for group gr.
func (wr *writer) superblock(p []byte, gr, freeBlocks, freeInodes int64) {
	clear(p)
	g := wr.g
	le := binary.LittleEndian
	inodes := g.groups * g.inodesPerGrp
	put64 := func(lo, hi int, v int64) {
		le.PutUint32(p[lo:], uint32(v))
		le.PutUint32(p[hi:], uint32(v>>32))
	}
	le.PutUint32(p[0x00:], uint32(inodes))
	put64(0x04, 0x150, g.blocks)
	put64(0x08, 0x154, g.blocks*5/100) // reserved for root, mke2fs's 5%
	put64(0x0c, 0x158, freeBlocks)
	le.PutUint32(p[0x10:], uint32(freeInodes))
	le.PutUint32(p[0x14:], 0) // s_first_data_block
	le.PutUint32(p[0x18:], 2) // log2(block size) - 10
	le.PutUint32(p[0x1c:], 2)
	le.PutUint32(p[0x20:], blocksPerGroup)
	le.PutUint32(p[0x24:], blocksPerGroup)
	le.PutUint32(p[0x28:], uint32(g.inodesPerGrp))
	now := wr.now.Unix()
	for _, off := range []struct{ lo, hi int }{{0x30, 0x274}, {0x40, 0x277}, {0x108, 0x276}} { // wtime, lastcheck, mkfs_time
		le.PutUint32(p[off.lo:], uint32(now))
		p[off.hi] = byte(now >> 32)
	}
	le.PutUint16(p[0x36:], 0xffff) // s_max_mnt_count: -1, no forced checks
	le.PutUint16(p[0x38:], 0xef53)
	le.PutUint16(p[0x3a:], 1) // clean
	le.PutUint16(p[0x3c:], 1) // errors: continue
	le.PutUint32(p[0x4c:], 1) // dynamic revision
	le.PutUint32(p[0x54:], firstIno)
	le.PutUint16(p[0x58:], inodeSize)
	le.PutUint16(p[0x5a:], uint16(gr))
	compat := uint32(compatExtAttr | compatDirIndex)
	if g.journal > 0 {
		compat |= compatHasJournal
	}
	le.PutUint32(p[0x5c:], compat)
	le.PutUint32(p[0x60:], incompatFiletype|incompatExtents|incompat64bit|incompatFlexBG)
	le.PutUint32(p[0x64:], roSparseSuper|roLargeFile|roHugeFile|roDirNlink|roExtraIsize|roMetadataCsum)
	copy(p[0x68:], wr.uuid[:])
	copy(p[0x78:0x88], wr.fs.opts.Label)
	copy(p[0xec:], wr.hseed[:])
	p[0xfc] = hashVersion
	le.PutUint16(p[0xfe:], descSize)
	le.PutUint32(p[0x100:], 0x0c) // default mount options: user_xattr, acl
	if g.journal > 0 {
		le.PutUint32(p[0xe0:], journalIno)
		p[0xfd] = 1 // s_jnl_backup_type: i_block copy
		for i := 0; i < 15; i++ {
			le.PutUint32(p[0x10c+4*i:], le.Uint32(wr.jnlBlock[4*i:]))
		}
		size := g.journal * blockSize
		le.PutUint32(p[0x10c+4*15:], uint32(size>>32))
		le.PutUint32(p[0x10c+4*16:], uint32(size))
	}
	le.PutUint16(p[0x15c:], extraIsize) // s_min_extra_isize
	le.PutUint16(p[0x15e:], extraIsize) // s_want_extra_isize
	le.PutUint32(p[0x160:], 1)          // signed directory hash
	p[0x174] = 4                        // log2(flex group size)
	p[0x175] = 1                        // checksum type crc32c
	le.PutUint32(p[0x3fc:], crc32c(^uint32(0), p[:0x3fc]))
}
