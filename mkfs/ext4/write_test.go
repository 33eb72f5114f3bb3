package ext4

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/testimages/randtree"
)

// recorder is an io.WriterAt that keeps the written ranges in memory
// (for small images) and counts writes.
type recorder struct {
	mu     sync.Mutex
	data   map[int64][]byte // block -> bytes, for blocks written
	writes int
}

func (r *recorder) WriteAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes++
	if r.data == nil {
		r.data = map[int64][]byte{}
	}
	for i := 0; i < len(p); {
		b := (off + int64(i)) / blockSize
		in := int((off + int64(i)) % blockSize)
		blk := r.data[b]
		if blk == nil {
			blk = make([]byte, blockSize)
			r.data[b] = blk
		}
		n := copy(blk[in:], p[i:])
		i += n
	}
	return len(p), nil
}

func TestDeterministic(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		tr := randtree.New(seed, randtree.Options{Entries: 300})
		var sums [2][32]byte
		for i := range sums {
			f, err := os.CreateTemp(t.TempDir(), "*.ext4")
			if err != nil {
				t.Fatal(err)
			}
			if err := Write(f, 0, tr, Options{Time: testTime, Seed: []byte("fixed")}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			if _, err := io.Copy(h, f); err != nil {
				t.Fatal(err)
			}
			f.Close()
			copy(sums[i][:], h.Sum(nil))
		}
		if sums[0] != sums[1] {
			t.Errorf("seed %d: two writes differ: %x, %x", seed, sums[0], sums[1])
		}
	}
	// Identifiers derive from Seed, or from the tree when there is none.
	tr := randtree.New(7, randtree.Options{})
	p, _ := New(tr, Options{}).getPlan()
	idsOf := func(o Options) [16]byte { u, _ := New(tr, o).ids(p); return u }
	first, again := idsOf(Options{}), idsOf(Options{})
	if first != again || idsOf(Options{Seed: []byte("a")}) == idsOf(Options{Seed: []byte("b")}) ||
		idsOf(Options{}) == idsOf(Options{Seed: []byte("a")}) {
		t.Error("UUIDs do not follow their seeds")
	}
	if u := idsOf(Options{UUID: [16]byte{1, 2, 3}}); u != [16]byte{1, 2, 3} {
		t.Errorf("explicit UUID not kept: %x", u)
	}
}

// TestSparse checks that no write carries an all-zero block, so a record
// of the writes is an exact block map, and that the file stays sparse.
func TestSparse(t *testing.T) {
	tr := randtree.New(11, randtree.Options{Entries: 400})
	tr.Root.SetChild("zeros", fstree.NewFile(0o644, 64<<20, randtree.Content{Seed: 3, Size: 64 << 20, ZeroOdds: 255, RunShift: 14}))
	var r recorder
	if err := Write(&r, 0, tr, Options{Time: testTime}); err != nil {
		t.Fatal(err)
	}
	for b, blk := range r.data {
		if isZero(blk) {
			t.Errorf("block %d was written with zeros", b)
		}
	}
	size, err := MinSize(tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if written := int64(len(r.data)) * blockSize; written > size/4 {
		t.Errorf("%d of %d bytes written; the image should be mostly holes", written, size)
	}
	// The record alone, laid on zeros, is the filesystem.
	img := t.TempDir() + "/rec.ext4"
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	for b, blk := range r.data {
		if _, err := f.WriteAt(blk, b*blockSize); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	hosttool.E2fsckClean(t, img)
}

func TestTooSmall(t *testing.T) {
	tr := fstree.New()
	if err := tr.Put("big", fstree.NewFile(0o644, 100<<20, randtree.Content{Seed: 1, Size: 100 << 20}), nil); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{0, 4096, 1 << 20, 50 << 20, 100 << 20} {
		var r recorder
		err := New(tr, Options{Time: testTime}).WriteAt(&r, 0, size)
		if err == nil {
			t.Fatalf("size %d: no error", size)
		}
		need, nerr := New(tr, Options{}).fitSize(0, 0)
		if nerr != nil {
			t.Fatal(nerr)
		}
		if !strings.Contains(err.Error(), fmt.Sprint(size)) || !strings.Contains(err.Error(), fmt.Sprint(need)) {
			t.Errorf("size %d: error %q does not give both sizes (need %d)", size, err, need)
		}
		if r.writes != 0 {
			t.Errorf("size %d: %d writes before failing", size, r.writes)
		}
	}
	// The size the error names is enough.
	need, _ := New(tr, Options{}).fitSize(0, 0)
	img := t.TempDir() + "/fit.ext4"
	f, _ := os.Create(img)
	if err := New(tr, Options{Time: testTime}).WriteAt(f, 0, need); err != nil {
		t.Fatalf("write at the needed size %d: %v", need, err)
	}
	f.Close()
	hosttool.E2fsckClean(t, img)
}

// TestErrors covers trees the format cannot hold: each fails with an
// error naming the entry, before writing.
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		node *fstree.Node
		want string
	}{
		{"dev", fstree.NewDevice(fstree.TypeCharDev, 0o600, 4096, 0), "/dev"},
		{"link", fstree.NewSymlink(strings.Repeat("x", 4096)), "/link"},
		{"empty", fstree.NewSymlink(""), "/empty"},
		{"attr", &fstree.Node{Type: fstree.TypeFIFO, Xattrs: map[string]string{"os2.x": "y"}}, "os2.x"},
		{"huge", &fstree.Node{Type: fstree.TypeFIFO, Xattrs: map[string]string{"user.x": strings.Repeat("v", 5000)}}, "/huge"},
		{"nocontent", fstree.NewFile(0o644, 10, nil), "/nocontent"},
	} {
		tr := fstree.New()
		tr.Root.SetChild(tc.name, tc.node)
		var r recorder
		err := Write(&r, 0, tr, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming %q", tc.name, err, tc.want)
		}
		if r.writes != 0 {
			t.Errorf("%s: %d writes before failing", tc.name, r.writes)
		}
	}
	// More names than an inode's 16-bit link count holds.
	tr := fstree.New()
	f := fstree.NewFile(0o644, 0, nil)
	for i := 0; i <= 65000; i++ {
		tr.Root.SetChild(fmt.Sprint(i), f)
	}
	if err := Write(&recorder{}, 0, tr, Options{}); err == nil || !strings.Contains(err.Error(), "65001 hardlinks") {
		t.Errorf("65001 hardlinks: %v", err)
	}
	// Content that disagrees with its size is found while copying.
	tr = fstree.New()
	tr.Root.SetChild("short", fstree.NewFile(0o644, 10, fstree.Bytes("abc")))
	if err := Write(&recorder{}, 0, tr, Options{}); err == nil || !strings.Contains(err.Error(), "/short") {
		t.Errorf("short content: %v", err)
	}
	tr.Root.SetChild("short", fstree.NewFile(0o644, 2, fstree.Bytes("abc")))
	if err := Write(&recorder{}, 0, tr, Options{}); err == nil || !strings.Contains(err.Error(), "longer") {
		t.Errorf("long content: %v", err)
	}
	tr.Root.SetChild("short", fstree.NewFile(0o644, 2, fstree.Func(func() (io.ReadCloser, error) { return nil, errors.New("boom") })))
	if err := Write(&recorder{}, 0, tr, Options{}); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("failing content: %v", err)
	}
}

// TestOffset writes at an offset inside a bigger file, as diskimage does
// for a partition, and checks nothing lands outside the range.
func TestOffset(t *testing.T) {
	tr := randtree.New(5, randtree.Options{Entries: 100})
	var r recorder
	const off = 1 << 20
	size, err := MinSize(tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(&r, off, tr, Options{Time: testTime, Size: size}); err != nil {
		t.Fatal(err)
	}
	var plain recorder
	if err := Write(&plain, 0, tr, Options{Time: testTime, Size: size}); err != nil {
		t.Fatal(err)
	}
	for b, blk := range plain.data {
		if !bytes.Equal(r.data[b+off/blockSize], blk) {
			t.Fatalf("block %d differs when written at an offset", b)
		}
	}
	for b := range r.data {
		if b < off/blockSize || b >= (off+size)/blockSize {
			t.Fatalf("write outside the filesystem at block %d", b)
		}
	}
}

// TestHugeSparseFile writes a file past 4 GiB that is mostly holes and
// checks its size, that its holes are holes, and its data blocks.
func TestHugeSparseFile(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 5 GiB of generated content")
	}
	c := randtree.Content{Seed: 42, Size: 5<<30 + 12345, RunShift: 12, ZeroOdds: 252}
	tr := fstree.New()
	tr.Root.SetChild("huge", fstree.NewFile(0o644, c.Size, c))
	dir := t.TempDir()
	img, err := writeImage(t, dir, tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	hosttool.E2fsckClean(t, img)
	// Logical blocks to probe: the last, some past 4 GiB, a hole and data.
	last := (c.Size - 1) / blockSize
	probes := []int64{0, last, 1<<20 + 1, last - 4096}
	for k := int64(0); k < last && len(probes) < 12; k += 4096 {
		if !c.IsZeroChunk(k) && k > 1<<20 {
			probes = append(probes, k, k+4095)
		}
	}
	if len(probes) < 6 {
		t.Fatalf("seed has no data past 4 GiB to probe: %v", probes)
	}
	var cmds []string
	cmds = append(cmds, "stat /huge")
	for _, k := range probes {
		cmds = append(cmds, fmt.Sprintf("bmap /huge %d", k))
	}
	out := debugfs(t, img, cmds)
	if m := reOwner.FindStringSubmatch(out[0]); m == nil || m[3] != fmt.Sprint(c.Size) {
		t.Fatalf("stat /huge:\n%s", out[0])
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i, k := range probes {
		phys, err := strconv.ParseInt(strings.TrimSpace(out[i+1]), 10, 64)
		if err != nil {
			t.Fatalf("bmap %d: %q", k, out[i+1])
		}
		want := make([]byte, min(blockSize, c.Size-k*blockSize))
		if _, err := c.ReadAt(want, k*blockSize); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if isZero(want) {
			if phys != 0 {
				t.Errorf("block %d is zeros but mapped to %d, not a hole", k, phys)
			}
			continue
		}
		got := make([]byte, len(want))
		if _, err := f.ReadAt(got, phys*blockSize); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("block %d (at %d) differs", k, phys)
		}
	}
	fi, _ := f.Stat()
	t.Logf("file %d bytes in a %d-byte image", c.Size, fi.Size())
}

func TestProgress(t *testing.T) {
	tr := randtree.New(3, randtree.Options{Entries: 200})
	var calls int
	var last, total int64
	err := Write(&recorder{}, 0, tr, Options{Progress: func(done, tot int64) {
		if done < last || (total != 0 && tot != total) {
			t.Errorf("progress went from %d to %d/%d", last, done, tot)
		}
		calls++
		last, total = done, tot
	}})
	if err != nil {
		t.Fatal(err)
	}
	if want := tr.Stats().Bytes; calls == 0 || last != want || total != want {
		t.Errorf("%d progress calls ending at %d/%d; want %d/%d", calls, last, total, want, want)
	}
}
