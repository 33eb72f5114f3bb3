package diskimage_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/mkfs/fat"
)

// TestErrors checks that bad layouts fail with messages that say what is
// wrong, and that a failure leaves nothing at any output path.
func TestErrors(t *testing.T) {
	small := func() diskimage.Filesystem {
		tr := fstree.New()
		tr.Put("config.txt", fstree.NewFile(0o644, 3, fstree.Bytes("x=1")), nil)
		return fat.New(tr, fat.Options{})
	}
	big := func() diskimage.Filesystem {
		tr := fstree.New()
		tr.Put("kernel.img", fstree.NewFile(0o644, 10<<20, fstree.Bytes(make([]byte, 10<<20))), nil)
		return fat.New(tr, fat.Options{})
	}
	badName := func() diskimage.Filesystem {
		tr := fstree.New()
		tr.Put("dtbs/a:b.dtb", fstree.NewFile(0o644, 1, fstree.Bytes("x")), fstree.NewDir(0o755))
		return fat.New(tr, fat.Options{})
	}
	blob := func(off, size int64) diskimage.Blob {
		return diskimage.Blob{Name: "u-boot", Offset: off, Data: bytes.NewReader(make([]byte, size)), Size: size}
	}
	fatPart := func(fs diskimage.Filesystem, size int64) diskimage.Partition {
		return diskimage.Partition{Name: "boot", Kind: diskimage.KindFAT, FS: fs, Size: size}
	}
	for _, tc := range []struct {
		name   string
		layout diskimage.Layout
		want   []string // substrings of the error
		is     error
	}{
		{name: "content larger than its partition",
			layout: diskimage.Layout{Table: diskimage.MBR, Partitions: []diskimage.Partition{fatPart(big(), 4<<20)}},
			want:   []string{"partition 1 (boot)", "content needs 10485760 bytes", "the 4194304-byte filesystem"}},
		{name: "partitions larger than the image",
			layout: diskimage.Layout{Table: diskimage.MBR, Size: 32 << 20, Partitions: []diskimage.Partition{fatPart(small(), 64<<20)}},
			want:   []string{"partitions end at byte 71303168, beyond the image size 33554432"}},
		{name: "no room for the backup GPT",
			layout: diskimage.Layout{Table: diskimage.GPT, Size: 68 << 20, Partitions: []diskimage.Partition{fatPart(small(), 64<<20)}},
			want:   []string{"backup GPT needs 16896 more", "larger than the image size 71303168"}},
		{name: "blob overlapping a partition",
			layout: diskimage.Layout{Table: diskimage.MBR, Partitions: []diskimage.Partition{fatPart(small(), 8<<20)}, Blobs: []diskimage.Blob{blob(3<<20, 2<<20)}},
			want:   []string{`blob "u-boot" (bytes 3145728-5242879) overlaps partition 1 (boot) (bytes 4194304-12582911)`}},
		{name: "blob overlapping the MBR",
			layout: diskimage.Layout{Table: diskimage.MBR, Partitions: []diskimage.Partition{fatPart(small(), 8<<20)}, Blobs: []diskimage.Blob{blob(0, 446)}},
			want:   []string{`blob "u-boot" (bytes 0-445) overlaps the MBR (bytes 0-511)`}},
		{name: "blob overlapping the GPT entries",
			layout: diskimage.Layout{Table: diskimage.GPT, GPTEntries: 128, Partitions: []diskimage.Partition{fatPart(small(), 8<<20)}, Blobs: []diskimage.Blob{blob(8<<10, 1024)}},
			want:   []string{`blob "u-boot" (bytes 8192-9215) overlaps the GPT header and entries (bytes 0-17407)`}},
		{name: "blob overlapping the backup GPT",
			layout: diskimage.Layout{Table: diskimage.GPT, Size: 16 << 20, Partitions: []diskimage.Partition{fatPart(small(), 8<<20)}, Blobs: []diskimage.Blob{blob(16<<20-4096, 1024)}},
			want:   []string{"overlaps the backup GPT"}},
		{name: "blobs overlapping each other",
			layout: diskimage.Layout{Table: diskimage.MBR, Partitions: []diskimage.Partition{fatPart(small(), 8<<20)}, Blobs: []diskimage.Blob{blob(8<<10, 4096), blob(10<<10, 4096)}},
			want:   []string{`blob "u-boot" (bytes 10240-14335) overlaps blob "u-boot" (bytes 8192-12287)`}},
		{name: "blob outside the image",
			layout: diskimage.Layout{Table: diskimage.MBR, Partitions: []diskimage.Partition{fatPart(small(), 8<<20)}, Blobs: []diskimage.Blob{blob(100<<20, 4096)}},
			want:   []string{"outside the 12582912-byte image"}},
		{name: "invalid FAT name",
			layout: diskimage.Layout{Table: diskimage.GPT, Partitions: []diskimage.Partition{fatPart(badName(), 0)}},
			want:   []string{"partition 1 (boot)", "/dtbs/a:b.dtb", "cannot contain ':'"}, is: fat.ErrInvalidName},
		{name: "five MBR partitions",
			layout: diskimage.Layout{Table: diskimage.MBR, Partitions: make([]diskimage.Partition, 5)},
			want:   []string{"5 partitions: an MBR holds 4"}},
		{name: "fill not last",
			layout: diskimage.Layout{Table: diskimage.MBR, Size: 64 << 20, Partitions: []diskimage.Partition{fatPart(small(), diskimage.Fill), fatPart(small(), 8<<20)}},
			want:   []string{"partition 1 (boot): only the last partition can fill the disk"}},
		{name: "fill without a size",
			layout: diskimage.Layout{Table: diskimage.MBR, Partitions: []diskimage.Partition{fatPart(small(), diskimage.Fill)}},
			want:   []string{"Fill needs an image size"}},
		{name: "overlapping partitions",
			layout: diskimage.Layout{Table: diskimage.MBR, Partitions: []diskimage.Partition{fatPart(small(), 8<<20), {Name: "root", Kind: diskimage.KindLinux, Offset: 8 << 20, Size: 8 << 20}}},
			want:   []string{"partition 2 (root) at byte 8388608 overlaps partition 1, which ends at byte 12582912"}},
		{name: "partition over the table",
			layout: diskimage.Layout{Table: diskimage.GPT, Partitions: []diskimage.Partition{{Name: "x", Kind: diskimage.KindLinux, Offset: 4096, Size: 1 << 20}}},
			want:   []string{"partition 1 (x) at byte 4096 overlaps the partition table (bytes 0-17407)"}},
		{name: "unknown kind",
			layout: diskimage.Layout{Table: diskimage.MBR, Partitions: []diskimage.Partition{{Kind: "ntfs", Size: 1 << 20}}},
			want:   []string{`partition 1: unknown kind "ntfs"`}},
		{name: "no size",
			layout: diskimage.Layout{Table: diskimage.MBR, Partitions: []diskimage.Partition{{Kind: diskimage.KindLinux}}},
			want:   []string{"partition 1: no size and no content to size it by"}},
		{name: "GPT name too long",
			layout: diskimage.Layout{Table: diskimage.GPT, Partitions: []diskimage.Partition{{Name: strings.Repeat("n", 37), Kind: diskimage.KindLinux, Size: 1 << 20}}},
			want:   []string{"name has 37 UTF-16 units, GPT allows 36"}},
		{name: "bad disk ID",
			layout: diskimage.Layout{Table: diskimage.MBR, ID: "xyz", Partitions: []diskimage.Partition{{Kind: diskimage.KindLinux, Size: 1 << 20}}},
			want:   []string{`disk ID "xyz"`}},
		{name: "bad table",
			layout: diskimage.Layout{Table: "apm"},
			want:   []string{`partition table "apm"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "disk.img")
			_, err := diskimage.Write(context.Background(), path, &tc.layout, diskimage.WriteOptions{Bmap: true, Compress: "zstd"})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			if left, _ := os.ReadDir(dir); len(left) > 0 {
				t.Errorf("a failed write left %v", left)
			}
		})
	}
}

// TestCanceled checks that a canceled context stops the write and leaves
// nothing behind.
func TestCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	_, err := diskimage.Write(ctx, filepath.Join(dir, "disk.img"), newImage(diskimage.MBR, 6).layout, diskimage.WriteOptions{Bmap: true})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Errorf("a canceled write left %v", left)
	}
}

// TestIDs checks that identifiers depend on the seed alone: known before
// sizes, equal for equal seeds, different for different ones, and
// overridable.
func TestIDs(t *testing.T) {
	mk := func(table diskimage.Table, seed string, size int64) *diskimage.Layout {
		return &diskimage.Layout{Table: table, Seed: []byte(seed), Partitions: []diskimage.Partition{
			{Kind: diskimage.KindFAT, Size: size}, {Kind: diskimage.KindLinux, Size: size}}}
	}
	for _, table := range []diskimage.Table{diskimage.MBR, diskimage.GPT} {
		a, b, c := mk(table, "a", 1<<20), mk(table, "a", 9<<20), mk(table, "c", 1<<20)
		if a.DiskID() != b.DiskID() || a.PartUUID(1) != b.PartUUID(1) {
			t.Errorf("%s: sizes changed the identifiers", table)
		}
		if a.DiskID() == c.DiskID() || a.PartUUID(0) == c.PartUUID(0) || a.PartUUID(0) == a.PartUUID(1) {
			t.Errorf("%s: identifiers do not follow the seed: %s %s %s", table, a.DiskID(), a.PartUUID(0), c.PartUUID(0))
		}
	}
	m := mk(diskimage.MBR, "x", 1<<20)
	m.ID = "1A2B3C4D"
	if m.DiskID() != "1a2b3c4d" || m.PartUUID(1) != "1a2b3c4d-02" {
		t.Errorf("MBR override: %s %s", m.DiskID(), m.PartUUID(1))
	}
	g := mk(diskimage.GPT, "x", 1<<20)
	g.ID = "01234567-89AB-CDEF-0123-456789ABCDEF"
	g.Partitions[1].GUID = "FEDCBA98-7654-3210-FEDC-BA9876543210"
	if g.DiskID() != "01234567-89ab-cdef-0123-456789abcdef" || g.PartUUID(1) != "fedcba98-7654-3210-fedc-ba9876543210" {
		t.Errorf("GPT override: %s %s", g.DiskID(), g.PartUUID(1))
	}
	img, res := write(t, g, diskimage.WriteOptions{})
	d := sfdisk(t, img).PartitionTable
	if !strings.EqualFold(d.ID, g.ID) || !strings.EqualFold(d.Partitions[1].UUID, g.Partitions[1].GUID) || res.DiskID != g.DiskID() {
		t.Errorf("sfdisk: id %s uuid %s", d.ID, d.Partitions[1].UUID)
	}
}

// TestRaw checks a partition of raw bytes: read back in place, zero runs
// left as holes, and short content an error.
func TestRaw(t *testing.T) {
	data := make([]byte, 3<<20+100)
	rand.NewChaCha8([32]byte{7}).Read(data[:1<<20])
	rand.NewChaCha8([32]byte{8}).Read(data[2<<20:])
	l := &diskimage.Layout{Table: diskimage.MBR, Partitions: []diskimage.Partition{
		{Kind: diskimage.KindLinux, FS: diskimage.Raw(bytes.NewReader(data), int64(len(data)))}}}
	img, res := write(t, l, diskimage.WriteOptions{Bmap: true})
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, len(data))
	if _, err := f.ReadAt(got, res.Partitions[0].Start); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("raw partition does not read back: %v", err)
	}
	if res.Partitions[0].Size != 4<<20 || res.Written > int64(len(data))-1<<20+512 {
		t.Errorf("partition of %d bytes, %d bytes written", res.Partitions[0].Size, res.Written)
	}
	l.Partitions[0].FS = diskimage.Raw(bytes.NewReader(data[:10]), 4096)
	if _, err := diskimage.Write(context.Background(), filepath.Join(t.TempDir(), "x.img"), l, diskimage.WriteOptions{}); err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Errorf("short raw content: %v", err)
	}
}
