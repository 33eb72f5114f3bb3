package hosttool

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Partition copies size bytes at off of image (a partition) into a sparse
// file of its own under t.TempDir and returns its path: fsck.vfat, e2fsck
// through debugfs and unsquashfs take a whole file, not an offset.
func Partition(t testing.TB, image string, off, size int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "part.img")
	CopySparse(t, image, path, off, size)
	return path
}

// CopySparse copies size bytes at off of src to a new file dst, size bytes
// long, leaving holes where src has a MiB of zeros: a partition of an
// image is mostly empty, and a copy should not fill the disk.
func CopySparse(t testing.TB, src, dst string, off, size int64) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	buf := make([]byte, 1<<20)
	zero := make([]byte, len(buf))
	for at := int64(0); at < size; at += int64(len(buf)) {
		b := buf[:min(int64(len(buf)), size-at)]
		if _, err := in.ReadAt(b, off+at); err != nil {
			t.Fatalf("read %s at %d: %v", src, off+at, err)
		}
		if !bytes.Equal(b, zero[:len(b)]) {
			if _, err := out.WriteAt(b, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := out.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
