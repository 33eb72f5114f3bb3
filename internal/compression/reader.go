package compression

import (
	"bufio"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/ocidisk/ocidisk/internal/inflate"
	"github.com/ocidisk/ocidisk/internal/xz"
)

// Options tune the readers.
type Options struct {
	// Name names the input in errors ("image disk.img.zst", "layer
	// sha256:..."); "" leaves it out.
	Name string
	// Parallel lets zstd and lz4 decode one stream with several
	// goroutines (their concurrent decoders): for one large stream read
	// alone, such as an image being flashed. Without it they use one
	// goroutine (zstd in its low-memory mode), for streams decoded several
	// at once, such as the layers of an image. xz decodes independent
	// blocks in parallel either way: Debian's packages and kernels are
	// multi-block xz, and often the largest single input of a build. gzip
	// is one goroutine either way: a DEFLATE stream decodes in order, and
	// package inflate alone decodes faster than pgzip's read-ahead over
	// klauspost's decoder (see its benchmark).
	Parallel bool
}

// Open sniffs the format of the stream in r and returns a reader of its
// decoded bytes, and the format (None: the bytes as they are). When r is
// a *bufio.Reader it is used as is, else one is put over r.
func Open(r io.Reader, opts Options) (io.ReadCloser, Format, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 1<<20)
	}
	head, _ := br.Peek(MagicLen) // a shorter stream is simply not compressed
	f := Sniff(head)
	rc, err := NewReader(br, f, opts)
	return rc, f, err
}

// NewReader returns a reader of the bytes a stream of format f in r
// decodes to. The reader ends (io.EOF) only at the format's own end of
// stream, after checking what the format checks there: gzip's trailer (CRC
// and size), xz's index and footer, zstd's last block (and checksum when
// present), lz4's end mark, bzip2's end-of-stream marker and CRC. Input
// that ends before that fails with an error wrapping io.ErrUnexpectedEOF
// and naming the input: a truncated file is never taken for a short one.
// Concatenated streams are read as one, as the formats' tools do.
//
// Close stops the decoder's goroutines; it does not close r.
func NewReader(r io.Reader, f Format, opts Options) (io.ReadCloser, error) {
	dec, err := newDecoder(r, f, opts)
	if err != nil {
		return nil, wrap(opts.Name, f, err)
	}
	if f == None {
		return dec, nil
	}
	return &reader{dec: dec, f: f, name: opts.Name}, nil
}

func newDecoder(r io.Reader, f Format, opts Options) (io.ReadCloser, error) {
	switch f {
	case None:
		return io.NopCloser(r), nil
	case Gzip:
		return inflate.NewGzipReader(r)
	case XZ:
		return xz.NewReader(r, xz.Options{})
	case Zstd:
		zopts := []zstd.DOption{zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true)}
		if opts.Parallel {
			zopts = []zstd.DOption{zstd.WithDecoderConcurrency(0)}
		}
		d, err := zstd.NewReader(r, zopts...)
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	case LZ4:
		// pierrec/lz4 takes input that ends between blocks for a frame
		// without end mark: the scanner makes that an early end.
		z := lz4.NewReader(&lz4Scanner{r: r})
		n := 1
		if opts.Parallel {
			n = -1 // GOMAXPROCS
		}
		if err := z.Apply(lz4.ConcurrencyOption(n)); err != nil {
			return nil, err
		}
		return io.NopCloser(z), nil
	case Bzip2:
		return io.NopCloser(bzip2.NewReader(r)), nil
	}
	return nil, fmt.Errorf("unknown compression format %d", uint8(f))
}

// reader gives a decoder's errors their context and turns every way a
// decoder reports input that ended early into one error.
type reader struct {
	dec  io.ReadCloser
	f    Format
	name string
	err  error
}

func (r *reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.dec.Read(p)
	if err != nil && err != io.EOF {
		r.err = wrap(r.name, r.f, err)
		err = r.err
	}
	return n, err
}

// WriteTo hands the decoder's own buffer to w when the decoder can
// (package inflate): a layer of hundreds of megabytes is then not copied
// once more on its way to the disk.
func (r *reader) WriteTo(w io.Writer) (int64, error) {
	if r.err != nil {
		return 0, r.err
	}
	wt, ok := r.dec.(io.WriterTo)
	if !ok {
		return io.Copy(w, struct{ io.Reader }{r})
	}
	// Errors of w are w's; only the decoder's get the input's name.
	sink := &errWriter{w: w}
	n, err := wt.WriteTo(sink)
	if err != nil && err != sink.err {
		r.err = wrap(r.name, r.f, err)
		err = r.err
	}
	return n, err
}

// errWriter remembers the error its writer returned.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}

func (r *reader) Close() error { return r.dec.Close() }

// ErrTruncated is wrapped, with io.ErrUnexpectedEOF, by the errors of
// streams that end before their format's end of stream.
var ErrTruncated = errors.New("the stream ends before its end marker (truncated)")

// wrap names the input and the format in a decoder's error; an early end
// of input becomes ErrTruncated and io.ErrUnexpectedEOF.
func wrap(name string, f Format, err error) error {
	prefix := f.String() + ": "
	if name != "" {
		prefix = name + ": " + prefix
	}
	// An io.EOF inside a decoder's error, or from NewReader, is input
	// that ended within a header.
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%s%w: %w", prefix, io.ErrUnexpectedEOF, ErrTruncated)
	}
	msg := err.Error()
	// Our xz decoder says "xz: ..." itself, as zstd's and gzip's
	// decoders often do.
	if strings.HasPrefix(msg, f.String()+":") || f == Gzip && strings.HasPrefix(msg, "gzip:") {
		prefix = strings.TrimSuffix(prefix, f.String()+": ")
	}
	return fmt.Errorf("%s%w", prefix, err)
}
