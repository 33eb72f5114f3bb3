package fat_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ocidisk/ocidisk/mkfs/fat"
	"github.com/ocidisk/ocidisk/mkfs/fat/fattest"
	"github.com/ocidisk/ocidisk/testimages/randtree"
)

// FuzzWrite writes hostile trees (randtree.FromBytes) under options taken
// from the input: the writer may refuse them (names FAT cannot hold,
// symlinks, devices, owners), but never panics, and what it writes must
// check clean with fsck.vfat.
// Run with: go test -run XXX -fuzz FuzzWrite ./mkfs/fat/
func FuzzWrite(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x0f\x02\x00\x05hello\x00\x10\x01\x07\x80"))
	f.Add([]byte("\x07\x00\x00\x03abc\x02\x00\x03ABC\xff\xff\x01\x00\x00"))
	f.Add(bytes.Repeat([]byte{2, 0, 12, 'l', 'o', 'n', 'g', 'n', 'a', 'm', 'e', '1', '.', 't', 'x', 't', 0x10, 0, 1}, 6))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := randtree.NewBytes(data)
		flags := r.U8()
		opts := fat.Options{
			Type:         []int{0, 16, 32, 12}[flags&3],
			Symlinks:     fat.SymlinkPolicy(flags >> 2 & 3),
			SkipSpecial:  flags&0x10 != 0,
			IgnoreOwner:  flags&0x20 != 0,
			IgnoreXattrs: flags&0x40 != 0,
			Label:        string(r.Take(int(r.U8() % 14))),
		}
		tree := randtree.FromBytes(r)
		fs := fat.New(tree, opts)
		size, err := fs.MinSize()
		if err != nil {
			return // refusing a tree is fine; a panic or a bad image is not
		}
		path := filepath.Join(t.TempDir(), "fuzz.fat")
		img, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer img.Close()
		if err := fs.WriteAt(img, 0, size); err != nil {
			return
		}
		if err := img.Truncate(size); err != nil {
			t.Fatal(err)
		}
		fattest.Fsck(t, path, 0, size)
	})
}
