package bootfs

import (
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/kernel"
	"github.com/ocidisk/ocidisk/kernel/kerneltest"
)

// The Debian-shaped inputs of the Raspberry Pi packs: a kernel with the
// upstream device trees and the SD-card modules, and a raspi-firmware
// tree.

var piDTBs = []string{
	"bcm2837-rpi-3-b.dtb", "bcm2837-rpi-3-b-plus.dtb", "bcm2837-rpi-3-a-plus.dtb", "bcm2837-rpi-cm3-io3.dtb",
	"bcm2837-rpi-zero-2-w.dtb", "bcm2711-rpi-4-b.dtb", "bcm2711-rpi-400.dtb", "bcm2711-rpi-cm4-io.dtb",
}

var piModules = map[string][]string{
	"sdhci": {"depends="}, "sdhci-pltfm": {"depends=sdhci"}, "sdhci-iproc": {"depends=sdhci-pltfm,sdhci"},
	"bcm2835": {"depends="}, "fixed": {"depends="}, "gpio-regulator": {"depends="},
	"virtio_pci": {"depends="}, "virtio_blk": {"depends="}, "ext4": {"depends="},
}

// piKernel builds a kernel tree with the given extra files (paths below
// the device tree directory) besides the Pi device trees and modules.
func piKernel(t *testing.T, extra ...string) *kernel.Kernel {
	t.Helper()
	tr := fstree.New()
	img := make([]byte, 4096)
	copy(img[56:], "ARM\x64")
	v := "6.1.0-1-arm64"
	files := map[string][]byte{"boot/vmlinuz-" + v: img}
	for _, d := range piDTBs {
		files["usr/lib/linux-image-"+v+"/broadcom/"+d] = []byte("dtb " + d)
	}
	for _, e := range extra {
		files["usr/lib/linux-image-"+v+"/"+e] = []byte(e)
	}
	for name, info := range piModules {
		files["lib/modules/"+v+"/kernel/"+name+".ko"] = kerneltest.Module(append(info, "name="+strings.ReplaceAll(name, "-", "_"))...)
	}
	putAll(t, tr, files)
	k, err := kernel.Find(tr)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// piFirmware is raspi-firmware's tree with its files in dir.
func piFirmware(t *testing.T, dir string, skip string) *fstree.Tree {
	t.Helper()
	tr := fstree.New()
	files := map[string][]byte{}
	for _, f := range []string{"bootcode.bin", "start.elf", "fixup.dat", "start_x.elf", "fixup_x.dat",
		"start4.elf", "fixup4.dat", "start4x.elf", "fixup4x.dat"} {
		if f != skip {
			files[dir+"/"+f] = []byte(f)
		}
	}
	files["usr/share/doc/raspi-firmware/copyright"] = []byte("c")
	putAll(t, tr, files)
	return tr
}

func putAll(t *testing.T, tr *fstree.Tree, files map[string][]byte) {
	t.Helper()
	for p, b := range files {
		if err := tr.Put(p, fstree.NewFile(0o644, int64(len(b)), fstree.Bytes(b)), fstree.NewDir(0o755)); err != nil {
			t.Fatal(err)
		}
	}
}

func loadBoard(t *testing.T, name string) *boards.Board {
	t.Helper()
	b, err := boards.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// files lists the regular files of a boot partition.
func files(t *testing.T, tr *fstree.Tree) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	if err := tr.Walk(func(p string, n *fstree.Node) error {
		if n.Type == fstree.TypeRegular {
			out[p] = true
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAssemblePi(t *testing.T) {
	for _, tc := range []struct {
		board, fwDir string
		want, not    []string
		modules      string
	}{
		{
			board: "rpi3", fwDir: "usr/lib/raspi-firmware",
			want: []string{"bootcode.bin", "start.elf", "fixup.dat", "start_x.elf", "fixup_x.dat",
				"bcm2837-rpi-3-b.dtb", "bcm2837-rpi-3-b-plus.dtb", "bcm2837-rpi-3-a-plus.dtb", "bcm2837-rpi-cm3-io3.dtb",
				"kernel8.img", "initramfs8", "config.txt", "cmdline.txt"},
			not:     []string{"start4.elf", "bcm2711-rpi-4-b.dtb", "copyright"},
			modules: "sdhci sdhci_pltfm sdhci_iproc bcm2835 ext4 virtio_pci virtio_blk",
		},
		{
			// A root image that carries its firmware in /boot/firmware.
			board: "rpi4", fwDir: "boot/firmware",
			want:    []string{"start4.elf", "fixup4.dat", "start4x.elf", "bcm2711-rpi-4-b.dtb", "bcm2711-rpi-400.dtb", "bcm2711-rpi-cm4-io.dtb", "kernel8.img"},
			not:     []string{"bootcode.bin", "start.elf", "bcm2837-rpi-3-b.dtb"},
			modules: "fixed gpio_regulator sdhci sdhci_pltfm sdhci_iproc ext4 virtio_pci virtio_blk",
		},
		{
			board: "rpizero2w", fwDir: "usr/lib/raspi-firmware",
			want: []string{"bootcode.bin", "start.elf", "bcm2837-rpi-zero-2-w.dtb"},
			not:  []string{"bcm2837-rpi-3-b.dtb", "start4.elf"},
		},
		{
			// A plain directory of firmware files; the Pi 5 device tree is
			// optional here, and sdhci-brcmstb with it.
			board: "rpi-arm64", fwDir: "",
			want: []string{"bootcode.bin", "start.elf", "start4.elf", "fixup4.dat", "bcm2837-rpi-3-b.dtb",
				"bcm2837-rpi-zero-2-w.dtb", "bcm2711-rpi-4-b.dtb", "bcm2711-rpi-cm4-io.dtb"},
			modules: "fixed gpio_regulator sdhci sdhci_pltfm sdhci_iproc bcm2835 ext4 virtio_pci virtio_blk",
		},
	} {
		t.Run(tc.board, func(t *testing.T) {
			b := loadBoard(t, tc.board)
			res, err := Assemble(laid(t, b), piKernel(t), Options{
				PartUUID: rootPartUUID("1a2b3c4d-02"), Firmware: piFirmware(t, tc.fwDir, ""), Time: time.Unix(1_700_000_000, 0),
			})
			if err != nil {
				t.Fatal(err)
			}
			got := files(t, res.Boot)
			for _, w := range tc.want {
				if !got[w] {
					t.Errorf("boot partition lacks %s; has %v", w, got)
				}
			}
			for _, n := range tc.not {
				if got[n] {
					t.Errorf("boot partition has %s, which %s does not need", n, tc.board)
				}
			}
			if got["start.elf"] && read(t, res.Boot, "start.elf") != "start.elf" {
				t.Error("start.elf has the wrong content")
			}
			// The Pi boards grow their root on first boot by default.
			wantCmdline := "console=tty1 console=serial0,115200 root=PARTUUID=1a2b3c4d-02 rootfstype=ext4 rootwait ocidisk.growroot"
			if c := read(t, res.Boot, "cmdline.txt"); c != wantCmdline+"\n" || res.Cmdline != wantCmdline {
				t.Errorf("cmdline.txt %q, Cmdline %q; want %q", c, res.Cmdline, wantCmdline)
			}
			conf := read(t, res.Boot, "config.txt")
			for _, w := range []string{"\narm_64bit=1\n", "\nenable_uart=1\n", "\nupstream_kernel=1\n", "\nkernel=kernel8.img\n", "\ninitramfs initramfs8 followkernel\n"} {
				if !strings.Contains(conf, w) {
					t.Errorf("config.txt lacks %q:\n%s", w, conf)
				}
			}
			if tc.modules != "" {
				var names []string
				for _, m := range res.Modules {
					names = append(names, m.Name)
				}
				if g := strings.Join(names, " "); g != tc.modules {
					t.Errorf("initramfs modules %q, want %q", g, tc.modules)
				}
			}
		})
	}
}

func TestAssemblePiErrors(t *testing.T) {
	opts := func(fw *fstree.Tree) Options {
		return Options{PartUUID: rootPartUUID("1a2b3c4d-02"), Firmware: fw, FirmwareSource: "deb:raspi-firmware.deb"}
	}
	for _, tc := range []struct {
		name, board string
		k           *kernel.Kernel
		opts        Options
		want        []string
	}{
		{"missing firmware file", "rpi3", piKernel(t), opts(piFirmware(t, "usr/lib/raspi-firmware", "bootcode.bin")),
			[]string{"board rpi3", "firmware file bootcode.bin", "deb:raspi-firmware.deb", "searched /usr/lib/raspi-firmware, /boot/firmware, /"}},
		{"missing Pi 4 firmware", "rpi-arm64", piKernel(t), opts(piFirmware(t, "boot/firmware", "fixup4.dat")),
			[]string{"model pi4", "fixup4.dat"}},
		{"no firmware source", "rpi4", piKernel(t), opts(nil), []string{"model pi4 needs firmware", "start4.elf"}},
		// Debian bookworm's kernel has no Pi 5 device tree: the build names
		// the file, not the missing SD driver that would follow.
		{"Pi 5 without its device tree", "rpi5", piKernel(t), opts(nil), []string{"board rpi5", "lacks device tree broadcom/bcm2712-rpi-5-b.dtb"}},
		{"Pi 5 without its SD driver", "rpi5", piKernel(t, "broadcom/bcm2712-rpi-5-b.dtb"), opts(nil), []string{"module sdhci_brcmstb not found"}},
		{"config.txt text for a board without one", "qemu-virt-arm64", fakeKernel(t, ""),
			Options{PartUUID: rootPartUUID("1a2b3c4d-02"), ConfigAppend: "x=1"}, []string{"no config.txt", "--config-txt-append"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Assemble(laid(t, loadBoard(t, tc.board)), tc.k, tc.opts)
			if err == nil {
				t.Fatal("Assemble succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestAssembleConfigTxtAppend(t *testing.T) {
	overlay := fstree.New()
	putAll(t, overlay, map[string][]byte{"overlays/mine.dtbo": []byte("mine")})
	for _, tc := range []struct {
		name     string
		k        *kernel.Kernel
		opts     Options
		want     string // the end of config.txt
		err      string
		noAppend bool
	}{
		{name: "nothing", k: piKernel(t), noAppend: true},
		{name: "text", k: piKernel(t), opts: Options{ConfigAppend: "dtparam=audio=on\ngpu_mem=64"},
			want: "\n[all]\ndtparam=audio=on\ngpu_mem=64\n"},
		{name: "overlay from the kernel", k: piKernel(t, "overlays/disable-bt.dtbo"), opts: Options{DTOverlays: []string{"disable-bt"}},
			want: "\n[all]\ndtoverlay=disable-bt\n"},
		{name: "overlay with parameters from a boot overlay", k: piKernel(t),
			opts: Options{ConfigAppend: "x=1\n", DTOverlays: []string{"mine,speed=400000"}, BootOverlay: overlay},
			want: "\n[all]\nx=1\ndtoverlay=mine,speed=400000\n"},
		{name: "missing overlay", k: piKernel(t), opts: Options{DTOverlays: []string{"vc4-kms-v3d"}},
			err: "--dtoverlay vc4-kms-v3d: no overlays/vc4-kms-v3d.dtbo on the boot partition"},
		{name: "bad overlay", k: piKernel(t), opts: Options{DTOverlays: []string{"../x"}}, err: "want NAME"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			o.PartUUID, o.Firmware = rootPartUUID("1a2b3c4d-02"), piFirmware(t, "usr/lib/raspi-firmware", "")
			res, err := Assemble(laid(t, loadBoard(t, "rpi3")), tc.k, o)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			conf := read(t, res.Boot, "config.txt")
			if tc.noAppend {
				if strings.Contains(conf, "[all]") {
					t.Errorf("config.txt has an [all] section without additions:\n%s", conf)
				}
				return
			}
			if !strings.HasSuffix(conf, tc.want) || !strings.HasPrefix(conf, "# Generated by ocidisk for board rpi3.") {
				t.Errorf("config.txt does not end in %q:\n%s", tc.want, conf)
			}
		})
	}
}
