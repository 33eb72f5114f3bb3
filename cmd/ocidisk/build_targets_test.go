package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// Tests of the boards of issue 18 (efi-arm64, qemu-virt-armhf, rpi2, a
// built rpi5) and of --format qcow2: each image is judged statically by
// sfdisk, fsck.vfat and e2fsck, read back by ocidisk inspect, and booted
// as its board's QEMU profile says.

// checkDisk judges a raw image without booting it: sfdisk -V finds the
// table sound, and every partition passes its own fsck (fsck.vfat -n for
// FAT, e2fsck -fn for ext4). It returns the partitions as sfdisk -J lists
// them.
func checkDisk(t *testing.T, img string) []sfdiskPart {
	t.Helper()
	sfdisk := hosttool.Require(t, "sfdisk", "fdisk")
	if out, err := exec.Command(sfdisk, "-V", img).CombinedOutput(); err != nil || !strings.Contains(string(out), "No errors detected") {
		t.Fatalf("sfdisk -V: %v\n%s", err, out)
	}
	out, err := exec.Command(sfdisk, "-J", img).Output()
	if err != nil {
		t.Fatalf("sfdisk -J: %v", err)
	}
	var d struct {
		PartitionTable struct {
			Partitions []sfdiskPart `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for i, p := range d.PartitionTable.Partitions {
		part := filepath.Join(dir, filepath.Base(p.Node))
		hosttool.CopySparse(t, img, part, p.Start*512, p.Size*512)
		var cmd *exec.Cmd
		switch {
		case isExt4(t, part):
			cmd = exec.Command(hosttool.Require(t, "e2fsck", "e2fsprogs"), "-fn", part)
		default:
			cmd = exec.Command(hosttool.Require(t, "fsck.vfat", "dosfstools"), "-n", part)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("partition %d: %s: %v\n%s", i+1, cmd, err, out)
		}
	}
	return d.PartitionTable.Partitions
}

// isExt4 reports whether a partition holds ext2/3/4: the superblock's
// magic at byte 1080.
func isExt4(t *testing.T, part string) bool {
	t.Helper()
	f, err := os.Open(part)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	magic := make([]byte, 2)
	if _, err := f.ReadAt(magic, 1080); err != nil {
		t.Fatal(err)
	}
	return string(magic) == "\x53\xef"
}

// sfdiskPart is one partition as sfdisk -J lists it.
type sfdiskPart struct {
	Node        string
	Start, Size int64
	Type        string
	UUID        string
}

// TestEFIArm64Busybox builds efi-arm64 from the busybox test root: a GPT
// with an EFI System partition holding only the UKI and the root typed as
// the arm64 root; the same inputs give the same bytes, UKI included;
// inspect reads the command line from the UKI; EDK2 boots it, and boots
// it with a verified root.
func TestEFIArm64Busybox(t *testing.T) {
	kernel := debian.KernelDeb(t)
	stub := debian.Package(t, "systemd-boot-efi:arm64")
	root := debian.BusyboxRoot(t)
	args := []string{"--board", "efi-arm64", "--kernel", "deb:" + kernel, "--firmware", "deb:" + stub, "oci:" + root}
	img := buildImage(t, args...)
	if a, b := fileHash(t, img), fileHash(t, buildImage(t, args...)); a != b {
		t.Fatalf("two builds of the same inputs differ: %s, %s", a, b)
	}
	parts := checkDisk(t, img)
	if len(parts) != 2 || !strings.EqualFold(parts[0].Type, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B") ||
		!strings.EqualFold(parts[1].Type, "B921B045-1DF0-41C3-AF44-4C6F280D3FAE") {
		t.Fatalf("partitions %+v: want the EFI System partition and the arm64 root", parts)
	}
	r := inspectExample(t, img)
	if r.Board != "efi-arm64" || r.Partitions[0].Filesystem.Type != "FAT32" || r.Boot == nil || len(r.Boot.Files) != 1 ||
		r.Boot.Files[0].Path != "EFI/BOOT/BOOTAA64.EFI" || r.Boot.Files[0].Kind != "uki" {
		t.Fatalf("inspect: board %q, ESP %+v, boot %+v", r.Board, r.Partitions[0].Filesystem, r.Boot)
	}
	if want := "root=PARTUUID=" + strings.ToLower(parts[1].UUID); r.Boot.CmdlineFrom != "EFI/BOOT/BOOTAA64.EFI" || !strings.Contains(r.Boot.Cmdline, want) {
		t.Errorf("command line %q from %q; want %s from the UKI", r.Boot.Cmdline, r.Boot.CmdlineFrom, want)
	}
	code, out := bootTest(t, img, "--board", "efi-arm64", "--expect", `EFI stub: Loaded initrd`,
		"--expect", `ocidisk-test: root /dev/vda2 / ext4 rw`, "--expect", regexp.QuoteMeta(debian.Marker), "--timeout", "240s")
	if code != exitOK {
		t.Fatalf("efi-arm64 did not boot under EDK2 (exit %d):\n%s", code, tail(out, 40))
	}

	// A verified erofs root: the root hash, known once the root is
	// written, is in the UKI's command line, and the init checks the root
	// against it.
	vimg := buildImage(t, "--board", "efi-arm64", "--kernel", "deb:"+kernel, "--firmware", "deb:"+stub, "--root-fs", "erofs", "--verity", "oci:"+root)
	code, out = bootTest(t, vimg, "--board", "efi-arm64",
		"--expect", `ocidisk-init: verity: /dev/vda2 \(PARTUUID=\S+\) checked against root hash [0-9a-f]{16}\.\.\. as /dev/dm-0`,
		"--expect", `ocidisk-test: root /dev/dm-0 / erofs ro`, "--expect", regexp.QuoteMeta(debian.Marker), "--timeout", "240s")
	if code != exitOK {
		t.Fatalf("efi-arm64 with a verified root did not boot under EDK2 (exit %d):\n%s", code, tail(out, 40))
	}
}

// TestEFIArm64Systemd builds efi-arm64 from a configured Debian root
// booting systemd, whose own os-release the UKI carries, and boots it to
// a login prompt under EDK2.
func TestEFIArm64Systemd(t *testing.T) {
	if testing.Short() {
		t.Skip("boots systemd under QEMU")
	}
	kernel := debian.KernelDeb(t)
	stub := debian.Package(t, "systemd-boot-efi:arm64")
	root := debian.SystemdRoot(t)
	img := buildImage(t, "--board", "efi-arm64", "--kernel", "deb:"+kernel, "--firmware", "deb:"+stub, "oci:"+root.Layout)
	checkDisk(t, img)
	code, out := bootTest(t, img, "--board", "efi-arm64", "--expect", `Welcome to .*Debian GNU/Linux 12`, "--expect", `login:`, "--timeout", "360s")
	if code != exitOK {
		t.Fatalf("the systemd root did not boot under EDK2 (exit %d):\n%s", code, tail(out, 40))
	}
}

// TestFormatQcow2 builds the same image raw and as qcow2: qemu-img finds
// the qcow2 clean and equal to the raw image, and ocidisk test boots it,
// attached as qcow2.
func TestFormatQcow2(t *testing.T) {
	qemuImg := hosttool.Require(t, "qemu-img", "qemu-utils")
	kernel := debian.KernelDeb(t)
	stub := debian.Package(t, "systemd-boot-efi:arm64")
	root := debian.BusyboxRoot(t)
	args := []string{"--board", "efi-arm64", "--kernel", "deb:" + kernel, "--firmware", "deb:" + stub, "oci:" + root}
	raw := buildImage(t, args...)
	q := filepath.Join(t.TempDir(), "disk.qcow2")
	code, stdout, stderr := runCLI(t, append([]string{"build", "-o", q, "--format", "qcow2", "--json"}, args...)...)
	if code != exitOK {
		t.Fatalf("build --format qcow2: exit %d\n%s%s", code, stdout, stderr)
	}
	var res buildJSON
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.Image != q || res.Format != "qcow2" {
		t.Fatalf("--json: %v %+v", err, res)
	}
	if ents, _ := filepath.Glob(filepath.Join(filepath.Dir(q), "*")); len(ents) != 1 {
		t.Errorf("beside the qcow2 image: %q; the raw image is not kept", ents)
	}
	if out, err := exec.Command(qemuImg, "check", q).CombinedOutput(); err != nil || !strings.Contains(string(out), "No errors were found") {
		t.Fatalf("qemu-img check: %v\n%s", err, out)
	}
	if out, err := exec.Command(qemuImg, "compare", "-f", "qcow2", "-F", "raw", q, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img compare with the raw build: %v\n%s", err, out)
	}
	if r := inspectExample(t, q); r.Board != "efi-arm64" {
		t.Errorf("inspect of the qcow2 image: board %q", r.Board)
	}
	code, out := bootTest(t, q, "--board", "efi-arm64", "--expect", regexp.QuoteMeta(debian.Marker), "--timeout", "240s")
	if code != exitOK {
		t.Fatalf("the qcow2 image did not boot (exit %d):\n%s", code, tail(out, 40))
	}
	if !strings.Contains(out, "format=qcow2") && !strings.Contains(out, debian.Marker) {
		t.Errorf("boot log:\n%s", tail(out, 10))
	}
}

// TestFormatUsage: --format takes raw or qcow2 (else exit 2), and a
// qcow2 image no block map or compression, refused before any work naming
// the flag.
func TestFormatUsage(t *testing.T) {
	out := filepath.Join(t.TempDir(), "t.img")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--format", "vmdk"}, exitUsage, "--format"},
		{[]string{"--format", "qcow2", "--bmap"}, exitFailure, "--bmap: a block map describes a raw image"},
		{[]string{"--format", "qcow2", "--compress", "zstd"}, exitFailure, "--compress: compression is for a raw image"},
	} {
		code, _, stderr := runCLI(t, append(append([]string{"build", "-o", out}, tc.args...), "oci:/nonexistent")...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) {
			t.Errorf("%q: exit %d, %q; want exit %d naming %s", tc.args, code, stderr, tc.code, tc.msg)
		}
	}
}

// armhfKernel is Debian's armhf kernel package of a flavour (armmp,
// armmp-lpae).
func armhfKernel(t *testing.T, flavour string) string {
	t.Helper()
	return debian.KernelDebFor(t, debian.KernelSpec{Arch: "armhf", Flavour: flavour})
}

// TestQEMUVirtArmhf builds qemu-virt-armhf from the armhf busybox root
// (linux/arm/v7, the board's platform by default) with each of Debian's
// armhf kernels, and boots it with qemu-system-arm and U-Boot: the arm
// init loads virtio-blk and ext4, skips the CRC module the Cortex-A15
// cannot use, and mounts the root.
func TestQEMUVirtArmhf(t *testing.T) {
	root := debian.BusyboxRootArch(t, "armhf", debian.Marker)
	for _, flavour := range []string{"armmp", "armmp-lpae"} {
		t.Run(flavour, func(t *testing.T) {
			img := buildImage(t, "--board", "qemu-virt-armhf", "--kernel", "deb:"+armhfKernel(t, flavour), "oci:"+root)
			checkDisk(t, img)
			r := inspectExample(t, img)
			if r.Board != "qemu-virt-armhf" || r.Boot == nil || !strings.Contains(r.Boot.Cmdline, "root=PARTUUID=") {
				t.Fatalf("inspect: board %q, boot %+v", r.Board, r.Boot)
			}
			code, out := bootTest(t, img, "--board", "qemu-virt-armhf", "--expect", `Linux version \S+-`+flavour,
				"--expect", `ocidisk-test: root /dev/vda2 / ext4 rw`, "--expect", regexp.QuoteMeta(debian.Marker), "--timeout", "300s")
			if code != exitOK {
				t.Fatalf("qemu-virt-armhf did not boot (exit %d):\n%s", code, tail(out, 40))
			}
		})
	}
}

// TestRpi2 builds rpi2 from the armhf busybox root, Debian's armmp kernel
// and raspi-firmware, and boots it on QEMU's raspi2b the way the Pi's
// firmware would: the kernel, initramfs and device tree its config.txt
// names, the command line of its cmdline.txt, the root on the SD card.
func TestRpi2(t *testing.T) {
	root := debian.BusyboxRootArch(t, "armhf", debian.Marker)
	fw := debian.Package(t, "raspi-firmware")
	img := buildImage(t, "--board", "rpi2", "--kernel", "deb:"+armhfKernel(t, "armmp"), "--firmware", "deb:"+fw, "oci:"+root)
	checkDisk(t, img)
	r := inspectExample(t, img)
	kinds := map[string]string{}
	for _, f := range r.Boot.Files {
		kinds[f.Path] = f.Kind
	}
	if r.Board != "rpi2" || kinds["kernel7.img"] != "kernel" || kinds["bcm2836-rpi-2-b.dtb"] != "dtb" || kinds["start.elf"] != "firmware" ||
		r.Boot.CmdlineFrom != "cmdline.txt" {
		t.Fatalf("inspect: board %q, boot files %v, command line from %q", r.Board, kinds, r.Boot.CmdlineFrom)
	}
	code, out := bootTest(t, img, "--board", "rpi2", "--expect", `Machine model: Raspberry Pi 2 Model B`,
		"--expect", `smp: Brought up 1 node, 4 CPUs`, "--expect", `ocidisk-test: root /dev/mmcblk0p2 / ext4 rw`,
		"--expect", regexp.QuoteMeta(debian.Marker), "--timeout", "300s")
	if code != exitOK {
		t.Fatalf("rpi2 did not boot on raspi2b (exit %d):\n%s", code, tail(out, 40))
	}
	if !strings.Contains(out, "from config.txt [pi2]") {
		t.Errorf("the boot did not say it read config.txt:\n%s", tail(out, 5))
	}
}

// TestRpi5 builds the rpi5 pack with the Pi 5 test kernel (bookworm-
// backports' 6.12 with bcm2712-rpi-5-b.dtb, its SD driver listed as built
// in) and raspi-firmware given as the firmware source, as a user would:
// judged statically, and its kernel, initramfs and root booted on virt as
// the pack's QEMU profile says (QEMU has no Pi 5).
func TestRpi5(t *testing.T) {
	kernel := debian.Rpi5Kernel(t)
	fw := debian.Package(t, "raspi-firmware")
	root := debian.BusyboxRoot(t)
	img := buildImage(t, "--board", "rpi5", "--kernel", "oci:"+kernel, "--firmware", "deb:"+fw, "oci:"+root)
	checkDisk(t, img)
	r := inspectExample(t, img)
	kinds := map[string]string{}
	for _, f := range r.Boot.Files {
		kinds[f.Path] = f.Kind
	}
	if r.Board != "rpi5" || kinds["bcm2712-rpi-5-b.dtb"] != "dtb" || kinds["kernel8.img"] != "kernel" || kinds["initramfs8"] != "initramfs" {
		t.Fatalf("inspect: board %q, boot files %v", r.Board, kinds)
	}
	code, out := bootTest(t, img, "--board", "rpi5", "--expect", `Linux version 6\.12\.`,
		"--expect", `ocidisk-test: root /dev/vda2 / ext4 rw`, "--expect", regexp.QuoteMeta(debian.Marker), "--timeout", "240s")
	if code != exitOK {
		t.Fatalf("the rpi5 image did not boot on virt (exit %d):\n%s", code, tail(out, 40))
	}
	if !strings.Contains(out, "QEMU has no Raspberry Pi 5") {
		t.Errorf("the boot did not say what it proves:\n%s", tail(out, 5))
	}
}
