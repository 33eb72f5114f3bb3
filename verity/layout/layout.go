// Package layout is the on-disk layout of a dm-verity hash tree in the
// format `veritysetup format` writes by default: the superblock, where
// each level of the tree lives, and the kernel's verity table line. It
// hashes nothing, so that ocidisk's initramfs init can read a superblock
// and set up the target without linking a hash implementation; package
// verity makes and checks the trees.
package layout

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// The one geometry supported: veritysetup's defaults.
const (
	// BlockSize is the size of a data block and of a hash block.
	BlockSize = 4096
	// DigestSize is the size of a sha256 digest.
	DigestSize = 32
	// Algorithm names the hash as the superblock and the table line do.
	Algorithm = "sha256"
	// SuperblockSize is the size of the verity superblock; the tree
	// starts at the next hash block boundary after it.
	SuperblockSize = 512
	// MaxSaltSize is the largest salt the superblock holds.
	MaxSaltSize = 256
	// HashType 1 is the normal format (0 is Chrome OS's): the salt goes in
	// front of each block, and digests are padded to a power of two.
	HashType = 1
	// PerBlock is how many digests a hash block holds.
	PerBlock     = BlockSize / DigestSize
	perBlockBits = 7
	// MaxDataBlocks keeps byte offsets of data blocks within an int64.
	MaxDataBlocks = math.MaxInt64 / BlockSize
)

// Tree describes a hash tree: what a verity table line, veritysetup's
// options and ocidisk's kernel command line need.
type Tree struct {
	// DataBlocks is the number of 4 KiB data blocks the tree covers, from
	// the data device's start.
	DataBlocks uint64
	// Salt is hashed in front of every block; it may be empty.
	Salt []byte
	// RootHash is the digest of the tree's top block (of the data block
	// itself for a single block); empty when read from a superblock.
	RootHash []byte
	// UUID is the superblock's.
	UUID [16]byte
	// HashOffset is the byte offset, on the hash device, of the
	// superblock, or of the first hash block without one (a multiple of
	// BlockSize then). veritysetup calls it --hash-offset.
	HashOffset int64
	// NoSuperblock says the tree has no superblock in front
	// (veritysetup's --no-superblock).
	NoSuperblock bool
}

// HashStart is where the tree's first hash block is on the hash device, in
// hash blocks: the <hash_start_block> of the verity table line.
func (t *Tree) HashStart() uint64 {
	if t.NoSuperblock {
		return uint64(t.HashOffset) / BlockSize
	}
	return uint64(t.HashOffset+SuperblockSize+BlockSize-1) / BlockSize
}

// Size is the number of bytes from HashOffset to the end of the tree: what
// the hash device needs beyond HashOffset.
func (t *Tree) Size() int64 {
	return int64(t.HashStart()+NewGeometry(t.DataBlocks).Blocks)*BlockSize - t.HashOffset
}

// Table is the verity target's parameters on a device-mapper table line,
// after "START LENGTH verity": format, devices, block sizes, data blocks,
// hash start, algorithm, root hash and salt ("-" for none).
func (t *Tree) Table(dataDev, hashDev string) string {
	salt := "-"
	if len(t.Salt) > 0 {
		salt = fmt.Sprintf("%x", t.Salt)
	}
	return fmt.Sprintf("%d %s %s %d %d %d %d %s %x %s", HashType, dataDev, hashDev, BlockSize, BlockSize,
		t.DataBlocks, t.HashStart(), Algorithm, t.RootHash, salt)
}

// Check reports parameters the format cannot have.
func (t *Tree) Check() error {
	switch {
	case t.DataBlocks == 0:
		return errors.New("verity: no data blocks to protect")
	case t.DataBlocks > MaxDataBlocks:
		return fmt.Errorf("verity: %d data blocks is too many", t.DataBlocks)
	case len(t.Salt) > MaxSaltSize:
		return fmt.Errorf("verity: salt of %d bytes: at most %d", len(t.Salt), MaxSaltSize)
	case t.HashOffset < 0 || t.HashOffset%512 != 0:
		return fmt.Errorf("verity: hash offset %d: want a multiple of 512", t.HashOffset)
	case t.NoSuperblock && t.HashOffset%BlockSize != 0:
		return fmt.Errorf("verity: hash offset %d without a superblock: want a multiple of %d", t.HashOffset, BlockSize)
	}
	return nil
}

// Geometry is the shape of the tree over some number of data blocks.
// Level 0 holds the data blocks' digests; each level above the digests of
// the one below; the top level is one block. The levels are stored top
// first, as dm-verity and veritysetup lay them out.
type Geometry struct {
	Levels int
	Start  []uint64 // first block of each level, from the tree's start
	Size   []uint64 // blocks of each level
	Blocks uint64   // blocks of all levels
}

// NewGeometry lays out the tree over dataBlocks blocks as the kernel
// computes it.
func NewGeometry(dataBlocks uint64) Geometry {
	var g Geometry
	// One data block needs no tree: its digest is the root hash.
	for dataBlocks > 0 && perBlockBits*g.Levels < 64 && (dataBlocks-1)>>(perBlockBits*g.Levels) != 0 {
		g.Levels++
	}
	g.Start = make([]uint64, g.Levels)
	g.Size = make([]uint64, g.Levels)
	for i := g.Levels - 1; i >= 0; i-- {
		shift := uint(perBlockBits * (i + 1))
		g.Start[i] = g.Blocks
		g.Size[i] = (dataBlocks + 1<<shift - 1) >> shift
		g.Blocks += g.Size[i]
	}
	return g
}

var signature = []byte("verity\x00\x00")

// Superblock returns the tree's superblock, SuperblockSize bytes:
// little-endian fields, as cryptsetup's lib/verity lays them out.
func (t *Tree) Superblock() []byte {
	b := make([]byte, SuperblockSize)
	le := binary.LittleEndian
	copy(b[0:8], signature)
	le.PutUint32(b[8:], 1) // superblock version
	le.PutUint32(b[12:], HashType)
	copy(b[16:32], t.UUID[:])
	copy(b[32:64], Algorithm)
	le.PutUint32(b[64:], BlockSize) // data block size
	le.PutUint32(b[68:], BlockSize) // hash block size
	le.PutUint64(b[72:], t.DataBlocks)
	le.PutUint16(b[80:], uint16(len(t.Salt)))
	copy(b[88:88+MaxSaltSize], t.Salt)
	return b
}

// ErrNoSuperblock means there is no verity superblock where one was
// looked for.
var ErrNoSuperblock = errors.New("no verity superblock")

// ReadSuperblock reads the superblock at off of r: the tree it describes,
// without its root hash, which only the kernel command line (or whatever
// signs it) holds. Only the format this package writes is accepted.
func ReadSuperblock(r io.ReaderAt, off int64) (*Tree, error) {
	b := make([]byte, SuperblockSize)
	if _, err := r.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("read the verity superblock at %d: %w", off, err)
	}
	if !bytes.Equal(b[:8], signature) {
		return nil, fmt.Errorf("at %d: %w", off, ErrNoSuperblock)
	}
	le := binary.LittleEndian
	alg := string(bytes.TrimRight(b[32:64], "\x00"))
	t := &Tree{DataBlocks: le.Uint64(b[72:]), HashOffset: off}
	copy(t.UUID[:], b[16:32])
	switch {
	case le.Uint32(b[8:]) != 1:
		return nil, fmt.Errorf("verity superblock at %d: version %d, want 1", off, le.Uint32(b[8:]))
	case le.Uint32(b[12:]) != HashType:
		return nil, fmt.Errorf("verity superblock at %d: hash type %d, want %d", off, le.Uint32(b[12:]), HashType)
	case alg != Algorithm:
		return nil, fmt.Errorf("verity superblock at %d: algorithm %q, want %s", off, alg, Algorithm)
	case le.Uint32(b[64:]) != BlockSize || le.Uint32(b[68:]) != BlockSize:
		return nil, fmt.Errorf("verity superblock at %d: block sizes %d and %d, want %d", off, le.Uint32(b[64:]), le.Uint32(b[68:]), BlockSize)
	case le.Uint16(b[80:]) > MaxSaltSize:
		return nil, fmt.Errorf("verity superblock at %d: salt of %d bytes", off, le.Uint16(b[80:]))
	}
	t.Salt = bytes.Clone(b[88 : 88+int(le.Uint16(b[80:]))])
	if err := t.Check(); err != nil {
		return nil, fmt.Errorf("verity superblock at %d: %w", off, err)
	}
	return t, nil
}
