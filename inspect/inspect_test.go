package inspect

import (
	"context"
	"encoding/json"
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
	"github.com/ocidisk/ocidisk/mkfs/ext4"
	"github.com/ocidisk/ocidisk/mkfs/fat"
	"github.com/ocidisk/ocidisk/mkfs/squashfs"
)

// testDisk writes a disk with a FAT boot partition holding an extlinux.conf
// and an ext4 root, with ocidisk's own diskimage and writers.
func testDisk(t *testing.T, table diskimage.Table) string {
	t.Helper()
	when := time.Date(2024, 1, 2, 3, 4, 6, 0, time.UTC)
	boot := fstree.New()
	conf := fstree.Bytes("label x\n  kernel /Image\n  append console=ttyAMA0 root=PARTUUID=@ rootwait\n")
	file := func(tr *fstree.Tree, p string, c fstree.Bytes) {
		n := fstree.NewFile(0o644, int64(len(c)), c)
		n.Mtime = when
		if _, err := tr.MkdirAll(filepath.Dir(p), &fstree.Node{Type: fstree.TypeDir, Mode: 0o755, Mtime: when}); err != nil {
			t.Fatal(err)
		}
		if err := tr.Put(p, n, nil); err != nil {
			t.Fatal(err)
		}
	}
	file(boot, "extlinux/extlinux.conf", conf)
	file(boot, "Image", make(fstree.Bytes, 5000))
	file(boot, "initrd.img", fstree.Bytes("initrd"))
	file(boot, "dtbs/board.dtb", fstree.Bytes("dtb"))
	root := fstree.New()
	file(root, "etc/hostname", fstree.Bytes("board\n"))
	l := &diskimage.Layout{Table: table, Seed: []byte("inspect"), Partitions: []diskimage.Partition{
		{Name: "boot", Kind: diskimage.KindFAT, Bootable: true, Size: 40 << 20, FS: fat.New(boot, fat.Options{Label: "BOOT", Time: when})},
		{Name: "root", Kind: diskimage.KindRootArm64, FS: ext4.New(root, ext4.Options{Label: "root", Time: when})},
	}}
	path := filepath.Join(t.TempDir(), "disk.img")
	if _, err := diskimage.Write(context.Background(), path, l, diskimage.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return path
}

// sfdiskDump is what `sfdisk -J` says of a table.
type sfdiskDump struct {
	PartitionTable struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		Partitions []struct {
			Start, Size int64
			Type        string
			UUID        string
			Name        string
			Attrs       string
			Bootable    bool
		} `json:"partitions"`
	} `json:"partitiontable"`
}

// The table, as this package reads it, is the table as sfdisk reads it.
func TestTableAgainstSfdisk(t *testing.T) {
	sfdisk := hosttool.Require(t, "sfdisk", "fdisk")
	for _, table := range []diskimage.Table{diskimage.MBR, diskimage.GPT} {
		img := testDisk(t, table)
		out, err := exec.Command(sfdisk, "-J", img).Output()
		if err != nil {
			t.Fatalf("sfdisk -J: %v", err)
		}
		var d sfdiskDump
		if err := json.Unmarshal(out, &d); err != nil {
			t.Fatal(err)
		}
		im, err := Open(img)
		if err != nil {
			t.Fatal(err)
		}
		r := im.Report(nil)
		im.Close()
		st := d.PartitionTable
		wantLabel := map[string]string{"dos": "mbr", "gpt": "gpt"}[st.Label]
		if r.Table != wantLabel || !strings.EqualFold(strings.TrimPrefix(st.ID, "0x"), r.DiskID) || len(r.Partitions) != len(st.Partitions) {
			t.Fatalf("%s: report %s %s %d partitions; sfdisk %s %s %d", table, r.Table, r.DiskID, len(r.Partitions), st.Label, st.ID, len(st.Partitions))
		}
		for i, p := range r.Partitions {
			s := st.Partitions[i]
			bootable := s.Bootable || strings.Contains(s.Attrs, "LegacyBIOSBootable")
			if p.Start != s.Start*512 || p.Size != s.Size*512 || strings.TrimLeft(strings.ToLower(p.Type), "0") != strings.ToLower(s.Type) ||
				p.Bootable != bootable || (table == diskimage.GPT && (!strings.EqualFold(p.PartUUID, s.UUID) || p.Name != s.Name)) {
				t.Errorf("%s partition %d: %+v; sfdisk %+v", table, i+1, p, s)
			}
		}
		if b := r.Partitions[0]; b.Role != "boot" || b.Filesystem.Type != "FAT32" && b.Filesystem.Type != "FAT16" || b.Filesystem.Label != "BOOT" {
			t.Errorf("%s boot partition: %+v %+v", table, b, b.Filesystem)
		}
		if rt := r.Partitions[1]; rt.Role != "root" || rt.Filesystem.Type != "ext4" || rt.Filesystem.Label != "root" || rt.Filesystem.Used <= 0 {
			t.Errorf("%s root partition: %+v %+v", table, rt, rt.Filesystem)
		}
		if r.Boot == nil || r.Boot.Cmdline != "console=ttyAMA0 root=PARTUUID=@ rootwait" || r.Boot.CmdlineFrom != "extlinux/extlinux.conf" {
			t.Errorf("%s boot: %+v", table, r.Boot)
		}
		kinds := map[string]string{}
		for _, f := range r.Boot.Files {
			kinds[f.Path] = f.Kind
		}
		want := map[string]string{"Image": "kernel", "initrd.img": "initramfs", "extlinux/extlinux.conf": "config", "dtbs/board.dtb": "dtb"}
		for p, k := range want {
			if kinds[p] != k {
				t.Errorf("%s: %s is %q, want %q", table, p, kinds[p], k)
			}
		}
	}
}

func TestList(t *testing.T) {
	img := testDisk(t, diskimage.GPT)
	im, err := Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	for _, tc := range []struct {
		spec, part, want string
	}{
		{"/etc", "2", "hostname"},
		{"root:/etc", "2", "hostname"},
		{"2:etc/", "2", "hostname"},
		{"boot:/", "1", "extlinux"},
		{"BOOT:/extlinux", "1", "extlinux.conf"},
		{"boot:/extlinux/extlinux.conf", "1", "extlinux.conf"},
		{"1:", "1", "Image"},
	} {
		l, err := im.List(tc.spec)
		if err != nil {
			t.Errorf("%s: %v", tc.spec, err)
			continue
		}
		found := false
		for _, e := range l.Entries {
			found = found || e.Name == tc.want
		}
		if !found || tc.part != strconv.Itoa(l.Partition) {
			t.Errorf("%s: partition %d, entries %+v; want %s in partition %s", tc.spec, l.Partition, l.Entries, tc.want, tc.part)
		}
	}
	for _, tc := range []struct{ spec, want string }{
		{"/nope", "/nope: file does not exist"},
		{"9:/", `no partition "9" (partitions: 1 (boot), 2 (root))`},
		{"etc", "want /PATH"},
		{"/etc/hostname/x", "not a directory"},
	} {
		if _, err := im.List(tc.spec); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), img) && tc.want != "want /PATH" {
			t.Errorf("%s: %v, want an error naming the image and %q", tc.spec, err, tc.want)
		}
	}
}

// Damaged images fail with one line naming the image and the damage.
func TestCorruptImages(t *testing.T) {
	for _, tc := range []struct {
		name   string
		table  diskimage.Table
		damage func(t *testing.T, img string)
		want   string // in the error of Open, or of Err when it opens
		warn   string // a warning the report must carry instead
	}{
		{"truncated", diskimage.MBR, func(t *testing.T, img string) { truncate(t, img, 30<<20) }, "truncated image?", ""},
		{"tiny", diskimage.MBR, func(t *testing.T, img string) { truncate(t, img, 100) }, "too small to hold a partition table", ""},
		{"no table", diskimage.MBR, func(t *testing.T, img string) { patch(t, img, 510, []byte{0, 0}) }, "neither a partition table nor a filesystem", ""},
		{"overlap", diskimage.MBR, func(t *testing.T, img string) {
			patch(t, img, 446+16+8, []byte{0x00, 0x10, 0, 0}) // partition 2 starts at sector 4096, inside partition 1
		}, "partition table: partitions 2 and 1 overlap", ""},
		{"GPT primary", diskimage.GPT, func(t *testing.T, img string) { patch(t, img, 512+40, []byte{1}) }, "", "primary GPT damaged"},
		{"GPT both", diskimage.GPT, func(t *testing.T, img string) {
			patch(t, img, 512+24, []byte{9})
			st, _ := os.Stat(img)
			patch(t, img, st.Size()-512+24, []byte{9})
		}, "GPT: primary: header CRC mismatch", ""},
		{"bad ext4 superblock", diskimage.MBR, func(t *testing.T, img string) {
			im, err := Open(img)
			if err != nil {
				t.Fatal(err)
			}
			start := im.Parts[1].Start
			im.Close()
			patch(t, img, start+1024+120, []byte("XX")) // the label: the checksum no longer matches
		}, "partition 2: ext2/3/4: bad superblock: checksum", ""},
		{"bad FAT boot sector", diskimage.MBR, func(t *testing.T, img string) {
			im, err := Open(img)
			if err != nil {
				t.Fatal(err)
			}
			start := im.Parts[0].Start
			im.Close()
			patch(t, img, start+13, []byte{3}) // 3 sectors per cluster
		}, "partition 1: FAT: bad boot sector: 3 sectors per cluster", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := testDisk(t, tc.table)
			tc.damage(t, img)
			im, err := Open(img)
			if err == nil {
				err = im.Err()
				if tc.warn != "" {
					r := im.Report(nil)
					if len(r.Warnings) == 0 || !strings.Contains(r.Warnings[0], tc.warn) || len(r.Partitions) != 2 {
						t.Errorf("report %+v: want a warning %q and both partitions", r, tc.warn)
					}
				}
				im.Close()
			}
			if tc.want == "" {
				if err != nil {
					t.Errorf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), img+": ") || strings.Contains(err.Error(), "\n") {
				t.Errorf("got %v; want one line starting with the image and mentioning %q", err, tc.want)
			}
		})
	}
}

// A squashfs root, which has no reader here, is recognised with the space
// it takes.
func TestSquashfsRoot(t *testing.T) {
	root := fstree.New()
	if err := root.Put("file", fstree.NewFile(0o644, 5, fstree.Bytes("hello")), nil); err != nil {
		t.Fatal(err)
	}
	l := &diskimage.Layout{Table: diskimage.MBR, Seed: []byte("sq"), Partitions: []diskimage.Partition{
		{Name: "root", Kind: diskimage.KindLinux, Size: 4 << 20, FS: squashfs.New(root, squashfs.Options{})},
	}}
	img := filepath.Join(t.TempDir(), "sq.img")
	if _, err := diskimage.Write(context.Background(), img, l, diskimage.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	im, err := Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	r := im.Report(nil)
	if p := r.Partitions[0]; p.Role != "root" || p.Filesystem.Type != "squashfs" || p.Filesystem.Used <= 0 || p.Filesystem.Used > 4<<20 {
		t.Errorf("squashfs partition: %+v %+v", p, p.Filesystem)
	}
	if _, err := im.List("/"); err == nil || !strings.Contains(err.Error(), "no filesystem ocidisk can read (squashfs)") {
		t.Errorf("listing squashfs: %v", err)
	}
}

// A bare filesystem image, as ocidisk flatten --format ext4 writes it, and
// a compressed image are read too.
func TestBareAndCompressed(t *testing.T) {
	root := fstree.New()
	n := fstree.NewFile(0o644, 3, fstree.Bytes("abc"))
	if err := root.Put("file", n, nil); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "root.ext4")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	w := ext4.New(root, ext4.Options{Label: "bare"})
	size, _ := w.MinSize()
	if err := w.WriteAt(f, 0, size); err != nil {
		t.Fatal(err)
	}
	f.Truncate(size)
	f.Close()
	im, err := Open(img)
	if err != nil {
		t.Fatal(err)
	}
	r := im.Report(nil)
	if r.Table != "none" || len(r.Partitions) != 1 || r.Partitions[0].Filesystem.Label != "bare" {
		t.Errorf("bare ext4: %+v", r)
	}
	if l, err := im.List("/"); err != nil || len(l.Entries) != 2 { // file and lost+found
		t.Errorf("bare ext4 listing: %+v, %v", l, err)
	}
	im.Close()

	zstd := hosttool.Require(t, "zstd", "zstd")
	disk := testDisk(t, diskimage.MBR)
	if out, err := exec.Command(zstd, "-q", disk).CombinedOutput(); err != nil {
		t.Fatalf("zstd: %v %s", err, out)
	}
	im, err = Open(disk + ".zst")
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if r := im.Report(nil); len(r.Partitions) != 2 || r.Boot == nil || r.Boot.Cmdline == "" {
		t.Errorf("compressed image: %+v", r)
	}
}

func truncate(t *testing.T, img string, n int64) {
	t.Helper()
	if err := os.Truncate(img, n); err != nil {
		t.Fatal(err)
	}
}

func patch(t *testing.T, img string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
