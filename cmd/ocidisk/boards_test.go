package main

import (
	"bytes"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// The SD-card boards end to end: ocidisk build from Debian's arm64 kernel,
// raspi-firmware and u-boot-sunxi packages and the busybox test root;
// each image judged without booting by sfdisk, fsck.vfat, e2fsck, mtools
// and the packages' own bytes, then booted by ocidisk test.

// sdImage is a built image as sfdisk reads it.
type sdImage struct {
	path   string
	diskID string // the MBR disk signature, 8 hex digits
	parts  []sdPart
}

type sdPart struct {
	start, size int64 // bytes
	typ         string
	bootable    bool
}

var sfdiskPartRE = regexp.MustCompile(`start=\s*(\d+), size=\s*(\d+), type=(\w+)(, bootable)?`)

func readImage(t *testing.T, img string) *sdImage {
	t.Helper()
	sfdisk := hosttool.Require(t, "sfdisk", "fdisk")
	out, err := exec.Command(sfdisk, "-d", img).CombinedOutput()
	if err != nil {
		t.Fatalf("sfdisk -d: %v\n%s", err, out)
	}
	im := &sdImage{path: img}
	if m := regexp.MustCompile(`(?m)^label: (\w+)$`).FindStringSubmatch(string(out)); m == nil || m[1] != "dos" {
		t.Fatalf("not an MBR (dos) table:\n%s", out)
	}
	if m := regexp.MustCompile(`(?m)^label-id: 0x([0-9a-f]{8})$`).FindStringSubmatch(string(out)); m != nil {
		im.diskID = m[1]
	} else {
		t.Fatalf("no disk signature:\n%s", out)
	}
	for _, m := range sfdiskPartRE.FindAllStringSubmatch(string(out), -1) {
		start, _ := strconv.ParseInt(m[1], 10, 64)
		size, _ := strconv.ParseInt(m[2], 10, 64)
		im.parts = append(im.parts, sdPart{start * 512, size * 512, m[3], m[4] != ""})
	}
	return im
}

// mtools runs an mtools command on the boot partition (partition 1).
func (im *sdImage) mtools(t *testing.T, cmd string, args ...string) []byte {
	t.Helper()
	bin := hosttool.Require(t, cmd, "mtools")
	c := exec.Command(bin, append([]string{"-i", im.path + "@@" + strconv.FormatInt(im.parts[0].start, 10)}, args...)...)
	c.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", cmd, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// bootFiles lists the boot partition's files as mtools sees them.
func (im *sdImage) bootFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, l := range strings.Split(string(im.mtools(t, "mdir", "-/", "-b", "::")), "\n") {
		if f, ok := strings.CutPrefix(strings.TrimSpace(l), "::/"); ok && !strings.HasSuffix(f, "/") {
			files = append(files, f)
		}
	}
	return files
}

// bootFile reads a file of the boot partition with mcopy.
func (im *sdImage) bootFile(t *testing.T, name string) []byte {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "f")
	im.mtools(t, "mcopy", "-n", "::"+name, dst)
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fsck checks both partitions with their own fsck.
func (im *sdImage) fsck(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	for i, p := range im.parts {
		part := filepath.Join(dir, "p"+strconv.Itoa(i+1))
		hosttool.CopySparse(t, im.path, part, p.start, p.size)
		cmd := exec.Command(hosttool.Require(t, "fsck.vfat", "dosfstools"), "-n", part)
		if i == 1 {
			cmd = exec.Command(hosttool.Require(t, "e2fsck", "e2fsprogs"), "-fn", part)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("partition %d: %s: %v\n%s", i+1, cmd, err, out)
		}
	}
}

// has reports whether a file matching glob is among files.
func has(files []string, glob string) bool {
	for _, f := range files {
		if ok, _ := path.Match(glob, f); ok {
			return true
		}
	}
	return false
}

// checkPack checks what every pack promises: an MBR with the FAT boot
// partition first where the pack says, the root second; both fsck-clean;
// every file the pack requires on the boot partition; and its raw blobs
// at their offsets, byte for byte as the firmware package has them.
func checkPack(t *testing.T, b *boards.Board, im *sdImage, firmwareDeb string) {
	t.Helper()
	if len(im.parts) != 2 || im.parts[0].start != int64(b.Disk.FirstPartitionOffset) ||
		(im.parts[0].typ != "c" && im.parts[0].typ != "e") || im.parts[1].typ != "83" ||
		im.parts[0].bootable != b.Disk.Partitions[0].Bootable {
		t.Fatalf("partitions %+v: want FAT (bootable: %v) at %d, then Linux", im.parts, b.Disk.Partitions[0].Bootable, b.Disk.FirstPartitionOffset)
	}
	im.fsck(t)

	files := im.bootFiles(t)
	want := []string{b.Kernel.File, b.Initramfs.File}
	for _, c := range b.Configs {
		want = append(want, c.Path)
	}
	for _, d := range b.DTBs {
		if !d.Optional {
			want = append(want, path.Join(d.To, path.Base(d.Glob)))
		}
	}
	for _, fw := range b.Firmware {
		for _, g := range fw.Files {
			want = append(want, path.Join(fw.To, g))
		}
	}
	for _, w := range want {
		if !has(files, w) {
			t.Errorf("boot partition lacks %s, which the %s pack requires; it has %s", w, b.Name, strings.Join(files, " "))
		}
	}
	for _, fw := range b.Firmware {
		for _, g := range fw.Files {
			if strings.ContainsAny(g, "*?[") {
				continue
			}
			ours := im.bootFile(t, path.Join(fw.To, g))
			theirs, err := debian.DebFile(t.Context(), firmwareDeb, path.Join(fw.Dirs[0], g))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ours, theirs) {
				t.Errorf("%s differs from the package's", g)
			}
		}
	}

	raw, err := os.Open(im.path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, bl := range b.Blobs {
		theirs, err := debian.DebFile(t.Context(), firmwareDeb, bl.File)
		if err != nil {
			t.Fatal(err)
		}
		ours := make([]byte, len(theirs))
		if _, err := raw.ReadAt(ours, int64(bl.Offset)); err != nil {
			t.Fatal(err)
		}
		if int64(bl.Offset)+int64(len(theirs)) > im.parts[0].start || !bytes.Equal(ours, theirs) {
			t.Errorf("blob %s is not at byte %d as the package has it", bl.File, bl.Offset)
		}
	}
}

func TestBoardImages(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	raspi := debian.Package(t, "raspi-firmware")
	sunxi := debian.Package(t, "u-boot-sunxi")
	// The Pi boards' roots grow to fill the card on first boot.
	piCmdline := "console=tty1 console=serial0,115200 root=PARTUUID=%s-02 rootfstype=ext4 rootwait ocidisk.growroot"
	piConfig := []string{"enable_uart=1", "upstream_kernel=1", "kernel=kernel8.img", "initramfs initramfs8 followkernel"}
	type boot struct {
		board  string   // the profile ocidisk test boots with
		expect []string // besides the root's marker
		note   string   // what the output must say was tested
	}
	for _, tc := range []struct {
		board, firmware string
		absent          []string // files another model needs, not this one
		config          string   // the config carrying the command line
		configLines     []string // lines it must have, in order
		cmdline         string   // cmdline.txt, with %s for the disk signature
		boots           []boot
	}{
		{
			board: "rpi3", firmware: raspi, absent: []string{"start4.elf", "bcm2711-rpi-4-b.dtb"},
			config: "config.txt", configLines: append([]string{"arm_64bit=1"}, piConfig...), cmdline: piCmdline,
			boots: []boot{{board: "rpi3", expect: []string{"mounted /dev/mmcblk0p2", "root /dev/mmcblk0p2 / ext4 rw"}}},
		},
		{
			board: "rpi4", firmware: raspi, absent: []string{"bootcode.bin", "start.elf", "bcm2837-rpi-3-b.dtb"},
			config: "config.txt", configLines: append(append([]string{"arm_64bit=1"}, piConfig...), "arm_boost=1"), cmdline: piCmdline,
			boots: []boot{{board: "rpi4", expect: []string{"mounted /dev/vda2"}, note: "note: QEMU has no Raspberry Pi 4"}},
		},
		{
			// One image for every 64-bit Pi: booted as a Pi 3 (raspi3b) and
			// as a Pi 4 (its [pi4] section, on virt).
			board: "rpi-arm64", firmware: raspi,
			config: "config.txt", configLines: append(append([]string{"arm_64bit=1"}, piConfig...), "[pi3]", "[pi02]", "[pi4]", "arm_boost=1", "[pi5]", "[all]"),
			cmdline: piCmdline,
			boots: []boot{
				{board: "rpi-arm64", expect: []string{"mounted /dev/mmcblk0p2"}},
				{board: "rpi4", expect: []string{"mounted /dev/vda2"}, note: "from config.txt [pi4]"},
			},
		},
		{
			board: "pine64-plus", firmware: sunxi, absent: []string{"config.txt", "bootcode.bin"},
			config: "extlinux/extlinux.conf", configLines: []string{"default ocidisk", "label ocidisk", "kernel /Image", "initrd /initrd.img", "fdtdir /dtbs",
				"append console=ttyS0,115200n8 root=PARTUUID=%s-02 rootfstype=ext4 rootwait"},
			boots: []boot{{board: "pine64-plus", expect: []string{"mounted /dev/vda2"}, note: "note: QEMU has no Pine64"}},
		},
	} {
		t.Run(tc.board, func(t *testing.T) {
			b, err := boards.Load(tc.board)
			if err != nil {
				t.Fatal(err)
			}
			img := buildImage(t, "--board", tc.board, "--kernel", "deb:"+kernel, "--firmware", "deb:"+tc.firmware, "--bmap", "oci:"+root)
			im := readImage(t, img)
			checkPack(t, b, im, tc.firmware)
			files := im.bootFiles(t)
			for _, a := range tc.absent {
				if has(files, a) {
					t.Errorf("boot partition has %s, which %s does not need", a, tc.board)
				}
			}

			// The boot config as written, with the real PARTUUID.
			conf := string(im.bootFile(t, tc.config))
			at := 0
			for _, l := range tc.configLines {
				l = strings.ReplaceAll(l, "%s", im.diskID)
				i := strings.Index(conf[at:], "\n"+strings.TrimSpace(l)+"\n")
				if j := strings.Index(conf[at:], "  "+l+"\n"); i < 0 && j >= 0 {
					i = j // an extlinux label's indented lines
				}
				if i < 0 {
					t.Errorf("%s lacks %q (after byte %d):\n%s", tc.config, l, at, conf)
					continue
				}
				at += i + 1
			}
			if tc.cmdline != "" {
				want := strings.ReplaceAll(tc.cmdline, "%s", im.diskID) + "\n"
				if got := string(im.bootFile(t, "cmdline.txt")); got != want {
					t.Errorf("cmdline.txt = %q, want %q", got, want)
				}
			}
			if _, err := os.Stat(img + ".bmap"); err != nil {
				t.Error(err)
			}

			if testing.Short() {
				t.Log("not booted under -short")
				return
			}
			for _, bt := range tc.boots {
				args := []string{"--board", bt.board, "--timeout", "120s"}
				for _, e := range append(bt.expect, debian.Marker) {
					args = append(args, "--expect", regexp.QuoteMeta(e))
				}
				code, out := bootTest(t, img, args...)
				if code != exitOK {
					t.Fatalf("%s image did not boot as %s (exit %d):\n%s", tc.board, bt.board, code, tail(out, 40))
				}
				if !strings.Contains(out, "ok: "+img+" booted on "+bt.board) || !strings.Contains(out, bt.note) {
					t.Errorf("output does not say what was booted (want %q):\n%s", bt.note, tail(out, 5))
				}
			}
		})
	}
}

// Debian bookworm's kernel does not support the Pi 5: the build must say
// which file is missing, and leave nothing behind.
func TestBuildPi5WithoutItsDeviceTree(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	out := filepath.Join(t.TempDir(), "rpi5.img")
	code, _, stderr := runCLI(t, "build", "--board", "rpi5", "--kernel", "deb:"+kernel, "-o", out, "oci:"+root)
	if code != exitFailure || !strings.Contains(stderr, "bcm2712-rpi-5-b.dtb") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("exit %d, stderr %q: want exit 1 and one line naming bcm2712-rpi-5-b.dtb", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("failed build left %s", out)
	}
}

// userBoard writes a copy of an embedded pack, edited, as a user's board
// file.
func userBoard(t *testing.T, pack string, edits ...string) string {
	t.Helper()
	data, err := boards.Pack(pack)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(s, edits[i]) {
			t.Fatalf("the %s pack has no %q any more; update this test", pack, edits[i])
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
	f := filepath.Join(t.TempDir(), "my-board.yaml")
	if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// A user's board file is a pack like the embedded ones: a copy of rpi4
// with one more config.txt line builds, and so do the command line's
// config.txt additions and overlays.
func TestBuildUserBoardAndConfigTxt(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	raspi := debian.Package(t, "raspi-firmware")
	board := userBoard(t, "rpi4", "name: rpi4\n", "name: my-pi4\n", "      arm_boost=1\n", "      arm_boost=1\n      dtparam=audio=on\n")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "boot", "overlays"), 0o755)
	os.WriteFile(filepath.Join(dir, "boot", "overlays", "mine.dtbo"), []byte("overlay"), 0o644)
	snippet := filepath.Join(dir, "snippet.txt")
	os.WriteFile(snippet, []byte("gpu_mem=64\n# a comment\n"), 0o644)

	img := buildImage(t, "--board", board, "--kernel", "deb:"+kernel, "--firmware", "deb:"+raspi,
		"--boot-overlay", filepath.Join(dir, "boot"), "--config-txt-append", "@"+snippet, "--config-txt-append", "hdmi_safe=1",
		"--dtoverlay", "mine,speed=400000", "oci:"+root)
	im := readImage(t, img)
	conf := string(im.bootFile(t, "config.txt"))
	if !strings.HasPrefix(conf, "# Generated by ocidisk for board my-pi4.") || !strings.Contains(conf, "\narm_boost=1\ndtparam=audio=on\n") {
		t.Errorf("config.txt is not the user board's:\n%s", conf)
	}
	if !strings.HasSuffix(conf, "\n[all]\ngpu_mem=64\n# a comment\nhdmi_safe=1\ndtoverlay=mine,speed=400000\n") {
		t.Errorf("config.txt does not end with the additions under [all]:\n%s", conf)
	}
	if string(im.bootFile(t, "overlays/mine.dtbo")) != "overlay" {
		t.Error("the boot overlay's dtbo is missing")
	}

	out := filepath.Join(dir, "t.img")
	code, _, stderr := runCLI(t, "build", "--board", "rpi4", "--kernel", "deb:"+kernel, "--firmware", "deb:"+raspi,
		"--dtoverlay", "disable-bt", "-o", out, "oci:"+root)
	if code != exitFailure || !strings.Contains(stderr, "--dtoverlay disable-bt: no overlays/disable-bt.dtbo on the boot partition") {
		t.Errorf("a missing overlay: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("failed build left %s", out)
	}
}

// A board file with an unknown key or a blob over a partition is refused
// before anything is read, with the file, the line and the reason.
func TestBuildRefusesBadBoardFiles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		board string
		want  []string
	}{
		{"unknown key", userBoard(t, "rpi4", "arch: arm64\n", "arch: arm64\nconfig-txt: x\n"),
			[]string{"my-board.yaml", "line 10", "unknown key config-txt"}},
		{"blob over a partition", userBoard(t, "pine64-plus", "offset: 40KiB, size: 4056KiB", "offset: 40KiB, size: 8MiB"),
			[]string{"my-board.yaml", "line 29", "blobs[1].offset", "u-boot-sunxi-with-spl.fit.itb at 40KiB-8232KiB overlaps partition boot, which starts at 4MiB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "t.img")
			code, _, stderr := runCLI(t, "build", "--board", tc.board, "-o", out, "oci:/nonexistent")
			if code != exitFailure || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("exit %d, stderr %q; want exit 1 and one line", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
		})
	}
}
