package diskimage

import (
	"bytes"
	"fmt"
	"io"
	"runtime"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"

	"github.com/ocidisk/ocidisk/internal/compression"
	"github.com/ocidisk/ocidisk/internal/xz"
)

// writeFormat parses a compression for output: a name or alias of
// package compression ("", "none", "gz", "gzip", "xz", "zst", "zstd") of a
// format this package writes.
func writeFormat(c string) (compression.Format, error) {
	f, err := compression.Parse(c)
	if err != nil {
		return f, err
	}
	switch f {
	case compression.None, compression.Gzip, compression.XZ, compression.Zstd:
		return f, nil
	}
	return f, fmt.Errorf("compression %q: images are written as none, gz, xz or zstd", c)
}

// newCompressor returns a writer compressing size bytes into w with every core the
// format lets us use. The output depends only on the input, never on the
// number of cores: pgzip, zstd and xz cut their input into blocks of
// fixed size. xz is xz -6's format and ratio, in independent blocks as
// xz -T makes them (internal/xz); its index records the image's size.
func newCompressor(format compression.Format, w io.Writer, size int64) (io.WriteCloser, error) {
	procs := runtime.GOMAXPROCS(0)
	switch format {
	case compression.Gzip:
		z, err := pgzip.NewWriterLevel(w, pgzip.DefaultCompression)
		if err != nil {
			return nil, err
		}
		if err := z.SetConcurrency(1<<20, max(2*procs, 4)); err != nil {
			return nil, err
		}
		return z, nil
	case compression.Zstd:
		z, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(procs))
		if err != nil {
			return nil, err
		}
		// The frame records the image's size, so that ocidisk flash
		// knows it before writing anything (xz's index has it too;
		// gzip cannot hold it).
		z.ResetContentSize(w, size)
		return z, nil
	case compression.XZ:
		return xz.NewWriter(w, xz.WriterOptions{Workers: procs})
	}
	return nil, fmt.Errorf("compression %v", format)
}

func isZero(b []byte) bool {
	var zero [4096]byte
	for len(b) > 0 {
		k := min(len(b), len(zero))
		if !bytes.Equal(b[:k], zero[:k]) {
			return false
		}
		b = b[k:]
	}
	return true
}
