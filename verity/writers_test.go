package verity

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/fstree"
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
	// The digests of every file's blocks, computed ahead as a build
	// does while it waits (erofs.Options.BlockDigests), and the number
	// of data blocks the files fill at least and at most: whole blocks
	// of zeros are not written, and a file's last part may be inline.
	salt := []byte("filesystem writers")
	ahead := map[*fstree.Node][]byte{}
	var minBlocks, maxBlocks int64
	err = tree.Walk(func(_ string, n *fstree.Node) error {
		if n.Type != fstree.TypeRegular || ahead[n] != nil || n.Size == 0 {
			return nil
		}
		b, err := fstree.ReadAll(n)
		if err != nil {
			return err
		}
		if ahead[n], err = NewHasher(salt).Blocks(nil, bytes.NewReader(b)); err != nil {
			return err
		}
		zero := make([]byte, BlockSize)
		var full int64 // whole blocks not all zeros
		for off := 0; off+BlockSize <= len(b); off += BlockSize {
			if !bytes.Equal(b[off:off+BlockSize], zero) {
				full++
			}
		}
		minBlocks += full
		maxBlocks += full + min(n.Size%BlockSize, 1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	erofsAhead := erofs.Options{Seed: []byte("verity"), Time: when, BlockDigests: func(n *fstree.Node) []byte { return ahead[n] }}
	for _, tc := range []struct {
		name string
		fs   diskimage.Filesystem
		size int64 // 0: MinSize
	}{
		{"ext4", ext4.New(tree, ext4.Options{Seed: []byte("verity"), Time: when}), 0},
		{"erofs", erofs.New(tree, erofs.Options{Seed: []byte("verity"), Time: when}), 0},
		{"erofs with digests ahead", erofs.New(tree, erofsAhead), 0},
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
			w, err := NewWriter(freshImage{f}, start, size, Options{Salt: salt})
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
			t.Logf("%d data blocks, %d read back, %d hashed ahead", size/BlockSize, r.n/BlockSize, w.expected)
			if ahead := strings.Contains(tc.name, "ahead"); ahead && (w.expected < minBlocks || w.expected > maxBlocks) {
				t.Errorf("%d blocks hashed ahead taken, want the files' %d-%d", w.expected, minBlocks, maxBlocks)
			} else if !ahead && w.expected != 0 {
				t.Errorf("%d blocks hashed ahead taken, none given", w.expected)
			}
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
