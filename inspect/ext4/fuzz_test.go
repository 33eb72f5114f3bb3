package ext4

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/inspect/internal/rofstest"
	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// FuzzOpen opens arbitrary bytes, seeded with small filesystems mke2fs
// wrote, as ext2/3/4 and walks what it finds: the reader may refuse a
// damaged image, but never panics or hangs.
// Run with: go test -run XXX -fuzz FuzzOpen ./inspect/ext4/
func FuzzOpen(f *testing.F) {
	mke2fs := hosttool.Require(f, "mke2fs", "e2fsprogs")
	src := f.TempDir()
	os.MkdirAll(filepath.Join(src, "d"), 0o755)
	os.WriteFile(filepath.Join(src, "d", "f"), []byte("hello\n"), 0o644)
	os.Symlink("d/f", filepath.Join(src, "l"))
	for _, features := range []string{"^has_journal,^resize_inode", "^has_journal,^resize_inode,^64bit,^extent,^metadata_csum,^flex_bg"} {
		img := filepath.Join(f.TempDir(), "seed.ext4")
		if err := os.WriteFile(img, make([]byte, 128<<10), 0o644); err != nil {
			f.Fatal(err)
		}
		if out, err := exec.Command(mke2fs, "-q", "-F", "-t", "ext4", "-b", "1024", "-N", "16", "-O", features, "-d", src, img).CombinedOutput(); err != nil {
			f.Fatalf("mke2fs: %v\n%s", err, out)
		}
		b, err := os.ReadFile(img)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, img []byte) {
		rofstest.Within(t, 10*time.Second, func() {
			fsys, err := Open(bytes.NewReader(img), 0, int64(len(img)))
			if err != nil {
				return
			}
			_ = fsys.Type()
			rofstest.Walk(fsys)
		})
	})
}
