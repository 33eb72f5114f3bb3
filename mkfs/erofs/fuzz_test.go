package erofs

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

// fuzzInput builds options (labels that may be too long, any build time)
// and then a hostile tree (randtree.FromBytes) from data.
func fuzzInput(data []byte) (*fstree.Tree, Options) {
	r := randtree.NewBytes(data)
	opts := Options{
		Label:      string(r.Take(int(r.U8() % 20))),
		Seed:       r.Take(int(r.U8() % 4)),
		DropXattrs: r.U8()%2 == 0,
		Time:       time.Unix(int64(r.U32()), int64(r.U32()%1e9)),
	}
	return randtree.FromBytes(r), opts
}

// FuzzWrite writes arbitrary trees under arbitrary options: the writer
// may refuse them, but never panics, and what it writes fsck.erofs
// accepts and extracts as the tree (checked when erofs-utils is
// installed, and run as root).
func FuzzWrite(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x00\x01\x00\x00\x00\x00\x02\x00\x03abc\x10\x00\x05\x00\x00\x04\x00\x01x\x05\x00\x00\x01"))
	f.Add(bytes.Repeat([]byte{2, 0, 5, 'n', 'a', 'm', 'e', 0xff, 0x7f, 3, 1, 0x40, 0x80}, 8))
	f.Add(bytes.Repeat([]byte{8, 0, 1, 'x', 3, 0, 'a', 'b', 'c', 9, 1}, 12))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, opts := fuzzInput(data)
		img := filepath.Join(dir, "fuzz.erofs")
		out, err := os.Create(img)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		if err := out.Truncate(0); err != nil {
			t.Fatal(err)
		}
		if err := Write(out, 0, tr, opts); err != nil {
			return
		}
		fsck(t, img)
		if os.Geteuid() == 0 {
			testimages.RequireSame(t, "fsck.erofs --extract", noSetid(want(t, tr, opts)), noSetid(extract(t, img, tr)),
				testimages.Fields{SHA: true, Mtime: 1, SymlinkMtime: true})
		}
	})
}
