package diskimage

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/ulikunitz/xz"

	"github.com/ocidisk/ocidisk/internal/compression"
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
// number of cores: pgzip and zstd cut their input into blocks of fixed
// size, and xz is cut into streams of fixed size (see xzStreams).
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
		return newXZStreams(w, xzChunk, min(procs, 8)), nil
	}
	return nil, fmt.Errorf("compression %v", format)
}

// xzChunk is the input each xz stream covers: the size of the default
// dictionary, so little is lost to restarting it, and small enough that
// the zero runs of a sparse image mostly fill whole chunks.
const xzChunk = 8 << 20

// xzStreams compresses its input as a sequence of independent xz streams
// of xzChunk input bytes each, several at once. github.com/ulikunitz/xz
// is single-threaded and slow (a few MB/s on data); concatenated streams
// are valid .xz (xz -d and xz -t read them all) and let every core work.
// A chunk of zeros, the common case in a sparse image, always compresses
// to the same bytes, so that is done once; a chunk that does not compress
// (a quick zstd pass says so) is stored (storedXZ).
type xzStreams struct {
	out   io.Writer
	chunk int
	buf   []byte
	any   bool
	queue chan chan xzResult // in input order; its capacity bounds memory
	done  chan error
	probe *zstd.Encoder

	zeroOnce sync.Once
	zero     xzResult
}

type xzResult struct {
	b   []byte
	err error
}

func newXZStreams(out io.Writer, chunk, workers int) *xzStreams {
	// EncodeAll is safe for concurrent use; a nil writer is allowed for it.
	probe, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	x := &xzStreams{out: out, chunk: chunk, queue: make(chan chan xzResult, workers), done: make(chan error, 1), probe: probe}
	go x.drain()
	return x
}

func (x *xzStreams) drain() {
	var err error
	for f := range x.queue {
		r := <-f
		if err == nil {
			if err = r.err; err == nil {
				_, err = x.out.Write(r.b)
			}
		}
	}
	x.done <- err
}

func (x *xzStreams) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if x.buf == nil {
			x.buf = make([]byte, 0, x.chunk)
		}
		k := copy(x.buf[len(x.buf):cap(x.buf)], p)
		x.buf = x.buf[:len(x.buf)+k]
		p = p[k:]
		if len(x.buf) == x.chunk {
			x.submit(x.buf)
			x.buf = nil
		}
	}
	return n, nil
}

func (x *xzStreams) submit(b []byte) {
	x.any = true
	f := make(chan xzResult, 1)
	x.queue <- f
	go func() {
		if len(b) == x.chunk && isZero(b) {
			x.zeroOnce.Do(func() { x.zero = compressXZ(b) })
			f <- x.zero
			return
		}
		f <- x.compress(b)
	}()
}

// probeSize is the granularity at which xzStreams tells data that
// compresses from data that does not.
const probeSize = 256 << 10

// compress turns one chunk into xz streams: runs of pieces that do not
// compress (a quick zstd pass finds under 3% to gain) are stored, the rest
// compressed. The split depends only on the bytes.
func (x *xzStreams) compress(b []byte) xzResult {
	var out []byte
	stored := func(i int) bool {
		p := b[i:min(len(b), i+probeSize)]
		return len(x.probe.EncodeAll(p, nil)) >= len(p)/100*97
	}
	for i := 0; i < len(b); {
		s := stored(i)
		j := i + probeSize
		for j < len(b) && stored(j) == s {
			j += probeSize
		}
		j = min(j, len(b))
		if s {
			out = append(out, storedXZ(b[i:j])...)
		} else {
			r := compressXZ(b[i:j])
			if r.err != nil {
				return r
			}
			out = append(out, r.b...)
		}
		i = j
	}
	return xzResult{b: out}
}

func compressXZ(b []byte) xzResult {
	var out bytes.Buffer
	w, err := xz.WriterConfig{}.NewWriter(&out)
	if err == nil {
		if _, err = w.Write(b); err == nil {
			err = w.Close()
		}
	}
	return xzResult{out.Bytes(), err}
}

// Close compresses what is left (an empty stream if there was no input at
// all, so that the output is valid) and waits for the output.
func (x *xzStreams) Close() error {
	if len(x.buf) > 0 || !x.any {
		x.submit(x.buf)
	}
	close(x.queue)
	err := <-x.done
	x.probe.Close()
	return err
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
