package qemu

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/internal/hosttool"
)

func TestSDSize(t *testing.T) {
	for _, tc := range []struct{ in, want int64 }{
		{1 << 30, 1 << 30}, {1<<30 + 512, 2 << 30}, {656 << 20, 1 << 30}, {3, 4}, {1, 1}, {0, 0},
	} {
		if got := sdSize(tc.in); got != tc.want {
			t.Errorf("sdSize(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// TestQcow2Overlay has qemu-img judge the SD card overlay: a clean qcow2
// of the next power of two whose content is the image, then zeros.
func TestQcow2Overlay(t *testing.T) {
	qemuImg := hosttool.Require(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk, with comma.img")
	data := make([]byte, 3<<20+512)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	if err := os.WriteFile(raw, data, 0o644); err != nil {
		t.Fatal(err)
	}
	overlay := filepath.Join(dir, "sd.qcow2")
	if err := writeQcow2Overlay(overlay, raw, "raw", sdSize(int64(len(data)))); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(qemuImg, "check", overlay).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img check: %v\n%s", err, out)
	}
	out, err := exec.Command(qemuImg, "info", "--output=json", overlay).Output()
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Format      string `json:"format"`
		VirtualSize int64  `json:"virtual-size"`
		Backing     string `json:"full-backing-filename"`
		BackingFmt  string `json:"backing-filename-format"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	if info.Format != "qcow2" || info.VirtualSize != 4<<20 || info.Backing != raw || info.BackingFmt != "raw" {
		t.Fatalf("qemu-img info: %s", out)
	}
	// Read back through QEMU's block layer: the image, then zeros.
	flat := filepath.Join(dir, "flat.img")
	if out, err := exec.Command(qemuImg, "convert", "-O", "raw", overlay, flat).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v\n%s", err, out)
	}
	got, _ := os.ReadFile(flat)
	if len(got) != 4<<20 || !bytes.Equal(got[:len(data)], data) || bytes.ContainsFunc(got[len(data):], func(r rune) bool { return r != 0 }) {
		t.Fatal("the overlay does not read as the image followed by zeros")
	}
}

// piImage makes a disk image the way a person would without ocidisk:
// sfdisk for the table, mkfs.fat and mcopy for the boot partition, so that
// the direct boot is judged on files that our writers did not make.
func piImage(t *testing.T, files map[string]string) string {
	t.Helper()
	sfdisk := hosttool.Require(t, "sfdisk", "fdisk")
	mkfs := hosttool.Require(t, "mkfs.fat", "dosfstools")
	mcopy := hosttool.Require(t, "mcopy", "mtools")
	mmd := hosttool.Require(t, "mmd", "mtools")
	dir := t.TempDir()
	fatImg := filepath.Join(dir, "fat.img")
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	run(mkfs, "-C", "-F", "16", fatImg, "16384")
	made := map[string]bool{}
	for name, data := range files {
		if d := filepath.Dir(name); d != "." && !made[d] {
			run(mmd, "-i", fatImg, "::"+d)
			made[d] = true
		}
		host := filepath.Join(dir, "f")
		os.WriteFile(host, []byte(data), 0o644)
		run(mcopy, "-i", fatImg, host, "::"+name)
	}
	img := filepath.Join(dir, "disk.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	// 1 MiB, the 16 MiB FAT, a 1 MiB root and a stray sector: not a power
	// of two, as ocidisk's images rarely are.
	f.Truncate(18<<20 + 512)
	fat, _ := os.Open(fatImg)
	if _, err := io.Copy(io.NewOffsetWriter(f, 1<<20), fat); err != nil {
		t.Fatal(err)
	}
	fat.Close()
	f.Close()
	cmd := exec.Command(sfdisk, "-q", img)
	cmd.Stdin = strings.NewReader("label: dos\nlabel-id: 0x1a2b3c4d\nstart=2048, size=32768, type=e\nstart=34816, size=2048, type=83\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	return img
}

func TestDirectBoot(t *testing.T) {
	img := piImage(t, map[string]string{
		"config.txt": "arm_64bit=1\nupstream_kernel=1\nkernel=kernel8.img\ninitramfs initramfs8 followkernel\n" +
			"[pi4]\nkernel=k4.img\n[all]\ndtoverlay=disable-bt\n",
		"cmdline.txt":         "console=tty1 console=serial0,115200 root=PARTUUID=1a2b3c4d-02 rootwait\nignored second line\n",
		"kernel8.img":         "kernel for the pi3",
		"k4.img":              "kernel for the pi4",
		"initramfs8":          "initramfs",
		"bcm2837-rpi-3-b.dtb": "pi3 dtb",
		"Image":               "extlinux kernel",
		"initrd.img":          "extlinux initrd",
		"extlinux/extlinux.conf": "default l\nlabel l\n kernel /Image\n initrd /initrd.img\n fdtdir /dtbs\n" +
			" append console=ttyS0,115200n8 root=PARTUUID=1a2b3c4d-02 rootwait\n",
	})
	load := func(t *testing.T, board string) *boards.QEMU {
		t.Helper()
		b, err := boards.Load(board)
		if err != nil {
			t.Fatal(err)
		}
		return b.QEMU
	}
	for _, tc := range []struct {
		board               string
		kernel, initrd, dtb string // the contents QEMU is given
		append, loaded      string
		qcow2               bool
	}{
		// The Pi 3's console is its mini UART, as on the board.
		{board: "rpi3", kernel: "kernel for the pi3", initrd: "initramfs", dtb: "pi3 dtb",
			append: "console=tty1 console=ttyS1,115200 root=PARTUUID=1a2b3c4d-02 rootwait",
			loaded: "kernel8.img, initramfs8, bcm2837-rpi-3-b.dtb, cmdline.txt from config.txt [pi3] (device tree overlays not applied: dtoverlay=disable-bt); console=serial0 as ttyS1",
			qcow2:  true},
		{board: "rpi4", kernel: "kernel for the pi4", initrd: "initramfs",
			append: "console=tty1 console=ttyAMA0,115200 root=PARTUUID=1a2b3c4d-02 rootwait",
			loaded: "k4.img, initramfs8, cmdline.txt from config.txt [pi4] (device tree overlays not applied: dtoverlay=disable-bt); console=serial0 as ttyAMA0"},
		{board: "pine64-plus", kernel: "extlinux kernel", initrd: "extlinux initrd",
			append: "console=ttyAMA0,115200n8 root=PARTUUID=1a2b3c4d-02 rootwait",
			loaded: "Image, initrd.img from extlinux/extlinux.conf label l; console=ttyS0 as ttyAMA0"},
	} {
		t.Run(tc.board, func(t *testing.T) {
			p := load(t, tc.board)
			hosttool.Require(t, p.Binary, p.Package)
			before := fileBytes(t, img)
			v, err := Prepare(Config{Profile: p, Image: img, BootPartition: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			args := strings.Join(v.Args, " ")
			for opt, want := range map[string]string{"-kernel": tc.kernel, "-initrd": tc.initrd, "-dtb": tc.dtb} {
				got := ""
				if i := indexOf(v.Args, opt); i >= 0 {
					got = string(fileBytes(t, v.Args[i+1]))
				}
				if got != want {
					t.Errorf("%s gets %q, want %q", opt, got, want)
				}
			}
			if i := indexOf(v.Args, "-append"); i < 0 || v.Args[i+1] != tc.append {
				t.Errorf("command line in %s, want -append %q", args, tc.append)
			}
			if v.Loaded != tc.loaded {
				t.Errorf("Loaded = %q\nwant      %q", v.Loaded, tc.loaded)
			}
			if tc.qcow2 != strings.Contains(args, "format=qcow2,snapshot=on,file="+v.dir+"/sd.qcow2") ||
				!tc.qcow2 && !strings.Contains(args, "format=raw,snapshot=on,file="+img) {
				t.Errorf("drive in %s: want qcow2 %v", args, tc.qcow2)
			}
			if !bytes.Equal(before, fileBytes(t, img)) {
				t.Error("preparing the boot changed the image")
			}
		})
	}
	t.Run("errors", func(t *testing.T) {
		p := load(t, "rpi3")
		hosttool.Require(t, p.Binary, p.Package)
		for _, tc := range []struct {
			part int
			want string
		}{{2, "boot partition 2: not a FAT filesystem"}, {3, "no partition 3"}} {
			if _, err := Prepare(Config{Profile: p, Image: img, BootPartition: tc.part}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("partition %d: %v, want %q", tc.part, err, tc.want)
			}
		}
		other := piImage(t, map[string]string{"config.txt": "kernel=missing.img\n", "bcm2710-rpi-3-b.dtb": "x", "cmdline.txt": "x\n"})
		if _, err := Prepare(Config{Profile: p, Image: other}); err == nil || !strings.Contains(err.Error(), "kernel missing.img is not on the boot partition") {
			t.Errorf("missing kernel: %v", err)
		}
	})
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func fileBytes(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
