package randtree

import (
	"encoding/binary"
	"fmt"
	"io"
)

// ChunkSize is the granularity of Content's zero runs: a chunk is either
// all zero or pseudo-random bytes (some of which may happen to be zero).
const ChunkSize = 4096

// Content is file content regenerated on demand from a seed, so a tree of
// gigabytes costs a few bytes per file. It implements
// fstree.ReaderAtContent.
//
// The file is cut into ChunkSize chunks, grouped into runs of 1<<RunShift
// chunks; each run is all zero with probability ZeroOdds/256, which gives
// writers holes to find. Within a data chunk, a chunk whose seed says so is
// zero in its second half, so "partly zero" blocks exist too.
type Content struct {
	Seed     uint64
	Size     int64
	RunShift uint  // log2 of the zero-run length in chunks
	ZeroOdds uint8 // chance (out of 256) that a run is all zero
}

// Open returns a reader over the whole content.
func (c Content) Open() (io.ReadCloser, error) {
	return io.NopCloser(io.NewSectionReader(c, 0, c.Size)), nil
}

// ReaderAt returns c itself, at offset 0.
func (c Content) ReaderAt() (io.ReaderAt, int64, error) { return c, 0, nil }

// ReadAt fills p with the content at off.
func (c Content) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("randtree content: negative offset %d", off)
	}
	if off >= c.Size {
		return 0, io.EOF
	}
	n := 0
	for len(p) > 0 && off < c.Size {
		k := off / ChunkSize
		in := int(off % ChunkSize)
		m := min(int64(ChunkSize-in), c.Size-off, int64(len(p)))
		c.chunk(k, in, p[:m])
		p = p[m:]
		off += m
		n += int(m)
	}
	if len(p) > 0 {
		return n, io.EOF
	}
	return n, nil
}

// IsZeroChunk reports whether chunk k (bytes k*ChunkSize onwards) is all
// zero by construction.
func (c Content) IsZeroChunk(k int64) bool {
	if c.ZeroOdds == 0 {
		return false
	}
	return uint8(mix(c.Seed^0x5a5a, uint64(k>>c.RunShift))) < c.ZeroOdds
}

// chunk writes bytes [in, in+len(p)) of chunk k into p.
func (c Content) chunk(k int64, in int, p []byte) {
	if c.IsZeroChunk(k) {
		clear(p)
		return
	}
	s := mix(c.Seed, uint64(k))
	half := s&7 == 0 // second half zero
	// Generate 8 bytes at a time from a per-chunk xorshift stream,
	// starting at the aligned word that holds byte in.
	w := in / 8
	x := s | 1
	var buf [8]byte
	for i := 0; i < w; i++ { // skip ahead; chunks are small
		x = xorshift(x)
	}
	pos := w * 8
	for len(p) > 0 {
		x = xorshift(x)
		binary.LittleEndian.PutUint64(buf[:], x)
		from := in - pos
		if from < 0 {
			from = 0
		}
		m := copy(p, buf[from:])
		if half && pos >= ChunkSize/2 {
			clear(p[:m])
		}
		p = p[m:]
		in += m
		pos += 8
	}
}

func xorshift(x uint64) uint64 {
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	return x
}

// mix is SplitMix64's finalizer over a and b: a cheap, well-spread hash.
func mix(a, b uint64) uint64 {
	z := a + 0x9e3779b97f4a7c15*(b+1)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
