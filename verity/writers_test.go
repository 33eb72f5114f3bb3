package verity

import (
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/mkfs/erofs"
	"github.com/ocidisk/ocidisk/mkfs/ext4"
	"github.com/ocidisk/ocidisk/mkfs/squashfs"
	"github.com/ocidisk/ocidisk/testimages/randtree"
)

// freshImage is a new image file: it reads as zeros where nothing was
// written, so ZeroAt has nothing to do (diskimage's recorder over a new
// image behaves the same).
type freshImage struct{ *os.File }

func (freshImage) ZeroAt(off, n int64) error { return nil }

// TestFilesystemWriters has the filesystem writers write a tree through a
// Writer, in their one pass, at an offset inside a larger image, then puts
// the tree right after the filesystem and has veritysetup verify it
// against the filesystem as a partition of its own.
func TestFilesystemWriters(t *testing.T) {
	veritysetup := hosttool.Require(t, "veritysetup", "cryptsetup-bin")
	tree := randtree.New(17, randtree.Options{Entries: 2000, MaxFileSize: 256 << 10})
	when := time.Unix(1_700_000_000, 0)
	sqOpts := squashfs.Options{Time: when, BlockSize: 4096, TempDir: t.TempDir()}
	sqSize, err := squashfs.New(tree, sqOpts).MinSize()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		fs   diskimage.Filesystem
		size int64 // 0: MinSize
	}{
		{"ext4", ext4.New(tree, ext4.Options{Seed: []byte("verity"), Time: when}), 0},
		{"erofs", erofs.New(tree, erofs.Options{Seed: []byte("verity"), Time: when}), 0},
		// MinSize spools the filesystem, which WriteAt then copies;
		// with a size given, it writes in place.
		{"squashfs spooled", squashfs.New(tree, sqOpts), 0},
		{"squashfs in place", squashfs.New(tree, sqOpts), sqSize + 64<<10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			size := tc.size
			if size == 0 {
				var err error
				if size, err = tc.fs.MinSize(); err != nil {
					t.Fatal(err)
				}
			}
			size = (size + BlockSize - 1) / BlockSize * BlockSize
			const start = 1 << 20 // the partition's start in the image
			dir := t.TempDir()
			path := filepath.Join(dir, "disk.img")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(start + size + Size(size)); err != nil {
				t.Fatal(err)
			}
			w, err := NewWriter(freshImage{f}, start, size, Options{Salt: []byte("filesystem writers")})
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.fs.WriteAt(w, start, size); err != nil {
				t.Fatal(err)
			}
			r := &countingReader{r: f}
			tr, err := w.Finish(r, f, start+size)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d data blocks, %d read back", size/BlockSize, r.n/BlockSize)
			part := filepath.Join(dir, "part")
			hosttool.CopySparse(t, path, part, start, size+Size(size))
			out, err := exec.Command(veritysetup, "verify", "--hash-offset="+strconv.FormatInt(size, 10),
				part, part, hex.EncodeToString(tr.RootHash)).CombinedOutput()
			if err != nil {
				t.Fatalf("veritysetup verify: %v\n%s", err, out)
			}
		})
	}
}
