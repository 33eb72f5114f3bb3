package qemu

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/bootfs"
	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/kernel"
	"github.com/ocidisk/ocidisk/mkfs/ext4"
	"github.com/ocidisk/ocidisk/mkfs/fat"
	"github.com/ocidisk/ocidisk/rootfs"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// testDiskID is the MBR disk signature of the test images; the root
// partition's PARTUUID is testDiskID-02.
const testDiskID = "0c1d15c0"

// The root filesystem's label and UUID in the test images.
const testRootLabel = "ocidisk-root"

var testRootUUID = [16]byte{0x3b, 0x1e, 0x5c, 0x4a, 0x0d, 0x2e, 0x4f, 0x6a, 0x9b, 0x8c, 0x7d, 0x6e, 0x5f, 0x4a, 0x3b, 0x2c}

// bootImage builds a qemu-virt-arm64 image (MBR) of the busybox test root
// with Debian's kernel and our initramfs, FAT and ext4 writers and disk
// layout.
func bootImage(t testing.TB, cmdlineAppend ...string) string {
	t.Helper()
	return bootImageTable(t, diskimage.MBR, cmdlineAppend...)
}

func bootImageTable(t testing.TB, table diskimage.Table, cmdlineAppend ...string) string {
	t.Helper()
	k, root := loadInputs(t)
	return bootImageOf(t, table, k, root, cmdlineAppend...)
}

// bootImageOf builds a qemu-virt-arm64 image of root with kernel k.
func bootImageOf(t testing.TB, table diskimage.Table, k *kernel.Kernel, root *fstree.Tree, cmdlineAppend ...string) string {
	t.Helper()
	b, err := boards.Load("qemu-virt-arm64")
	if err != nil {
		t.Fatal(err)
	}
	when := time.Unix(1_700_000_000, 0)
	l := &diskimage.Layout{
		Table: table, ID: testDiskID, Seed: []byte("ocidisk qemu boot test"),
		FirstOffset: int64(b.Disk.FirstPartitionOffset), Align: int64(b.Disk.Alignment),
	}
	if table == diskimage.GPT {
		l.ID = ""
	}
	laid, err := b.Layout(boards.LayoutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range laid.Partitions {
		kind := diskimage.KindLinux
		if p.FS == boards.FAT {
			kind = diskimage.KindFAT
		}
		l.Partitions = append(l.Partitions, diskimage.Partition{Name: p.Name, Kind: kind, Bootable: p.Bootable, Size: int64(p.Size)})
	}
	rootIdx, bootIdx := l.Index(laid.Root().Name), l.Index(laid.Partition(boards.RoleBoot).Name)
	res, err := bootfs.Assemble(laid, k, bootfs.Options{
		PartUUID: func(name string) string { return l.PartUUID(l.Index(name)) }, CmdlineAppend: cmdlineAppend, Time: when,
	})
	if err != nil {
		t.Fatal(err)
	}
	l.Partitions[bootIdx].FS = fat.New(res.Boot, fat.Options{Label: "BOOT", Time: when})
	l.Partitions[rootIdx].FS = ext4.New(root, ext4.Options{Time: when, MinFree: 8 << 20, Label: testRootLabel, UUID: testRootUUID})
	img := filepath.Join(t.TempDir(), "disk.img")
	if _, err := diskimage.Write(context.Background(), img, l, diskimage.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return img
}

// inputs are the kernel and root trees, loaded once for all boot tests:
// loading the kernel package is the slow part.
var inputs struct {
	sync.Mutex
	k    *kernel.Kernel
	root *fstree.Tree
}

func loadInputs(t testing.TB) (*kernel.Kernel, *fstree.Tree) {
	t.Helper()
	inputs.Lock()
	defer inputs.Unlock()
	if inputs.k != nil {
		return inputs.k, inputs.root
	}
	// The default cache keeps the uncompressed layers between runs. The
	// images stay open for the life of the test binary.
	kim, err := rootfs.Load(context.Background(), "deb:"+debian.KernelDeb(t), source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	root, err := rootfs.Load(context.Background(), "oci:"+debian.BusyboxRoot(t), source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := kernel.Find(kim.Tree)
	if err != nil {
		t.Fatal(err)
	}
	inputs.k, inputs.root = k, root.Tree
	return k, root.Tree
}

func virtConfig(t testing.TB, img string) Config {
	t.Helper()
	hosttool.Require(t, "qemu-system-aarch64", "qemu-system-arm")
	b, err := boards.Load("qemu-virt-arm64")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.QEMU.Firmware.BIOS); err != nil {
		hosttool.Missing(t, b.QEMU.Firmware.BIOS+" not found: apt-get install "+b.QEMU.Firmware.Package)
	}
	return Config{Profile: b.QEMU, Image: img}
}

// TestBootBusyboxRoot boots the whole chain: U-Boot reads extlinux.conf
// from the FAT partition, the kernel runs our init, which loads the virtio
// and ext4 modules, mounts the ext4 root by PARTUUID and starts the test
// root's init, which prints the marker.
func TestBootBusyboxRoot(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU")
	}
	img := bootImage(t, "ocidisk.onfail=poweroff")
	var console strings.Builder
	res, err := Test(context.Background(), virtConfig(t, img), TestOptions{
		Expect: []*regexp.Regexp{
			regexp.MustCompile(`Found /extlinux/extlinux.conf`),
			regexp.MustCompile(`ocidisk-init: loaded \d+ modules`),
			regexp.MustCompile(`ocidisk-test: root /dev/vda2 / ext4 rw`),
			regexp.MustCompile(regexp.QuoteMeta(debian.Marker)),
		},
		Timeout: 90 * time.Second,
		Log:     &console,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("marker after %s", res.Duration.Round(time.Millisecond))
}

// TestBootRootSpecs boots with each way of naming the root that the init
// understands; the test root's init prints the mount it got.
func TestBootRootSpecs(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU")
	}
	for _, tc := range []struct {
		name  string
		args  []string
		mount string
	}{
		{"label", []string{"root=LABEL=" + testRootLabel}, "ext4 rw"},
		{"uuid read-only", []string{"root=UUID=3b1e5c4a-0d2e-4f6a-9b8c-7d6e5f4a3b2c", "ro"}, "ext4 ro"},
		{"device path, type detected", []string{"root=/dev/vda2", "rootfstype="}, "ext4 rw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := bootImage(t, append(tc.args, "ocidisk.onfail=poweroff")...)
			_, err := Test(context.Background(), virtConfig(t, img), TestOptions{
				Expect: []*regexp.Regexp{
					regexp.MustCompile(`ocidisk-test: root /dev/vda2 / ` + tc.mount),
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

// TestBootGPT boots the same image with a GPT: U-Boot finds the boot
// partition by its legacy BIOS bootable attribute, and the init the root
// by its GPT partition GUID.
func TestBootGPT(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU")
	}
	img := bootImageTable(t, diskimage.GPT, "ocidisk.onfail=poweroff")
	_, err := Test(context.Background(), virtConfig(t, img), TestOptions{
		Expect: []*regexp.Regexp{
			regexp.MustCompile(`root=PARTUUID=[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12} `),
			regexp.MustCompile(`ocidisk-test: root /dev/vda2 / ext4 rw`),
			regexp.MustCompile(regexp.QuoteMeta(debian.Marker)),
		},
		Timeout: 90 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBootMissingRoot boots an image whose root= names a partition that
// does not exist: the test must fail on the init's message, long before
// its timeout.
func TestBootMissingRoot(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU")
	}
	img := bootImage(t, "root=PARTUUID=deadbeef-02", "ocidisk.roottimeout=2", "ocidisk.onfail=poweroff")
	timeout := 60 * time.Second
	res, err := Test(context.Background(), virtConfig(t, img), TestOptions{
		Expect:  []*regexp.Regexp{regexp.MustCompile(regexp.QuoteMeta(debian.Marker))},
		Timeout: timeout,
	})
	if err == nil {
		t.Fatal("the boot test passed")
	}
	want := "ocidisk-init: error: root PARTUUID=deadbeef-02 not found after 2s; block devices: vda vda1 vda2"
	if res == nil || res.Reason != want || !strings.Contains(err.Error(), want) {
		t.Fatalf("failure %q (%v), want the init's line %q", res.Reason, err, want)
	}
	if res.Duration >= timeout {
		t.Errorf("failed by timeout, not on the init's message")
	}
}

// BenchmarkBootTest measures a whole boot test of the busybox test root,
// QEMU start to marker, as `ocidisk test` runs it; median-s is the median
// over the iterations (run with -benchtime=5x).
func BenchmarkBootTest(b *testing.B) {
	img := bootImage(b, "ocidisk.onfail=poweroff")
	cfg := virtConfig(b, img)
	var secs []float64
	for b.Loop() {
		res, err := Test(context.Background(), cfg, TestOptions{
			Expect:  []*regexp.Regexp{regexp.MustCompile(regexp.QuoteMeta(debian.Marker))},
			Timeout: 90 * time.Second,
		})
		if err != nil {
			b.Fatal(err)
		}
		secs = append(secs, res.Duration.Seconds())
	}
	slices.Sort(secs)
	b.ReportMetric(secs[len(secs)/2], "median-s")
}
