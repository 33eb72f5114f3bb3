package diskimage_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/mkfs/ext4"
	"github.com/ocidisk/ocidisk/mkfs/fat"
)

type bmapFile struct {
	ImageSize, BlockSize, BlocksCount, MappedBlocksCount string
	Ranges                                               []struct {
		Chksum string `xml:"chksum,attr"`
		Blocks string `xml:",chardata"`
	} `xml:"BlockMap>Range"`
}

// readBmap parses a .bmap into its set of mapped blocks.
func readBmap(t testing.TB, path string) (map[int64]bool, bmapFile) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var bm bmapFile
	if err := xml.Unmarshal(b, &bm); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	blocks := map[int64]bool{}
	for _, r := range bm.Ranges {
		lo, hi, found := strings.Cut(strings.TrimSpace(r.Blocks), "-")
		if !found {
			hi = lo
		}
		first, err1 := strconv.ParseInt(lo, 10, 64)
		last, err2 := strconv.ParseInt(hi, 10, 64)
		if err1 != nil || err2 != nil || last < first {
			t.Fatalf("%s: bad range %q", path, r.Blocks)
		}
		for b := first; b <= last; b++ {
			blocks[b] = true
		}
	}
	return blocks, bm
}

// blockLog is an io.WriterAt that keeps nothing but the set of blocks
// written or declared zero: an independent record to hold the .bmap to.
type blockLog struct {
	mu     sync.Mutex
	blocks map[int64]bool
}

func (l *blockLog) mark(off, n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for b := off / diskimage.BlockSize; b < (off+n+diskimage.BlockSize-1)/diskimage.BlockSize; b++ {
		l.blocks[b] = true
	}
}
func (l *blockLog) WriteAt(p []byte, off int64) (int, error) {
	l.mark(off, int64(len(p)))
	return len(p), nil
}
func (l *blockLog) ZeroAt(off, n int64) error { l.mark(off, n); return nil }

// TestBmapIsTheWriteRecord checks that the .bmap maps exactly the blocks
// the writers wrote or declared zero (recorded independently through
// WriteTo), that its count and our Result agree, and that no block of the
// image that holds data is left out.
func TestBmapIsTheWriteRecord(t *testing.T) {
	for _, table := range []diskimage.Table{diskimage.MBR, diskimage.GPT} {
		t.Run(string(table), func(t *testing.T) {
			log := &blockLog{blocks: map[int64]bool{}}
			if _, err := diskimage.WriteTo(context.Background(), log, newImage(table, 3).layout); err != nil {
				t.Fatal(err)
			}
			img, res := write(t, newImage(table, 3).layout, diskimage.WriteOptions{Bmap: true})
			mapped, bm := readBmap(t, res.Bmap)
			if len(mapped) != len(log.blocks) {
				t.Errorf("bmap maps %d blocks, the writers touched %d", len(mapped), len(log.blocks))
			}
			for b := range log.blocks {
				if !mapped[b] {
					t.Errorf("block %d written but not mapped", b)
				}
			}
			if n, _ := strconv.ParseInt(strings.TrimSpace(bm.MappedBlocksCount), 10, 64); n != int64(len(mapped)) || res.Mapped != n*diskimage.BlockSize {
				t.Errorf("MappedBlocksCount %d, ranges %d blocks, Result.Mapped %d", n, len(mapped), res.Mapped)
			}
			// Everything that is not zero in the image is mapped.
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, diskimage.BlockSize)
			zero := make([]byte, diskimage.BlockSize)
			for b := int64(0); ; b++ {
				n, err := io.ReadFull(f, buf)
				if n > 0 && !bytes.Equal(buf[:n], zero[:n]) && !mapped[b] {
					t.Fatalf("block %d holds data but is not mapped", b)
				}
				if err != nil {
					break
				}
			}
		})
	}
}

// TestBmapCopy copies images with bmaptool, which verifies every range's
// checksum, onto devices full of garbage: the copies must check clean with
// each partition's fsck, which they only do if the .bmap maps every block
// the filesystems need, zeros included. A compressed image is copied with
// the raw image's .bmap.
func TestBmapCopy(t *testing.T) {
	bmaptool := hosttool.Require(t, "bmaptool", "bmap-tools")
	hosttool.Require(t, "zstd", "zstd")
	for _, table := range []diskimage.Table{diskimage.MBR, diskimage.GPT} {
		t.Run(string(table), func(t *testing.T) {
			im := newImage(table, 4)
			img, res := write(t, im.layout, diskimage.WriteOptions{Bmap: true, Compress: "zstd", KeepRaw: true})
			var sums []string
			for _, src := range []string{img, res.Compressed} {
				dest := img + ".dest"
				garbage(t, dest, res.Size)
				out, err := exec.Command(bmaptool, "copy", src, dest).CombinedOutput()
				if err != nil || !strings.Contains(string(out), "discovered bmap file") || strings.Contains(string(out), "ERROR") {
					t.Fatalf("bmaptool copy %s: %v\n%s", src, err, out)
				}
				checkPartitions(t, dest, im, res)
				sums = append(sums, fileSHA(t, dest))
				os.Remove(dest)
			}
			if sums[0] != sums[1] {
				t.Error("copies of the raw and the compressed image differ")
			}
		})
	}
}

// garbage makes a "device" of size bytes full of pseudo-random bytes.
func garbage(t testing.TB, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, io.LimitReader(rand.NewChaCha8([32]byte{1}), size)); err != nil {
		t.Fatal(err)
	}
}

// TestSparse writes a 2 GiB image holding 100 MiB of file content and
// checks the space it takes on disk (what du reports) and what its .bmap
// maps.
func TestSparse(t *testing.T) {
	boot := fstree.New()
	if err := boot.Put("config.txt", fstree.NewFile(0o644, 6, fstree.Bytes("x=1\ny\n")), nil); err != nil {
		t.Fatal(err)
	}
	root := fstree.New()
	const content = 100 << 20
	data := fstree.Func(func() (io.ReadCloser, error) {
		return io.NopCloser(io.LimitReader(rand.NewChaCha8([32]byte{2}), content)), nil
	})
	if err := root.Put("data/blob.bin", fstree.NewFile(0o644, content, data), fstree.NewDir(0o755)); err != nil {
		t.Fatal(err)
	}
	l := &diskimage.Layout{Table: diskimage.GPT, Size: 2 << 30, Seed: []byte("sparse"), Partitions: []diskimage.Partition{
		{Name: "boot", Kind: diskimage.KindFAT, Size: 256 << 20, FS: fat.New(boot, fat.Options{Time: epoch})},
		{Name: "root", Kind: diskimage.KindRootArm64, Size: diskimage.Fill, FS: ext4.New(root, ext4.Options{Time: epoch})},
	}}
	img, res := write(t, l, diskimage.WriteOptions{Bmap: true})
	var st syscall.Stat_t
	if err := syscall.Stat(img, &st); err != nil {
		t.Fatal(err)
	}
	onDisk := st.Blocks * 512
	t.Logf("2 GiB image, %d bytes of content: %d bytes on disk, %d written, %d declared zero, %d mapped",
		content, onDisk, res.Written, res.Zeroed, res.Mapped)
	if st.Size != 2<<30 || onDisk >= 110<<20 {
		t.Errorf("image of %d bytes takes %d bytes on disk, want under 110 MiB", st.Size, onDisk)
	}
	if res.Mapped < content || res.Mapped >= 110<<20 {
		t.Errorf("bmap maps %d bytes", res.Mapped)
	}
	e2fsck(t, img, res.Partitions[1].Start, res.Partitions[1].Size)
}
