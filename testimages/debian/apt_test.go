package debian

import (
	"bytes"
	"cmp"
	"debug/pe"
	"encoding/binary"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
)

func TestMetaTarget(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Pkg
		want string
	}{
		{"kernel metapackage", Pkg{Version: "6.1.192-2", Size: 1448, Depends: "linux-image-6.1.0-56-arm64 (= 6.1.192-2)"}, "linux-image-6.1.0-56-arm64"},
		{"other version", Pkg{Version: "6.1.192-2", Size: 1448, Depends: "linux-image-6.1.0-56-arm64 (= 6.1.190-1)"}, ""},
		{"two deps", Pkg{Version: "1", Size: 1448, Depends: "a (= 1), b"}, ""},
		{"alternatives", Pkg{Version: "1", Size: 1448, Depends: "a (= 1) | b"}, ""},
		{"big package", Pkg{Version: "1", Size: 1 << 20, Depends: "a (= 1)"}, ""},
		{"no deps", Pkg{Version: "1", Size: 100}, ""},
		{"unversioned", Pkg{Version: "1", Size: 100, Depends: "a"}, ""},
	} {
		if got := metaTarget(tc.p); got != tc.want {
			t.Errorf("%s: metaTarget = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestParseStanza(t *testing.T) {
	in := "Package: busybox-static\nVersion: 1:1.35.0-4+deb12u1+b1\nArchitecture: arm64\n" +
		"Depends: libc6 (>= 2.34)\nDescription: x\n continued\nFilename: pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_arm64.deb\n" +
		"Size: 822236\nSHA256: 732c\n\nPackage: second\nVersion: 2\n"
	got := parseStanza([]byte(in))
	want := Pkg{Name: "busybox-static", Version: "1:1.35.0-4+deb12u1+b1", Arch: "arm64",
		Filename: "pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_arm64.deb", SHA256: "732c",
		Size: 822236, Depends: "libc6 (>= 2.34)"}
	if got != want {
		t.Errorf("parseStanza = %+v\nwant %+v", got, want)
	}
	if got.DebName() != "busybox-static_1.35.0-4+deb12u1+b1_arm64.deb" {
		t.Errorf("DebName = %q", got.DebName())
	}
}

// The fetched packages are what dpkg-deb says they are: the kernel
// metapackage resolved to a real image, an Architecture: all package found
// without its architecture.
func TestPackages(t *testing.T) {
	dpkgDeb := hosttool.Require(t, "dpkg-deb", "dpkg")
	for _, tc := range []struct {
		deb          string
		prefix, arch string
	}{
		{KernelDeb(t), "linux-image-6.1.0-", "arm64"},
		{Package(t, BusyboxPackage), "busybox-static", "arm64"},
		{Package(t, "raspi-firmware"), "raspi-firmware", "all"},
	} {
		out, err := exec.Command(dpkgDeb, "-f", tc.deb, "Package", "Architecture").Output()
		if err != nil {
			t.Fatalf("dpkg-deb -f %s: %v", tc.deb, err)
		}
		s := string(out)
		if !strings.Contains(s, "Package: "+tc.prefix) || !strings.Contains(s, "Architecture: "+tc.arch+"\n") {
			t.Errorf("%s: control says\n%s\nwant a %s* package for %s", filepath.Base(tc.deb), s, tc.prefix, tc.arch)
		}
		if strings.Contains(s, "Package: "+KernelPackage+"\n") {
			t.Errorf("%s: the metapackage was not followed", tc.deb)
		}
		if strings.Contains(filepath.Base(tc.deb), ":") {
			t.Errorf("%s: a colon in the file name breaks deb:FILE spellings", tc.deb)
		}
	}
}

func TestKernelSpecPackage(t *testing.T) {
	for _, tc := range []struct {
		k    KernelSpec
		want string // "" for an error
	}{
		{KernelSpec{}, "linux-image-arm64:arm64"},
		{KernelSpec{Suite: "bookworm-backports"}, "linux-image-arm64:arm64/bookworm-backports"},
		{KernelSpec{Arch: "armhf"}, "linux-image-armmp:armhf"},
		{KernelSpec{Arch: "armhf", Flavour: "armmp-lpae"}, "linux-image-armmp-lpae:armhf"},
		{KernelSpec{Arch: "armhf", Flavour: "arm64"}, ""},
		{KernelSpec{Flavour: "armmp"}, ""},
		{KernelSpec{Arch: "riscv64"}, ""},
	} {
		got, err := tc.k.Package()
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("%+v: Package() = %q, %v; want %q", tc.k, got, err, tc.want)
		}
	}
}

// dtbCompatible checks that b is a flattened device tree (magic and total
// size) whose content names compatible, the board's compatible string.
func dtbCompatible(t *testing.T, name string, b []byte, compatible string) {
	t.Helper()
	if len(b) < 40 || binary.BigEndian.Uint32(b) != 0xd00dfeed || int(binary.BigEndian.Uint32(b[4:])) != len(b) {
		t.Errorf("%s: not a flattened device tree of its own size (%d bytes)", name, len(b))
		return
	}
	if !bytes.Contains(b, []byte(compatible+"\x00")) {
		t.Errorf("%s: no compatible string %q", name, compatible)
	}
}

// Debian's armhf kernels (armmp and armmp-lpae, the kernels for QEMU virt
// with a Cortex-A15 and for the Pi 2) and bookworm-backports' arm64 kernel
// (the first Debian kernel with the Pi 5's device tree) are what their
// names say: the package and architecture, a kernel image of the right
// kind, and the board's device tree.
func TestKernelPackages(t *testing.T) {
	dpkgDeb := hosttool.Require(t, "dpkg-deb", "dpkg")
	for _, tc := range []struct {
		k                   KernelSpec
		arch, flavour       string
		dtb, compatible     string // relative to usr/lib/linux-image-VERSION
		imageMagicOff       int
		imageMagic          []byte
		versionHasBackports bool
	}{
		{KernelSpec{Arch: "armhf"}, "armhf", "armmp", "bcm2836-rpi-2-b.dtb", "raspberrypi,2-model-b",
			0x24, []byte{0x18, 0x28, 0x6f, 0x01}, false}, // zImage
		{KernelSpec{Arch: "armhf", Flavour: "armmp-lpae"}, "armhf", "armmp-lpae", "bcm2836-rpi-2-b.dtb", "raspberrypi,2-model-b",
			0x24, []byte{0x18, 0x28, 0x6f, 0x01}, false},
		{KernelSpec{Suite: "bookworm-backports"}, "arm64", "arm64", "broadcom/bcm2712-rpi-5-b.dtb", "raspberrypi,5-model-b",
			56, []byte("ARM\x64"), true}, // arm64 Image
	} {
		t.Run(tc.flavour+"/"+cmp.Or(tc.k.Suite, "default"), func(t *testing.T) {
			deb := KernelDebFor(t, tc.k)
			out, err := exec.Command(dpkgDeb, "-f", deb, "Package", "Architecture", "Version").Output()
			if err != nil {
				t.Fatalf("dpkg-deb -f %s: %v", deb, err)
			}
			p := parseStanza(out)
			version, ok := strings.CutPrefix(p.Name, "linux-image-")
			if !ok || !strings.HasSuffix(version, "-"+tc.flavour) || p.Arch != tc.arch {
				t.Fatalf("%s: control says %q", filepath.Base(deb), out)
			}
			if strings.Contains(p.Version, "bpo") != tc.versionHasBackports {
				t.Errorf("%s: version %s; from backports: %v", filepath.Base(deb), p.Version, tc.versionHasBackports)
			}
			img, err := DebFile(t.Context(), deb, "boot/vmlinuz-"+version)
			if err != nil {
				t.Fatal(err)
			}
			if len(img) < tc.imageMagicOff+len(tc.imageMagic) || !bytes.Equal(img[tc.imageMagicOff:tc.imageMagicOff+len(tc.imageMagic)], tc.imageMagic) {
				t.Errorf("boot/vmlinuz-%s: no %q at %#x", version, tc.imageMagic, tc.imageMagicOff)
			}
			dtb, err := DebFile(t.Context(), deb, "usr/lib/linux-image-"+version+"/"+tc.dtb)
			if err != nil {
				t.Fatal(err)
			}
			dtbCompatible(t, tc.dtb, dtb, tc.compatible)
		})
	}
}

// systemd-boot-efi:arm64 carries systemd-boot and the UKI stub for arm64:
// EFI applications (PE32+, machine arm64, subsystem EFI application).
func TestSystemdBootEFI(t *testing.T) {
	deb := Package(t, "systemd-boot-efi:arm64")
	for _, name := range []string{"/usr/lib/systemd/boot/efi/systemd-bootaa64.efi", "/usr/lib/systemd/boot/efi/linuxaa64.efi.stub"} {
		b, err := DebFile(t.Context(), deb, name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := pe.NewFile(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
		if f.Machine != pe.IMAGE_FILE_MACHINE_ARM64 || !ok || oh.Subsystem != pe.IMAGE_SUBSYSTEM_EFI_APPLICATION {
			t.Errorf("%s: machine %#x, optional header %T: want an arm64 PE32+ EFI application", name, f.Machine, f.OptionalHeader)
		}
		if strings.HasSuffix(name, ".stub") && f.Section(".linux") != nil {
			t.Errorf("%s: the stub already has a .linux section", name)
		}
	}
}
