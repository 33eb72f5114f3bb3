// Package verity makes and checks dm-verity hash trees in the format
// `veritysetup format` writes by default: format (hash type) 1, sha256,
// 4 KiB data and hash blocks, a salt hashed in front of every block, the
// levels of the tree stored top level first, and the 512-byte verity
// superblock in front of the tree.
//
// Writer hashes the data blocks as a filesystem writer writes them, in the
// same pass and on the other cores, so that the tree costs a read of only
// the few blocks written in pieces or more than once; Build hashes an
// existing image, as veritysetup does; Verify recomputes a tree and names
// the first block that does not match it.
//
// The kernel needs the root hash, the salt, the number of data blocks and
// where the tree starts (Tree.HashStart) on its verity table line; the
// superblock records all but the root hash for veritysetup and for
// ocidisk's init.
package verity

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
)

// The one geometry this package makes: veritysetup's defaults.
const (
	// BlockSize is the size of a data block and of a hash block.
	BlockSize = 4096
	// DigestSize is the size of a sha256 digest.
	DigestSize = sha256.Size
	// Algorithm names the hash as the superblock and the table line do.
	Algorithm = "sha256"
	// SuperblockSize is the size of the verity superblock; the tree
	// starts at the next hash block boundary after it.
	SuperblockSize = 512
	// MaxSaltSize is the largest salt the superblock holds.
	MaxSaltSize = 256
	// hashType 1 is the normal format (0 is Chrome OS's): the salt goes in
	// front of each block, and digests are padded to a power of two.
	hashType = 1
	// perBlock is how many digests a hash block holds.
	perBlock     = BlockSize / DigestSize
	perBlockBits = 7
)

// maxDataBlocks keeps byte offsets of data blocks within an int64.
const maxDataBlocks = math.MaxInt64 / BlockSize

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
	return int64(t.HashStart()+newGeometry(t.DataBlocks).blocks)*BlockSize - t.HashOffset
}

// Size is the size of the superblock and tree for dataBytes of data (a
// multiple of BlockSize) when the superblock starts on a block boundary:
// what a partition needs beyond its data.
func Size(dataBytes int64) int64 {
	t := Tree{DataBlocks: uint64(dataBytes+BlockSize-1) / BlockSize}
	return t.Size()
}

// Table is the verity target's parameters on a device-mapper table line,
// after "START LENGTH verity": format, devices, block sizes, data blocks,
// hash start, algorithm, root hash and salt ("-" for none).
func (t *Tree) Table(dataDev, hashDev string) string {
	salt := "-"
	if len(t.Salt) > 0 {
		salt = fmt.Sprintf("%x", t.Salt)
	}
	return fmt.Sprintf("%d %s %s %d %d %d %d %s %x %s", hashType, dataDev, hashDev, BlockSize, BlockSize,
		t.DataBlocks, t.HashStart(), Algorithm, t.RootHash, salt)
}

func (t *Tree) check() error {
	switch {
	case t.DataBlocks == 0:
		return errors.New("verity: no data blocks to protect")
	case t.DataBlocks > maxDataBlocks:
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

// geometry is the shape of the tree over some number of data blocks.
// Level 0 holds the data blocks' digests; each level above the digests of
// the one below; the top level is one block. The levels are stored top
// first, as dm-verity and veritysetup lay them out.
type geometry struct {
	levels int
	start  []uint64 // first block of each level, from the tree's start
	size   []uint64 // blocks of each level
	blocks uint64   // blocks of all levels
}

func newGeometry(dataBlocks uint64) geometry {
	var g geometry
	// One data block needs no tree: its digest is the root hash.
	for dataBlocks > 0 && perBlockBits*g.levels < 64 && (dataBlocks-1)>>(perBlockBits*g.levels) != 0 {
		g.levels++
	}
	g.start = make([]uint64, g.levels)
	g.size = make([]uint64, g.levels)
	for i := g.levels - 1; i >= 0; i-- {
		shift := uint(perBlockBits * (i + 1))
		g.start[i] = g.blocks
		g.size[i] = (dataBlocks + 1<<shift - 1) >> shift
		g.blocks += g.size[i]
	}
	return g
}

// hasher hashes blocks with the salt in front: the salted state is
// computed once and restored for every block.
type hasher struct {
	h      hash.Hash
	u      encoding.BinaryUnmarshaler
	salted []byte // the marshalled state after the salt
}

func newHasher(salt []byte) *hasher {
	h := sha256.New()
	h.Write(salt)
	st, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic(err) // crypto/sha256 always marshals
	}
	return &hasher{h: h, u: h.(encoding.BinaryUnmarshaler), salted: st}
}

// sum appends the digest of the salt and b to dst.
func (s *hasher) sum(dst, b []byte) []byte {
	if err := s.u.UnmarshalBinary(s.salted); err != nil {
		panic(err) // a state it marshalled itself
	}
	s.h.Write(b)
	return s.h.Sum(dst)
}

// level hashes the hash blocks of a level (digests packed, the last block
// padded with zeros) into the digests of the level above.
func (s *hasher) level(digests []byte) []byte {
	out := make([]byte, 0, (len(digests)+BlockSize-1)/BlockSize*DigestSize)
	var last [BlockSize]byte
	for off := 0; off < len(digests); off += BlockSize {
		b := digests[off:min(off+BlockSize, len(digests))]
		if len(b) < BlockSize {
			copy(last[:], b)
			b = last[:]
		}
		out = s.sum(out, b)
	}
	return out
}

// tree computes every level above level 0 and the root hash from the data
// blocks' digests; levels[0] is digests.
func (t *Tree) tree(digests []byte) (levels [][]byte, root []byte) {
	g := newGeometry(t.DataBlocks)
	s := newHasher(t.Salt)
	if g.levels == 0 {
		return nil, digests
	}
	levels = [][]byte{digests}
	for i := 1; i < g.levels; i++ {
		levels = append(levels, s.level(levels[i-1]))
	}
	return levels, s.level(levels[g.levels-1])
}

// write writes the superblock (unless NoSuperblock) and the levels, each
// padded to whole blocks, at HashOffset of w.
func (t *Tree) write(w io.WriterAt, levels [][]byte) error {
	g := newGeometry(t.DataBlocks)
	base := int64(t.HashStart()) * BlockSize
	if !t.NoSuperblock {
		// The rest of the superblock's hash block is zeros, as
		// veritysetup leaves it.
		sb := make([]byte, base-t.HashOffset)
		t.marshal(sb[:SuperblockSize])
		if err := writeAt(w, sb, t.HashOffset); err != nil {
			return fmt.Errorf("verity superblock: %w", err)
		}
	}
	for i, l := range levels {
		off := base + int64(g.start[i])*BlockSize
		full := len(l) / BlockSize * BlockSize
		if err := writeAt(w, l[:full], off); err != nil {
			return fmt.Errorf("verity hash tree level %d: %w", i, err)
		}
		if full < len(l) {
			last := make([]byte, BlockSize)
			copy(last, l[full:])
			if err := writeAt(w, last, off+int64(full)); err != nil {
				return fmt.Errorf("verity hash tree level %d: %w", i, err)
			}
		}
	}
	return nil
}

// writeAt writes p in pieces of at most 1 MiB: a target such as diskimage's
// records its writes, and a level of a large tree is tens of megabytes.
func writeAt(w io.WriterAt, p []byte, off int64) error {
	for len(p) > 0 {
		n := min(len(p), 1<<20)
		if _, err := w.WriteAt(p[:n], off); err != nil {
			return err
		}
		p, off = p[n:], off+int64(n)
	}
	return nil
}

var signature = []byte("verity\x00\x00")

// marshal writes the superblock into b (SuperblockSize bytes, zeroed):
// little-endian fields, as cryptsetup's lib/verity lays them out.
func (t *Tree) marshal(b []byte) {
	le := binary.LittleEndian
	copy(b[0:8], signature)
	le.PutUint32(b[8:], 1) // superblock version
	le.PutUint32(b[12:], hashType)
	copy(b[16:32], t.UUID[:])
	copy(b[32:64], Algorithm)
	le.PutUint32(b[64:], BlockSize) // data block size
	le.PutUint32(b[68:], BlockSize) // hash block size
	le.PutUint64(b[72:], t.DataBlocks)
	le.PutUint16(b[80:], uint16(len(t.Salt)))
	copy(b[88:88+MaxSaltSize], t.Salt)
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
	case le.Uint32(b[12:]) != hashType:
		return nil, fmt.Errorf("verity superblock at %d: hash type %d, want %d", off, le.Uint32(b[12:]), hashType)
	case alg != Algorithm:
		return nil, fmt.Errorf("verity superblock at %d: algorithm %q, want %s", off, alg, Algorithm)
	case le.Uint32(b[64:]) != BlockSize || le.Uint32(b[68:]) != BlockSize:
		return nil, fmt.Errorf("verity superblock at %d: block sizes %d and %d, want %d", off, le.Uint32(b[64:]), le.Uint32(b[68:]), BlockSize)
	case le.Uint16(b[80:]) > MaxSaltSize:
		return nil, fmt.Errorf("verity superblock at %d: salt of %d bytes", off, le.Uint16(b[80:]))
	}
	t.Salt = bytes.Clone(b[88 : 88+int(le.Uint16(b[80:]))])
	if err := t.check(); err != nil {
		return nil, fmt.Errorf("verity superblock at %d: %w", off, err)
	}
	return t, nil
}

// uuidFrom derives a superblock UUID from the root hash when none is
// given: deterministic, and different for different content. It is a
// random-style (version 4) UUID in form.
func uuidFrom(root []byte) [16]byte {
	var u [16]byte
	copy(u[:], root)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}
