package inspect

import (
	"bufio"
	"bytes"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/ulikunitz/xz"
)

func compression(magic []byte) string {
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return "gzip"
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return "xz"
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd"
	}
	return ""
}

// decompress writes the image into a sparse temporary file, leaving
// blocks of zeros as holes, since filesystems need random access.
func decompress(f *os.File, format string) (*os.File, int64, error) {
	br := bufio.NewReaderSize(f, 1<<20)
	var r io.Reader
	switch format {
	case "gzip":
		z, err := pgzip.NewReader(br)
		if err != nil {
			return nil, 0, err
		}
		defer z.Close()
		r = z
	case "xz":
		z, err := xz.NewReader(br)
		if err != nil {
			return nil, 0, err
		}
		r = z
	case "zstd":
		z, err := zstd.NewReader(br)
		if err != nil {
			return nil, 0, err
		}
		defer z.Close()
		r = z
	}
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
	buf := make([]byte, 1<<20)
	zero := make([]byte, 4096)
	var size int64
	for {
		n, err := io.ReadFull(r, buf)
		for i := 0; i < n; i += len(zero) {
			b := buf[i:min(n, i+len(zero))]
			if !bytes.Equal(b, zero[:len(b)]) {
				if _, err := tmp.WriteAt(b, size+int64(i)); err != nil {
					return nil, 0, err
				}
			}
		}
		size += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return nil, 0, err
		}
	}
	if err := tmp.Truncate(size); err != nil {
		return nil, 0, err
	}
	ok = true
	return tmp, size, nil
}
