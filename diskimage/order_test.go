package diskimage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/diskimage"
)

// digestOf is content that depends on another partition's: the SHA-256 of
// the bytes at from, read back through the target while it is written,
// as a boot config names the root's hash tree. Its size is fixed ahead.
type digestOf struct {
	from, n int64
}

func (d digestOf) MinSize() (int64, error) { return 1 << 20, nil }

func (d digestOf) WriteAt(w io.WriterAt, off, size int64) error {
	r, ok := w.(io.ReaderAt)
	if !ok {
		return errors.New("the target cannot be read back")
	}
	b := make([]byte, d.n)
	if _, err := r.ReadAt(b, d.from); err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	_, err := w.WriteAt(sum[:], off)
	return err
}

// TestWriteAfter: a partition that says it is written after another one
// later on the disk reads that one's content back while it is written,
// whatever the table order; names that do not resolve, and partitions
// waiting for each other, are refused before anything is written.
func TestWriteAfter(t *testing.T) {
	data := make([]byte, 3<<20)
	rand.NewChaCha8([32]byte{'o', 'r', 'd', 'e', 'r'}).Read(data)
	layout := func(after1, after2 string) *diskimage.Layout {
		return &diskimage.Layout{Table: diskimage.MBR, Seed: []byte("order"), Partitions: []diskimage.Partition{
			// The source's start is known from the defaults: 4 MiB, then
			// this 1 MiB partition.
			{Name: "summary", Kind: diskimage.KindLinux, FS: digestOf{from: 5 << 20, n: int64(len(data))}, WriteAfter: after1},
			{Name: "source", Kind: diskimage.KindLinux, FS: diskimage.Raw(bytes.NewReader(data), int64(len(data))), WriteAfter: after2},
		}}
	}
	want := sha256.Sum256(data)
	for _, after := range []string{"source", ""} {
		img, res := write(t, layout(after, ""), diskimage.WriteOptions{})
		if s := res.Partitions[1].Start; s != 5<<20 {
			t.Fatalf("source partition at %d, want %d", s, 5<<20)
		}
		got := make([]byte, sha256.Size)
		f, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.ReadAt(got, res.Partitions[0].Start)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		// In table order, the summary is written first and reads zeros.
		if bytes.Equal(got, want[:]) != (after != "") {
			t.Errorf("written after %q: the summary partition holds %x; the digest of the source partition is %x", after, got, want)
		}
	}

	for _, tc := range []struct {
		name, after1, after2, want string
	}{
		{"unknown name", "nosuch", "", `partition 1 (summary): written after partition "nosuch": no partition has that name`},
		{"waiting for each other", "source", "summary", "partitions partition 1 (summary), partition 2 (source) are each to be written after another of them"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "x.img")
			_, err := diskimage.Write(context.Background(), path, layout(tc.after1, tc.after2), diskimage.WriteOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
			if left, _ := os.ReadDir(dir); len(left) > 0 {
				t.Errorf("a refused layout left %v", left)
			}
		})
	}

	// WriteTo a target that cannot be read: the reader says so.
	_, err := diskimage.WriteTo(context.Background(), writeOnly{}, layout("source", ""))
	if err == nil || !strings.Contains(err.Error(), "cannot be read back") {
		t.Errorf("WriteTo a write-only target: err = %v", err)
	}
}

// writeOnly is a target that keeps nothing and cannot be read.
type writeOnly struct{}

func (writeOnly) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }
