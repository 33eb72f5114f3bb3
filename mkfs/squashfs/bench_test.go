package squashfs

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/bench"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/rootfs"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages/debian"
	"github.com/ocidisk/ocidisk/testimages/randtree"
)

// BenchmarkVsMksquashfs writes the same trees with this package and with
// mksquashfs (from a copy extracted beforehand, outside the timing), with
// the same compression, level and block size, tails packed into
// fragments and no deduplication on both sides, each in a child process;
// it reports both times, their ratio, both peak RSS and both sizes. Run as
// root (ownership and device nodes must extract):
//
//	go test -run '^$' -bench VsMksquashfs -benchtime 1x ./mkfs/squashfs/
func BenchmarkVsMksquashfs(b *testing.B) {
	mksquashfs := hosttool.Require(b, "mksquashfs", "squashfs-tools")
	if os.Getuid() != 0 {
		b.Skip("needs root to extract ownership and device nodes for mksquashfs")
	}
	d := debian.Tree(b)
	trees := []struct {
		name, spec string
	}{
		{"debian", "tar:" + d.FlatTar},
		{"rand20k", "rand:20000"},
	}
	comps := []struct {
		name  string
		level int
		args  []string
	}{
		{"zstd", 15, []string{"-comp", "zstd", "-Xcompression-level", "15"}},
		{"xz", 0, []string{"-comp", "xz"}},
		{"gzip", 9, []string{"-comp", "gzip", "-Xcompression-level", "9"}},
		{"lz4", 0, []string{"-comp", "lz4"}},
	}
	for _, tc := range trees {
		dir := b.TempDir()
		src := filepath.Join(dir, "src")
		// The source directory comes from our own image, extracted by
		// unsquashfs, so both writers see exactly the same tree.
		seed := filepath.Join(dir, "seed.squashfs")
		bench.Child(b, "TestBenchChild", "SQUASHFS_BENCH_TREE="+tc.spec, "SQUASHFS_BENCH_OUT="+seed, "SQUASHFS_BENCH_COMP=lz4")
		if out, err := exec.Command(unsquashfs(b), "-n", "-q", "-d", src, seed).CombinedOutput(); err != nil {
			b.Fatalf("unsquashfs: %v\n%s", err, out)
		}
		for _, c := range comps {
			b.Run(tc.name+"/"+c.name, func(b *testing.B) {
				var ours, theirs time.Duration
				var oursRSS, theirsRSS, oursSize, theirsSize int64
				for b.Loop() {
					img := filepath.Join(dir, "ours.squashfs")
					os.Remove(img)
					out := bench.Child(b, "TestBenchChild", "SQUASHFS_BENCH_TREE="+tc.spec, "SQUASHFS_BENCH_OUT="+img,
						"SQUASHFS_BENCH_COMP="+c.name, "SQUASHFS_BENCH_LEVEL="+strconv.Itoa(c.level))
					var ns, hwm int64
					if _, err := fmt.Sscanf(out, "wrote in %d ns, VmHWM %d kB", &ns, &hwm); err != nil {
						b.Fatalf("child said %q", out)
					}
					ours += time.Duration(ns)
					oursRSS = max(oursRSS, hwm)
					oursSize = fileSize(b, img)

					theirImg := filepath.Join(dir, "mksquashfs.squashfs")
					os.Remove(theirImg)
					args := append([]string{mksquashfs, src, theirImg, "-noappend", "-quiet", "-no-progress",
						"-b", "131072", "-always-use-fragments", "-no-duplicates"}, c.args...)
					out = bench.Child(b, "TestBenchChild", "SQUASHFS_BENCH_RUN="+strings.Join(args, "\x1f"))
					if _, err := fmt.Sscanf(out, "ran in %d ns, maxrss %d kB", &ns, &hwm); err != nil {
						b.Fatalf("launcher said %q", out)
					}
					theirs += time.Duration(ns)
					theirsRSS = max(theirsRSS, hwm)
					theirsSize = fileSize(b, theirImg)
				}
				b.ReportMetric(float64(ours)/float64(theirs), "ours/mksquashfs")
				b.ReportMetric(float64(ours.Milliseconds())/float64(b.N), "ours-ms")
				b.ReportMetric(float64(theirs.Milliseconds())/float64(b.N), "mksquashfs-ms")
				b.ReportMetric(float64(oursRSS)/1024, "ours-MiB")
				b.ReportMetric(float64(theirsRSS)/1024, "mksquashfs-MiB")
				b.ReportMetric(float64(oursSize)/float64(theirsSize), "size-ratio")
				b.Logf("ours %v, %.1f MiB peak, %d bytes; mksquashfs %v, %.1f MiB peak, %d bytes",
					ours/time.Duration(b.N), float64(oursRSS)/1024, oursSize,
					theirs/time.Duration(b.N), float64(theirsRSS)/1024, theirsSize)
			})
		}
	}
}

func fileSize(b *testing.B, p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

// TestBenchChild is the child process of BenchmarkVsMksquashfs: it loads
// a tree and writes it (SQUASHFS_BENCH_TREE), or runs a command
// (SQUASHFS_BENCH_RUN, fields separated by \x1f), and prints the time
// and peak RSS.
func TestBenchChild(t *testing.T) {
	if run := os.Getenv("SQUASHFS_BENCH_RUN"); run != "" {
		args := strings.Split(run, "\x1f")
		d, maxrss, err := bench.Launch(args)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("ran in %d ns, maxrss %d kB\n", d.Nanoseconds(), maxrss)
		return
	}
	spec := os.Getenv("SQUASHFS_BENCH_TREE")
	if spec == "" {
		t.Skip("run by BenchmarkVsMksquashfs")
	}
	var tr *fstree.Tree
	if rt, ok := randtree.Bench(spec); ok {
		tr = rt
	} else {
		img, err := rootfs.Load(context.Background(), spec, source.Options{CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		defer img.Close()
		tr = img.Tree
	}
	level, _ := strconv.Atoi(os.Getenv("SQUASHFS_BENCH_LEVEL"))
	opts := Options{Compression: os.Getenv("SQUASHFS_BENCH_COMP"), Level: level}
	t0 := time.Now()
	if out := os.Getenv("SQUASHFS_BENCH_OUT"); out != "-" {
		f, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := Write(f, 0, tr, opts); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	} else if err := Write(&countWriterAt{}, 0, tr, opts); err != nil {
		t.Fatal(err)
	}
	d := time.Since(t0)
	peak, err := bench.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("wrote in %d ns, VmHWM %d kB\n", d.Nanoseconds(), peak>>10)
}

// BenchmarkPeakRSS shows that memory follows entries, not bytes: it
// writes (lz4, into a discarding target) trees of few entries and many
// gigabytes and of many entries and few bytes, each in a child process,
// and reports the child's peak RSS.
//
//	go test -run '^$' -bench PeakRSS -benchtime 1x ./mkfs/squashfs/
func BenchmarkPeakRSS(b *testing.B) {
	for _, spec := range []string{"randbig:40", "rand:5000", "rand:50000"} {
		b.Run(spec, func(b *testing.B) {
			tr, _ := randtree.Bench(spec)
			st := tr.Stats()
			var hwm int64
			for b.Loop() {
				out := bench.Child(b, "TestBenchChild", "SQUASHFS_BENCH_TREE="+spec, "SQUASHFS_BENCH_OUT=-", "SQUASHFS_BENCH_COMP=lz4")
				var ns int64
				if _, err := fmt.Sscanf(out, "wrote in %d ns, VmHWM %d kB", &ns, &hwm); err != nil {
					b.Fatalf("child said %q", out)
				}
			}
			b.ReportMetric(float64(hwm)/1024, "peak-MiB")
			b.ReportMetric(float64(st.Inodes), "inodes")
			b.ReportMetric(float64(st.Bytes)/(1<<20), "content-MiB")
		})
	}
}

// BenchmarkWrite writes the Debian arm64 root into a discarding target
// with each compression, reporting the rate of file content compressed.
//
//	go test -run '^$' -bench 'Write/' -benchtime 1x ./mkfs/squashfs/
func BenchmarkWrite(b *testing.B) {
	tr := debianTree(b)
	var bytes int64
	seen := map[*fstree.Node]bool{}
	_ = tr.Walk(func(_ string, n *fstree.Node) error {
		if n.Type == fstree.TypeRegular && !seen[n] {
			seen[n] = true
			bytes += n.Size
		}
		return nil
	})
	for _, c := range []struct {
		name  string
		level int
	}{{"zstd", 0}, {"zstd", 3}, {"xz", 0}, {"gzip", 0}, {"gzip", 6}, {"lz4", 0}} {
		b.Run(fmt.Sprintf("%s-%d", c.name, c.level), func(b *testing.B) {
			b.SetBytes(bytes)
			var size int64
			for b.Loop() {
				w := &countWriterAt{}
				if err := Write(w, 0, tr, Options{Compression: c.name, Level: c.level, Time: testTime}); err != nil {
					b.Fatal(err)
				}
				size = w.end
			}
			b.ReportMetric(float64(size)/float64(bytes), "ratio")
		})
	}
}

// countWriterAt discards what is written and remembers the furthest byte.
type countWriterAt struct{ end int64 }

func (w *countWriterAt) WriteAt(p []byte, off int64) (int, error) {
	w.end = max(w.end, off+int64(len(p)))
	return len(p), nil
}
