package verity

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/ocidisk/ocidisk/verity/layout"
)

// CorruptError is a block whose digest does not match the tree, in the
// kernel's words.
type CorruptError struct {
	// Metadata says Block is a hash block, counted in hash blocks from the
	// hash device's start; otherwise it is a data block.
	Metadata bool
	Block    uint64
}

func (e *CorruptError) Error() string {
	kind := "data"
	if e.Metadata {
		kind = "metadata"
	}
	return fmt.Sprintf("verity: %s block %d is corrupted", kind, e.Block)
}

// Verify checks the first t.DataBlocks blocks of data against the tree at
// t.HashOffset of hash, and the tree against t.RootHash, as dm-verity
// would on reading every block: the top level against the root hash,
// each level against the one above, each data block against the bottom
// level. It returns a *CorruptError naming the first block that fails (a
// hash block before any data block), or an error reading.
func Verify(data, hash io.ReaderAt, t *Tree) error {
	if err := t.Check(); err != nil {
		return err
	}
	if len(t.RootHash) != DigestSize {
		return fmt.Errorf("verity: root hash of %d bytes, want %d", len(t.RootHash), DigestSize)
	}
	g := layout.NewGeometry(t.DataBlocks)
	start := t.HashStart()
	stored := make([]byte, g.Blocks*BlockSize)
	if len(stored) > 0 {
		if k, err := hash.ReadAt(stored, int64(start)*BlockSize); k < len(stored) {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("verity: read the hash tree at %d: %w", int64(start)*BlockSize, err)
		}
	}
	level := func(i int) []byte {
		return stored[g.Start[i]*BlockSize : (g.Start[i]+g.Size[i])*BlockSize]
	}
	s := newHasher(t.Salt)
	// want holds the verified digests of the level being checked.
	want := t.RootHash
	for i := g.Levels - 1; i >= 0; i-- {
		l := level(i)
		for k := range g.Size[i] {
			got := s.sum(nil, l[k*BlockSize:(k+1)*BlockSize])
			if !bytes.Equal(got, want[k*DigestSize:(k+1)*DigestSize]) {
				return &CorruptError{Metadata: true, Block: start + g.Start[i] + k}
			}
		}
		want = l
	}

	v, err := NewWriter(nil, 0, int64(t.DataBlocks)*BlockSize, Options{Salt: t.Salt})
	if err != nil {
		return err
	}
	if err := v.hashFrom(data, allRuns(int64(t.DataBlocks))); err != nil {
		return err
	}
	for b := range t.DataBlocks {
		if !bytes.Equal(v.digests[b*DigestSize:(b+1)*DigestSize], want[b*DigestSize:(b+1)*DigestSize]) {
			return &CorruptError{Block: b}
		}
	}
	return nil
}
