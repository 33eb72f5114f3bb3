package qcow2_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/ocidisk/ocidisk/bench"
	"github.com/ocidisk/ocidisk/diskimage/qcow2"
	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// BenchmarkVsQemuImg converts the same sparse raw image, 8 GiB holding
// 512 MiB of data (2 MiB ranges every 16 MiB, one in four of them zeros
// that the build declared), with Write and with `qemu-img convert -O
// qcow2`, which finds the data itself (SEEK_DATA, zero detection). Both
// read a warm page cache. It reports both times and peak RSS:
//
//	go test -run '^$' -bench VsQemuImg -benchtime 5x ./diskimage/qcow2/
func BenchmarkVsQemuImg(b *testing.B) {
	qemuImg := hosttool.Require(b, "qemu-img", "qemu-utils")
	dir := b.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	const size, every, runLen = 8 * GiB, 16 * MiB, 2 * MiB
	f, err := os.Create(raw)
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		b.Fatal(err)
	}
	var ranges []qcow2.Range
	buf := make([]byte, runLen)
	rng := rand.NewChaCha8([32]byte{7})
	for off, i := int64(0), 0; off < size; off, i = off+every, i+1 {
		ranges = append(ranges, qcow2.Range{off, runLen})
		if i%4 == 3 {
			continue // listed, left a hole: zeros
		}
		rng.Read(buf)
		if _, err := f.WriteAt(buf, off); err != nil {
			b.Fatal(err)
		}
	}
	data := int64(len(ranges)) * runLen

	b.Run("impl=ocidisk", func(b *testing.B) {
		b.SetBytes(data)
		bench.ResetPeakRSS()
		for b.Loop() {
			out, err := os.Create(filepath.Join(dir, "ours.qcow2"))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := qcow2.Write(b.Context(), out, f, size, ranges); err != nil {
				b.Fatal(err)
			}
			out.Close()
		}
		peak, err := bench.PeakRSS()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	})
	b.Run("impl=qemu-img", func(b *testing.B) {
		b.SetBytes(data)
		var rss int64
		for b.Loop() {
			out := filepath.Join(dir, "theirs.qcow2")
			os.Remove(out)
			_, kb, err := bench.Launch([]string{qemuImg, "convert", "-O", "qcow2", raw, out})
			if err != nil {
				b.Fatal(err)
			}
			rss = max(rss, kb)
		}
		b.ReportMetric(float64(rss)/1024, "peak-RSS-MiB")
	})
	f.Close()
}
