package xz

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// The judges of the encoder are XZ Utils (xz -t, xz -d, xz --list) and
// this package's decoder, which must give back the input byte for byte,
// on inputs shaped to reach the corners: block and chunk boundaries,
// stored chunks, runs, and sparse disk images.

func random(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 11))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// sparse is a disk image's shape: mostly zeros, with 4 KiB-aligned islands
// of file-like data, random data and runs of 0xFF.
func sparse(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 13))
	b := make([]byte, n)
	for off := 0; off < n; {
		size := min(n-off, (1+r.IntN(64))<<12)
		switch r.IntN(6) {
		case 0:
			copy(b[off:], content(r.Uint64(), size))
		case 1:
			copy(b[off:], random(r.Uint64(), size))
		case 2:
			copy(b[off:], bytes.Repeat([]byte{0xFF}, size))
		}
		off += size + r.IntN(200)<<12
	}
	return b
}

// compressWith compresses data with a Writer fed in pieces of uneven sizes.
func compressWith(t testing.TB, data []byte, opts WriterOptions) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := NewWriter(&out, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(uint64(len(data)), 3))
	for p := data; len(p) > 0; {
		n := min(len(p), 1+r.IntN(300000))
		if k, err := w.Write(p[:n]); k != n || err != nil {
			t.Fatalf("Write: %d, %v", k, err)
		}
		p = p[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// xzCheck has the xz tool test the file, decompress it, and list its
// blocks, each of which must record both of its sizes.
func xzCheck(t *testing.T, xzdata, want []byte) {
	t.Helper()
	bin := hosttool.Require(t, "xz", "xz-utils")
	f := filepath.Join(t.TempDir(), "out.xz")
	if err := os.WriteFile(f, xzdata, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-t", f).CombinedOutput(); err != nil {
		t.Fatalf("xz -t: %v\n%s", err, out)
	}
	got, err := exec.Command(bin, "-dc", f).Output()
	if err != nil {
		t.Fatalf("xz -dc: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("xz -dc gives %d bytes, want %d (first difference at %d)", len(got), len(want), firstDiff(got, want))
	}
	list, err := exec.Command(bin, "--robot", "--list", "-vv", f).Output()
	if err != nil {
		t.Fatalf("xz --list: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(list))
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if fields[0] == "block" && (len(fields) < 13 || fields[12] != "cu") {
			t.Fatalf("xz --list: a block without both sizes in its header: %s", sc.Text())
		}
	}
}

func TestWriter(t *testing.T) {
	const bs = 256 << 10
	tests := []struct {
		name string
		data []byte
		opts WriterOptions
	}{
		{"empty", nil, WriterOptions{}},
		{"one byte", []byte{'x'}, WriterOptions{}},
		{"two bytes", []byte{0, 0}, WriterOptions{}},
		{"text, one block", content(1, 1<<20), WriterOptions{}},
		{"exactly one block", content(2, bs), WriterOptions{BlockSize: bs}},
		{"one block less a byte", content(3, bs-1), WriterOptions{BlockSize: bs}},
		{"one block and a byte", content(4, bs+1), WriterOptions{BlockSize: bs}},
		{"blocks", content(5, 5*bs+77), WriterOptions{BlockSize: bs, Workers: 3}},
		{"chunks: a block over 2 MiB", content(6, 5<<20), WriterOptions{BlockSize: 8 << 20}},
		{"random: stored chunks", random(7, 300000), WriterOptions{}},
		{"random, small blocks", random(8, 3*bs+5), WriterOptions{BlockSize: bs}},
		{"random then text", append(random(9, 100000), content(10, 200000)...), WriterOptions{}},
		{"text then random", append(content(11, 200000), random(12, 150000)...), WriterOptions{}},
		{"zeros", make([]byte, 3<<20), WriterOptions{BlockSize: 1 << 20}},
		{"zeros, a byte short of a block", make([]byte, bs-1), WriterOptions{BlockSize: bs}},
		{"0xFF and zeros", append(bytes.Repeat([]byte{0xFF}, 100000), make([]byte, 100001)...), WriterOptions{}},
		{"sparse image", sparse(13, 12<<20), WriterOptions{BlockSize: 2 << 20}},
		{"preset 5", content(14, 1<<20), WriterOptions{Preset: 5}},
		{"preset 9", content(15, 1<<20), WriterOptions{Preset: 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			xzdata := compressWith(t, tt.data, tt.opts)
			xzCheck(t, xzdata, tt.data)
			for _, o := range optionSets {
				got, err := decode(bytes.NewReader(xzdata), o.opts)
				if err != nil {
					t.Fatalf("our decoder, %s: %v", o.name, err)
				}
				if !bytes.Equal(got, tt.data) {
					t.Fatalf("our decoder, %s: %d bytes, want %d (first difference at %d)", o.name, len(got), len(tt.data), firstDiff(got, tt.data))
				}
			}
		})
	}
}

// TestWriterDeterministic: the output depends on the options and the
// input, not on the number of workers, GOMAXPROCS (which sets the default
// number of workers) or how the input is written.
func TestWriterDeterministic(t *testing.T) {
	data := sparse(20, 6<<20)
	want := compressWith(t, data, WriterOptions{BlockSize: 1 << 20, Workers: 1})
	for _, tt := range []struct {
		procs, workers int // procs 0: GOMAXPROCS as it is
	}{
		{0, 2},
		{0, 5},
		{1, 0},
		{2, 0},
		{7, 0},
	} {
		t.Run(fmt.Sprintf("GOMAXPROCS %d, %d workers", tt.procs, tt.workers), func(t *testing.T) {
			if tt.procs > 0 {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(tt.procs))
			}
			var out bytes.Buffer
			w, err := NewWriter(&out, WriterOptions{BlockSize: 1 << 20, Workers: tt.workers})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(w, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("the output differs from one worker's (%d bytes, want %d)", out.Len(), len(want))
			}
		})
	}
}

// TestWriterRatio holds the encoder to the size xz -6 reaches on the same
// data, in one block as xz -6 makes it.
func TestWriterRatio(t *testing.T) {
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"text", content(30, 4<<20)},
		{"sparse image", sparse(31, 16<<20)},
	} {
		ours := compressWith(t, tt.data, WriterOptions{BlockSize: len(tt.data)})
		theirs := compress(t, tt.data, "-6")
		ratio := float64(len(ours)) / float64(len(theirs))
		t.Logf("%s: %d bytes, xz -6 %d: %.4f", tt.name, len(ours), len(theirs), ratio)
		if ratio > 1.02 {
			t.Errorf("%s: %d bytes, %.2f%% more than xz -6's %d", tt.name, len(ours), 100*(ratio-1), len(theirs))
		}
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

// TestWriterErrors: a failing output ends in an error from Write or Close,
// and the Writer refuses to go on after Close.
func TestWriterErrors(t *testing.T) {
	w, err := NewWriter(&failWriter{n: 1000}, WriterOptions{BlockSize: 64 << 10, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	data := random(40, 1<<20)
	var werr error
	for p := data; len(p) > 0 && werr == nil; p = p[min(len(p), 4096):] {
		_, werr = w.Write(p[:min(len(p), 4096)])
	}
	if cerr := w.Close(); werr == nil && cerr == nil {
		t.Fatal("a failing output gave no error")
	}
	if _, err := w.Write([]byte{1}); err == nil {
		t.Error("Write after Close succeeded")
	}
	for _, opts := range []WriterOptions{{Preset: 4}, {Preset: 10}, {BlockSize: -1}, {BlockSize: MaxBlockSize + 1}} {
		if _, err := NewWriter(io.Discard, opts); err == nil {
			t.Errorf("NewWriter(%+v) accepted", opts)
		}
	}
}

// BenchmarkWriter compresses a sparse image-like input, against the xz
// tool (xz -6 -T0, xz -6 -T1) in the same run:
//
//	go test -run '^$' -bench Writer -benchtime 2x ./internal/xz/
//
// The benchmark on real disk images is BenchmarkXZ in bench/.
func BenchmarkWriter(b *testing.B) {
	data := sparse(50, 64<<20)
	b.Run("ours", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		var n int
		for b.Loop() {
			n = len(compressWith(b, data, WriterOptions{}))
		}
		b.ReportMetric(float64(n), "bytes")
	})
	for _, threads := range []string{"-T0", "-T1"} {
		b.Run("xz "+threads, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			var n int
			for b.Loop() {
				n = len(compress(b, data, "-6", threads))
			}
			b.ReportMetric(float64(n), "bytes")
		})
	}
}

func ExampleNewWriter() {
	var out bytes.Buffer
	w, err := NewWriter(&out, WriterOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Fprint(w, "hello, hello, hello")
	if err := w.Close(); err != nil {
		panic(err)
	}
	r, err := NewReader(&out, Options{})
	if err != nil {
		panic(err)
	}
	back, _ := io.ReadAll(r)
	fmt.Println(string(back))
	// Output: hello, hello, hello
}
