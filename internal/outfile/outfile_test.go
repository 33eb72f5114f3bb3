package outfile

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestCommitAndAbort(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		commit bool
	}{{"committed", true}, {"aborted", false}} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name+".img")
			f, err := Create(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString("data"); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Fatalf("output visible before commit: %v", err)
			}
			if tc.commit {
				if err := f.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			f.Abort()
			_, err = os.Stat(p)
			if tc.commit != (err == nil) {
				t.Fatalf("after finish: stat err %v, committed %v", err, tc.commit)
			}
			left, _ := filepath.Glob(filepath.Join(dir, ".*tmp-*"))
			if len(left) != 0 {
				t.Fatalf("temporary files left: %q", left)
			}
		})
	}
}

// Sparse writes exactly the bytes given, whatever the pieces they come
// in, and leaves the blocks of zeros unallocated.
func TestSparse(t *testing.T) {
	const blocks = 64
	data := make([]byte, blocks*SparseBlock+123)
	for b := 0; b < blocks; b++ {
		if b%3 == 0 {
			for i := range SparseBlock {
				data[b*SparseBlock+i] = byte(b + i)
			}
		}
	}
	for _, piece := range []int{1, 1000, SparseBlock, 3 * SparseBlock, len(data)} {
		f, err := os.Create(filepath.Join(t.TempDir(), "sparse"))
		if err != nil {
			t.Fatal(err)
		}
		w := NewSparse(f)
		for off := 0; off < len(data); off += piece {
			if _, err := w.Write(data[off:min(len(data), off+piece)]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Finish(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		got, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) || w.Size() != int64(len(data)) {
			t.Errorf("pieces of %d: read back %d bytes (size %d), want the %d written", piece, len(got), w.Size(), len(data))
		}
		var st unix.Stat_t
		if err := unix.Stat(f.Name(), &st); err != nil {
			t.Fatal(err)
		}
		// A third of the blocks hold data; the filesystem may add a
		// little metadata.
		if alloc := st.Blocks * 512; alloc > int64(len(data))/2 {
			t.Errorf("pieces of %d: %d bytes allocated for %d of data", piece, alloc, blocks/3*SparseBlock)
		}
	}
}

// Check accepts new paths and regular files, and refuses everything else
// with an error naming the path and what it is.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "old.img")
	os.WriteFile(regular, []byte("x"), 0o644)
	link := filepath.Join(dir, "link.img")
	os.Symlink(regular, link)
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, want string
	}{
		{filepath.Join(dir, "new.img"), ""},
		{regular, ""},
		{"/dev/null", "/dev/null is a character device"},
		{link, "is a symlink (to " + regular + ")"},
		{fifo, fifo + " is a FIFO"},
		{dir, "is a directory"},
		{filepath.Join(dir, "missing", "x.img"), "directory " + filepath.Join(dir, "missing") + " does not exist"},
		{filepath.Join(regular, "x.img"), regular + " is not a directory"},
	} {
		err := Check(tc.path)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Check(%s) = %v, want %q", tc.path, err, tc.want)
		}
		if tc.want != "" {
			if f, err := Create(tc.path); err == nil {
				f.Abort()
				t.Errorf("Create(%s) accepted it", tc.path)
			}
		}
	}
}

// Distinct refuses an output that is an input, through a symlink or a
// hardlink too, or that lies inside an input directory.
func TestDistinct(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.tar")
	os.WriteFile(in, []byte("x"), 0o644)
	link := filepath.Join(dir, "link.tar")
	os.Symlink(in, link)
	hard := filepath.Join(dir, "hard.tar")
	os.Link(in, hard)
	layout := filepath.Join(dir, "layout")
	os.MkdirAll(filepath.Join(layout, "blobs"), 0o755)
	for _, tc := range []struct {
		out    string
		inputs []string
		want   string
	}{
		{in, []string{in}, "is the input"},
		{hard, []string{link}, "is the input"},
		{filepath.Join(layout, "blobs", "x"), []string{layout}, "inside the input directory"},
		{filepath.Join(dir, "other.img"), []string{in, layout, filepath.Join(dir, "missing")}, ""},
	} {
		err := Distinct(tc.out, tc.inputs...)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Distinct(%s, %q) = %v, want %q", tc.out, tc.inputs, err, tc.want)
		}
	}
}

// Sweep removes old temporaries of ours that no process holds, and
// nothing else: not a fresh one, not one held open, not a file that only
// looks like one.
func TestSweep(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-2 * StaleAfter)
	mk := func(name string, age time.Time) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte("x"), 0o644)
		os.Chtimes(p, age, age)
		return p
	}
	stale := mk(".disk.img.tmp-123", old)
	fresh := mk(".disk.img.tmp-456", time.Now())
	others := []string{mk(".disk.img.tmp-12x", old), mk(".other.img.tmp-1", old), mk("disk.img", old), mk(".disk.img.tmp-", old)}
	held, err := NewTemp(dir, ".disk.img")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	os.Chtimes(held.Name(), old, old)
	removed := Sweep(dir, ".disk.img")
	if len(removed) != 1 || removed[0] != stale {
		t.Errorf("removed %q, want only %s", removed, stale)
	}
	for _, p := range append(others, fresh, held.Name()) {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}
