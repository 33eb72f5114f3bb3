package diskimage

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
)

// BlockSize is the granularity of the write record and of the .bmap.
const BlockSize = 4096

// blockRange is blocks [first, end).
type blockRange struct{ first, end int64 }

// recorder is the io.WriterAt the partition table, blobs and filesystems
// write through. It records which blocks were written (or declared zero
// with ZeroAt): that record, not a scan of the image, is the .bmap.
type recorder struct {
	w    io.WriterAt
	z    func(off, n int64) error // the target's ZeroAt, nil to write zeros
	ctx  context.Context
	size int64

	mu              sync.Mutex
	ranges          []blockRange // sorted, disjoint, not adjacent
	written, zeroed int64
	progress        func(done int64)
}

func newRecorder(ctx context.Context, w io.WriterAt, size int64, progress func(int64)) *recorder {
	r := &recorder{w: w, ctx: ctx, size: size, progress: progress}
	if z, ok := w.(ZeroWriterAt); ok {
		r.z = z.ZeroAt
	}
	return r
}

func (r *recorder) check(off, n int64) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	if off < 0 || off+n > r.size {
		return fmt.Errorf("write at bytes %d-%d: outside the %d-byte image", off, off+n-1, r.size)
	}
	return nil
}

// WriteAt writes p and records its blocks.
func (r *recorder) WriteAt(p []byte, off int64) (int, error) {
	if err := r.check(off, int64(len(p))); err != nil {
		return 0, err
	}
	n, err := r.w.WriteAt(p, off)
	r.mu.Lock()
	r.add(off, int64(n))
	r.written += int64(n)
	done := r.written + r.zeroed
	r.mu.Unlock()
	if r.progress != nil {
		r.progress(done)
	}
	return n, err
}

// ReadAt reads back from the target, when it can be read (an image
// file): a filesystem writer's hash tree, computed as it writes, reads
// back the blocks it wrote in pieces.
func (r *recorder) ReadAt(p []byte, off int64) (int, error) {
	ra, ok := r.w.(io.ReaderAt)
	if !ok {
		return 0, fmt.Errorf("read at %d: the image being written cannot be read back", off)
	}
	return ra.ReadAt(p, off)
}

// ZeroAt records that [off, off+n) must read as zeros. Over a fresh
// target that already does, nothing is written; where something was
// written before, or when the target cannot tell, zeros are.
func (r *recorder) ZeroAt(off, n int64) error {
	if err := r.check(off, n); err != nil {
		return err
	}
	r.mu.Lock()
	overlaps := r.overlaps(off, n)
	r.mu.Unlock()
	if r.z == nil || overlaps {
		zeros := make([]byte, min(n, 1<<20))
		for done := int64(0); done < n; {
			k := min(int64(len(zeros)), n-done)
			if _, err := r.w.WriteAt(zeros[:k], off+done); err != nil {
				return err
			}
			done += k
		}
	} else if err := r.z(off, n); err != nil {
		return err
	}
	r.mu.Lock()
	r.add(off, n)
	r.zeroed += n
	done := r.written + r.zeroed
	r.mu.Unlock()
	if r.progress != nil {
		r.progress(done)
	}
	return nil
}

func (r *recorder) overlaps(off, n int64) bool {
	first, end := off/BlockSize, (off+n+BlockSize-1)/BlockSize
	i, _ := slices.BinarySearchFunc(r.ranges, first, func(b blockRange, f int64) int {
		if b.end <= f {
			return -1
		}
		return 1
	})
	return i < len(r.ranges) && r.ranges[i].first < end
}

// add records bytes [off, off+n). Writers mostly go forward, so the common
// cases are extending or following the last range.
func (r *recorder) add(off, n int64) {
	if n <= 0 {
		return
	}
	first, end := off/BlockSize, (off+n+BlockSize-1)/BlockSize
	if k := len(r.ranges); k == 0 || first > r.ranges[k-1].end {
		r.ranges = append(r.ranges, blockRange{first, end})
		return
	} else if first >= r.ranges[k-1].first {
		r.ranges[k-1].end = max(r.ranges[k-1].end, end)
		return
	}
	// General case: merge with every range it touches.
	i := 0
	for i < len(r.ranges) && r.ranges[i].end < first {
		i++
	}
	j := i
	for j < len(r.ranges) && r.ranges[j].first <= end {
		first = min(first, r.ranges[j].first)
		end = max(end, r.ranges[j].end)
		j++
	}
	r.ranges = slices.Replace(r.ranges, i, j, blockRange{first, end})
}

// mapped returns the recorded ranges and their bytes (the last block
// counted only up to the end of the image).
func (r *recorder) mapped() ([]blockRange, int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, b := range r.ranges {
		n += min(b.end*BlockSize, r.size) - b.first*BlockSize
	}
	return slices.Clone(r.ranges), n
}
