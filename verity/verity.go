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
	"crypto/sha256"
	"encoding"
	"fmt"
	"hash"
	"io"

	"github.com/ocidisk/ocidisk/internal/sha256x2"
	"github.com/ocidisk/ocidisk/verity/layout"
)

// The geometry of the trees, as package layout has it.
const (
	BlockSize      = layout.BlockSize
	DigestSize     = layout.DigestSize
	Algorithm      = layout.Algorithm
	SuperblockSize = layout.SuperblockSize
	MaxSaltSize    = layout.MaxSaltSize
)

// Tree describes a hash tree: what a verity table line, veritysetup's
// options and ocidisk's kernel command line need (see layout.Tree).
type Tree = layout.Tree

// ErrNoSuperblock means there is no verity superblock where one was
// looked for.
var ErrNoSuperblock = layout.ErrNoSuperblock

// ReadSuperblock reads the superblock at off of r: the tree it describes,
// without its root hash, which only the kernel command line (or whatever
// signs it) holds.
func ReadSuperblock(r io.ReaderAt, off int64) (*Tree, error) { return layout.ReadSuperblock(r, off) }

// Size is the size of the superblock and tree for dataBytes of data (a
// multiple of BlockSize) when the superblock starts on a block boundary:
// what a partition needs beyond its data.
func Size(dataBytes int64) int64 {
	t := Tree{DataBlocks: uint64(dataBytes+BlockSize-1) / BlockSize}
	return t.Size()
}

// hasher hashes blocks with the salt in front: the salted state is
// computed once and restored for every block.
type hasher struct {
	h      hash.Hash
	u      encoding.BinaryUnmarshaler
	salted []byte // the marshalled state after the salt

	// With the SHA extensions and a salt shorter than SHA-256's block,
	// sums hashes two blocks at once (sha256x2): the first 64 bytes of a
	// block's message are the salt and the block's start, copied into
	// head; its last ones the block's end and the padding, in tail.
	pairs      bool
	salt       []byte
	head, tail [2][]byte
}

func newHasher(salt []byte) *hasher {
	h := sha256.New()
	h.Write(salt)
	st, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic(err) // crypto/sha256 always marshals
	}
	s := &hasher{h: h, u: h.(encoding.BinaryUnmarshaler), salted: st}
	if sha256x2.Available && len(salt) < sha256x2.BlockSize {
		s.pairs, s.salt = true, salt
		for i := range 2 {
			s.head[i] = make([]byte, sha256x2.BlockSize)
			copy(s.head[i], salt)
		}
	}
	return s
}

// sums appends to dst the digests of the salt and each BlockSize block of
// data.
func (s *hasher) sums(dst, data []byte) []byte {
	n := len(data) / BlockSize
	if !s.pairs {
		for i := range n {
			dst = s.sum(dst, data[i*BlockSize:(i+1)*BlockSize])
		}
		return dst
	}
	for i := 0; i+1 < n; i += 2 {
		dst = s.pair(dst, data[i*BlockSize:(i+1)*BlockSize], data[(i+1)*BlockSize:(i+2)*BlockSize])
	}
	if n%2 == 1 {
		dst = s.sum(dst, data[(n-1)*BlockSize:n*BlockSize])
	}
	return dst
}

// pair appends the digests of the salt and block a, then of the salt and
// block b. A block's message is the salt, the block and the padding: its
// middle is the block itself, at a 64-byte boundary of the message, and is
// hashed where it lies.
func (s *hasher) pair(dst, a, b []byte) []byte {
	const hb = sha256x2.BlockSize
	first := hb - len(s.salt) // the block's bytes in the message's first 64
	mid := (BlockSize - first) / hb * hb
	for i, blk := range [2][]byte{a, b} {
		copy(s.head[i][len(s.salt):], blk[:first])
		s.tail[i] = sha256x2.Pad(append(s.tail[i][:0], blk[first+mid:]...), uint64(len(s.salt)+BlockSize))
	}
	st := [2][8]uint32{sha256x2.IV, sha256x2.IV}
	sha256x2.Blocks(&st, s.head[0], s.head[1])
	sha256x2.Blocks(&st, a[first:first+mid], b[first:first+mid])
	sha256x2.Blocks(&st, s.tail[0], s.tail[1])
	return sha256x2.Sum(sha256x2.Sum(dst, &st[0]), &st[1])
}

// sum appends the digest of the salt and b to dst.
func (s *hasher) sum(dst, b []byte) []byte {
	if err := s.u.UnmarshalBinary(s.salted); err != nil {
		panic(err) // a state it marshalled itself
	}
	s.h.Write(b)
	return s.h.Sum(dst)
}

// Hasher computes the digests of data blocks as a Writer with the same
// salt does, for data known before it is written (Writer.Expect). It is
// not safe for concurrent use.
type Hasher struct {
	s   *hasher
	buf []byte
}

// NewHasher returns a Hasher with salt in front of every block.
func NewHasher(salt []byte) *Hasher {
	return &Hasher{s: newHasher(salt), buf: make([]byte, maxJob)}
}

// Blocks appends to dst the digests of everything r yields, in blocks of
// BlockSize, the last padded with zeros: those of the data written from a
// block boundary on.
func (h *Hasher) Blocks(dst []byte, r io.Reader) ([]byte, error) {
	for {
		n, err := io.ReadFull(r, h.buf)
		if n > 0 {
			whole := (n + BlockSize - 1) / BlockSize * BlockSize
			clear(h.buf[n:whole])
			dst = h.s.sums(dst, h.buf[:whole])
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return dst, nil
		default:
			return dst, err
		}
	}
}

// level hashes the hash blocks of a level (digests packed, the last block
// padded with zeros) into the digests of the level above.
func (s *hasher) level(digests []byte) []byte {
	out := make([]byte, 0, (len(digests)+BlockSize-1)/BlockSize*DigestSize)
	whole := len(digests) / BlockSize * BlockSize
	out = s.sums(out, digests[:whole])
	if whole < len(digests) {
		var last [BlockSize]byte
		copy(last[:], digests[whole:])
		out = s.sum(out, last[:])
	}
	return out
}

// tree computes every level above level 0 and the root hash from the data
// blocks' digests; levels[0] is digests.
func tree(t *Tree, digests []byte) (levels [][]byte, root []byte) {
	g := layout.NewGeometry(t.DataBlocks)
	s := newHasher(t.Salt)
	if g.Levels == 0 {
		return nil, digests
	}
	levels = [][]byte{digests}
	for i := 1; i < g.Levels; i++ {
		levels = append(levels, s.level(levels[i-1]))
	}
	return levels, s.level(levels[g.Levels-1])
}

// write writes the superblock (unless NoSuperblock) and the levels, each
// padded to whole blocks, at HashOffset of w.
func write(t *Tree, w io.WriterAt, levels [][]byte) error {
	g := layout.NewGeometry(t.DataBlocks)
	base := int64(t.HashStart()) * BlockSize
	if !t.NoSuperblock {
		// The rest of the superblock's hash block is zeros, as
		// veritysetup leaves it.
		sb := make([]byte, base-t.HashOffset)
		copy(sb, t.Superblock())
		if err := writeAt(w, sb, t.HashOffset); err != nil {
			return fmt.Errorf("verity superblock: %w", err)
		}
	}
	for i, l := range levels {
		off := base + int64(g.Start[i])*BlockSize
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
