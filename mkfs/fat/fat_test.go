package fat_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/mkfs/fat"
	"github.com/ocidisk/ocidisk/mkfs/fat/fattest"
	"github.com/ocidisk/ocidisk/testimages/randtree"
)

// sparse is a fresh file that reads as zeros where nothing was written:
// its ZeroAt writes nothing, as diskimage's recorder does.
type sparse struct{ *os.File }

func (sparse) ZeroAt(off, n int64) error { return nil }

// writeImage writes tree as a filesystem at off of a new file, through the
// ZeroAt path or plain writes, and returns the file and the filesystem
// size.
func writeImage(t testing.TB, tree *fstree.Tree, off int64, opts fat.Options, zeroAt bool) (string, int64) {
	t.Helper()
	fs := fat.New(tree, opts)
	size := opts.Size
	if size == 0 {
		var err error
		if size, err = fs.MinSize(); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "fat.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var w io.WriterAt = f
	if zeroAt {
		w = sparse{f}
	}
	if err := fs.WriteAt(w, off, size); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(off + size); err != nil {
		t.Fatal(err)
	}
	return path, size
}

// TestRandomTrees is the property test: random boot trees of every kind of
// name and size, written as FAT16 and FAT32, must check clean with
// fsck.vfat and read back with mcopy as exactly the tree.
func TestRandomTrees(t *testing.T) {
	n := 100
	if testing.Short() {
		n = 10
	}
	epoch := time.Date(2023, 6, 1, 12, 0, 1, 0, time.UTC)
	for seed := range n {
		o := fattest.TreeOptions{Entries: 10 + seed%50}
		opts := fat.Options{Label: []string{"", "BOOT", "bootfs", "RASPI FIRM"}[seed%4], Seed: []byte{byte(seed)}}
		switch seed % 5 {
		case 1:
			opts.Type = 32
		case 2:
			opts.Type = 16
		case 3:
			opts.Time = epoch // SOURCE_DATE_EPOCH
		case 4:
			opts.Size = 600 << 20 // FAT32 by size, mostly empty
		}
		if seed == 0 {
			o.Big = 300 << 20
		}
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			tree := fattest.Tree(uint64(seed), o)
			off := int64(seed%3) * 1 << 20
			img, size := writeImage(t, tree, off, opts, seed%2 == 0)
			fattest.Fsck(t, img, off, size)
			fattest.Compare(t, img, off, tree, opts.Time)
		})
	}
	// The shared generator too: hardlinks (stored as copies), files with
	// runs of zeros, deep trees.
	for seed := range n / 5 {
		t.Run(fmt.Sprint("randtree-", seed), func(t *testing.T) {
			tree := randtree.New(uint64(seed), randtree.Options{
				Entries: 80, Types: []fstree.Type{fstree.TypeRegular, fstree.TypeDir},
				NoXattrs: true, NoOwners: true, MaxTime: time.Date(2099, 12, 31, 0, 0, 0, 0, time.UTC),
				ValidName: func(name string) bool {
					// mtools shows characters beyond the BMP as "__".
					return fat.CheckName(name) == nil && !strings.ContainsFunc(name, func(r rune) bool { return r > 0xffff })
				},
				NameKey: strings.ToUpper, // FAT names are unique without regard to case
			})
			opts := fat.Options{Type: []int{16, 32}[seed%2]}
			img, size := writeImage(t, tree, 0, opts, true)
			fattest.Fsck(t, img, 0, size)
			fattest.Compare(t, img, 0, tree, opts.Time)
		})
	}
}

// TestGeometry checks the boot sector as fsck.vfat reads it: the FAT type
// and cluster size mkfs.fat chooses for the same size and type, hidden
// sectors from the offset, the label and the serial.
func TestGeometry(t *testing.T) {
	mkfs := hosttool.Require(t, "mkfs.fat", "dosfstools")
	tree := fattest.Tree(7, fattest.TreeOptions{Entries: 20})
	for _, tc := range []struct {
		size, off int64
		typ       int
	}{
		{size: 64 << 20},
		{size: 256 << 20},
		{size: 511 << 20},
		{size: 512 << 20, off: 4 << 20},
		{size: 9000 << 20},
		{size: 100 << 20, typ: 32, off: 8 << 10},
		{size: 1 << 30, typ: 16},
	} {
		t.Run(fmt.Sprintf("%dM-%d", tc.size>>20, tc.typ), func(t *testing.T) {
			opts := fat.Options{Size: tc.size, Type: tc.typ, Label: "BOOT", Serial: 0x1234abcd}
			img, size := writeImage(t, tree, tc.off, opts, true)
			out := fattest.FsckOutput(t, img, tc.off, size)

			ref := filepath.Join(t.TempDir(), "ref.img")
			args := []string{"-C", ref, fmt.Sprint(tc.size / 1024)}
			if tc.typ != 0 {
				args = append([]string{"-F", fmt.Sprint(tc.typ)}, args...)
			}
			if b, err := exec.Command(mkfs, args...).CombinedOutput(); err != nil {
				t.Fatalf("mkfs.fat %q: %v\n%s", args, err, b)
			}
			refOut := fattest.FsckOutput(t, ref, 0, tc.size)
			for _, key := range []string{"bit entries", "bytes per cluster"} {
				if got, want := line(out, key), line(refOut, key); got != want || got == "" {
					t.Errorf("fsck.vfat -v says %q for ours, %q for mkfs.fat's", got, want)
				}
			}
			for _, want := range []string{fmt.Sprintf("%d hidden sectors", tc.off/512), fmt.Sprintf("%d sectors total", size/512)} {
				if !strings.Contains(out, want) {
					t.Errorf("fsck.vfat -v does not say %q:\n%s", want, out)
				}
			}
			dir := fattest.Mdir(t, img, tc.off, "::/")
			for _, want := range []string{"Volume in drive : is BOOT", "Serial Number is 1234-ABCD"} {
				if !strings.Contains(dir, want) {
					t.Errorf("mdir does not say %q:\n%s", want, dir)
				}
			}
		})
	}
}

// TestSmall checks that a filesystem too small for FAT16 with 2 KiB
// clusters (where mkfs.fat would make FAT12) is FAT16 with smaller
// clusters.
func TestSmall(t *testing.T) {
	tree := fattest.Tree(8, fattest.TreeOptions{Entries: 5})
	img, size := writeImage(t, tree, 0, fat.Options{Size: 3 << 20}, true)
	out := fattest.FsckOutput(t, img, 0, size)
	if !strings.Contains(out, "16 bit entries") || !strings.Contains(out, "512 bytes per cluster") {
		t.Errorf("3 MiB filesystem:\n%s", out)
	}
	fattest.Compare(t, img, 0, tree, time.Time{})
}

func line(out, key string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, key) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// TestAliasesWithMtools checks the 8.3 aliases mtools sees for names whose
// aliases collide, and that names fitting 8.3 in one case get no long name.
func TestAliasesWithMtools(t *testing.T) {
	tree := fstree.New()
	for _, name := range []string{"LONGNA~1.TXT", "longnames.txt", "longnamex.txt", "config.txt", "Makefile", "README.TXT", "read me.txt"} {
		if err := tree.Put("d/"+name, fstree.NewFile(0o644, 1, fstree.Bytes("x")), fstree.NewDir(0o755)); err != nil {
			t.Fatal(err)
		}
	}
	img, size := writeImage(t, tree, 0, fat.Options{}, true)
	fattest.Fsck(t, img, 0, size)
	out := fattest.Mdir(t, img, 0, "::/d")
	for _, want := range []string{
		"LONGNA~1 TXT         1 ",
		"LONGNA~2 TXT         1 1980-01-01   0:00  longnames.txt",
		"LONGNA~3 TXT         1 1980-01-01   0:00  longnamex.txt",
		"config   txt         1 1980-01-01   0:00 \n", // NT case flags, no long name
		"MAKEFILE             1 1980-01-01   0:00  Makefile",
		"README   TXT         1 1980-01-01   0:00 \n",
		"README~1 TXT         1 1980-01-01   0:00  read me.txt",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("mdir lacks %q:\n%s", want, out)
		}
	}
	fattest.Compare(t, img, 0, tree, time.Time{})
}

// TestDeterministic writes the same trees twice, through both write paths,
// and compares the bytes.
func TestDeterministic(t *testing.T) {
	for seed := range 4 {
		tree := fattest.Tree(uint64(100+seed), fattest.TreeOptions{})
		opts := fat.Options{Type: []int{0, 32}[seed%2], Label: "BOOT"}
		var sums [][32]byte
		for _, zeroAt := range []bool{true, false, true} {
			img, _ := writeImage(t, tree, 0, opts, zeroAt)
			b, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			sums = append(sums, sha256.Sum256(b))
		}
		if sums[0] != sums[1] || sums[0] != sums[2] {
			t.Errorf("seed %d: images differ between runs", seed)
		}
	}
}

// TestSerial checks that the serial follows Serial, then Seed, then the
// tree.
func TestSerial(t *testing.T) {
	serial := func(tree *fstree.Tree, opts fat.Options) string {
		img, _ := writeImage(t, tree, 0, opts, true)
		out := fattest.Mdir(t, img, 0, "::/")
		i := strings.Index(out, "Serial Number is ")
		if i < 0 {
			t.Fatalf("no serial in mdir output:\n%s", out)
		}
		return out[i+17 : i+26]
	}
	a := fattest.Tree(1, fattest.TreeOptions{Entries: 5})
	b := fattest.Tree(2, fattest.TreeOptions{Entries: 5})
	if got := serial(a, fat.Options{Serial: 0xdeadbeef}); got != "DEAD-BEEF" {
		t.Errorf("explicit serial: got %s", got)
	}
	if serial(a, fat.Options{Seed: []byte("x")}) != serial(b, fat.Options{Seed: []byte("x")}) {
		t.Error("same seed, different serials")
	}
	if serial(a, fat.Options{Seed: []byte("x")}) == serial(a, fat.Options{Seed: []byte("y")}) {
		t.Error("different seeds, same serial")
	}
	if serial(a, fat.Options{}) == serial(b, fat.Options{}) {
		t.Error("different trees without a seed, same serial")
	}
}

// TestSparse checks that zero-filled content and free space are left to
// ZeroAt and never written.
func TestSparse(t *testing.T) {
	tree := fstree.New()
	zeros := make([]byte, 8<<20)
	if err := tree.Put("zeros.bin", fstree.NewFile(0o644, int64(len(zeros)), fstree.Bytes(zeros)), nil); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	if err := fat.Write(rec, 0, tree, fat.Options{Size: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	if rec.written > 64<<10 {
		t.Errorf("wrote %d bytes for a filesystem of zeros", rec.written)
	}
	if rec.zeroed < int64(len(zeros)) {
		t.Errorf("declared %d bytes as zero, want at least the %d of the file", rec.zeroed, len(zeros))
	}
}

type recorder struct{ written, zeroed int64 }

func (r *recorder) WriteAt(p []byte, off int64) (int, error) {
	if bytes.Count(p, []byte{0}) == len(p) && len(p) >= 4096 {
		return 0, fmt.Errorf("wrote %d zero bytes at %d", len(p), off)
	}
	r.written += int64(len(p))
	return len(p), nil
}
func (r *recorder) ZeroAt(off, n int64) error { r.zeroed += n; return nil }

// TestTimes checks FAT's time range and the clamp with mdir, which prints
// the stored date and time as they are (mcopy -m is a day off after
// February 2100).
func TestTimes(t *testing.T) {
	at := func(y, mo, d, h, mi, s int) time.Time { return time.Date(y, time.Month(mo), d, h, mi, s, 0, time.UTC) }
	for _, tc := range []struct {
		limit time.Time
		files map[string]time.Time
		want  map[string]string // mdir's date and time
	}{
		{
			files: map[string]time.Time{"early": at(1970, 1, 1, 0, 0, 0), "late": at(2150, 1, 1, 0, 0, 0),
				"in2106": at(2106, 6, 27, 8, 4, 48), "zero": {}, "odd": at(2024, 2, 29, 23, 59, 59)},
			want: map[string]string{"early": "1980-01-01   0:00", "late": "2107-12-31  23:59",
				"in2106": "2106-06-27   8:04", "zero": "1980-01-01   0:00", "odd": "2024-02-29  23:59"},
		},
		{
			limit: at(2030, 5, 6, 7, 8, 10),
			files: map[string]time.Time{"late": at(2150, 1, 1, 0, 0, 0), "zero": {}, "before": at(2001, 2, 3, 4, 5, 6)},
			want:  map[string]string{"late": "2030-05-06   7:08", "zero": "2030-05-06   7:08", "before": "2001-02-03   4:05"},
		},
	} {
		tr := fstree.New()
		for name, mt := range tc.files {
			n := fstree.NewFile(0o644, 1, fstree.Bytes("x"))
			n.Mtime = mt
			if err := tr.Put(name, n, nil); err != nil {
				t.Fatal(err)
			}
		}
		img, size := writeImage(t, tr, 0, fat.Options{Time: tc.limit}, true)
		fattest.Fsck(t, img, 0, size)
		out := fattest.Mdir(t, img, 0, "::/")
		for name, w := range tc.want {
			var l string
			for _, x := range strings.Split(out, "\n") {
				if strings.HasPrefix(x, name+" ") {
					l = x
				}
			}
			if !strings.Contains(l, " "+w+" ") {
				t.Errorf("limit %v: %s should show %q:\n%s", tc.limit, name, w, out)
			}
		}
	}
}
