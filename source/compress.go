package source

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/ocidisk/ocidisk/internal/xz"
)

// Compression formats are told apart by their magic bytes, never by file
// names or media types: both lie often enough (".tar.gz" files that are
// plain, layers labelled gzip that are zstd).
var magics = []struct {
	kind  string
	magic []byte
}{
	{"gzip", []byte{0x1f, 0x8b}},
	{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd}},
	{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}},
	{"bzip2", []byte("BZh")},
}

// sniff names the compression of a stream starting with head, or "" for
// none.
func sniff(head []byte) string {
	for _, m := range magics {
		if bytes.HasPrefix(head, m.magic) {
			return m.kind
		}
	}
	return ""
}

// sniffAt names the compression of a blob with random access.
func sniffAt(r io.ReaderAt) (string, error) {
	head := make([]byte, 6)
	n, err := r.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read: %w", err)
	}
	return sniff(head[:n]), nil
}

// decompress returns a reader of the uncompressed stream in br and the name
// of the compression ("" for none).
func decompress(br *bufio.Reader) (io.ReadCloser, string, error) {
	head, _ := br.Peek(6) // a shorter stream is simply not compressed
	kind := sniff(head)
	var (
		r   io.ReadCloser
		err error
	)
	switch kind {
	case "":
		r = io.NopCloser(br)
	case "gzip":
		r, err = gzip.NewReader(br)
	case "zstd":
		// Layers decompress in parallel already: one goroutine per stream
		// keeps memory to one window per layer.
		var d *zstd.Decoder
		d, err = zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err == nil {
			r = d.IOReadCloser()
		}
	case "xz":
		// Our own decoder: Debian's packages and kernels are multi-threaded
		// xz, whose blocks it decodes in parallel, and on one core it is
		// 1.6 times as fast as ulikunitz/xz, which supports no more (LZMA2
		// alone: no BCJ or delta filters).
		r, err = xz.NewReader(br, xz.Options{})
	case "bzip2":
		r = io.NopCloser(bzip2.NewReader(br))
	}
	if err != nil {
		return nil, kind, fmt.Errorf("%s: %w", kind, err)
	}
	return r, kind, nil
}
