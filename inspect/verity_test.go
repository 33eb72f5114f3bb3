package inspect

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/mkfs/fat"
	"github.com/ocidisk/ocidisk/verity"
)

// memAt is an io.WriterAt over a slice of fixed size.
type memAt []byte

func (m memAt) WriteAt(p []byte, off int64) (int, error) { return copy(m[off:], p), nil }

// TestVerity: an A/B disk whose slot A root carries a dm-verity hash tree
// after its data, and whose empty slot B is named with a root hash of
// zeros, as ocidisk build --verity --ab writes them. Inspect verifies
// slot A against the root hash its command line names, says nothing is
// wrong with the empty slot, and names the block that fails when a byte
// of the data or of the tree is flipped, or why the tree does not match
// the command line.
func TestVerity(t *testing.T) {
	const dataSize = 1 << 20
	data := make([]byte, dataSize)
	rand.NewChaCha8([32]byte{'i', 'n', 's', 'p', 'e', 'c', 't'}).Read(data)
	salt := []byte{0xc0, 0xff, 0xee}
	root := make(memAt, dataSize+verity.Size(dataSize))
	copy(root, data)
	tr, err := verity.Build(bytes.NewReader(data), 0, dataSize, root, dataSize, verity.Options{Salt: salt})
	if err != nil {
		t.Fatal(err)
	}
	treeArgs := fmt.Sprintf("ocidisk.verity.hash-offset=%d ocidisk.verity.salt=c0ffee ocidisk.verity.data-blocks=%d", dataSize, dataSize/verity.BlockSize)
	good := fmt.Sprintf("ocidisk.verity=%x %s", tr.RootHash, treeArgs)
	zeros := strings.Repeat("0", 64)
	hashStart := int64(tr.HashStart()) * verity.BlockSize // the top level's block, from the partition's start

	for _, tc := range []struct {
		name  string
		args  string // slot A's verity arguments
		flip  int64  // a byte of the root partition to flip, -1 for none
		want  string // the error, "" for a verified root
		wantB string
	}{
		{name: "clean", args: good, flip: -1},
		{name: "data", args: good, flip: 100*verity.BlockSize + 17, want: "verity: data block 100 is corrupted"},
		{name: "tree", args: good, flip: hashStart + 40, want: fmt.Sprintf("verity: metadata block %d is corrupted", tr.HashStart())},
		{name: "other root hash", args: "ocidisk.verity=" + zeros[:62] + "01 " + treeArgs, flip: -1, want: fmt.Sprintf("verity: metadata block %d is corrupted", tr.HashStart())},
		{name: "other salt", args: strings.Replace(good, "salt=c0ffee", "salt=c0ffef", 1), flip: -1, want: "has salt c0ffee, the command line c0ffef"},
		{name: "no superblock there", args: strings.Replace(good, fmt.Sprintf("hash-offset=%d", dataSize), "hash-offset=4096", 1), flip: -1, want: "no verity superblock"},
		{name: "not a hash", args: "ocidisk.verity=xyz", flip: -1, want: "ocidisk.verity=xyz: want the root hash, 64 hex digits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, start := verityDisk(t, root, tc.args, "ocidisk.verity="+zeros+" "+treeArgs)
			if tc.flip >= 0 {
				b := []byte{root[tc.flip] ^ 0x40}
				patch(t, img, start+tc.flip, b)
			}
			im, err := Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			if err := im.Err(); err != nil {
				t.Fatalf("before Report: %v", err)
			}
			r := im.Report(nil)
			a, b := r.Partitions[1], r.Partitions[2]
			if a.Role != "root" || a.Slot != "a" || b.Role != "root" || b.Slot != "b" {
				t.Fatalf("partitions %+v, %+v: want the roots of slots a and b", a, b)
			}
			if b.Verity == nil || b.Verity.RootHash != zeros || b.Verity.Verified || b.Verity.Error != "" {
				t.Errorf("the empty slot B: verity %+v, want its root hash of zeros, neither verified nor failed", b.Verity)
			}
			v := a.Verity
			if v == nil {
				t.Fatal("slot A has no verity report")
			}
			err = im.Err()
			if tc.want == "" {
				if !v.Verified || v.Error != "" || v.RootHash != fmt.Sprintf("%x", tr.RootHash) || err != nil {
					t.Errorf("verity %+v, Err %v: want verified with root hash %x", v, err, tr.RootHash)
				}
				return
			}
			if v.Verified || !strings.Contains(v.Error, tc.want) {
				t.Errorf("verity %+v, want an error saying %q", v, tc.want)
			}
			if err == nil || !strings.Contains(err.Error(), "partition 2: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Err = %v, want one naming partition 2 and saying %q", err, tc.want)
			}
		})
	}
}

// verityDisk writes an MBR disk: a FAT boot partition whose extlinux.conf
// boots slot A with argsA and names slot B with argsB, slot A's root
// holding root, and slot B empty. It returns the image and slot A's start.
func verityDisk(t *testing.T, root []byte, argsA, argsB string) (string, int64) {
	t.Helper()
	when := time.Date(2024, 1, 2, 3, 4, 6, 0, time.UTC)
	l := &diskimage.Layout{Table: diskimage.MBR, Seed: []byte("inspect verity"), Partitions: []diskimage.Partition{
		{Name: "boot", Kind: diskimage.KindFAT, Bootable: true, Size: 40 << 20},
		{Name: "root-a", Kind: diskimage.KindLinux, FS: diskimage.Raw(bytes.NewReader(root), int64(len(root)))},
		{Name: "root-b", Kind: diskimage.KindLinux, SameSizeAs: "root-a"},
	}}
	conf := "default slot-a\n"
	for i, s := range []struct{ slot, args string }{{"a", argsA}, {"b", argsB}} {
		conf += fmt.Sprintf("label slot-%s\n  kernel /Image\n  append root=PARTUUID=%s ro ocidisk.slot=%s %s\n", s.slot, l.PartUUID(i+1), s.slot, s.args)
	}
	boot := fstree.New()
	n := fstree.NewFile(0o644, int64(len(conf)), fstree.Bytes(conf))
	n.Mtime = when
	if err := boot.Put("extlinux/extlinux.conf", n, &fstree.Node{Type: fstree.TypeDir, Mode: 0o755, Mtime: when}); err != nil {
		t.Fatal(err)
	}
	l.Partitions[0].FS = fat.New(boot, fat.Options{Label: "BOOT", Time: when})
	path := filepath.Join(t.TempDir(), "disk.img")
	res, err := diskimage.Write(context.Background(), path, l, diskimage.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return path, res.Partitions[1].Start
}
