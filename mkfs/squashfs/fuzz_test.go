package squashfs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/testimages"
	"github.com/ocidisk/ocidisk/testimages/randtree"
)

// fuzzInput builds options, with block sizes, levels and compressions
// that may be invalid, then a hostile tree (randtree.FromBytes) from data.
func fuzzInput(data []byte) (*fstree.Tree, Options) {
	r := randtree.NewBytes(data)
	opts := Options{
		Compression: []string{"zstd", "xz", "gzip", "lz4", "", "lzo"}[r.U8()%6],
		BlockSize:   []int{0, 4096, 8192, 65536, 1 << 20, 3000, 2 << 20}[r.U8()%7],
		Level:       int(r.U8()%12) - 1,
		DropXattrs:  r.U8()%2 == 0,
		Time:        time.Unix(int64(r.U32()), 0),
	}
	if opts.Compression == "xz" && opts.Level != -1 {
		opts.Level = 0
	}
	return randtree.FromBytes(r), opts
}

// FuzzWrite writes arbitrary trees under arbitrary options: the writer
// may refuse them, but never panics, and what it writes unsquashfs reads
// back as the tree (checked when unsquashfs is installed).
func FuzzWrite(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x00\x01\x00\x00\x00\x00\x02\x00\x03abc\x10\x00\x05\x00\x00\x04\x00\x01x\x05\x00\x00\x01"))
	f.Add(bytes.Repeat([]byte{2, 0, 5, 'n', 'a', 'm', 'e', 0xff, 0x7f, 3, 1, 0x40, 0x80}, 8))
	f.Add(bytes.Repeat([]byte{8, 0, 1, 'x', 3, 0, 'a', 'b', 'c', 9, 1}, 12))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, opts := fuzzInput(data)
		img := filepath.Join(dir, "fuzz.squashfs")
		out, err := os.Create(img)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		if err := Write(out, 0, tr, opts); err != nil {
			return
		}
		w := want(t, tr, opts)
		testimages.RequireSame(t, "unsquashfs -pf", w, listPF(t, img), testimages.Fields{SHA: true, Links: true, Mtime: 1e9, SymlinkMtime: true})
	})
}
