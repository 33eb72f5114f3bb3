package squashfs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/bootfs"
	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/kernel"
	"github.com/ocidisk/ocidisk/mkfs/fat"
	"github.com/ocidisk/ocidisk/qemu"
	"github.com/ocidisk/ocidisk/rootfs"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// TestBootCompressions boots the busybox test root from a squashfs with
// each compression under QEMU: Linux is the judge that unsquashfs is not,
// with its own decompressors and their limits (zstd windows and xz
// dictionaries preallocated to the block size, lz4's options block), on
// the smallest and largest block sizes.
func TestBootCompressions(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU")
	}
	hosttool.Require(t, "qemu-system-aarch64", "qemu-system-arm")
	b, err := boards.Load("qemu-virt-arm64")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.QEMU.Firmware.BIOS); err != nil {
		hosttool.Missing(t, b.QEMU.Firmware.BIOS+" not found: apt-get install "+b.QEMU.Firmware.Package)
	}
	// Debian builds squashfs as a module (its decompressors are built
	// in): the initramfs must load it.
	b.Initramfs.Modules = append(b.Initramfs.Modules, "squashfs")
	kim, err := rootfs.Load(context.Background(), "deb:"+debian.KernelDeb(t), source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer kim.Close()
	k, err := kernel.Find(kim.Tree)
	if err != nil {
		t.Fatal(err)
	}
	root, err := rootfs.Load(context.Background(), "oci:"+debian.BusyboxRoot(t), source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, opts := range []Options{
		{Compression: "zstd"},
		{Compression: "zstd", Level: 3, BlockSize: 4096},
		{Compression: "xz", BlockSize: 1 << 20},
		{Compression: "xz", BlockSize: 4096},
		{Compression: "gzip", BlockSize: 65536},
		{Compression: "lz4"},
		{Compression: "lz4", Level: 9, BlockSize: 1 << 20},
	} {
		t.Run(fmt.Sprintf("%s-%d-%d", opts.Compression, opts.Level, opts.BlockSize), func(t *testing.T) {
			when := time.Unix(1_700_000_000, 0)
			l := &diskimage.Layout{Table: diskimage.MBR, Seed: []byte("squashfs boot test"),
				FirstOffset: int64(b.Disk.FirstPartitionOffset), Align: int64(b.Disk.Alignment)}
			laid, err := b.Layout(boards.LayoutOptions{RootFS: boards.Squashfs})
			if err != nil {
				t.Fatal(err)
			}
			// The disk below has the board's partitions: boot, root.
			partUUID := func(name string) string { return l.PartUUID(map[string]int{"boot": 0, "root": 1}[name]) }
			boot, err := bootfs.Assemble(laid, k, bootfs.Options{PartUUID: partUUID, Time: when,
				CmdlineAppend: []string{"rootfstype=squashfs", "ro", "ocidisk.onfail=poweroff"}})
			if err != nil {
				t.Fatal(err)
			}
			opts.Time = when
			l.Partitions = []diskimage.Partition{
				{Name: "boot", Kind: diskimage.KindFAT, Bootable: true, Size: 64 << 20, FS: fat.New(boot.Boot, fat.Options{Time: when})},
				{Name: "root", Kind: diskimage.KindRootArm64, FS: New(root.Tree, opts)},
			}
			img := filepath.Join(t.TempDir(), "disk.img")
			if _, err := diskimage.Write(context.Background(), img, l, diskimage.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			_, err = qemu.Test(context.Background(), qemu.Config{Profile: b.QEMU, Image: img}, qemu.TestOptions{
				Expect: []*regexp.Regexp{
					regexp.MustCompile(`ocidisk-test: root /dev/vda2 / squashfs ro`),
					regexp.MustCompile(regexp.QuoteMeta(debian.Marker)),
				},
				Timeout: 90 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
