package verity

import (
	"bytes"
	"context"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/mkfs/erofs"
	"github.com/ocidisk/ocidisk/mkfs/ext4"
	"github.com/ocidisk/ocidisk/rootfs"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// benchSalt and benchUUID are given to both sides, so that the root
// hashes must agree.
var (
	benchSalt = bytes.Repeat([]byte{0xa5}, 32)
	benchUUID = [16]byte{0x0c, 0x1d, 0x15, 0x4b, 0x5e, 0x71, 0x4a, 0x7e, 0x9f, 0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x76}
)

// times are a step's wall and CPU (user and system, all threads) time.
// This machine's cores are shared: CPU time is the steadier measure.
type times struct{ Wall, CPU time.Duration }

func (t *times) Add(u times) { t.Wall += u.Wall; t.CPU += u.CPU }

func processCPU() time.Duration {
	var r syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r); err != nil {
		panic(err)
	}
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}

// measure runs f in this process and returns its times.
func measure(f func()) times {
	c0, t0 := processCPU(), time.Now()
	f()
	return times{time.Since(t0), processCPU() - c0}
}

// timeVeritysetup runs `veritysetup format` and returns its times and the
// root hash it printed.
func timeVeritysetup(b *testing.B, args ...string) (times, string) {
	b.Helper()
	vs := hosttool.Require(b, "veritysetup", "cryptsetup-bin")
	args = append([]string{"format", "--salt=" + hex.EncodeToString(benchSalt), "--uuid=" + uuidString(benchUUID)}, args...)
	cmd := exec.Command(vs, args...)
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	t := times{Wall: time.Since(t0)}
	if err != nil {
		b.Fatalf("veritysetup %q: %v\n%s", args, err, out)
	}
	t.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	m := rootHashLine.FindSubmatch(out)
	if m == nil {
		b.Fatalf("veritysetup printed no root hash:\n%s", out)
	}
	return t, string(m[1])
}

func fresh(b *testing.B, path string, size int64) *os.File {
	b.Helper()
	os.Remove(path)
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		b.Fatal(err)
	}
	return f
}

func mbps(bytes int64, d time.Duration) float64 { return float64(bytes) / 1e6 / d.Seconds() }

// BenchmarkVsVeritysetup hashes the same data with Build and with
// `veritysetup format`, in the same run: 1 GiB of random bytes (in the
// page cache for both), and reports both throughputs:
//
//	go test -run '^$' -bench VsVeritysetup -benchtime 3x ./verity/
func BenchmarkVsVeritysetup(b *testing.B) {
	const size = 1 << 30
	dir := b.TempDir()
	data := filepath.Join(dir, "data")
	f := fresh(b, data, 0)
	defer f.Close()
	r := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 4<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		r.Read(buf)
		if _, err := f.WriteAt(buf, off); err != nil {
			b.Fatal(err)
		}
	}
	var ours, theirs times
	for b.Loop() {
		h := fresh(b, filepath.Join(dir, "hash"), 0)
		var tr *Tree
		var err error
		ours.Add(measure(func() { tr, err = Build(f, 0, size, h, 0, Options{Salt: benchSalt, UUID: benchUUID}) }))
		h.Close()
		if err != nil {
			b.Fatal(err)
		}
		fresh(b, filepath.Join(dir, "their-hash"), 0).Close()
		t, root := timeVeritysetup(b, data, filepath.Join(dir, "their-hash"))
		theirs.Add(t)
		if root != hex.EncodeToString(tr.RootHash) {
			b.Fatalf("root hash %x, veritysetup's %s", tr.RootHash, root)
		}
	}
	all := size * int64(b.N)
	b.ReportMetric(mbps(all, ours.Wall), "ours-MB/s")
	b.ReportMetric(mbps(all, theirs.Wall), "veritysetup-MB/s")
	b.ReportMetric(mbps(all, ours.CPU), "ours-MB/cpu-s")
	b.ReportMetric(mbps(all, theirs.CPU), "veritysetup-MB/cpu-s")
}

// BenchmarkWritersDebian writes the Debian test tree (testimages/debian)
// with mkfs/ext4 and mkfs/erofs three ways in the same run: alone;
// through a Writer, with Finish putting the tree after the filesystem;
// and alone followed by `veritysetup format` of the image. It reports
// what verity adds to the write in our pass and with veritysetup
// afterwards:
//
//	go test -run '^$' -bench WritersDebian -benchtime 3x ./verity/
func BenchmarkWritersDebian(b *testing.B) {
	d := debian.Tree(b)
	img, err := rootfs.Load(context.Background(), "tar:"+d.FlatTar, source.Options{CacheDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer img.Close()
	for _, tc := range []struct {
		name string
		fs   func() diskimage.Filesystem
	}{
		{"ext4", func() diskimage.Filesystem {
			return ext4.New(img.Tree, ext4.Options{Seed: []byte("bench"), Time: debian.Epoch()})
		}},
		{"erofs", func() diskimage.Filesystem {
			return erofs.New(img.Tree, erofs.Options{Seed: []byte("bench"), Time: debian.Epoch()})
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			size, err := tc.fs().MinSize()
			if err != nil {
				b.Fatal(err)
			}
			size = (size + BlockSize - 1) / BlockSize * BlockSize
			dir := b.TempDir()
			var plain, ours, vs times
			for b.Loop() {
				path := filepath.Join(dir, "plain")
				f := fresh(b, path, size)
				plain.Add(measure(func() { err = tc.fs().WriteAt(freshImage{f}, 0, size) }))
				f.Close()
				if err != nil {
					b.Fatal(err)
				}
				t, root := timeVeritysetup(b, "--hash-offset="+strconv.FormatInt(size, 10), path, path)
				vs.Add(t)

				f = fresh(b, filepath.Join(dir, "verity"), size+Size(size))
				var tr *Tree
				ours.Add(measure(func() {
					var w *Writer
					if w, err = NewWriter(freshImage{f}, 0, size, Options{Salt: benchSalt, UUID: benchUUID}); err != nil {
						return
					}
					if err = tc.fs().WriteAt(w, 0, size); err != nil {
						return
					}
					tr, err = w.Finish(f, f, size)
				}))
				f.Close()
				if err != nil {
					b.Fatal(err)
				}
				if root != hex.EncodeToString(tr.RootHash) {
					b.Fatalf("root hash %x, veritysetup's %s", tr.RootHash, root)
				}
			}
			pct := func(extra, base time.Duration) float64 { return 100 * float64(extra) / float64(base) }
			b.ReportMetric(float64(size)/1e6, "image-MB")
			b.ReportMetric(pct(ours.Wall-plain.Wall, plain.Wall), "verity-added-%")
			b.ReportMetric(pct(ours.CPU-plain.CPU, plain.CPU), "verity-added-cpu-%")
			b.ReportMetric(pct(vs.Wall, plain.Wall), "veritysetup-added-%")
			b.ReportMetric(pct(vs.CPU, plain.CPU), "veritysetup-added-cpu-%")
			n := time.Duration(b.N)
			b.Logf("%d MB image, wall (cpu): %s %v (%v), through verity %v (%v), veritysetup format %v (%v)", size/1e6, tc.name,
				plain.Wall/n, plain.CPU/n, ours.Wall/n, ours.CPU/n, vs.Wall/n, vs.CPU/n)
		})
	}
}
