package flash

import (
	"context"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/ocidisk/ocidisk/internal/compression"
)

// Device is what an image is written to: a block device or, in tests and
// with --allow-file, a regular file (*os.File is one).
type Device interface {
	io.WriterAt
	io.ReaderAt
}

// WriteOptions control Write.
type WriteOptions struct {
	// Progress is called as ranges are written (stage "write") and read
	// back (stage "verify"), with bytes done and the total.
	Progress func(stage string, done, total int64)
	Log      *slog.Logger
}

// Result says what Write did.
type Result struct {
	// Written and Verified count bytes; Ranges the ranges written.
	Written, Verified int64
	Ranges            int
	// ImageSize is the raw image's size.
	ImageSize int64
}

// chunkSize is what one write carries: large enough for full speed on
// USB and SD, small enough for smooth progress.
const chunkSize = 4 << 20

// chunk is one write: bytes at an offset of the image.
type chunk struct {
	off int64
	b   []byte
}

// Write copies the mapped ranges of the image to dev, decompressing on the
// fly, and then reads every range back and checks it: against the .bmap's
// checksums, which the image's own bytes are checked against while they are
// read, or without a .bmap against the checksums of what was written.
// Nothing outside the ranges is written. dev's cache is flushed and
// dropped before the read-back when dev is an *os.File, so that the
// medium is read, not memory.
func Write(ctx context.Context, im *Image, dev Device, opts WriteOptions) (*Result, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(string, int64, int64) {}
	}
	ranges := append([]Range(nil), im.Map.Ranges...)
	total := im.Map.Mapped()
	opts.Log.Debug("writing", "image", im.Path, "map", im.Map.Source, "ranges", len(ranges), "bytes", total)

	src, err := im.stream()
	if err != nil {
		return nil, err
	}
	defer src.Close()
	raw := im.Format == compression.None

	free := make(chan []byte, 4)
	for range cap(free) {
		free <- make([]byte, chunkSize)
	}
	full := make(chan chunk, cap(free))
	res := &Result{Ranges: len(ranges), ImageSize: im.Map.ImageSize}
	sums := make([]string, len(ranges))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { // read (and decompress) the image, checking each range
		defer close(full)
		pos := int64(0)
		for i := range ranges {
			r := &ranges[i]
			if !raw {
				if _, err := io.CopyN(io.Discard, src, r.Off-pos); err == io.EOF {
					return fmt.Errorf("image %s ends before offset %d, where %s says data is (truncated): %w", im.Path, r.Off, im.Map.Source, io.ErrUnexpectedEOF)
				} else if err != nil {
					return fmt.Errorf("image %s: %w", im.Path, err)
				}
				pos = r.Off
			}
			h := im.Map.newHash()
			for done := int64(0); done < r.Len; {
				var b []byte
				select {
				case b = <-free:
				case <-gctx.Done():
					return gctx.Err()
				}
				n := min(int64(len(b)), r.Len-done)
				var k int
				var err error
				if raw {
					k, err = im.f.ReadAt(b[:n], r.Off+done)
				} else {
					k, err = io.ReadFull(src, b[:n])
				}
				if int64(k) == n {
					err = nil
				}
				if err == io.EOF || err == io.ErrUnexpectedEOF {
					return fmt.Errorf("image %s ends at byte %d, before the %d bytes %s says it has (truncated): %w",
						im.Path, r.Off+done+int64(k), im.Map.ImageSize, im.Map.Source, io.ErrUnexpectedEOF)
				}
				if err != nil {
					return fmt.Errorf("image %s at offset %d: %w", im.Path, r.Off+done, err)
				}
				h.Write(b[:k])
				full <- chunk{off: r.Off + done, b: b[:k]}
				done += int64(k)
				pos += int64(k)
			}
			sums[i] = hex.EncodeToString(h.Sum(nil))
			if r.Sum != "" && r.Sum != sums[i] {
				return fmt.Errorf("image %s does not match %s at bytes %d-%d (%s %s, want %s): the image is damaged or the map belongs to another image",
					im.Path, im.Map.Source, r.Off, r.Off+r.Len-1, im.Map.Checksum, sums[i], r.Sum)
			}
		}
		if raw {
			return nil
		}
		// Decode to the end of the stream: its format's own checks
		// (gzip's CRC, xz's index...) come there, and the size it
		// decodes to must be the one the image was checked against.
		rest, err := io.Copy(io.Discard, src)
		if err != nil {
			return fmt.Errorf("image %s: %w", im.Path, err)
		}
		if pos+rest != im.Map.ImageSize {
			return fmt.Errorf("image %s decompresses to %d bytes, but %s says %d", im.Path, pos+rest, im.Map.Source, im.Map.ImageSize)
		}
		return nil
	})
	g.Go(func() error { // write
		for c := range full {
			if _, err := dev.WriteAt(c.b, c.off); err != nil {
				return fmt.Errorf("write at offset %d: %w", c.off, err)
			}
			res.Written += int64(len(c.b))
			progress("write", res.Written, total)
			free <- c.b[:cap(c.b)]
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := flush(dev); err != nil {
		return nil, err
	}
	opts.Log.Debug("verifying", "bytes", res.Written)
	if err := verify(ctx, dev, ranges, sums, im.Map.newHash, res, progress); err != nil {
		return nil, err
	}
	return res, nil
}

// flush writes dev's cache to the medium and drops it, so that the
// verification reads what the medium holds.
func flush(dev Device) error {
	f, ok := dev.(*os.File)
	if !ok {
		return nil
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	// Dropping clean pages is advice: a failure only means the check
	// may read the cache.
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	return nil
}

func verify(ctx context.Context, dev Device, ranges []Range, sums []string, newHash func() hash.Hash, res *Result, progress func(string, int64, int64)) error {
	buf := make([]byte, chunkSize)
	for i, r := range ranges {
		h := newHash()
		for done := int64(0); done < r.Len; {
			if err := ctx.Err(); err != nil {
				return err
			}
			n := min(int64(len(buf)), r.Len-done)
			if _, err := dev.ReadAt(buf[:n], r.Off+done); err != nil {
				return fmt.Errorf("verify: read back at offset %d: %w", r.Off+done, err)
			}
			h.Write(buf[:n])
			done += n
			res.Verified += n
			progress("verify", res.Verified, res.Written)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != sums[i] {
			return fmt.Errorf("verify: bytes %d-%d read back differ from the image (checksum %s, want %s): the medium may be failing or fake",
				r.Off, r.Off+r.Len-1, got, sums[i])
		}
	}
	return nil
}
