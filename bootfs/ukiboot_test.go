package bootfs

import (
	"bytes"
	"debug/pe"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/kernel"
	"github.com/ocidisk/ocidisk/kernel/kerneltest"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

const stubPath = "usr/lib/systemd/boot/efi/linuxaa64.efi.stub"

// efiKernel is fakeKernel with an Image that is an arm64 EFI application
// as far as the UKI's builder reads it.
func efiKernel(t *testing.T) *kernel.Kernel {
	t.Helper()
	k := fakeKernel(t, "")
	img := kerneltest.EFIImage(8192, 0xaa64, 0x10000)
	if err := k.Tree.Put(k.ImagePath, fstree.NewFile(0o644, int64(len(img)), fstree.Bytes(img)), nil); err != nil {
		t.Fatal(err)
	}
	return k
}

// efiInputs are a firmware tree holding Debian's stub and a root whose
// /etc/os-release is a symlink, as Debian's is.
func efiInputs(t *testing.T) (fw, root *fstree.Tree, osRel string) {
	t.Helper()
	stub, err := debian.DebFile(t.Context(), debian.Package(t, "systemd-boot-efi:arm64"), "/"+stubPath)
	if err != nil {
		t.Fatal(err)
	}
	fw, root = fstree.New(), fstree.New()
	osRel = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n"
	putAll(t, fw, map[string][]byte{stubPath: stub})
	putAll(t, root, map[string][]byte{"usr/lib/os-release": []byte(osRel)})
	if err := root.Put("etc/os-release", fstree.NewSymlink("../usr/lib/os-release"), fstree.NewDir(0o755)); err != nil {
		t.Fatal(err)
	}
	return fw, root, osRel
}

// TestAssembleUKI: the efi-arm64 pack puts one file on the ESP, the UKI,
// whose sections carry the command line naming the root, os-release,
// the kernel version, the initramfs and the kernel; the same inputs give
// the same bytes.
func TestAssembleUKI(t *testing.T) {
	b := loadBoard(t, "efi-arm64")
	fw, root, osRel := efiInputs(t)
	var images [2][]byte
	for i := range images {
		k := efiKernel(t)
		res, err := Assemble(laid(t, b), k, Options{PartUUID: rootPartUUID("0b37bdda-9866-40ba-adc9-495b46be1217"),
			Firmware: fw, FirmwareSource: "deb:systemd-boot-efi.deb", Root: root, Time: time.Unix(1_700_000_000, 0)})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(sortedKeys(files(t, res.Boot)), " "); got != "EFI/BOOT/BOOTAA64.EFI" {
			t.Fatalf("ESP files %s, want only the UKI", got)
		}
		images[i] = []byte(read(t, res.Boot, "EFI/BOOT/BOOTAA64.EFI"))
		f, err := pe.NewFile(bytes.NewReader(images[i]))
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]string{".cmdline": res.Cmdline, ".osrel": osRel, ".uname": k.Version} {
			if got := section(t, f, name); got != want {
				t.Errorf("section %s = %q, want %q", name, got, want)
			}
		}
		if !strings.Contains(res.Cmdline, "root=PARTUUID=0b37bdda-9866-40ba-adc9-495b46be1217") {
			t.Errorf("cmdline %q does not name the root", res.Cmdline)
		}
		for _, s := range []string{".linux", ".initrd"} {
			if f.Section(s) == nil {
				t.Errorf("no %s section", s)
			}
		}
	}
	if !bytes.Equal(images[0], images[1]) {
		t.Error("two assemblies from the same inputs give different UKIs")
	}
}

func section(t *testing.T, f *pe.File, name string) string {
	t.Helper()
	s := f.Section(name)
	if s == nil {
		t.Fatalf("no %s section", name)
	}
	b, err := io.ReadAll(io.NewSectionReader(s, 0, int64(min(s.VirtualSize, s.Size))))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sortedKeys(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }

// TestAssembleUKIErrors: without the stub, the build names what it
// needs and where it looked.
func TestAssembleUKIErrors(t *testing.T) {
	b := loadBoard(t, "efi-arm64")
	fw, root, _ := efiInputs(t)
	empty := fstree.New()
	two := fstree.New()
	putAll(t, two, map[string][]byte{"a/linuxaa64.efi.stub": []byte("x"), "b/linuxaa64.efi.stub": []byte("y")})
	glob := *b
	u := *b.UKI
	u.Stub = []string{"*/linuxaa64.efi.stub"}
	glob.UKI = &u
	for _, tc := range []struct {
		name string
		b    *boards.Board
		fw   *fstree.Tree
		k    *kernel.Kernel
		want []string
	}{
		{"no firmware source", b, nil, efiKernel(t), []string{"systemd's EFI stub", "give a firmware source"}},
		{"no stub", b, empty, efiKernel(t), []string{"not found in deb:x.deb", "usr/lib/systemd/boot/efi/linuxaa64.efi.stub", "systemd-boot-efi"}},
		{"two stubs", &glob, two, efiKernel(t), []string{"matches 2 files"}},
		{"not an EFI kernel", b, fw, fakeKernel(t, ""), []string{"not an EFI application"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Assemble(laid(t, tc.b), tc.k, Options{PartUUID: rootPartUUID("x"), Firmware: tc.fw, FirmwareSource: "deb:x.deb", Root: root})
			if err == nil {
				t.Fatal("assembled")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
