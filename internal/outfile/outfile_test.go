package outfile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

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
