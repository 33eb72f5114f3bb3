package main

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/qemu"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// The end-to-end tests of firmware-style layouts: A/B slots with a
// read-only root and an overlay, slot images written into the other
// slot, the boot entry switched, and a data partition grown on first
// boot. The judges are QEMU booting the images, sfdisk, e2fsck and
// dumpe2fs on what the guest left behind, and sha256sum on the slot
// images.

// abInit returns a directory to give --overlay: an /sbin/init for the
// busybox test root that reports what the layout gives it (the root's
// mount, the slot, whether / and /etc can be written, /data), prints
// marker, unmounts the overlays and /data cleanly and powers off.
func abInit(t *testing.T, marker string) string {
	t.Helper()
	dir := t.TempDir()
	script := `#!/bin/busybox sh
# ocidisk A/B test root: report, print the marker, unmount, power off.
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
bb=/bin/busybox
$bb mount -t proc proc /proc 2>/dev/null
$bb mount -t sysfs sysfs /sys 2>/dev/null
echo "abtest: root $($bb grep ' / ' /proc/mounts | $bb tail -n 1)"
for a in $($bb cat /proc/cmdline); do
	case $a in ocidisk.slot=*) echo "abtest: slot ${a#ocidisk.slot=}";; esac
done
if $bb touch /abtest-write 2>/dev/null; then echo "abtest: write to / succeeded"; else echo "abtest: write to / failed"; fi
if echo '` + marker + `' >>/etc/abtest 2>/dev/null; then echo "abtest: write to /etc succeeded"; else echo "abtest: write to /etc failed"; fi
echo "abtest: /etc/abtest holds $($bb cat /etc/abtest | $bb tr '\n' ' ')"
if $bb grep -q ' /data ' /proc/mounts; then echo "abtest: data $($bb df -k /data | $bb tail -n 1)"; fi
echo '` + marker + `'
$bb umount /etc /var
$bb umount /data
$bb sync
$bb poweroff -f
`
	if err := os.MkdirAll(filepath.Join(dir, "sbin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sbin", "init"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// bootWritable boots img with the board's QEMU profile, attached writable so that
// what the guest writes stays, and waits for the guest to power off.
func bootWritable(t *testing.T, board, img string, tryboot bool, expect ...string) string {
	t.Helper()
	b, err := boards.Load(board)
	if err != nil {
		t.Fatal(err)
	}
	hosttool.Require(t, b.QEMU.Binary, b.QEMU.Package)
	var res []*regexp.Regexp
	for _, e := range expect {
		res = append(res, regexp.MustCompile(e))
	}
	l, err := b.Layout(boards.LayoutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := qemu.Test(t.Context(), qemu.Config{Profile: b.QEMU, Image: img, BootPartition: l.Partition(boards.RoleBoot).Number,
		Writable: true, Tryboot: tryboot}, qemu.TestOptions{Expect: res, Timeout: 180 * time.Second, WaitExit: true})
	if err != nil {
		t.Fatal(err)
	}
	return r.Console
}

// diskTable is `sfdisk --json` of an image.
type diskTable struct {
	Label      string `json:"label"`
	LastLBA    int64  `json:"lastlba"`
	Partitions []struct {
		Start, Size int64
		Name        string
	} `json:"partitions"`
}

func readDisk(t *testing.T, img string) diskTable {
	t.Helper()
	sfdisk := hosttool.Require(t, "sfdisk", "fdisk")
	out, err := exec.Command(sfdisk, "--json", img).Output()
	if err != nil {
		t.Fatalf("sfdisk --json %s: %v", img, err)
	}
	var d struct {
		PartitionTable diskTable `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatal(err)
	}
	return d.PartitionTable
}

// sfdiskClean runs `sfdisk -V` and fails on anything but a clean report:
// a GPT whose backup is not at the end of the disk is a warning.
func sfdiskClean(t *testing.T, img string) {
	t.Helper()
	out, err := exec.Command(hosttool.Require(t, "sfdisk", "fdisk"), "-V", img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No errors detected.") || strings.Contains(string(out), "arning") ||
		strings.Contains(string(out), "mismatch") {
		t.Fatalf("sfdisk -V %s: %v\n%s", img, err, out)
	}
}

// e2fsckPart checks an ext4 partition of img with e2fsck -fn and returns
// its size in bytes as dumpe2fs reads the superblock.
func e2fsckPart(t *testing.T, img string, start, size int64) int64 {
	t.Helper()
	part := filepath.Join(t.TempDir(), "part.img")
	hosttool.CopySparse(t, img, part, start, size)
	if out, err := exec.Command(hosttool.Require(t, "e2fsck", "e2fsprogs"), "-fn", part).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn (partition at %d): %v\n%s", start, err, out)
	}
	out, err := exec.Command(hosttool.Require(t, "dumpe2fs", "e2fsprogs"), "-h", part).CombinedOutput()
	if err != nil {
		t.Fatalf("dumpe2fs -h: %v\n%s", err, out)
	}
	field := func(name string) int64 {
		m := regexp.MustCompile(`(?m)^` + name + `:\s+(\d+)$`).FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("dumpe2fs -h has no %s:\n%s", name, out)
		}
		n, _ := strconv.ParseInt(m[1], 10, 64)
		return n
	}
	return field("Block count") * field("Block size")
}

// copyToDisk copies img into a new sparse file of size bytes: the image
// written to a larger card.
func copyToDisk(t *testing.T, img string, size int64) string {
	t.Helper()
	card := filepath.Join(t.TempDir(), "card.img")
	hosttool.CopySparse(t, img, card, 0, fileSize(t, img))
	if err := os.Truncate(card, size); err != nil {
		t.Fatal(err)
	}
	return card
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// writeSlot does what an updater does with a slot image: checks it
// against its .sha256 and the slot's size, and writes every byte of it
// into the slot.
func writeSlot(t *testing.T, img, slotImg string, start, size int64) {
	t.Helper()
	check := exec.Command(hosttool.Require(t, "sha256sum", "coreutils"), "-c", filepath.Base(slotImg)+".sha256")
	check.Dir = filepath.Dir(slotImg)
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("sha256sum -c: %v\n%s", err, out)
	}
	if n := fileSize(t, slotImg); n > size {
		t.Fatalf("slot image of %d bytes is larger than the %d-byte slot", n, size)
	}
	in, err := os.Open(slotImg)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(io.NewOffsetWriter(out, start), in); err != nil {
		t.Fatal(err)
	}
}

// editFAT rewrites a file on the FAT partition at off with mtools, as an
// updater on the board edits its boot partition.
func editFAT(t *testing.T, img string, off int64, name string, edit func(string) string) {
	t.Helper()
	dir := t.TempDir()
	host := filepath.Join(dir, "f")
	fatImg := img + "@@" + strconv.FormatInt(off, 10)
	run := func(tool string, args ...string) {
		t.Helper()
		cmd := exec.Command(hosttool.Require(t, tool, "mtools"), args...)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
		}
	}
	run("mcopy", "-n", "-i", fatImg, "::"+name, host)
	b, err := os.ReadFile(host)
	if err != nil {
		t.Fatal(err)
	}
	changed := edit(string(b))
	if changed == string(b) {
		t.Fatalf("%s: the edit changes nothing:\n%s", name, b)
	}
	if err := os.WriteFile(host, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	run("mcopy", "-o", "-i", fatImg, host, "::"+name)
}

// TestABSlotsExtlinux: an A/B image for qemu-virt boots slot A read-only,
// / refusing writes and /etc taking them through the overlay kept on the
// data partition; the slot image of another root, written into slot B,
// boots once extlinux.conf's default label names slot B, and sees what
// slot A wrote to /etc.
func TestABSlotsExtlinux(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	flags := []string{"--ab", "--data", "64MiB", "--root-size", "400MiB", "--kernel", "deb:" + kernel}
	img := buildImage(t, append(flags, "--overlay", abInit(t, "SLOT-A-ROOT"), "oci:"+root)...)
	sfdiskClean(t, img)
	d := readDisk(t, img)
	if len(d.Partitions) != 4 {
		t.Fatalf("%d partitions, want boot, root-a, root-b, data", len(d.Partitions))
	}
	bootP, rootA, rootB, data := d.Partitions[0], d.Partitions[1], d.Partitions[2], d.Partitions[3]
	if rootA.Size != rootB.Size || rootA.Size*512 != 400<<20 {
		t.Fatalf("slots of %d and %d sectors, want 400 MiB each", rootA.Size, rootB.Size)
	}

	out := bootWritable(t, "qemu-virt-arm64", img, false,
		`ocidisk-init: mounted /dev/vda2 \(PARTUUID=\S+-02\) on /root as ext4, read-only: slot a`,
		`ocidisk-init: overlay on /etc /var \(changes in /data/overlay on /dev/vda4\)`,
		`abtest: root /dev/vda2 / ext4 ro`, `abtest: slot a`,
		`abtest: write to / failed`, `abtest: write to /etc succeeded`, `SLOT-A-ROOT`)
	if strings.Contains(out, "ocidisk-init: warning") {
		t.Errorf("the init warned:\n%s", tail(out, 30))
	}

	// The update: the root alone, built with the same layout flags.
	slotImg := filepath.Join(t.TempDir(), "update.root")
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	args := append([]string{"build", "--slot-image", slotImg}, append(flags, "--overlay", abInit(t, "SLOT-B-ROOT"), "oci:"+root)...)
	if code, stdout, stderr := runCLI(t, args...); code != exitOK || !strings.Contains(stdout, slotImg+": root filesystem for a slot") {
		t.Fatalf("ocidisk %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(slotImg), "qemu-virt-arm64.img")); !os.IsNotExist(err) {
		t.Error("--slot-image without -o wrote a disk image too")
	}
	if n := fileSize(t, slotImg); n != rootB.Size*512 {
		t.Errorf("slot image of %d bytes for a %d-byte slot", n, rootB.Size*512)
	}
	writeSlot(t, img, slotImg, rootB.Start*512, rootB.Size*512)
	editFAT(t, img, bootP.Start*512, "extlinux/extlinux.conf", func(s string) string {
		return strings.Replace(s, "\ndefault slot-a\n", "\ndefault slot-b\n", 1)
	})
	out = bootWritable(t, "qemu-virt-arm64", img, false,
		`ocidisk-init: mounted /dev/vda3 \(PARTUUID=\S+-03\) on /root as ext4, read-only: slot b`,
		`abtest: root /dev/vda3 / ext4 ro`, `abtest: slot b`,
		`abtest: write to / failed`, `abtest: write to /etc succeeded`,
		`abtest: /etc/abtest holds SLOT-A-ROOT SLOT-B-ROOT`, `SLOT-B-ROOT`)
	if strings.Contains(out, "SLOT-A-ROOT\r\n") || strings.Contains(out, "SLOT-A-ROOT\n") {
		t.Errorf("slot A's root printed its marker after the switch:\n%s", tail(out, 20))
	}
	sfdiskClean(t, img)
	e2fsckPart(t, img, data.Start*512, data.Size*512)
}

// TestGrowDataPartition: an image of at most 512 MiB (two squashfs slots
// and a data partition sized to its content), written to a 2 GiB card,
// grows its data partition and filesystem to the end of the card on first
// boot, and only then. After power-off, sfdisk finds the table clean (for
// a GPT, with the backup at the new end), e2fsck the filesystem, and the
// filesystem spans the partition.
func TestGrowDataPartition(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	for _, table := range []string{"mbr", "gpt"} {
		t.Run(table, func(t *testing.T) {
			img := buildImage(t, "--table", table, "--ab", "--root-fs", "squashfs", "--data", "grow",
				"--kernel", "deb:"+kernel, "--overlay", abInit(t, "GROW-TEST-ROOT"), "oci:"+root)
			if n := fileSize(t, img); n > 512<<20 {
				t.Fatalf("image of %d MiB, want at most 512 MiB", n>>20)
			}
			before := readDisk(t, img)
			const card = 2 << 30
			disk := copyToDisk(t, img, card)
			out := bootWritable(t, "qemu-virt-arm64", disk, false,
				`ocidisk-init: mounted /dev/vda2 .* as squashfs, read-only: slot a`,
				`ocidisk-init: grew /dev/vda4 \(partition 4 of vda, `+table+`\) from \d+ MiB to \d+ MiB`,
				`abtest: write to / failed`, `abtest: write to /etc succeeded`,
				`abtest: data /dev/vda4 +\d+`, `GROW-TEST-ROOT`)
			t.Log(regexp.MustCompile(`ocidisk-init: grew .*`).FindString(out))

			sfdiskClean(t, disk)
			after := readDisk(t, disk)
			p := after.Partitions[3]
			end := int64(card) / 512 // the MBR's last sector, exclusive
			if table == "gpt" {
				end = int64(card)/512 - 33 // the backup entries and header
				checkBackupAtEnd(t, disk, card)
			}
			end = end * 512 / (1 << 20) * (1 << 20) / 512
			if p.Start != before.Partitions[3].Start || p.Start+p.Size != end {
				t.Errorf("data partition at %d, %d sectors; want it to end at sector %d", p.Start, p.Size, end)
			}
			for i := range 3 {
				if after.Partitions[i] != before.Partitions[i] {
					t.Errorf("partition %d moved: %+v, was %+v", i+1, after.Partitions[i], before.Partitions[i])
				}
			}
			if fs := e2fsckPart(t, disk, p.Start*512, p.Size*512); fs != p.Size*512 {
				t.Errorf("data filesystem of %d bytes in a %d-byte partition", fs, p.Size*512)
			}
			checkInspect(t, disk, card, p.Start*512, p.Size*512)

			// Once: the second boot leaves the partition alone.
			out = bootWritable(t, "qemu-virt-arm64", disk, false, `abtest: /etc/abtest holds GROW-TEST-ROOT GROW-TEST-ROOT`, `GROW-TEST-ROOT`)
			if strings.Contains(out, "ocidisk-init: grew") {
				t.Errorf("the second boot grew the partition again:\n%s", tail(out, 20))
			}
			if again := readDisk(t, disk); again.Partitions[3] != p {
				t.Errorf("data partition after the second boot %+v, was %+v", again.Partitions[3], p)
			}
		})
	}
}

// checkBackupAtEnd reads the GPT headers: the primary names the disk's
// last sector as the backup's, and the backup is there, naming the
// primary.
func checkBackupAtEnd(t *testing.T, img string, size int64) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdr := func(lba int64) []byte {
		b := make([]byte, 92)
		if _, err := f.ReadAt(b, lba*512); err != nil {
			t.Fatal(err)
		}
		if string(b[:8]) != "EFI PART" {
			t.Fatalf("no GPT header at LBA %d", lba)
		}
		return b
	}
	last := size/512 - 1
	le := binary.LittleEndian
	if alt := int64(le.Uint64(hdr(1)[32:])); alt != last {
		t.Errorf("primary GPT names its backup at LBA %d, want %d", alt, last)
	}
	if b := hdr(last); int64(le.Uint64(b[24:])) != last || le.Uint64(b[32:]) != 1 {
		t.Errorf("backup GPT header says it is at %d, primary at %d", le.Uint64(b[24:]), le.Uint64(b[32:]))
	}
}

// checkInspect has ocidisk inspect read the grown card: the image the
// card's size, and its last partition, the data partition, an ext4 that
// spans it.
func checkInspect(t *testing.T, img string, card, start, size int64) {
	t.Helper()
	code, stdout, stderr := runCLI(t, "inspect", "--json", img)
	if code != exitOK {
		t.Fatalf("ocidisk inspect: exit %d\n%s", code, stderr)
	}
	var r struct {
		Size       int64
		Partitions []struct {
			Start, Size int64
			Filesystem  struct {
				Type, Label string
				Size        int64
			}
		}
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || len(r.Partitions) == 0 {
		t.Fatalf("ocidisk inspect --json: %v\n%s", err, stdout)
	}
	p := r.Partitions[len(r.Partitions)-1]
	if r.Size != card || p.Start != start || p.Size != size || p.Filesystem.Type != "ext4" || p.Filesystem.Label != "data" || p.Filesystem.Size != size {
		t.Errorf("ocidisk inspect: image of %d bytes, last partition %+v; want %d bytes, an ext4 \"data\" of %d bytes at %d",
			r.Size, p, card, size, start)
	}
}

// TestABSlotsTryboot: a Raspberry Pi 4 A/B image (booted on virt as its
// firmware would pick the partition) boots slot A; with slot B written,
// a tryboot boots B once, a normal boot falls back to A, and after the
// update is committed in autoboot.txt, B boots.
func TestABSlotsTryboot(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	raspi := debian.Package(t, "raspi-firmware")
	flags := []string{"--board", "rpi4", "--ab", "--root-fs", "squashfs", "--root-size", "160MiB", "--data", "64MiB",
		"--kernel", "deb:" + kernel, "--firmware", "deb:" + raspi}
	img := buildImage(t, append(flags, "--overlay", abInit(t, "PI-SLOT-A"), "oci:"+root)...)
	sfdiskClean(t, img)
	d := readDisk(t, img)
	var names []string
	for _, p := range d.Partitions {
		names = append(names, p.Name)
	}
	if d.Label != "gpt" || strings.Join(names, " ") != "select boot-a boot-b root-a root-b data" {
		t.Fatalf("%s partitions %q, want a GPT with select boot-a boot-b root-a root-b data", d.Label, names)
	}
	sel, rootB := d.Partitions[0], d.Partitions[4]

	bootWritable(t, "rpi4", img, false, `ocidisk-init: mounted /dev/vda4 .* as squashfs, read-only: slot a`, `abtest: write to /etc succeeded`, `PI-SLOT-A`)

	slotImg := filepath.Join(t.TempDir(), "update.root")
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	args := append([]string{"build", "--slot-image", slotImg}, append(flags, "--overlay", abInit(t, "PI-SLOT-B"), "oci:"+root)...)
	if code, stdout, stderr := runCLI(t, args...); code != exitOK {
		t.Fatalf("ocidisk %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
	}
	writeSlot(t, img, slotImg, rootB.Start*512, rootB.Size*512)

	bootWritable(t, "rpi4", img, true, `ocidisk-init: mounted /dev/vda5 .* read-only: slot b`, `abtest: /etc/abtest holds PI-SLOT-A PI-SLOT-B`, `PI-SLOT-B`)
	bootWritable(t, "rpi4", img, false, `ocidisk-init: mounted /dev/vda4 .* read-only: slot a`, `PI-SLOT-A`)
	editFAT(t, img, sel.Start*512, "autoboot.txt", func(s string) string {
		return strings.NewReplacer("boot_partition=2", "boot_partition=3", "boot_partition=3", "boot_partition=2").Replace(s)
	})
	bootWritable(t, "rpi4", img, false, `ocidisk-init: mounted /dev/vda5 .* read-only: slot b`, `PI-SLOT-B`)
	sfdiskClean(t, img)
	e2fsckPart(t, img, d.Partitions[5].Start*512, d.Partitions[5].Size*512)
}

// TestABBuildErrors: layouts a board cannot have fail the build with the
// reason and leave nothing behind.
func TestABBuildErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "t.img")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--board", "rpi3", "--ab"}, exitFailure, "board rpi3 cannot boot A/B slots"},
		{[]string{"--board", "rpi4", "--ab", "--table", "mbr"}, exitFailure, "do not fit in an MBR"},
		{[]string{"--data", "lots"}, exitUsage, `--data "lots"`},
		{[]string{"--data-overlay", dir}, exitFailure, "the layout has no data partition"},
	} {
		args := append([]string{"build", "-o", out}, append(tc.args, "oci:"+filepath.Join(dir, "missing"))...)
		code, _, stderr := runCLI(t, args...)
		if tc.msg == "the layout has no data partition" {
			// The root is read before the data partition: this one needs
			// a real root.
			args[len(args)-1] = "oci:" + debian.BusyboxRoot(t)
			args = append(args[:len(args)-1], "--kernel", "deb:"+debian.KernelDeb(t), args[len(args)-1])
			code, _, stderr = runCLI(t, args...)
		}
		if code != tc.code || !strings.Contains(stderr, tc.msg) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, stderr, tc.code, tc.msg)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%q left %s behind", tc.args, out)
		}
	}
}

// TestReadOnlyRootTmpfsOverlay: a squashfs root without a data partition
// gets its overlay on a tmpfs: / refuses writes, /etc takes them, and the
// stock board needs nothing changed for it (the initramfs gains the
// squashfs and overlay modules, the command line rootfstype=squashfs ro).
func TestReadOnlyRootTmpfsOverlay(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	img := buildImage(t, "--root-fs", "squashfs", "--kernel", "deb:"+kernel, "--overlay", abInit(t, "TMPFS-OVERLAY-ROOT"), "oci:"+root)
	bootWritable(t, "qemu-virt-arm64", img, false,
		`ocidisk-init: mounted /dev/vda2 \(PARTUUID=\S+\) on /root as squashfs, read-only`,
		`ocidisk-init: overlay on /etc /var \(changes in tmpfs, until power-off\)`,
		`abtest: root /dev/vda2 / squashfs ro`, `abtest: write to / failed`, `abtest: write to /etc succeeded`,
		`TMPFS-OVERLAY-ROOT`)
}
