package bench

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/pipeline"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// BenchmarkVerity measures what --verity adds to a build: a warm `ocidisk
// build --board qemu-virt-arm64 --kernel deb:KERNEL --root-fs FS
// oci:DEBIAN` (the layers cached, as when a user rebuilds) of the Debian
// tree with an erofs and a squashfs root, without and with --verity, the
// two alternating in every round so that the load of a shared machine
// falls on both alike. It reports the wall and CPU time --verity adds, in
// percent of the build without it (the target is at most 15%):
//
//	go test -run '^$' -bench Verity -benchtime 5x ./bench/
//	go test -run '^$' -bench Verity/erofs -benchtime 5x -cpuprofile cpu.out ./bench/
func BenchmarkVerity(b *testing.B) {
	board, err := boards.Load("qemu-virt-arm64")
	if err != nil {
		b.Fatal(err)
	}
	d := debian.Tree(b)
	kernel := debian.KernelDeb(b)
	for _, fs := range []boards.FS{boards.Erofs, boards.Squashfs} {
		b.Run(string(fs), func(b *testing.B) {
			dir := b.TempDir()
			cfg := pipeline.Config{
				Board: board, Source: "oci:" + d.Layout, Kernel: "deb:" + kernel, Layout: boards.LayoutOptions{RootFS: fs},
				Output: filepath.Join(dir, "out.img"), Epoch: time.Unix(1_700_000_000, 0),
				Sources: source.Options{Platform: pipeline.Platform(board), CacheDir: filepath.Join(dir, "cache")},
			}
			// The first build leaves a mark, the second keeps the layers
			// (see package source): the timed builds are warm.
			for range 2 {
				if _, err := pipeline.Build(b.Context(), cfg); err != nil {
					b.Fatal(err)
				}
			}
			var plain, verified Sample
			var root int64
			for b.Loop() {
				for _, v := range []bool{false, true} {
					cfg.Verity = v
					// Neither build pays for the last one's output: freeing
					// its blocks (a rename over it) and writing it back.
					if err := os.Remove(cfg.Output); err != nil {
						b.Fatal(err)
					}
					syscall.Sync()
					var res *pipeline.Result
					s := Self(func() { res, err = pipeline.Build(b.Context(), cfg) })
					if err != nil {
						b.Fatal(err)
					}
					if v {
						verified.Wall, verified.CPU = verified.Wall+s.Wall, verified.CPU+s.CPU
						root = res.Partitions[1].Size
					} else {
						plain.Wall, plain.CPU = plain.Wall+s.Wall, plain.CPU+s.CPU
					}
				}
			}
			added := func(with, without time.Duration) float64 { return 100 * float64(with-without) / float64(without) }
			b.ReportMetric(float64(root)/1e6, "root-MB")
			b.ReportMetric(added(verified.Wall, plain.Wall), "verity-added-%")
			b.ReportMetric(added(verified.CPU, plain.CPU), "verity-added-cpu-%")
			n := time.Duration(b.N)
			b.Logf("%s root of %d MB with its tree: build %v (cpu %v), with --verity %v (cpu %v)", fs, root/1e6,
				plain.Wall/n, plain.CPU/n, verified.Wall/n, verified.CPU/n)
		})
	}
}
