package inspect

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/bootfs/uki"
	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/kernel/kerneltest"
	"github.com/ocidisk/ocidisk/mkfs/ext4"
	"github.com/ocidisk/ocidisk/mkfs/fat"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// TestUKI: on an EFI System partition, the report shows the UKI as such,
// the stub alone as a bootloader, and the command line from the UKI's
// .cmdline section; the pack's UKI path recognises the board.
func TestUKI(t *testing.T) {
	stub, err := debian.DebFile(t.Context(), debian.Package(t, "systemd-boot-efi:arm64"), "/usr/lib/systemd/boot/efi/linuxaa64.efi.stub")
	if err != nil {
		t.Fatal(err)
	}
	const cmdline = "console=ttyAMA0 root=PARTUUID=0b37bdda-9866-40ba-adc9-495b46be1217 rootwait"
	linux := kerneltest.EFIImage(64<<10, 0xaa64, 128<<10)
	im, err := uki.Build(uki.Parts{Stub: stub, Linux: fstree.NewFile(0o644, int64(len(linux)), fstree.Bytes(linux)),
		Cmdline: cmdline, Uname: "6.1.0-1-arm64"})
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2024, 1, 2, 3, 4, 6, 0, time.UTC)
	esp, root := fstree.New(), fstree.New()
	dir := &fstree.Node{Type: fstree.TypeDir, Mode: 0o755, Mtime: when}
	put := func(p string, n *fstree.Node) {
		n.Mtime = when
		if _, err := esp.MkdirAll(filepath.Dir(p), dir); err != nil {
			t.Fatal(err)
		}
		if err := esp.Put(p, n, nil); err != nil {
			t.Fatal(err)
		}
	}
	put("EFI/BOOT/BOOTAA64.EFI", im.Node())
	put("EFI/systemd/linuxaa64.efi", fstree.NewFile(0o644, int64(len(stub)), fstree.Bytes(stub)))
	l := &diskimage.Layout{Table: diskimage.GPT, Seed: []byte("inspect uki"), Partitions: []diskimage.Partition{
		{Name: "esp", Kind: diskimage.KindESP, Size: 40 << 20, FS: fat.New(esp, fat.Options{Label: "ESP", Time: when, Type: 32})},
		{Name: "root", Kind: diskimage.KindRootArm64, FS: ext4.New(root, ext4.Options{Label: "root", Time: when})},
	}}
	path := filepath.Join(t.TempDir(), "disk.img")
	if _, err := diskimage.Write(context.Background(), path, l, diskimage.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	img, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	catalog, err := boards.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	r := img.Report(catalog)
	if p := r.Partitions[0]; p.TypeName != "EFI System" || p.Role != "boot" || p.Filesystem.Type != "FAT32" {
		t.Errorf("ESP: %+v %+v", p, p.Filesystem)
	}
	if r.Board != "efi-arm64" || r.Boot == nil {
		t.Fatalf("board %q, boot %+v", r.Board, r.Boot)
	}
	if r.Boot.Cmdline != cmdline || r.Boot.CmdlineFrom != "EFI/BOOT/BOOTAA64.EFI" {
		t.Errorf("command line %q from %q, want %q from the UKI", r.Boot.Cmdline, r.Boot.CmdlineFrom, cmdline)
	}
	kinds := map[string]string{}
	for _, f := range r.Boot.Files {
		kinds[f.Path] = f.Kind
	}
	if kinds["EFI/BOOT/BOOTAA64.EFI"] != "uki" || kinds["EFI/systemd/linuxaa64.efi"] != "bootloader" {
		t.Errorf("boot files %v", kinds)
	}
}
