package ext4

import (
	"fmt"
	"math/bits"
)

// Fixed format choices: 4 KiB blocks, 256-byte inodes, 64-byte group
// descriptors, flex groups of 16, as mke2fs -t ext4 makes them on disks
// of a useful size.
const (
	blockSize         = 4096
	blocksPerGroup    = 8 * blockSize // one bitmap block per group
	inodeSize         = 256
	inodesPerBlock    = blockSize / inodeSize
	descSize          = 64
	flexGroups        = 16
	extraIsize        = 32
	firstIno          = 11 // first non-reserved inode; lost+found
	rootIno           = 2
	journalIno        = 8
	maxInodesPerGroup = 8 * blockSize
	inodeRatio        = 16384 // bytes per inode, mke2fs's default
)

// geometry is the block layout of a filesystem of a given size: where
// every group's bitmaps and inode table live, and which blocks are taken
// by metadata before any data is placed.
type geometry struct {
	blocks       int64 // filesystem size in blocks
	groups       int64
	inodesPerGrp int64
	itableBlocks int64 // per group
	gdtBlocks    int64
	journal      int64 // journal blocks, 0 for none

	blockBitmap, inodeBitmap, inodeTable []int64 // per group
	used                                 bitset  // blocks taken by metadata, later by data
	metaBlocks                           int64   // blocks marked in used by newGeometry
	metaRanges                           int64   // separate runs of metadata, for extent bounds
}

// hasSuper reports whether group g holds a superblock copy (sparse_super:
// groups 0, 1 and powers of 3, 5 and 7).
func hasSuper(g int64) bool {
	if g <= 1 {
		return true
	}
	for _, b := range []int64{3, 5, 7} {
		p := b
		for p < g {
			p *= b
		}
		if p == g {
			return true
		}
	}
	return false
}

// journalBlocks is mke2fs's default journal size for a filesystem of n
// blocks (ext2fs_default_journal_size).
func journalBlocks(n int64) int64 {
	switch {
	case n < 2048:
		return 0
	case n < 32768:
		return 1024
	case n < 256*1024:
		return 4096
	case n < 512*1024:
		return 8192
	case n < 4096*1024:
		return 16384
	case n < 8192*1024:
		return 32768
	case n < 16384*1024:
		return 65536
	case n < 32768*1024:
		return 131072
	}
	return 262144
}

// newGeometry lays out a filesystem of size bytes holding at least
// inodes inodes (wantInodes is the count to aim for when the ratio gives
// fewer).
func newGeometry(size int64, needInodes, wantInodes int64, journal bool) (*geometry, error) {
	g := &geometry{blocks: size / blockSize}
	for {
		g.groups = (g.blocks + blocksPerGroup - 1) / blocksPerGroup
		if g.blocks < 64 {
			return nil, fmt.Errorf("%d bytes is too small for ext4", size)
		}
		inodes := max(g.blocks*blockSize/inodeRatio, wantInodes, needInodes)
		ipg := (inodes + g.groups - 1) / g.groups
		ipg = (ipg + inodesPerBlock - 1) / inodesPerBlock * inodesPerBlock
		if ipg > maxInodesPerGroup {
			ipg = maxInodesPerGroup
		}
		if ipg*g.groups < needInodes {
			return nil, fmt.Errorf("%d inodes do not fit in %d block groups", needInodes, g.groups)
		}
		g.inodesPerGrp = ipg
		g.itableBlocks = ipg * inodeSize / blockSize
		// A last group too small for its share of metadata is dropped,
		// as mke2fs does.
		rem := g.blocks % blocksPerGroup
		overhead := 3 + g.itableBlocks
		if g.groups > 1 && rem != 0 && rem < overhead+50 {
			g.blocks -= rem
			continue
		}
		break
	}
	g.gdtBlocks = (g.groups*descSize + blockSize - 1) / blockSize
	if journal {
		g.journal = journalBlocks(g.blocks)
	}
	g.used = newBitset(g.blocks)
	for gr := int64(0); gr < g.groups; gr++ {
		if hasSuper(gr) {
			start := gr * blocksPerGroup
			n := 1 + g.gdtBlocks
			if start+n > g.blocks {
				return nil, fmt.Errorf("%d bytes is too small for ext4 metadata", size)
			}
			g.used.setRange(start, n)
			g.metaBlocks += n
			g.metaRanges++
		}
	}
	g.blockBitmap = make([]int64, g.groups)
	g.inodeBitmap = make([]int64, g.groups)
	g.inodeTable = make([]int64, g.groups)
	// Each flex group keeps all its bitmaps and inode tables together at
	// its start: block bitmaps, inode bitmaps, then inode tables.
	for f := int64(0); f < g.groups; f += flexGroups {
		n := min(flexGroups, g.groups-f)
		cur := f * blocksPerGroup
		place := func(length int64) (int64, error) {
			b, ok := g.used.findFree(cur, length, g.blocks)
			if !ok {
				return 0, fmt.Errorf("%d bytes is too small for ext4 metadata (%d groups, %d inodes)", size, g.groups, g.groups*g.inodesPerGrp)
			}
			g.used.setRange(b, length)
			g.metaBlocks += length
			if b != cur {
				g.metaRanges++
			}
			cur = b + length
			return b, nil
		}
		var err error
		for i := f; i < f+n && err == nil; i++ {
			g.blockBitmap[i], err = place(1)
		}
		for i := f; i < f+n && err == nil; i++ {
			g.inodeBitmap[i], err = place(1)
		}
		for i := f; i < f+n && err == nil; i++ {
			g.inodeTable[i], err = place(g.itableBlocks)
		}
		if err != nil {
			return nil, err
		}
		g.metaRanges++
	}
	return g, nil
}

// bitset is one bit per block (or inode).
type bitset []uint64

func newBitset(n int64) bitset { return make(bitset, (n+63)/64) }

func (b bitset) get(i int64) bool { return b[i>>6]&(1<<(i&63)) != 0 }
func (b bitset) set(i int64)      { b[i>>6] |= 1 << (i & 63) }

func (b bitset) setRange(start, n int64) {
	for i := start; i < start+n; {
		if i&63 == 0 && start+n-i >= 64 {
			b[i>>6] = ^uint64(0)
			i += 64
			continue
		}
		b.set(i)
		i++
	}
}

// nextFree returns the first clear bit at or after i, or limit.
func (b bitset) nextFree(i, limit int64) int64 {
	for i < limit {
		w := ^b[i>>6] >> (i & 63)
		if w != 0 {
			i += int64(bits.TrailingZeros64(w))
			return min(i, limit)
		}
		i = (i | 63) + 1
	}
	return limit
}

// nextUsed returns the first set bit at or after i, or limit.
func (b bitset) nextUsed(i, limit int64) int64 {
	for i < limit {
		w := b[i>>6] >> (i & 63)
		if w != 0 {
			i += int64(bits.TrailingZeros64(w))
			return min(i, limit)
		}
		i = (i | 63) + 1
	}
	return limit
}

// findFree returns the first run of n clear bits at or after from.
func (b bitset) findFree(from, n, limit int64) (int64, bool) {
	for from < limit {
		s := b.nextFree(from, limit)
		e := b.nextUsed(s, min(limit, s+n))
		if e-s >= n {
			return s, true
		}
		from = e
	}
	return 0, false
}

// count returns the number of set bits in [start, start+n).
func (b bitset) count(start, n int64) int64 {
	var c int64
	for i := start; i < start+n; {
		if i&63 == 0 && start+n-i >= 64 {
			c += int64(bits.OnesCount64(b[i>>6]))
			i += 64
			continue
		}
		if b.get(i) {
			c++
		}
		i++
	}
	return c
}
