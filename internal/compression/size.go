package compression

import (
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"

	"github.com/ocidisk/ocidisk/internal/xz"
)

// Size returns the decoded size of a file of format f, read from what the
// format records, without decoding: xz's indexes (always there), zstd's
// frame content sizes (when every frame has one, which zstd's decoder
// checks), or size itself for None. It returns -1 when the file does not
// record its size: gzip's trailer has it only modulo 2^32, bzip2 never,
// and lz4's optional content size is not checked by its decoder.
// Metadata that does not add up (a truncated xz file, a zstd frame whose
// blocks run past the end) is an error.
func Size(r io.ReaderAt, size int64, f Format) (int64, error) {
	switch f {
	case None:
		return size, nil
	case XZ:
		return xz.Size(r, size)
	case Zstd:
		return zstdSize(r, size)
	}
	return -1, nil
}

// zstdSize walks the frames of a zstd file by their block headers and adds
// up their content sizes: -1 when a frame does not record its own (a
// stream compressed without knowing its size).
func zstdSize(r io.ReaderAt, size int64) (int64, error) {
	var total int64
	buf := make([]byte, zstd.HeaderMaxSize)
	for off := int64(0); off < size; {
		n, err := r.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			return 0, err
		}
		var h zstd.Header
		if err := h.Decode(buf[:n]); err == io.ErrUnexpectedEOF {
			return 0, fmt.Errorf("the file ends inside a zstd frame header, at byte %d (truncated): %w", size, err)
		} else if err != nil {
			return 0, fmt.Errorf("zstd frame at byte %d: %w", off, err)
		}
		if h.Skippable {
			off += int64(h.HeaderSize) + int64(h.SkippableSize)
			continue
		}
		if !h.HasFCS {
			return -1, nil
		}
		total += int64(h.FrameContentSize)
		if total < 0 || h.FrameContentSize > 1<<62 {
			return 0, fmt.Errorf("zstd frame at byte %d: content size overflows", off)
		}
		off += int64(h.HeaderSize)
		for last := false; !last; {
			var bh [3]byte
			if _, err := r.ReadAt(bh[:], off); err == io.EOF {
				return 0, fmt.Errorf("the file ends inside a zstd frame, at byte %d (truncated): %w", size, io.ErrUnexpectedEOF)
			} else if err != nil {
				return 0, err
			}
			v := uint32(bh[0]) | uint32(bh[1])<<8 | uint32(bh[2])<<16
			last = v&1 != 0
			blockSize := int64(v >> 3)
			switch (v >> 1) & 3 {
			case 1: // RLE: one byte repeated
				blockSize = 1
			case 3:
				return 0, fmt.Errorf("zstd block at byte %d: reserved block type", off)
			}
			off += 3 + blockSize
		}
		if h.HasCheckSum {
			off += 4
		}
		if off > size {
			return 0, fmt.Errorf("the file ends inside a zstd frame, at byte %d (truncated): %w", size, io.ErrUnexpectedEOF)
		}
	}
	return total, nil
}
