package boards

import (
	"strings"
	"testing"
	"text/template"
)

func TestCatalogLoads(t *testing.T) {
	bs, err := Catalog()
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) == 0 {
		t.Fatal("no embedded boards")
	}
	for _, b := range bs {
		if l, err := b.Layout(LayoutOptions{}); err != nil || l.Partition(RoleBoot) == nil || l.Root() == nil {
			t.Errorf("%s: missing boot or root partition", b.Name)
		}
	}
	b, err := Load("qemu-virt-arm64")
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := b.Layout(LayoutOptions{}); l.Root().Number != 2 || b.Disk.FirstPartitionOffset != 0 /* diskimage.DefaultFirstOffset, 4 MiB */ || b.QEMU.Firmware.EnvSize != 0x40000 {
		t.Errorf("qemu-virt-arm64 = %+v", b)
	}
}

func TestLoadUnknown(t *testing.T) {
	_, err := Load("no-such-board")
	if err == nil || !strings.Contains(err.Error(), "qemu-virt-arm64") {
		t.Fatalf("err = %v, want the list of known boards", err)
	}
}

// valid is a minimal board file; each case below breaks one thing.
const valid = `name: t
description: test board
arch: arm64
disk:
  table: mbr
  first-partition-offset: 1MiB
  partitions:
    - {name: boot, role: boot, fs: fat, size: 64MiB}
    - {name: root, role: root, fs: ext4, size: auto}
kernel: {file: Image}
initramfs: {file: initrd.img, compression: gzip, modules: [ext4]}
console: ttyAMA0
cmdline: root=PARTUUID={{.RootPartUUID}}
qemu:
  binary: qemu-system-aarch64
  machine: virt
  drive: virtio
  boot: extlinux
`

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, old, new string
		want           []string // substrings of the error
	}{
		{"valid", "", "", nil},
		{"unknown key", "arch: arm64\n", "arch: arm64\ncolour: red\n", []string{"line 4", "unknown key colour"}},
		{"unknown nested key", "kernel: {file: Image}", "kernel: {file: Image, compresed: true}", []string{"line 10", "unknown key compresed"}},
		{"bad arch", "arch: arm64", "arch: riscv64", []string{"line 3", "arch:", `"riscv64" is not one of arm64, arm`}},
		{"bad table", "table: mbr", "table: apm", []string{"line 5", "disk.table"}},
		{"bad fs", "fs: ext4", "fs: xfs", []string{"line 9", "disk.partitions[1].fs", "xfs"}},
		{"bad size", "size: 64MiB", "size: lots", []string{"line 8", "lots"}},
		{"odd size", "size: 64MiB", "size: 1000", []string{"disk.partitions[0].size", "multiple of 512"}},
		{"no root", "role: root", "role: boot", []string{"disk.partitions[1].role", "second boot"}},
		{"bad template", "{{.RootPartUUID}}", "{{.RootUUID}}", []string{"line 13", "cmdline", "RootUUID"}},
		{"escaping path", "file: initrd.img", "file: ../initrd.img", []string{"initramfs.file", "leaves"}},
		{"bad compression", "compression: gzip", "compression: lz4", []string{"initramfs.compression"}},
		{"bad drive", "drive: virtio", "drive: ide", []string{"line 17", "qemu.drive"}},
		{"wrong type", "modules: [ext4]", "modules: ext4", []string{"line 11"}},
		{"bad optional module", "modules: [ext4]}", "modules: [ext4], optional-modules: [a/b]}", []string{"initramfs.optional-modules[0]"}},
		{"bad boot", "boot: extlinux", "boot: grub", []string{"line 18", "qemu.boot", "grub"}},
		{"bios without firmware", "boot: extlinux", "boot: bios", []string{"qemu.boot", "qemu.firmware"}},
		{"config.txt without pi", "boot: extlinux", "boot: config.txt", []string{"qemu.pi.kernel", "missing"}},
		{"pi for extlinux", "boot: extlinux", "boot: extlinux\n  pi: {kernel: kernel8.img}", []string{"qemu.pi", "only for boot: config.txt"}},
		{"blob without partition offset",
			"  first-partition-offset: 1MiB\n  partitions:\n    - {name: boot, role: boot, fs: fat, size: 64MiB}\n    - {name: root, role: root, fs: ext4, size: auto}\n",
			"  partitions:\n    - {name: boot, role: boot, fs: fat, size: 64MiB}\n    - {name: root, role: root, fs: ext4, size: auto}\nblobs: [{file: spl.bin, offset: 8KiB}]\n",
			[]string{"disk.first-partition-offset", "missing"}},
		{"blob over a partition", "kernel: {file: Image}", "kernel: {file: Image}\nblobs:\n  - {file: u/spl.bin, offset: 8KiB, size: 32KiB}\n  - {file: u/u-boot.itb, offset: 40KiB, size: 1MiB}",
			[]string{"line 13", "blobs[1].offset", "u-boot.itb at 40KiB-1064KiB overlaps partition boot, which starts at 1MiB"}},
		{"blob over the table", "kernel: {file: Image}", "kernel: {file: Image}\nblobs: [{file: spl.bin, offset: 256}]",
			[]string{"blobs[0].offset", "overlaps the mbr partition table"}},
		{"blobs overlapping", "kernel: {file: Image}", "kernel: {file: Image}\nblobs:\n  - {file: a.bin, offset: 8KiB, size: 64KiB}\n  - {file: b.bin, offset: 40KiB}",
			[]string{"blobs[1].offset", "b.bin at 40KiB-40961B overlaps blobs[0] (8KiB-72KiB)"}},
		{"blob with a negative size", "kernel: {file: Image}", "kernel: {file: Image}\nblobs: [{file: a.bin, offset: 8KiB, size: -1}]",
			[]string{"line 11", `"-1" is not a size`}},
		{"two user configs", "cmdline: root", "configs:\n  - {path: a.txt, template: x, user-append: true}\n  - {path: b.txt, template: y, user-append: true}\ncmdline: root",
			[]string{"configs[1].user-append", "a.txt already takes"}},
		{"relative boot mount", "console: ttyAMA0", "boot-mount: boot/firmware\nconsole: ttyAMA0", []string{"line 12", "boot-mount", "absolute directory"}},
		{"boot mount on /", "console: ttyAMA0", "boot-mount: /\nconsole: ttyAMA0", []string{"boot-mount"}},
		{"growing boot", "size: 64MiB}", "size: 64MiB, grow: true}", []string{"disk.partitions[0].grow", "only the root partition, last on the disk"}},
		{"esp not fat", "{name: boot, role: boot, fs: fat, size: 64MiB}", "{name: boot, role: boot, fs: ext4, esp: true}",
			[]string{"line 8", "disk.partitions[0].esp", "fs: fat"}},
		{"esp with a type", "{name: boot, role: boot, fs: fat, size: 64MiB}", "{name: boot, role: boot, fs: fat, esp: true, type: 0c}",
			[]string{"disk.partitions[0].esp"}},
		{"uki without kernel file", "kernel: {file: Image}\ninitramfs: {file: initrd.img,",
			"kernel: {uncompressed: true}\nuki: {stub: [linuxaa64.efi.stub], path: EFI/BOOT/BOOTAA64.EFI}\ninitramfs: {", nil},
		{"no kernel file without uki", "kernel: {file: Image}", "kernel: {uncompressed: true}", []string{"line 10", "kernel.file", "missing"}},
		{"uki without stub", "kernel: {file: Image}", "kernel: {file: Image}\nuki: {path: EFI/BOOT/BOOTAA64.EFI}", []string{"line 11", "uki.stub", "missing"}},
		{"uki without path", "kernel: {file: Image}", "kernel: {file: Image}\nuki: {stub: [a.stub]}", []string{"uki.path", "missing"}},
		{"uki bad glob", "kernel: {file: Image}", "kernel: {file: Image}\nuki: {stub: [\"[\"], path: x.efi}", []string{"uki.stub[0]"}},
		{"uefi without firmware", "boot: extlinux", "boot: uefi", []string{"line 18", "qemu.boot", "qemu.uefi"}},
		{"uefi", "boot: extlinux", "boot: uefi\n  uefi: {bios: /usr/share/qemu-efi-aarch64/QEMU_EFI.fd, package: qemu-efi-aarch64}", nil},
		{"uefi without package", "boot: extlinux", "boot: uefi\n  uefi: {bios: /x.fd}", []string{"qemu.uefi.package", "missing"}},
		{"uefi for extlinux", "boot: extlinux", "boot: extlinux\n  uefi: {bios: /x.fd, package: p}", []string{"line 19", "qemu.uefi", "only for boot: uefi"}},
		{"u-boot for uefi", "boot: extlinux", "boot: uefi\n  uefi: {bios: /x.fd, package: p}\n  firmware: {bios: /u.bin, package: u, env-size: 8KiB, flash-size: 64MiB}",
			[]string{"qemu.firmware", "only for boot: bios"}},
		{"escaping firmware dir", "cmdline: root", "firmware: [{model: m, dirs: [../x], files: [a.bin]}]\ncmdline: root",
			[]string{"firmware[0].dirs[0]", "leaves"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(valid, tc.old, tc.new, 1)
			if src == valid && tc.old != "" {
				t.Fatalf("case does not change the input")
			}
			b, err := Parse("t.yaml", []byte(src))
			if tc.want == nil {
				if err != nil || b.Name != "t" {
					t.Fatalf("Parse = %v, %v", b, err)
				}
				return
			}
			if err == nil {
				t.Fatal("Parse accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "board t.yaml: ") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

// TestPiPacks checks what the Raspberry Pi packs promise a user flashing a
// card: an MBR with the FAT boot partition first and the root second, a
// command line with the serial console and the root by PARTUUID, and a
// config.txt that takes the user's additions and names the kernel and
// initramfs the pack installs.
func TestPiPacks(t *testing.T) {
	for _, tc := range []struct {
		name     string
		firmware []string // every firmware file the pack requires
		sections []string // config.txt's model sections, in order
	}{
		{"rpi3", []string{"bootcode.bin", "start.elf", "fixup.dat"}, nil},
		{"rpizero2w", []string{"bootcode.bin", "start.elf", "fixup.dat"}, nil},
		{"rpi4", []string{"start4.elf", "fixup4.dat"}, nil},
		{"rpi5", nil, nil},
		{"rpi-arm64", []string{"bootcode.bin", "start.elf", "fixup.dat", "start4.elf", "fixup4.dat"}, []string{"[pi3]", "[pi02]", "[pi4]", "[pi5]", "[all]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Load(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			p := b.Disk.Partitions
			if b.Disk.Table != "mbr" || len(p) != 2 || p[0].Role != RoleBoot || p[0].FS != "fat" || p[1].Role != RoleRoot {
				t.Errorf("disk %+v: want MBR, FAT boot then root", b.Disk)
			}
			// As Raspberry Pi OS: the root fills the card on first boot,
			// the boot partition is mounted on /boot/firmware.
			if !p[1].Grow || b.BootMount != "/boot/firmware" {
				t.Errorf("root grows: %v, boot partition on %q; want a growing root and /boot/firmware", p[1].Grow, b.BootMount)
			}
			data := TemplateData{Board: b.Name, Console: b.Console, RootPartUUID: "1a2b3c4d-02", RootFS: "ext4",
				Kernel: b.Kernel.File, Initramfs: b.Initramfs.File}
			cmdline := render(t, b.Cmdline, data)
			for _, w := range []string{"console=serial0,115200", "root=PARTUUID=1a2b3c4d-02", "rootwait"} {
				if !strings.Contains(" "+cmdline+" ", " "+w+" ") {
					t.Errorf("command line %q lacks %s", cmdline, w)
				}
			}
			var conf string
			for _, c := range b.Configs {
				if c.Path == "config.txt" && c.UserAppend && c.OverlayDir == "overlays" {
					conf = render(t, c.Template, data)
				}
			}
			for _, w := range append([]string{"enable_uart=1", "kernel=" + b.Kernel.File, "initramfs " + b.Initramfs.File + " followkernel"}, tc.sections...) {
				i := strings.Index(conf, "\n"+w+"\n")
				if i < 0 {
					t.Errorf("config.txt lacks %q (in this order):\n%s", w, conf)
					continue
				}
				conf = conf[i+1:]
			}
			var fw []string
			for _, s := range b.Firmware {
				fw = append(fw, s.Files...)
			}
			if strings.Join(fw, " ") != strings.Join(tc.firmware, " ") {
				t.Errorf("firmware files %q, want %q", fw, tc.firmware)
			}
			if q := b.QEMU; q == nil || q.Boot != BootConfigTxt || q.Pi == nil {
				t.Errorf("QEMU profile %+v: want a config.txt boot", q)
			}
		})
	}
}

func render(t *testing.T, text string, data TemplateData) string {
	t.Helper()
	var b strings.Builder
	if err := template.Must(template.New("").Option("missingkey=error").Parse(text)).Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
