package diskimage

import (
	"context"
	"fmt"
	"io"

	"github.com/ocidisk/ocidisk/diskimage/qcow2"
	"github.com/ocidisk/ocidisk/internal/compression"
)

// Output formats of Write: a raw disk image (sparse, with a .bmap and a
// compressed copy if asked), or QEMU's qcow2, written from the raw image
// and the record of its writes, which the qcow2 holds without the holes.
const (
	FormatRaw   = "raw"
	FormatQcow2 = "qcow2"
)

// Formats lists the output formats, the default first.
func Formats() []string { return []string{FormatRaw, FormatQcow2} }

// checkFormat checks an output format and what it goes with: a block map
// and a compressed copy describe a raw image; a qcow2 file is already
// sparse, and qemu-img and QEMU read it as it is.
func checkFormat(opts WriteOptions, compress compression.Format) (string, error) {
	switch opts.Format {
	case "", FormatRaw:
		return FormatRaw, nil
	case FormatQcow2:
		if opts.Bmap {
			return "", fmt.Errorf("output format %s: a block map (.bmap) describes a raw image", FormatQcow2)
		}
		if compress != compression.None {
			return "", fmt.Errorf("output format %s: compression (%s) is for a raw image; a qcow2 image holds no holes already", FormatQcow2, compress)
		}
		return FormatQcow2, nil
	}
	return "", fmt.Errorf("output format %q: want %s or %s", opts.Format, FormatRaw, FormatQcow2)
}

// writeQcow2 writes the qcow2 image of the size-byte raw image r to w,
// reading only the ranges rec recorded: everything else is a hole.
func writeQcow2(ctx context.Context, w io.WriterAt, r io.ReaderAt, size int64, rec *recorder) (int64, error) {
	blocks, _ := rec.mapped()
	ranges := make([]qcow2.Range, len(blocks))
	for i, b := range blocks {
		start := b.first * BlockSize
		ranges[i] = qcow2.Range{Off: start, Len: min(b.end*BlockSize, size) - start}
	}
	n, err := qcow2.Write(ctx, w, r, size, ranges)
	if err != nil {
		return 0, fmt.Errorf("qcow2: %w", err)
	}
	return n, nil
}
