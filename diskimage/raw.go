package diskimage

import (
	"fmt"
	"io"
)

// Raw returns content of size bytes read from r (a prebuilt filesystem
// image, say) as a Filesystem: MinSize is size, and WriteAt copies the
// bytes, leaving blocks of zeros unwritten when the target allows it.
func Raw(r io.ReaderAt, size int64) Filesystem { return rawFS{r, size} }

type rawFS struct {
	r    io.ReaderAt
	size int64
}

func (f rawFS) MinSize() (int64, error) { return roundUp(f.size, sector), nil }

func (f rawFS) WriteAt(w io.WriterAt, off, size int64) error {
	if f.size > size {
		return fmt.Errorf("raw content of %d bytes is larger than its %d-byte partition", f.size, size)
	}
	return copySparse(w, off, f.r, f.size)
}

// copySparse copies n bytes of r to w at off. Runs of zero blocks go to
// ZeroAt when w has it: they must still read as zeros, but need not be
// written into a fresh image.
func copySparse(w io.WriterAt, off int64, r io.ReaderAt, n int64) error {
	z, _ := w.(ZeroWriterAt)
	buf := make([]byte, min(n, 1<<20))
	for done := int64(0); done < n; {
		b := buf[:min(int64(len(buf)), n-done)]
		// ReadAt may report io.EOF along with the last bytes.
		if k, err := r.ReadAt(b, done); k < len(b) || err != nil && err != io.EOF {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read at %d: %w", done, err)
		}
		if z == nil {
			if _, err := w.WriteAt(b, off+done); err != nil {
				return err
			}
			done += int64(len(b))
			continue
		}
		for i := 0; i < len(b); {
			j := min(len(b), i+BlockSize)
			zero := isZero(b[i:j])
			for j < len(b) {
				k := min(len(b), j+BlockSize)
				if isZero(b[j:k]) != zero {
					break
				}
				j = k
			}
			var err error
			if zero {
				err = z.ZeroAt(off+done+int64(i), int64(j-i))
			} else {
				_, err = w.WriteAt(b[i:j], off+done+int64(i))
			}
			if err != nil {
				return err
			}
			i = j
		}
		done += int64(len(b))
	}
	return nil
}
