package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/internal/xz"
	"github.com/ocidisk/ocidisk/pipeline"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// BenchmarkXZ compresses disk images with internal/xz as `ocidisk build
// --compress xz` does, and in the same run with the xz tool: xz -6 -T0,
// the time to beat, and xz -6, the size to match (single-threaded, the
// slowest of the three). The images are the demo's (scripts/demo: the
// busybox root and Debian's kernel on qemu-virt-arm64) and the Debian
// tree's with the same kernel, built first. Each run reports the
// compressed size, its CPU time and, for ours, the peak RSS and the size
// against xz -6's.
//
//	go test -run '^$' -bench XZ -benchtime 1x -timeout 2h ./bench/
//	go test -run '^$' -bench XZ/demo -benchtime 1x -count 3 -timeout 2h ./bench/
func BenchmarkXZ(b *testing.B) {
	bin := hosttool.Require(b, "xz", "xz-utils")
	board, err := boards.Load("qemu-virt-arm64")
	if err != nil {
		b.Fatal(err)
	}
	kernel := "deb:" + debian.KernelDeb(b)
	images := []struct{ name, source string }{
		{"demo", "oci:" + debian.BusyboxRoot(b)},
		{"debian", "oci:" + debian.Tree(b).Layout},
	}
	dir := b.TempDir()
	for _, im := range images {
		img := filepath.Join(dir, im.name+".img")
		cfg := pipeline.Config{
			Board:   board,
			Source:  im.source,
			Kernel:  kernel,
			Output:  img,
			Epoch:   time.Unix(1700000000, 0),
			Sources: source.Options{Platform: pipeline.Platform(board), CacheDir: filepath.Join(dir, "cache")},
		}
		if _, err := pipeline.Build(b.Context(), cfg); err != nil {
			b.Fatal(err)
		}
		out := filepath.Join(dir, im.name+".img.xz")
		var xz6 int64
		for _, args := range [][]string{{"-6"}, {"-6", "-T0"}} {
			b.Run(fmt.Sprintf("%s/xz %v", im.name, args), func(b *testing.B) {
				var size int64
				var cpu time.Duration
				for b.Loop() {
					size, cpu = runXZ(b, bin, args, img, out)
				}
				if len(args) == 1 {
					xz6 = size
				}
				b.ReportMetric(float64(size), "bytes")
				b.ReportMetric(cpu.Seconds(), "cpu-s")
			})
		}
		b.Run(im.name+"/ocidisk", func(b *testing.B) {
			var size int64
			var cpu time.Duration
			ResetPeakRSS()
			for b.Loop() {
				c0 := cpuTime(syscall.RUSAGE_SELF)
				size = compressFile(b, img, out)
				cpu = cpuTime(syscall.RUSAGE_SELF) - c0
			}
			peak, err := PeakRSS()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(size), "bytes")
			b.ReportMetric(cpu.Seconds(), "cpu-s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
			if xz6 > 0 {
				b.ReportMetric(float64(size)/float64(xz6), "size/xz-6")
			}
		})
	}
}

// runXZ compresses img into out with the xz tool and returns the size and
// the CPU time xz took.
func runXZ(b *testing.B, bin string, args []string, img, out string) (int64, time.Duration) {
	f, err := os.Create(out)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bin, append(append([]string{"-c"}, args...), img)...)
	cmd.Stdout = f
	if err := cmd.Run(); err != nil {
		b.Fatalf("xz %v: %v", args, err)
	}
	st, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return st.Size(), time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// compressFile compresses img into out as diskimage does for --compress
// xz: internal/xz's defaults, on every core.
func compressFile(b *testing.B, img, out string) int64 {
	in, err := os.Open(img)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	f, err := os.Create(out)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	w, err := xz.NewWriter(bw, xz.WriterOptions{Workers: runtime.GOMAXPROCS(0)})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(w, in); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	return st.Size()
}

func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
