package diskimage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/mkfs/ext4"
	"github.com/ocidisk/ocidisk/mkfs/fat"
	"github.com/ocidisk/ocidisk/mkfs/fat/fattest"
	"github.com/ocidisk/ocidisk/testimages/randtree"
)

// epoch is SOURCE_DATE_EPOCH for the tests: in the past, so e2fsck does
// not find superblocks "in the future".
var epoch = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// image is a two-partition board image: a FAT boot partition holding a
// random boot tree, an ext4 root holding a random root tree, and a
// bootloader blob at 8 KiB.
type image struct {
	layout     *diskimage.Layout
	boot, root *fstree.Tree
	blob       []byte
}

func newImage(table diskimage.Table, seed uint64) *image {
	im := &image{
		boot: fattest.Tree(seed, fattest.TreeOptions{Entries: 30}),
		root: randtree.New(seed, randtree.Options{Entries: 60, MaxFileSize: 256 << 10}),
		blob: bytes.Repeat([]byte("SPL!"), 3000),
	}
	rootKind := diskimage.KindLinux
	if table == diskimage.GPT {
		rootKind = diskimage.KindRootArm64
	}
	s := []byte{byte(seed)}
	im.layout = &diskimage.Layout{
		Table: table,
		Seed:  s,
		Partitions: []diskimage.Partition{
			{Name: "boot", Kind: diskimage.KindFAT, Bootable: true, Size: 64 << 20,
				FS: fat.New(im.boot, fat.Options{Label: "BOOT", Seed: s, Time: epoch})},
			{Name: "root", Kind: rootKind,
				FS: ext4.New(im.root, ext4.Options{Label: "root", Seed: s, Time: epoch})},
		},
		Blobs: []diskimage.Blob{{Name: "spl", Offset: 8 << 10, Data: bytes.NewReader(im.blob), Size: int64(len(im.blob))}},
	}
	return im
}

func write(t testing.TB, l *diskimage.Layout, opts diskimage.WriteOptions) (string, *diskimage.Result) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	res, err := diskimage.Write(context.Background(), path, l, opts)
	if err != nil {
		t.Fatal(err)
	}
	return path, res
}

// sfdiskDump is `sfdisk --json` of an image.
type sfdiskDump struct {
	PartitionTable struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		FirstLBA   int64  `json:"firstlba"`
		LastLBA    int64  `json:"lastlba"`
		SectorSize int64  `json:"sectorsize"`
		Partitions []struct {
			Node     string `json:"node"`
			Start    int64  `json:"start"`
			Size     int64  `json:"size"`
			Type     string `json:"type"`
			UUID     string `json:"uuid"`
			Name     string `json:"name"`
			Attrs    string `json:"attrs"`
			Bootable bool   `json:"bootable"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

func sfdisk(t testing.TB, img string) sfdiskDump {
	t.Helper()
	bin := hosttool.Require(t, "sfdisk", "fdisk")
	out, err := exec.Command(bin, "--json", img).Output()
	if err != nil {
		t.Fatalf("sfdisk --json %s: %v", img, err)
	}
	var d sfdiskDump
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatalf("sfdisk --json: %v\n%s", err, out)
	}
	return d
}

// sfdiskVerify runs `sfdisk -V` and fails on anything but a clean report.
func sfdiskVerify(t testing.TB, img string) string {
	t.Helper()
	bin := hosttool.Require(t, "sfdisk", "fdisk")
	out, err := exec.Command(bin, "-V", img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No errors detected.") || strings.Contains(string(out), "arning") {
		t.Fatalf("sfdisk -V %s: %v\n%s", img, err, out)
	}
	return string(out)
}

// e2fsck checks the ext4 partition at off of img.
func e2fsck(t testing.TB, img string, off, size int64) {
	t.Helper()
	hosttool.E2fsckClean(t, hosttool.Partition(t, img, off, size))
}

// checkPartitions checks each partition of a written image with its own
// fsck, the FAT one also read back with mtools, and the blob in place.
func checkPartitions(t testing.TB, img string, im *image, res *diskimage.Result) {
	t.Helper()
	boot, root := res.Partitions[0], res.Partitions[1]
	fattest.Fsck(t, img, boot.Start, boot.Size)
	fattest.Compare(t, img, boot.Start, im.boot, epoch)
	e2fsck(t, img, root.Start, root.Size)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, len(im.blob))
	if _, err := f.ReadAt(got, im.layout.Blobs[0].Offset); err != nil || !bytes.Equal(got, im.blob) {
		t.Errorf("blob at %d does not read back (%v)", im.layout.Blobs[0].Offset, err)
	}
}

func fileSHA(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
