package uki

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/bootfs/initramfs"
	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/mkfs/ext4"
	"github.com/ocidisk/ocidisk/mkfs/fat"
	"github.com/ocidisk/ocidisk/qemu"
	"github.com/ocidisk/ocidisk/rootfs"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// edk2 is Debian's UEFI firmware for QEMU's arm64 virt machine.
const edk2 = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"

// efiImage builds the disk an efi-arm64 board would have: a GPT with an
// EFI System partition holding only \EFI\BOOT\BOOTAA64.EFI, the UKI of
// Debian's kernel, ocidisk's initramfs and a command line naming the root
// by PARTUUID, and the busybox test root, typed as the arm64 root of the
// Discoverable Partitions Specification.
func efiImage(t testing.TB) (img, rootPartUUID string) {
	t.Helper()
	k := testKernel(t)
	rootImg, err := rootfs.Load(t.Context(), "oci:"+debian.BusyboxRoot(t), source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rootImg.Close() })
	when := time.Unix(1_700_000_000, 0)
	l := &diskimage.Layout{Table: diskimage.GPT, Seed: []byte("ocidisk uki boot test"), Partitions: []diskimage.Partition{
		{Name: "esp", Kind: diskimage.KindESP},
		{Name: "root", Kind: diskimage.KindRootArm64},
	}}

	// The initramfs and command line as bootfs makes them for the virt
	// machine (its modules: virtio and ext4; bootfs itself builds UKIs
	// with this package, so it cannot build this test's).
	ms, err := k.Modules()
	if err != nil {
		t.Fatal(err)
	}
	mods, err := ms.Closure([]string{"virtio_pci", "virtio_blk", "ext4"})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := initramfs.Build(initramfs.Spec{Arch: "arm64", KernelVersion: k.Version, Modules: mods, Compression: "gzip", Time: when})
	if err != nil {
		t.Fatal(err)
	}
	initrd := fstree.NewFile(0o644, int64(len(rd)), fstree.Bytes(rd))
	cmdline := "console=ttyAMA0 root=PARTUUID=" + l.PartUUID(1) + " rootfstype=ext4 rootwait ocidisk.onfail=poweroff"
	linux, err := k.Image(true)
	if err != nil {
		t.Fatal(err)
	}
	im, err := Build(Parts{Stub: testStub(t), Linux: linux, Initrd: initrd, Cmdline: cmdline, Uname: k.Version,
		OSRelease: "ID=ocidisk-test\nPRETTY_NAME=\"ocidisk UKI boot test\"\n"})
	if err != nil {
		t.Fatal(err)
	}
	esp := fstree.New()
	efi := im.Node()
	efi.Mtime = when
	dir := fstree.NewDir(0o755)
	dir.Mtime = when
	if err := esp.Put("EFI/BOOT/BOOTAA64.EFI", efi, dir); err != nil {
		t.Fatal(err)
	}
	l.Partitions[0].FS = fat.New(esp, fat.Options{Label: "ESP", Time: when})
	l.Partitions[1].FS = ext4.New(rootImg.Tree, ext4.Options{Time: when, MinFree: 8 << 20})
	img = filepath.Join(t.TempDir(), "disk.img")
	if _, err := diskimage.Write(t.Context(), img, l, diskimage.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return img, l.PartUUID(1)
}

// TestBootEDK2 boots the UKI from the ESP under EDK2 (UEFI) on QEMU's
// virt: the firmware starts \EFI\BOOT\BOOTAA64.EFI, the stub starts the
// kernel with the .cmdline and .initrd sections, the init mounts the root
// by PARTUUID and the test root prints its marker.
func TestBootEDK2(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU")
	}
	img, rootPartUUID := efiImage(t)
	cfg := efiConfig(t, img)
	cfg.Profile.Args = append(cfg.Profile.Args, noWait...)
	res, err := qemu.Test(context.Background(), cfg, qemu.TestOptions{
		Expect: []*regexp.Regexp{
			regexp.MustCompile(`EFI stub: Loaded initrd from LINUX_EFI_INITRD_MEDIA_GUID device path`),
			regexp.MustCompile(`Booting Linux on physical CPU`),
			regexp.MustCompile(`Kernel command line: .*root=PARTUUID=` + regexp.QuoteMeta(rootPartUUID)),
			regexp.MustCompile(`ocidisk-test: root /dev/vda2 / ext4 rw`),
			regexp.MustCompile(regexp.QuoteMeta(debian.Marker)),
		},
		Timeout:   180 * time.Second,
		TailLines: 60,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("marker after %s", res.Duration.Round(time.Millisecond))
}

// noWait has EDK2 boot without waiting for a key: its front page
// timeout comes from QEMU's boot menu wait.
var noWait = []string{"-boot", "menu=on,splash-time=0"}

// efiConfig boots img on QEMU's virt machine, as the qemu-virt-arm64 board
// does, with EDK2 as its firmware.
func efiConfig(t testing.TB, img string) qemu.Config {
	t.Helper()
	bin := hosttool.Require(t, "qemu-system-aarch64", "qemu-system-arm")
	if _, err := os.Stat(edk2); err != nil {
		hosttool.Missing(t, edk2+" not found: apt-get install qemu-efi-aarch64")
	}
	profile := &boards.QEMU{Binary: bin, Machine: "virt", CPU: "cortex-a72", SMP: 1, Memory: 1024, Drive: "virtio",
		Args: []string{"-bios", edk2}}
	return qemu.Config{Profile: profile, Image: img}
}

// BenchmarkBootEDK2 measures the boot test, QEMU start to the marker:
// EDK2, the stub, the kernel, the init and the test root. median-s is the
// median over the iterations; qemu's BenchmarkBootTest is the same root
// booted by U-Boot through extlinux.conf. EDK2 waits for a key before it
// boots (its front page timeout) unless QEMU's boot menu wait says 0: the
// second case measures what `-boot menu=on,splash-time=0` saves.
//
//	go test -run '^$' -bench BootEDK2 -benchtime 5x ./bootfs/uki/
func BenchmarkBootEDK2(b *testing.B) {
	img, _ := efiImage(b)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"firmware=edk2", nil},
		{"firmware=edk2-no-wait", noWait},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := efiConfig(b, img)
			cfg.Profile.Args = append(cfg.Profile.Args, tc.args...)
			var secs []float64
			for b.Loop() {
				res, err := qemu.Test(context.Background(), cfg, qemu.TestOptions{
					Expect:  []*regexp.Regexp{regexp.MustCompile(regexp.QuoteMeta(debian.Marker))},
					Timeout: 180 * time.Second,
				})
				if err != nil {
					b.Fatal(err)
				}
				secs = append(secs, res.Duration.Seconds())
			}
			slices.Sort(secs)
			b.ReportMetric(secs[len(secs)/2], "median-s")
		})
	}
}
