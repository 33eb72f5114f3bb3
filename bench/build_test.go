package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/pipeline"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// BenchmarkBuild runs pipeline.Build as `ocidisk build --board
// qemu-virt-arm64 --kernel deb:KERNEL oci:LAYOUT` does, on the Debian tree
// (and with OCIDISK_BENCH_LARGE=1 also the large one), with the kernel
// package or the directory it unpacks to, cold (an empty cache each time)
// and warm (the layers already cached, by a second build). It reports the
// process's peak RSS, which includes the benchmark's own setup: bench/run
// measures the real command.
//
//	go test -run '^$' -bench Build -benchtime 3x ./bench/
//	go test -run '^$' -bench Build/small/deb/cold -benchtime 2x -cpuprofile cpu.out ./bench/
func BenchmarkBuild(b *testing.B) {
	deb := debian.KernelDeb(b)
	kdir := b.TempDir()
	if out, err := exec.Command(hosttool.Require(b, "dpkg-deb", "dpkg"), "-x", deb, kdir).CombinedOutput(); err != nil {
		b.Fatalf("dpkg-deb -x %s: %v\n%s", deb, err, out)
	}
	kernels := []struct{ name, source string }{{"deb", "deb:" + deb}, {"dir", "dir:" + kdir}}
	trees := []struct {
		name string
		spec debian.TreeSpec
	}{{"small", debian.DefaultTree()}}
	if os.Getenv("OCIDISK_BENCH_LARGE") != "" {
		trees = append(trees, struct {
			name string
			spec debian.TreeSpec
		}{"large", debian.LargeTree()})
	}
	board, err := boards.Load("qemu-virt-arm64")
	if err != nil {
		b.Fatal(err)
	}
	for _, tr := range trees {
		d := debian.TreeOf(b, tr.spec)
		for _, k := range kernels {
			for _, warm := range []bool{false, true} {
				name := tr.name + "/" + k.name + "/cold"
				if warm {
					name = tr.name + "/" + k.name + "/warm"
				}
				benchBuild(b, name, board, "oci:"+d.Layout, k.source, warm)
			}
		}
	}
}

// benchBuild is one of BenchmarkBuild's runs.
func benchBuild(b *testing.B, name string, board *boards.Board, src, kernel string, warm bool) {
	b.Run(name, func(b *testing.B) {
		dir := b.TempDir()
		cfg := pipeline.Config{
			Board:  board,
			Source: src,
			Kernel: kernel,
			Output: filepath.Join(dir, "out.img"),
			Epoch:  time.Unix(1700000000, 0),
		}
		cacheDir := func(i int) string { return filepath.Join(dir, "cache"+strconv.Itoa(i)) }
		cfg.Sources = source.Options{Platform: pipeline.Platform(board), CacheDir: cacheDir(0)}
		if warm {
			// The first build keeps no layer, the second caches them
			// (see package source): warm is the third.
			for range 2 {
				if _, err := pipeline.Build(b.Context(), cfg); err != nil {
					b.Fatal(err)
				}
			}
		}
		ResetPeakRSS()
		for i := 0; b.Loop(); i++ {
			if !warm {
				b.StopTimer()
				os.RemoveAll(cfg.Sources.CacheDir)
				cfg.Sources.CacheDir = cacheDir(i + 1)
				b.StartTimer()
			}
			if _, err := pipeline.Build(b.Context(), cfg); err != nil {
				b.Fatal(err)
			}
		}
		peak, err := PeakRSS()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	})
}
