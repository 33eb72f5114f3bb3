package erofs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/bench"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/testimages/debian"
	"github.com/ocidisk/ocidisk/testimages/randtree"
)

// BenchmarkVsMkfsErofs writes the Debian arm64 root with this package
// (from its flattened tar, content read from the tar) and with mkfs.erofs
// (uncompressed, from the same tree extracted to a directory beforehand,
// outside the timing), each in a child process; it reports both times,
// their ratio, both peak RSS and both sizes. Ours is timed from the loaded
// tree ("ours-ms") and from the tar ("ours-load-ms": reading the tar's
// headers too), mkfs.erofs from its start (reading the directory is its
// part of the work). Run as root (ownership, devices and xattrs must
// extract):
//
//	go test -run '^$' -bench VsMkfsErofs -benchtime 3x ./mkfs/erofs/
func BenchmarkVsMkfsErofs(b *testing.B) {
	mkfs := hosttool.Require(b, "mkfs.erofs", "erofs-utils")
	if os.Getuid() != 0 {
		b.Skip("needs root to extract ownership, device nodes and xattrs for mkfs.erofs")
	}
	d := debian.Tree(b)
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	if err := d.Extract(b.Context(), src); err != nil {
		b.Fatal(err)
	}
	var ours, oursLoad, theirs time.Duration
	var oursRSS, theirsRSS, oursSize, theirsSize int64
	for b.Loop() {
		img := filepath.Join(dir, "ours.erofs")
		os.Remove(img)
		out := bench.Child(b, "TestBenchChild", "EROFS_BENCH_TREE=tar:"+d.FlatTar, "EROFS_BENCH_OUT="+img)
		var ns, loadNS, hwm int64
		if _, err := fmt.Sscanf(out, "wrote in %d ns, %d ns with loading, VmHWM %d kB", &ns, &loadNS, &hwm); err != nil {
			b.Fatalf("child said %q", out)
		}
		ours += time.Duration(ns)
		oursLoad += time.Duration(loadNS)
		oursRSS = max(oursRSS, hwm)
		oursSize = fileSize(b, img)

		theirImg := filepath.Join(dir, "mkfs.erofs.erofs")
		os.Remove(theirImg)
		args := []string{mkfs, "--quiet", "-U", "d3b07384-d9a0-4c9b-8f1a-6b5e8e0a5f8d", theirImg, src}
		out = bench.Child(b, "TestBenchChild", "EROFS_BENCH_RUN="+strings.Join(args, "\x1f"))
		if _, err := fmt.Sscanf(out, "ran in %d ns, maxrss %d kB", &ns, &hwm); err != nil {
			b.Fatalf("launcher said %q", out)
		}
		theirs += time.Duration(ns)
		theirsRSS = max(theirsRSS, hwm)
		theirsSize = fileSize(b, theirImg)
	}
	n := time.Duration(b.N)
	b.ReportMetric(float64(ours)/float64(theirs), "ours/mkfs.erofs")
	b.ReportMetric(float64(oursLoad)/float64(theirs), "ours-load/mkfs.erofs")
	b.ReportMetric(float64((ours / n).Milliseconds()), "ours-ms")
	b.ReportMetric(float64((oursLoad / n).Milliseconds()), "ours-load-ms")
	b.ReportMetric(float64((theirs / n).Milliseconds()), "mkfs.erofs-ms")
	b.ReportMetric(float64(oursRSS)/1024, "ours-MiB")
	b.ReportMetric(float64(theirsRSS)/1024, "mkfs.erofs-MiB")
	b.ReportMetric(float64(oursSize)/float64(theirsSize), "size-ratio")
	b.Logf("%d entries, %d content bytes; ours %v (%v with loading), %.1f MiB peak, %d bytes; mkfs.erofs %v, %.1f MiB peak, %d bytes",
		d.Entries, d.Bytes, ours/n, oursLoad/n, float64(oursRSS)/1024, oursSize, theirs/n, float64(theirsRSS)/1024, theirsSize)
}

func fileSize(b *testing.B, p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

// TestBenchChild is the child process of BenchmarkVsMkfsErofs: it loads a
// tree and writes it (EROFS_BENCH_TREE, EROFS_BENCH_OUT), or runs a
// command (EROFS_BENCH_RUN, fields separated by \x1f), and prints the
// time and peak RSS.
func TestBenchChild(t *testing.T) {
	if run := os.Getenv("EROFS_BENCH_RUN"); run != "" {
		d, maxrss, err := bench.Launch(strings.Split(run, "\x1f"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("ran in %d ns, maxrss %d kB\n", d.Nanoseconds(), maxrss)
		return
	}
	spec := os.Getenv("EROFS_BENCH_TREE")
	if spec == "" {
		t.Skip("run by BenchmarkVsMkfsErofs")
	}
	t0 := time.Now()
	tr := loadTree(t, spec)
	t1 := time.Now()
	if out := os.Getenv("EROFS_BENCH_OUT"); out != "-" {
		f, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := Write(f, 0, tr, Options{Seed: []byte("bench")}); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	} else if err := Write(discard{}, 0, tr, Options{Seed: []byte("bench")}); err != nil {
		t.Fatal(err)
	}
	t2 := time.Now()
	peak, err := bench.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("wrote in %d ns, %d ns with loading, VmHWM %d kB\n", t2.Sub(t1).Nanoseconds(), t2.Sub(t0).Nanoseconds(), peak>>10)
}

// BenchmarkPeakRSS shows that memory follows entries, not bytes: it
// writes trees of few entries and many gigabytes and of many entries and
// few bytes, each in a child process into a discarding target, and
// reports the child's peak RSS.
//
//	go test -run '^$' -bench PeakRSS -benchtime 1x ./mkfs/erofs/
func BenchmarkPeakRSS(b *testing.B) {
	for _, spec := range []string{"randbig:40", "rand:5000", "rand:50000"} {
		b.Run(spec, func(b *testing.B) {
			var hwm int64
			for b.Loop() {
				out := bench.Child(b, "TestBenchChild", "EROFS_BENCH_TREE="+spec, "EROFS_BENCH_OUT=-")
				var ns, loadNS int64
				if _, err := fmt.Sscanf(out, "wrote in %d ns, %d ns with loading, VmHWM %d kB", &ns, &loadNS, &hwm); err != nil {
					b.Fatalf("child said %q", out)
				}
			}
			tr, _ := randtree.Bench(spec)
			st := tr.Stats()
			b.ReportMetric(float64(hwm)/1024, "peak-MiB")
			b.ReportMetric(float64(st.Inodes), "inodes")
			b.ReportMetric(float64(st.Bytes)/(1<<20), "content-MiB")
		})
	}
}

// discard is a target that drops what is written.
type discard struct{}

func (discard) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }
