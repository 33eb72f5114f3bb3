package fat_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/mkfs/fat"
)

type discard struct{}

func (discard) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }
func (discard) ZeroAt(off, n int64) error                { return nil }

// BenchmarkWrite writes a boot-partition-like tree (a few big files, many
// small ones) into a writer that keeps nothing, so that the figure is the
// writer's own cost plus generating the content.
func BenchmarkWrite(b *testing.B) {
	tr := fstree.New()
	var total int64
	add := func(p string, size int64, seed byte) {
		c := fstree.Func(func() (io.ReadCloser, error) {
			return io.NopCloser(io.LimitReader(rand.NewChaCha8([32]byte{seed}), size)), nil
		})
		if err := tr.Put(p, fstree.NewFile(0o644, size, c), fstree.NewDir(0o755)); err != nil {
			b.Fatal(err)
		}
		total += size
	}
	add("vmlinuz", 40<<20, 1)
	add("initrd.img", 60<<20, 2)
	for i := range 2000 {
		add(fmt.Sprintf("overlays/overlay-with-a-long-name-%04d.dtbo", i), 4096+int64(i%7)*1000, byte(i))
	}
	b.SetBytes(total)
	for b.Loop() {
		if err := fat.Write(discard{}, 0, tr, fat.Options{Label: "BOOT"}); err != nil {
			b.Fatal(err)
		}
	}
}
