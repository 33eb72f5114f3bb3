package qcow2_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/diskimage/qcow2"
	"github.com/ocidisk/ocidisk/internal/hosttool"
)

const (
	KiB = int64(1) << 10
	MiB = KiB << 10
	GiB = MiB << 10
)

// disk is a test disk: pseudo-random bytes in some ranges (or zeros, for
// ranges declared but holding nothing), unlisted bytes that must never be
// read.
type disk struct {
	size   int64
	ranges []qcow2.Range
	zeros  []qcow2.Range // listed ranges that hold zeros
}

// byteAt is the disk's content in a listed range: never zero, so that a
// listed cluster is allocated unless the test declares it zero.
func byteAt(off int64) byte {
	x := uint64(off) * 0x9e3779b97f4a7c15
	return byte(x>>56) | 1
}

func (d *disk) zeroAt(off int64) bool {
	for _, z := range d.zeros {
		if off >= z.Off && off < z.Off+z.Len {
			return true
		}
	}
	return false
}

// ReadAt serves the listed ranges and fails the read of anything else:
// the writer must never read outside them.
func (d *disk) ReadAt(p []byte, off int64) (int, error) {
	all := d.all()
	for i := range p {
		at := off + int64(i)
		if !slices.ContainsFunc(all, func(rg qcow2.Range) bool { return at >= rg.Off && at < rg.Off+rg.Len }) {
			return 0, fmt.Errorf("read of %d bytes at %d: byte %d is outside the listed ranges", len(p), off, at)
		}
		if d.zeroAt(at) {
			p[i] = 0
		} else {
			p[i] = byteAt(at)
		}
	}
	return len(p), nil
}

func (d *disk) all() []qcow2.Range { return slices.Concat(d.ranges, d.zeros) }

// raw writes the disk as a sparse raw image, the reference qemu-img
// compares with.
func (d *disk) raw(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(d.size); err != nil {
		t.Fatal(err)
	}
	for _, rg := range d.ranges {
		b := make([]byte, rg.Len)
		if _, err := d.ReadAt(b, rg.Off); err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(b, rg.Off); err != nil {
			t.Fatal(err)
		}
	}
}

// dataClusters counts the clusters that hold a nonzero byte: those the
// image must allocate.
func (d *disk) dataClusters() int64 {
	seen := map[int64]bool{}
	for _, rg := range d.ranges {
		for off := rg.Off; off < rg.Off+rg.Len; off++ {
			if c := off / qcow2.ClusterSize; !seen[c] && !d.zeroAt(off) {
				seen[c] = true
			}
		}
	}
	return int64(len(seen))
}

type checkResult struct {
	Allocated   int64 `json:"allocated-clusters"`
	Corruptions int64 `json:"corruptions"`
	Leaks       int64 `json:"leaks"`
	CheckErrors int64 `json:"check-errors"`
	End         int64 `json:"image-end-offset"`
}

// check has qemu-img check the image, which must be clean.
func check(t *testing.T, img string) checkResult {
	t.Helper()
	qemuImg := hosttool.Require(t, "qemu-img", "qemu-utils")
	out, err := exec.Command(qemuImg, "check", "--output=json", img).Output()
	var chk checkResult
	if jerr := json.Unmarshal(out, &chk); err != nil || jerr != nil {
		t.Fatalf("qemu-img check %s: %v %v\n%s", img, err, jerr, out)
	}
	if chk.Corruptions != 0 || chk.Leaks != 0 || chk.CheckErrors != 0 {
		t.Fatalf("qemu-img check %s: %s", img, out)
	}
	return chk
}

// judge has qemu-img check the image, compare it with raw and report its
// virtual size.
func judge(t *testing.T, img, raw string, size int64) checkResult {
	t.Helper()
	qemuImg := hosttool.Require(t, "qemu-img", "qemu-utils")
	chk := check(t, img)
	if out, err := exec.Command(qemuImg, "compare", "-f", "qcow2", "-F", "raw", img, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img compare: %v\n%s", err, out)
	}
	out, err := exec.Command(qemuImg, "info", "--output=json", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Format      string `json:"format"`
		VirtualSize int64  `json:"virtual-size"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	if info.Format != "qcow2" || info.VirtualSize != size {
		t.Fatalf("qemu-img info: %s, want a qcow2 of %d bytes", out, size)
	}
	return chk
}

func writeFile(t *testing.T, path string, r io.ReaderAt, size int64, ranges []qcow2.Range) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := qcow2.Write(t.Context(), f, r, size, ranges)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := f.Stat(); err != nil || st.Size() != n {
		t.Fatalf("Write returned %d, file holds %v (%v)", n, st.Size(), err)
	}
	return n
}

func TestWrite(t *testing.T) {
	tests := []struct {
		name string
		disk disk
	}{
		{"empty disk", disk{size: 16 * MiB}},
		{"no size", disk{size: 0}},
		{"one cluster", disk{size: 16 * MiB, ranges: []qcow2.Range{{qcow2.ClusterSize, qcow2.ClusterSize}}}},
		{"first and last bytes", disk{size: 16 * MiB, ranges: []qcow2.Range{{0, 512}, {16*MiB - 1, 1}}}},
		{"straddles clusters", disk{size: 16 * MiB, ranges: []qcow2.Range{{qcow2.ClusterSize - 100, 3*qcow2.ClusterSize + 200}}}},
		{"several ranges in a cluster", disk{size: 4 * MiB, ranges: []qcow2.Range{{10, 20}, {4096, 4096}, {60000, 10000}, {200000, 1}}}},
		{"overlapping and unordered", disk{size: 4 * MiB, ranges: []qcow2.Range{{MiB, 300 * KiB}, {100, 1000}, {MiB + 100*KiB, MiB}, {500, 10}}}},
		{"straddles L2 tables", disk{size: 2 * GiB, ranges: []qcow2.Range{{512*MiB - 4*KiB, 8 * KiB}, {GiB - 100, 200}, {2*GiB - qcow2.ClusterSize, qcow2.ClusterSize}}}},
		{"listed zeros", disk{size: 64 * MiB,
			ranges: []qcow2.Range{{0, 4 * KiB}, {8 * MiB, 64 * KiB}},
			zeros:  []qcow2.Range{{MiB, 4 * MiB}, {8*MiB + 64*KiB, 64 * KiB}, {32 * MiB, 4 * KiB}}}},
		{"large sparse disk", disk{size: 64 * GiB, ranges: []qcow2.Range{
			{0, MiB}, {3*GiB + 12345, 5 * MiB}, {40 * GiB, 2 * MiB}, {64*GiB - 4*KiB, 4 * KiB}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &tt.disk
			dir := t.TempDir()
			raw, img := filepath.Join(dir, "disk.raw"), filepath.Join(dir, "disk.qcow2")
			d.raw(t, raw)
			end := writeFile(t, img, d, d.size, d.all())
			chk := judge(t, img, raw, d.size)
			if want := d.dataClusters(); chk.Allocated != want {
				t.Errorf("%d clusters allocated, want the %d that hold data", chk.Allocated, want)
			}
			if chk.End != end {
				t.Errorf("qemu-img sees the image end at %d, Write at %d", chk.End, end)
			}

			// The same inputs, in another order, give the same bytes.
			rev := d.all()
			for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
				rev[i], rev[j] = rev[j], rev[i]
			}
			again := filepath.Join(dir, "again.qcow2")
			writeFile(t, again, d, d.size, rev)
			if a, b := readFile(t, img), readFile(t, again); !bytes.Equal(a, b) {
				t.Error("two writes of the same disk differ")
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	d := &disk{size: 4 * MiB, ranges: []qcow2.Range{{0, MiB}}}
	tests := []struct {
		name   string
		size   int64
		ranges []qcow2.Range
		want   string
	}{
		{"range past the end", 4 * MiB, []qcow2.Range{{4*MiB - 10, 20}}, "outside the 4194304-byte disk"},
		{"negative offset", 4 * MiB, []qcow2.Range{{-1, 20}}, "outside"},
		{"negative size", -1, nil, "negative disk size"},
		{"unreadable range", 4 * MiB, []qcow2.Range{{2 * MiB, 10}}, "read disk at 2097152"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf writerAt
			_, err := qcow2.Write(t.Context(), &buf, d, tt.size, tt.ranges)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
		})
	}
}

// writerAt is an in-memory io.WriterAt.
type writerAt struct{ b []byte }

func (w *writerAt) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(w.b)) {
		w.b = append(w.b, make([]byte, end-int64(len(w.b)))...)
	}
	return copy(w.b[off:], p), nil
}

// TestWriteOverlay: with a raw backing file, the overlay reads as the
// backing file, then zeros past its end.
func TestWriteOverlay(t *testing.T) {
	qemuImg := hosttool.Require(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	backing := filepath.Join(dir, "base, with comma.img")
	data := make([]byte, 3*MiB+512)
	rand.NewChaCha8([32]byte{1}).Read(data)
	if err := os.WriteFile(backing, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{int64(len(data)), 4 * MiB, 3 * GiB} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "overlay.qcow2")
			f, err := os.Create(img)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := qcow2.WriteOverlay(f, size, qcow2.Backing{File: backing, Format: "raw"}); err != nil {
				t.Fatal(err)
			}
			f.Close()
			// The reference: the backing file grown with zeros.
			raw := filepath.Join(t.TempDir(), "flat.raw")
			if err := os.WriteFile(raw, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(raw, size); err != nil {
				t.Fatal(err)
			}
			if chk := judge(t, img, raw, size); chk.Allocated != 0 {
				t.Errorf("the overlay allocates %d clusters", chk.Allocated)
			}
			out, err := exec.Command(qemuImg, "info", "--output=json", img).Output()
			if err != nil {
				t.Fatal(err)
			}
			var info struct {
				Backing    string `json:"full-backing-filename"`
				BackingFmt string `json:"backing-filename-format"`
			}
			if err := json.Unmarshal(out, &info); err != nil || info.Backing != backing || info.BackingFmt != "raw" {
				t.Fatalf("qemu-img info: %s (%v)", out, err)
			}
		})
	}
	if _, err := qcow2.WriteOverlay(&writerAt{}, MiB, qcow2.Backing{File: strings.Repeat("x", 2000)}); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("a 2000-byte backing name: err = %v", err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
