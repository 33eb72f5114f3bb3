package inspect

import (
	"bufio"
	"io"
	"os"

	"github.com/ocidisk/ocidisk/internal/compression"
	"github.com/ocidisk/ocidisk/internal/outfile"
)

// decompress writes the image into a sparse temporary file, leaving
// blocks of zeros as holes, since filesystems need random access. A
// truncated image is an error, not a shorter image.
func decompress(f *os.File, format compression.Format) (*os.File, int64, error) {
	r, err := compression.NewReader(bufio.NewReaderSize(f, 1<<20), format, compression.Options{Parallel: true})
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	tmp, err := os.CreateTemp("", "ocidisk-inspect-*.img")
	if err != nil {
		return nil, 0, err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w := outfile.NewSparse(tmp)
	if _, err := io.CopyBuffer(w, r, make([]byte, 1<<20)); err != nil {
		return nil, 0, err
	}
	if err := w.Finish(); err != nil {
		return nil, 0, err
	}
	ok = true
	return tmp, w.Size(), nil
}
