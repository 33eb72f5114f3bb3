package ext4

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
)

const (
	dirTail      = 12                         // ext4_dir_entry_tail
	leafRoom     = blockSize - dirTail        // bytes for entries in a leaf
	dxRootLimit  = (blockSize - 0x20 - 8) / 8 // 507 dx_entries in the root
	dxNodeLimit  = (blockSize - 8 - 8) / 8    // 510 in an interior node
	hashVersion  = 1                          // half_md4
	minLostFound = 4                          // mke2fs makes lost+found 16 KiB
)

// dirent is one entry of a directory being written.
type dirent struct {
	name  string
	ino   uint32
	ftype uint8
	hash  uint32
	minor uint32
}

func recLen(nameLen int) int { return (8 + nameLen + 3) &^ 3 }

// dirLayout decides how a directory's entries (without "." and "..") go
// into blocks. For a linear directory, leaves holds the entries of each
// block in order; for an htree it holds the hash-ordered leaves, and
// hashes the first hash of each leaf with the collision bit set when a
// hash continues from the previous leaf.
type dirLayout struct {
	htree  bool
	leaves [][]dirent
	hashes []uint32
	nodes  int // interior index blocks (0: the root points at leaves)
}

// blocks is the directory's size in blocks.
func (l *dirLayout) blocks() int64 {
	if !l.htree {
		return int64(len(l.leaves))
	}
	return 1 + int64(l.nodes) + int64(len(l.leaves))
}

// pack fills leaves greedily with es in order, first reserving used bytes
// of the first leaf.
func pack(es []dirent, used int) [][]dirent {
	var leaves [][]dirent
	start := 0
	for i, e := range es {
		n := recLen(len(e.name))
		if used+n > leafRoom {
			leaves = append(leaves, es[start:i])
			start, used = i, 0
		}
		used += n
	}
	return append(leaves, es[start:])
}

// layoutDir lays out es (sorted by name): in one linear block, padded to
// minBlocks, when they fit, else as an htree hashed with seed.
func layoutDir(es []dirent, seed [4]uint32, minBlocks int) (*dirLayout, error) {
	dots := recLen(1) + recLen(2)
	leaves := pack(es, dots)
	if len(leaves) == 1 {
		for len(leaves) < minBlocks {
			leaves = append(leaves, nil)
		}
		return &dirLayout{leaves: leaves}, nil
	}
	hs := make([]dirent, len(es))
	copy(hs, es)
	for i := range hs {
		hs[i].hash, hs[i].minor = dirHash([]byte(hs[i].name), seed, true)
	}
	slices.SortFunc(hs, func(a, b dirent) int {
		if a.hash != b.hash {
			return cmpU32(a.hash, b.hash)
		}
		if a.minor != b.minor {
			return cmpU32(a.minor, b.minor)
		}
		return strings.Compare(a.name, b.name)
	})
	l := &dirLayout{htree: true, leaves: pack(hs, 0)}
	for i, leaf := range l.leaves {
		h := leaf[0].hash
		if i > 0 {
			prev := l.leaves[i-1]
			if prev[len(prev)-1].hash == h {
				h |= 1
			}
		}
		l.hashes = append(l.hashes, h)
	}
	if len(l.leaves) > dxRootLimit {
		l.nodes = (len(l.leaves) + dxNodeLimit - 1) / dxNodeLimit
		if l.nodes > dxRootLimit {
			return nil, fmt.Errorf("directory of %d entries needs a three-level htree (largedir), which is not supported", len(es))
		}
	}
	return l, nil
}

func cmpU32(a, b uint32) int {
	if a < b {
		return -1
	}
	return 1
}

// putDirent writes one entry at p and returns its length; rec is its
// rec_len (0: the minimum).
func putDirent(p []byte, e dirent, rec int) int {
	if rec == 0 {
		rec = recLen(len(e.name))
	}
	le := binary.LittleEndian
	le.PutUint32(p[0:], e.ino)
	le.PutUint16(p[4:], uint16(rec))
	p[6] = uint8(len(e.name))
	p[7] = e.ftype
	copy(p[8:], e.name)
	return rec
}

// leafBlock fills p with a leaf block: optional dot entries, es, the
// last entry stretched to the tail, and the checksum tail.
func leafBlock(p []byte, dots []dirent, es []dirent, seed uint32) {
	clear(p)
	all := append(slices.Clip(dots), es...)
	off := 0
	if len(all) == 0 {
		putDirent(p, dirent{}, leafRoom)
	}
	for i, e := range all {
		rec := 0
		if i == len(all)-1 {
			rec = leafRoom - off
		}
		off += putDirent(p[off:], e, rec)
	}
	t := p[leafRoom:]
	binary.LittleEndian.PutUint16(t[4:], dirTail)
	t[7] = 0xde
	binary.LittleEndian.PutUint32(t[8:], crc32c(seed, p[:leafRoom]))
}

// dxBlock fills p with an htree index block: the root (with its fake "."
// and ".." entries) when root is set, else an interior node. entries are
// (hash, logical block) pairs; the first hash is implied.
func dxBlock(p []byte, root bool, self, parent uint32, levels int, hashes []uint32, blocks []uint32, seed uint32) {
	clear(p)
	le := binary.LittleEndian
	var countOff, limit int
	if root {
		putDirent(p, dirent{name: ".", ino: self, ftype: 2}, 12)
		putDirent(p[12:], dirent{name: "..", ino: parent, ftype: 2}, blockSize-12)
		p[0x18+4] = hashVersion
		p[0x18+5] = 8 // info_length
		p[0x18+6] = uint8(levels)
		countOff, limit = 0x20, dxRootLimit
	} else {
		le.PutUint16(p[4:], blockSize) // fake empty entry spanning the block
		countOff, limit = 8, dxNodeLimit
	}
	le.PutUint16(p[countOff:], uint16(limit))
	le.PutUint16(p[countOff+2:], uint16(len(blocks)))
	for i, b := range blocks {
		e := p[countOff+8*i:]
		if i > 0 {
			le.PutUint32(e, hashes[i])
		}
		le.PutUint32(e[4:], b)
	}
	tail := countOff + 8*limit
	c := crc32c(seed, p[:countOff+8*len(blocks)])
	c = crc32c(c, p[tail:tail+4]) // dt_reserved
	c = crc32c(c, []byte{0, 0, 0, 0})
	le.PutUint32(p[tail+4:], c)
}
