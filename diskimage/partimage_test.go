package diskimage_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/mkfs/ext4"
	"github.com/ocidisk/ocidisk/testimages/randtree"
)

// abLayout is an A/B disk: boot, root slot A holding a random tree, slot
// B empty and as large as A, and a fixed data partition.
func abLayout(table diskimage.Table, seed uint64) *diskimage.Layout {
	im := newImage(table, seed)
	l := im.layout
	l.Partitions = append(l.Partitions,
		diskimage.Partition{Name: "root-b", Kind: diskimage.KindLinux, SameSizeAs: "root"},
		diskimage.Partition{Name: "data", Kind: diskimage.KindLinux, Size: 8 << 20})
	return l
}

// TestSameSizeAs: the second slot takes the first's size, which comes from
// its content, and is left unwritten; sfdisk reads the table as we meant
// it.
func TestSameSizeAs(t *testing.T) {
	for _, table := range []diskimage.Table{diskimage.MBR, diskimage.GPT} {
		t.Run(string(table), func(t *testing.T) {
			l := abLayout(table, 7)
			img, res := write(t, l, diskimage.WriteOptions{})
			sfdiskVerify(t, img)
			d := sfdisk(t, img)
			if len(d.PartitionTable.Partitions) != 4 {
				t.Fatalf("sfdisk sees %d partitions, want 4", len(d.PartitionTable.Partitions))
			}
			a, b := res.Partitions[1], res.Partitions[2]
			if a.Size != b.Size || b.Start != a.Start+a.Size {
				t.Errorf("slot B at %d size %d; slot A at %d size %d", b.Start, b.Size, a.Start, a.Size)
			}
			for i, p := range d.PartitionTable.Partitions {
				if p.Size*512 != res.Partitions[i].Size {
					t.Errorf("partition %d: sfdisk says %d sectors, we wrote %d bytes", i+1, p.Size, res.Partitions[i].Size)
				}
			}
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, 1<<20)
			for off := b.Start; off < b.Start+b.Size; off += int64(len(buf)) {
				if _, err := f.ReadAt(buf, off); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(buf, make([]byte, len(buf))) {
					t.Fatalf("slot B has data at %d", off)
				}
			}
		})
	}
	for _, n := range []string{"root-b", "nosuch"} {
		l := abLayout(diskimage.MBR, 7)
		l.Partitions[2].SameSizeAs = n
		_, err := diskimage.Write(context.Background(), filepath.Join(t.TempDir(), "x.img"), l, diskimage.WriteOptions{})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("partition 3 (root-b): size of partition %s: want an earlier partition (boot, root)", n)) {
			t.Errorf("SameSizeAs %s: err = %v", n, err)
		}
	}
}

// TestWritePartition: the slot image is the bytes the disk image holds in
// that partition, its .sha256 is what sha256sum computes and checks, and
// e2fsck finds the filesystem clean.
func TestWritePartition(t *testing.T) {
	l := abLayout(diskimage.GPT, 9)
	img, res := write(t, l, diskimage.WriteOptions{})
	dir := t.TempDir()
	out := filepath.Join(dir, "update.root")
	pi, err := diskimage.WritePartition(context.Background(), out, l, 1)
	if err != nil {
		t.Fatal(err)
	}
	root := res.Partitions[1]
	if pi.Size != root.Size || pi.Path != out || pi.SumPath != out+".sha256" {
		t.Errorf("WritePartition = %+v; want the %d-byte root at %s", pi, root.Size, out)
	}
	if got := fileSHA(t, hosttool.Partition(t, img, root.Start, root.Size)); got != pi.SHA256 {
		t.Errorf("slot image digest %s, the disk's root partition has %s", pi.SHA256, got)
	}
	if got := fileSHA(t, out); got != pi.SHA256 {
		t.Errorf("slot image digest %s, the file has %s", pi.SHA256, got)
	}
	sum, err := os.ReadFile(pi.SumPath)
	if err != nil || string(sum) != pi.SHA256+"  update.root\n" {
		t.Errorf("%s = %q, %v", pi.SumPath, sum, err)
	}
	check := exec.Command(hosttool.Require(t, "sha256sum", "coreutils"), "-c", "update.root.sha256")
	check.Dir = dir
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("sha256sum -c: %v\n%s", err, out)
	}
	e2fsck(t, out, 0, pi.Size)

	// A partition without content, or past the end, writes nothing.
	for _, i := range []int{2, 4} {
		bad := filepath.Join(dir, fmt.Sprintf("p%d.root", i))
		if _, err := diskimage.WritePartition(context.Background(), bad, l, i); err == nil || !strings.Contains(err.Error(), "no filesystem") {
			t.Errorf("partition %d: err = %v", i+1, err)
		}
		if _, err := os.Stat(bad); !os.IsNotExist(err) {
			t.Errorf("partition %d: left %s", i+1, bad)
		}
	}
	// Content larger than its fixed size fails and leaves nothing.
	l.Partitions[1].Size = 128 << 10
	l.Partitions[1].FS = ext4.New(randtree.New(3, randtree.Options{Entries: 40, MaxFileSize: 256 << 10}), ext4.Options{})
	bad := filepath.Join(dir, "small.root")
	if _, err := diskimage.WritePartition(context.Background(), bad, l, 1); err == nil {
		t.Error("a filesystem larger than its partition was written")
	}
	for _, p := range []string{bad, bad + ".sha256"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("failed write left %s", p)
		}
	}
}
