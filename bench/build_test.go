package bench

import (
	"fmt"
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
	"github.com/ocidisk/ocidisk/testimages/randtree"
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

// BenchmarkBuildRootTar runs pipeline.Build on a synthetic root of
// OCIDISK_BENCH_ENTRIES entries (100,000 unless set; bench/run's million
// input has 1,000,000), one uncompressed tar layer from
// randtree.WriteRootTar, with the kernel from a directory: the memory and
// time of building from many entries. The tar is written outside the
// timing; it takes about 2 KiB an entry on disk.
//
//	OCIDISK_BENCH_ENTRIES=1000000 go test -run '^$' -bench BuildRootTar -benchtime 1x -memprofile mem.out ./bench/
func BenchmarkBuildRootTar(b *testing.B) {
	n := 100000
	if s := os.Getenv("OCIDISK_BENCH_ENTRIES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatalf("OCIDISK_BENCH_ENTRIES=%q: %v", s, err)
		}
	}
	dir := b.TempDir()
	kdir := filepath.Join(dir, "kernel")
	if out, err := exec.Command(hosttool.Require(b, "dpkg-deb", "dpkg"), "-x", debian.KernelDeb(b), kdir).CombinedOutput(); err != nil {
		b.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
	root := filepath.Join(dir, "root.tar")
	f, err := os.Create(root)
	if err != nil {
		b.Fatal(err)
	}
	_, err = randtree.WriteRootTar(f, 1, n)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		b.Fatal(err)
	}
	board, err := boards.Load("qemu-virt-arm64")
	if err != nil {
		b.Fatal(err)
	}
	benchBuild(b, fmt.Sprintf("entries=%d", n), board, "tar:"+root, "dir:"+kdir, false)
}
