package diskimage_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/ocidisk/ocidisk/diskimage"
)

// BenchmarkWrite measures writing a 256 MiB image holding 32 MiB of data
// (half incompressible, half text-like) and its .bmap, raw and with each
// compression; bytes/s are of the whole image, holes included.
func BenchmarkWrite(b *testing.B) {
	data := make([]byte, 32<<20)
	r := rand.NewChaCha8([32]byte{3})
	text := bytes.Repeat([]byte("console=ttyAMA0 root=PARTUUID=1a2b3c4d-02 rootwait\n"), 1<<16)
	for i := 0; i < len(data); i += 2 << 20 {
		r.Read(data[i : i+1<<20])
		copy(data[i+1<<20:i+2<<20], text)
	}
	for _, format := range []string{"", "gz", "xz", "zstd"} {
		b.Run("compress="+format, func(b *testing.B) {
			l := &diskimage.Layout{Table: diskimage.GPT, Size: 256 << 20, Partitions: []diskimage.Partition{
				{Kind: diskimage.KindLinux, Size: diskimage.Fill, FS: diskimage.Raw(bytes.NewReader(data), int64(len(data)))},
			}}
			b.SetBytes(l.Size)
			dir := b.TempDir()
			for b.Loop() {
				if _, err := diskimage.Write(context.Background(), filepath.Join(dir, "disk.img"), l, diskimage.WriteOptions{Bmap: true, Compress: format}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
