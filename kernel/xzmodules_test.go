package kernel

import (
	"testing"

	"github.com/ocidisk/ocidisk/rootfs"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// backportsKernel returns the tree of the Pi 5 test kernel: bookworm-
// backports' 6.12, whose 4,000-odd modules are .ko.xz.
func backportsKernel(t testing.TB) *rootfs.Image {
	t.Helper()
	img, err := rootfs.Load(t.Context(), "oci:"+debian.Rpi5Kernel(t), source.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

// BenchmarkXZModules reads the .modinfo of every module of a kernel whose
// modules are xz-compressed (bookworm-backports' 6.12), decompressing each.
//
//	go test -run '^$' -bench XZModules -benchtime 1x ./kernel/
func BenchmarkXZModules(b *testing.B) {
	img := backportsKernel(b)
	for b.Loop() {
		k, err := Find(img.Tree)
		if err != nil {
			b.Fatal(err)
		}
		ms, err := k.Modules()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(ms.All)), "modules")
	}
}
