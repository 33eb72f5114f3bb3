package ext4

import (
	"os"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/testimages/randtree"
)

// FuzzWrite feeds trees built from arbitrary bytes to the writer: it must
// not panic, and any image it returns must be e2fsck clean.
func FuzzWrite(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x00\x00\x03abc\x02\x00\x01xyz\xff\xff\x01\x00\x00"))
	f.Add([]byte("\x02\x00\x05hello\x00\x10\x01\x07\x80\xa4\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x08\x00\x01\x00\x05value\x05\x00"))
	f.Add([]byte("\x04\x00\x04link\x40\x00/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/0123456789012345678901234567890123456789"))
	f.Add([]byte("\x05\x00\x03dev\x00\xff\x0f\xff\xff\x0f\x00\x09\x00\x02d2\x00"))
	f.Add([]byte("\x81\x00\xffname"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr := randtree.FromBytes(randtree.NewBytes(data))
		var r recorder
		if err := Write(&r, 0, tr, Options{Time: testTime}); err != nil {
			return // refusing a tree is fine; a panic or a bad image is not
		}
		size, err := MinSize(tr, Options{})
		if err != nil {
			t.Fatalf("Write succeeded but MinSize failed: %v", err)
		}
		img := t.TempDir() + "/fuzz.ext4"
		out, err := os.Create(img)
		if err != nil {
			t.Fatal(err)
		}
		for b, blk := range r.data {
			if _, err := out.WriteAt(blk, b*blockSize); err != nil {
				t.Fatal(err)
			}
		}
		if err := out.Truncate(size); err != nil {
			t.Fatal(err)
		}
		out.Close()
		hosttool.E2fsckClean(t, img)
	})
}
