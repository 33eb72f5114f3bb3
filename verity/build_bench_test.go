package verity_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/pipeline"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages/debian"
	"github.com/ocidisk/ocidisk/verity"
)

// BenchmarkBuildShare puts the cost of a root's hash tree beside the cost
// of the build it would be part of: a warm `ocidisk build --board
// qemu-virt-arm64 --kernel deb:KERNEL --root-fs FS oci:DEBIAN` (the
// layers already cached, as when a user rebuilds), then Build over the
// image's root partition (in the page cache, as the writer's own pass
// would have it). Hashing in the writer's pass costs the same CPU as
// this, without the read. The target is at most 15%:
//
//	go test -run '^$' -bench BuildShare -benchtime 3x ./verity/
func BenchmarkBuildShare(b *testing.B) {
	board, err := boards.Load("qemu-virt-arm64")
	if err != nil {
		b.Fatal(err)
	}
	d := debian.Tree(b)
	kernel := debian.KernelDeb(b)
	for _, fs := range []boards.FS{boards.Ext4, boards.Squashfs, boards.Erofs} {
		b.Run(string(fs), func(b *testing.B) {
			dir := b.TempDir()
			cfg := pipeline.Config{
				Board: board, Source: "oci:" + d.Layout, Kernel: "deb:" + kernel, Layout: boards.LayoutOptions{RootFS: fs},
				Output: filepath.Join(dir, "out.img"), Epoch: time.Unix(1_700_000_000, 0),
				Sources: source.Options{Platform: pipeline.Platform(board), CacheDir: filepath.Join(dir, "cache")},
			}
			if _, err := pipeline.Build(b.Context(), cfg); err != nil { // fills the cache
				b.Fatal(err)
			}
			var build, hash verity.Times
			var size int64
			for b.Loop() {
				var res *pipeline.Result
				t := verity.Measure(func() { res, err = pipeline.Build(b.Context(), cfg) })
				if err != nil {
					b.Fatal(err)
				}
				build.Add(t)
				part := rootPartition(b, res)
				size = part.Size
				f, err := os.Open(cfg.Output)
				if err != nil {
					b.Fatal(err)
				}
				hash.Add(verity.Measure(func() {
					_, err = verity.Build(f, part.Start, part.Size, discard{}, 0, verity.Options{Salt: []byte("bench")})
				}))
				f.Close()
				if err != nil {
					b.Fatal(err)
				}
			}
			pct := func(a, b time.Duration) float64 { return 100 * float64(a) / float64(b) }
			b.ReportMetric(float64(size)/1e6, "root-MB")
			b.ReportMetric(pct(hash.Wall, build.Wall), "verity-%-of-build")
			b.ReportMetric(pct(hash.CPU, build.CPU), "verity-%-of-build-cpu")
			n := time.Duration(b.N)
			b.Logf("%s root of %d MB: build %v (cpu %v), tree %v (cpu %v)", fs, size/1e6, build.Wall/n, build.CPU/n, hash.Wall/n, hash.CPU/n)
		})
	}
}
