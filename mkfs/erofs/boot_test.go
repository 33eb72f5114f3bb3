package erofs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/bootfs"
	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/kernel"
	"github.com/ocidisk/ocidisk/mkfs/fat"
	"github.com/ocidisk/ocidisk/qemu"
	"github.com/ocidisk/ocidisk/rootfs"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages/debian"
	"github.com/ocidisk/ocidisk/testimages/randtree"
)

// checkScript is the init the boot test runs first: from inside the guest
// it reads back what the tree holds (a big file's content, a hardlink's
// inode and link count, a directory of many blocks, owners, mode bits,
// nanosecond times, device numbers) and prints it, then hands over to the
// test root's init, which prints the marker.
const checkScript = `#!/bin/busybox sh
bb=/bin/busybox
echo "erofs-check: big $($bb sha256sum /data/big | $bb cut -d' ' -f1)"
echo "erofs-check: links $($bb stat -c '%h %i' /data/a) $($bb stat -c '%h %i' /data/b)"
echo "erofs-check: many $($bb ls /many | $bb wc -l) $($bb cat /many/0450)"
echo "erofs-check: owned $($bb stat -c '%u:%g %a %y' /data/owned)"
echo "erofs-check: dev $($bb stat -c '%t:%T' /data/dev)"
exec /sbin/init
`

// TestBoot boots the busybox test root from an erofs under QEMU, once with
// a build time most inodes share (compact inodes) and once with one none
// does (extended inodes): Linux is the judge that fsck.erofs is not, and
// the check script shows what it read.
func TestBoot(t *testing.T) {
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
	// Debian builds erofs as a module: the initramfs must load it.
	b.Initramfs.Modules = append(b.Initramfs.Modules, "erofs")
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
	when := time.Unix(1_700_000_000, 0)
	bigSum := addCheckFiles(t, root.Tree, when)

	for _, build := range []time.Time{when, when.Add(-time.Hour)} {
		t.Run(fmt.Sprint(build.Unix()), func(t *testing.T) {
			l := &diskimage.Layout{Table: diskimage.MBR, Seed: []byte("erofs boot test"),
				FirstOffset: int64(b.Disk.FirstPartitionOffset), Align: int64(b.Disk.Alignment)}
			laid, err := b.Layout(boards.LayoutOptions{RootFS: boards.Erofs})
			if err != nil {
				t.Fatal(err)
			}
			// The disk below has the board's partitions: boot, root.
			partUUID := func(name string) string { return l.PartUUID(map[string]int{"boot": 0, "root": 1}[name]) }
			boot, err := bootfs.Assemble(laid, k, bootfs.Options{PartUUID: partUUID, Time: when,
				CmdlineAppend: []string{"rootfstype=erofs", "ro", "init=/check", "ocidisk.onfail=poweroff"}})
			if err != nil {
				t.Fatal(err)
			}
			l.Partitions = []diskimage.Partition{
				{Name: "boot", Kind: diskimage.KindFAT, Bootable: true, Size: 64 << 20, FS: fat.New(boot.Boot, fat.Options{Time: when})},
				{Name: "root", Kind: diskimage.KindRootArm64, FS: New(root.Tree, Options{Time: build, Label: "root"})},
			}
			img := filepath.Join(t.TempDir(), "disk.img")
			if _, err := diskimage.Write(context.Background(), img, l, diskimage.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			res, err := qemu.Test(context.Background(), qemu.Config{Profile: b.QEMU, Image: img}, qemu.TestOptions{
				Expect: []*regexp.Regexp{
					regexp.MustCompile(`erofs-check: big ` + bigSum),
					regexp.MustCompile(`erofs-check: links 2 (\d+) 2 (\d+)`),
					regexp.MustCompile(`erofs-check: many 900 0450-content`),
					regexp.MustCompile(`erofs-check: owned 100000:4000000000 4755 2001-02-03 04:05:06\.000000789`),
					regexp.MustCompile(`erofs-check: dev 12c:11170`),
					regexp.MustCompile(`ocidisk-test: root /dev/vda2 / erofs ro`),
					regexp.MustCompile(regexp.QuoteMeta(debian.Marker)),
				},
				Timeout: 120 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			// One inode under both names.
			m := regexp.MustCompile(`erofs-check: links 2 (\d+) 2 (\d+)`).FindStringSubmatch(res.Console)
			if m == nil || m[1] != m[2] {
				t.Errorf("/data/a and /data/b are not one inode: %q", m)
			}
		})
	}
}

// addCheckFiles puts the check script and what it reads into tr, and
// returns the big file's SHA-256.
func addCheckFiles(t *testing.T, tr *fstree.Tree, when time.Time) string {
	t.Helper()
	put := func(p string, n *fstree.Node) {
		t.Helper()
		if n.Mtime.IsZero() {
			n.Mtime = when
		}
		if err := tr.Put(p, n, fstree.NewDir(0o755)); err != nil {
			t.Fatal(err)
		}
	}
	put("check", fstree.NewFile(0o755, int64(len(checkScript)), fstree.Bytes(checkScript)))
	const bigSize = 5<<20 + 1234
	big := fstree.NewFile(0o644, bigSize, randtree.Content{Seed: 17, Size: bigSize, ZeroOdds: 100})
	put("data/big", big)
	hl := fstree.NewFile(0o644, 3, fstree.Bytes("hl\n"))
	put("data/a", hl)
	put("data/b", hl)
	owned := fstree.NewFile(0o4755, 1, fstree.Bytes("o"))
	owned.UID, owned.GID = 100000, 4000000000
	owned.Mtime = time.Date(2001, 2, 3, 4, 5, 6, 789, time.UTC)
	put("data/owned", owned)
	put("data/dev", fstree.NewDevice(fstree.TypeCharDev, 0o600, 300, 70000))
	for i := range 900 {
		name := fmt.Sprintf("%04d", i)
		body := name + "-content"
		put("many/"+name+strings.Repeat("-", i%3), fstree.NewFile(0o644, int64(len(body)), fstree.Bytes(body)))
	}
	// The names above with i%3 == 0 are plain; /many/0450 is one of them.
	sum, err := fstree.HashContent(big)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}
