package diskimage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"

	"github.com/ocidisk/ocidisk/internal/outfile"
)

// PartitionImage is one partition's filesystem written alone, as an
// update payload for an A/B slot.
type PartitionImage struct {
	Path string
	// Size is the partition's size in the layout: the image is exactly
	// that long, so that it fills the slot it is written to.
	Size int64
	// SHA256 is the image's digest in hex; SumPath the file holding it in
	// sha256sum's format ("DIGEST  NAME"), which `sha256sum -c` checks.
	SHA256, SumPath string
}

// WritePartition writes the filesystem of l.Partitions[i] alone to path, a
// new sparse file of the partition's size as the layout places it, and
// its SHA-256 to path.sha256. Nothing appears at either path unless both
// are complete.
func WritePartition(ctx context.Context, path string, l *Layout, i int) (*PartitionImage, error) {
	pl, err := l.place()
	if err != nil {
		return nil, err
	}
	if i < 0 || i >= len(pl.parts) || pl.parts[i].p.FS == nil {
		return nil, fmt.Errorf("partition %d has no filesystem to write", i+1)
	}
	pp := pl.parts[i]
	out, err := outfile.Create(path)
	if err != nil {
		return nil, err
	}
	defer out.Abort()
	if err := out.Truncate(pp.size); err != nil {
		return nil, fmt.Errorf("output %s: %w", path, err)
	}
	rec := newRecorder(ctx, freshFile{out.File}, pp.size, nil)
	if err := pp.p.FS.WriteAt(rec, 0, pp.size); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", path, pp.name, err)
	}
	sum, err := sparseSHA256(ctx, out.File, pp.size, rec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	sumOut, err := outfile.Create(path + ".sha256")
	if err != nil {
		return nil, err
	}
	defer sumOut.Abort()
	if _, err := fmt.Fprintf(sumOut, "%s  %s\n", sum, filepath.Base(path)); err != nil {
		return nil, fmt.Errorf("output %s: %w", sumOut.Path(), err)
	}
	if err := out.Commit(); err != nil {
		return nil, err
	}
	if err := sumOut.Commit(); err != nil {
		return nil, err
	}
	return &PartitionImage{Path: path, Size: pp.size, SHA256: sum, SumPath: sumOut.Path()}, nil
}

// sparseSHA256 hashes size bytes of r, reading only the ranges rec
// recorded and hashing zeros for the holes between them.
func sparseSHA256(ctx context.Context, r io.ReaderAt, size int64, rec *recorder) (string, error) {
	h := sha256.New()
	ranges, _ := rec.mapped()
	buf := make([]byte, 1<<20)
	zeros := make([]byte, len(buf))
	pos := int64(0)
	copyTo := func(end int64, data bool) error {
		for pos < end {
			b := buf[:min(int64(len(buf)), end-pos)]
			if !data {
				b = zeros[:len(b)]
			} else if _, err := r.ReadAt(b, pos); err != nil {
				return fmt.Errorf("read back at %d: %w", pos, err)
			}
			h.Write(b)
			pos += int64(len(b))
		}
		return ctx.Err()
	}
	for _, br := range ranges {
		if err := copyTo(br.first*BlockSize, false); err != nil {
			return "", err
		}
		if err := copyTo(min(br.end*BlockSize, size), true); err != nil {
			return "", err
		}
	}
	if err := copyTo(size, false); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
