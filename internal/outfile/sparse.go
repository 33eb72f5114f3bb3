package outfile

import (
	"bytes"
	"fmt"
	"os"
)

// SparseBlock is the granularity at which Sparse leaves zeros out: the
// block size of the filesystems a cache or a temporary lives on.
const SparseBlock = 4096

// Sparse writes a stream into a file sequentially, leaving every aligned
// block of zeros as a hole instead of writing it: a decompressed disk
// image or layer is often mostly zeros, and a gigabyte of them should not
// take a gigabyte of disk. The file must be new (empty). Finish sets its
// final size, which the holes at its end need.
type Sparse struct {
	f    *os.File
	off  int64
	part []byte // the bytes of an unaligned block started by the last Write
}

// NewSparse starts writing f, a new, empty file, from its start.
func NewSparse(f *os.File) *Sparse { return &Sparse{f: f} }

// Write writes p after what was written before; blocks that are all
// zeros are skipped.
func (s *Sparse) Write(p []byte) (int, error) {
	n := len(p)
	if len(s.part) > 0 {
		k := min(SparseBlock-len(s.part), len(p))
		s.part = append(s.part, p[:k]...)
		p = p[k:]
		if len(s.part) < SparseBlock {
			return n, nil
		}
		if err := s.block(s.part); err != nil {
			return 0, err
		}
		s.part = s.part[:0]
	}
	// Runs of data blocks go out in one write each.
	for len(p) >= SparseBlock {
		end := 0
		for end+SparseBlock <= len(p) && !isZero(p[end:end+SparseBlock]) {
			end += SparseBlock
		}
		if end > 0 {
			if err := s.block(p[:end]); err != nil {
				return 0, err
			}
			p = p[end:]
			continue
		}
		s.off += SparseBlock // a zero block: a hole
		p = p[SparseBlock:]
	}
	if len(p) > 0 {
		if s.part == nil {
			s.part = make([]byte, 0, SparseBlock)
		}
		s.part = append(s.part, p...)
	}
	return n, nil
}

func (s *Sparse) block(b []byte) error {
	if isZero(b) {
		s.off += int64(len(b))
		return nil
	}
	if _, err := s.f.WriteAt(b, s.off); err != nil {
		return fmt.Errorf("write %s: %w", s.f.Name(), err)
	}
	s.off += int64(len(b))
	return nil
}

// Size is the number of bytes written so far.
func (s *Sparse) Size() int64 { return s.off + int64(len(s.part)) }

// Finish writes a last partial block and sets the file's size to the bytes
// written.
func (s *Sparse) Finish() error {
	if len(s.part) > 0 {
		if err := s.block(s.part); err != nil {
			return err
		}
		s.part = s.part[:0]
	}
	if err := s.f.Truncate(s.off); err != nil {
		return fmt.Errorf("write %s: %w", s.f.Name(), err)
	}
	return nil
}

var zeroBlock [SparseBlock]byte

func isZero(b []byte) bool {
	for len(b) > 0 {
		k := min(len(b), len(zeroBlock))
		if !bytes.Equal(b[:k], zeroBlock[:k]) {
			return false
		}
		b = b[k:]
	}
	return true
}
