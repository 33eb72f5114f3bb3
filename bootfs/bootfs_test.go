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

// fakeKernel is a Debian-shaped kernel tree with the modules the
// qemu-virt-arm64 board asks for.
func fakeKernel(t *testing.T, skip string) *kernel.Kernel {
	t.Helper()
	tr := fstree.New()
	img := make([]byte, 4096)
	copy(img[56:], "ARM\x64")
	v := "6.1.0-1-arm64"
	files := map[string][]byte{
		"boot/vmlinuz-" + v: img,
		"usr/lib/linux-image-" + v + "/broadcom/bcm2710-rpi-3-b.dtb": []byte("dtb"),
	}
	for name, info := range map[string][]string{
		"virtio_pci": {"depends=virtio_pci_modern_dev"}, "virtio_pci_modern_dev": {"depends="},
		"virtio_blk": {"depends="}, "ext4": {"depends=jbd2", "softdep=pre: crc32c"}, "jbd2": {"depends="},
		"crc32c_generic": {"alias=crc32c", "depends="},
	} {
		if name != skip {
			files["lib/modules/"+v+"/kernel/"+name+".ko"] = kerneltest.Module(append(info, "name="+name)...)
		}
	}
	for p, b := range files {
		if err := tr.Put(p, fstree.NewFile(0o644, int64(len(b)), fstree.Bytes(b)), fstree.NewDir(0o755)); err != nil {
			t.Fatal(err)
		}
	}
	k, err := kernel.Find(tr)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func read(t *testing.T, tr *fstree.Tree, p string) string {
	t.Helper()
	b, err := tr.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAssembleQEMUVirt(t *testing.T) {
	b, err := boards.Load("qemu-virt-arm64")
	if err != nil {
		t.Fatal(err)
	}
	overlay := fstree.New()
	overlay.Put("extra/hello.txt", fstree.NewFile(0o644, 2, fstree.Bytes("hi")), fstree.NewDir(0o755))
	when := time.Unix(1_700_000_000, 0)
	res, err := Assemble(laid(t, b), fakeKernel(t, ""), Options{
		PartUUID: rootPartUUID("1a2b3c4d-02"), CmdlineAppend: []string{"ocidisk.onfail=poweroff", "quiet"},
		BootOverlay: overlay, Time: when,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "console=ttyAMA0 root=PARTUUID=1a2b3c4d-02 rootfstype=ext4 rootwait ocidisk.onfail=poweroff quiet"
	if res.Cmdline != want {
		t.Errorf("cmdline %q, want %q", res.Cmdline, want)
	}
	conf := read(t, res.Boot, "extlinux/extlinux.conf")
	for _, w := range []string{"kernel /Image\n", "initrd /initrd.img\n", "append " + want + "\n"} {
		if !strings.Contains(conf, w) {
			t.Errorf("extlinux.conf lacks %q:\n%s", w, conf)
		}
	}
	if img := read(t, res.Boot, "Image"); img[56:60] != "ARM\x64" {
		t.Error("Image is not the raw kernel")
	}
	if read(t, res.Boot, "extra/hello.txt") != "hi" {
		t.Error("boot overlay missing")
	}
	var names []string
	for _, m := range res.Modules {
		names = append(names, m.Name)
	}
	if got := strings.Join(names, " "); got != "virtio_pci_modern_dev virtio_pci virtio_blk jbd2 crc32c_generic ext4" {
		t.Errorf("initramfs modules %q", got)
	}
	n, _ := res.Boot.Lookup("initrd.img")
	if n == nil || n.Size == 0 || !n.Mtime.Equal(when) {
		t.Errorf("initrd.img = %+v", n)
	}
}

func TestAssembleErrors(t *testing.T) {
	b, _ := boards.Load("qemu-virt-arm64")
	if _, err := Assemble(laid(t, b), fakeKernel(t, "jbd2"), Options{PartUUID: rootPartUUID("1a2b3c4d-02")}); err == nil ||
		!strings.Contains(err.Error(), "module jbd2 (needed by ext4) not found") {
		t.Errorf("missing module: %v", err)
	}
	if _, err := Assemble(laid(t, b), fakeKernel(t, ""), Options{}); err == nil {
		t.Error("no PARTUUID accepted")
	}
	// A 32-bit zImage (or anything else) is refused for an arm64 board.
	k := fakeKernel(t, "")
	zimg := make([]byte, 4096)
	k.Tree.Put(k.ImagePath, fstree.NewFile(0o644, int64(len(zimg)), fstree.Bytes(zimg)), nil)
	if _, err := Assemble(laid(t, b), k, Options{PartUUID: rootPartUUID("x-02")}); err == nil || !strings.Contains(err.Error(), "not an arm64 Image") {
		t.Errorf("non-arm64 kernel: %v", err)
	}
	// A device tree the board requires must exist in the kernel source.
	pi := *b
	pi.DTBs = []boards.Copy{{Glob: "broadcom/bcm2712-rpi-5-b.dtb"}}
	if _, err := Assemble(laid(t, &pi), fakeKernel(t, ""), Options{PartUUID: rootPartUUID("x-02")}); err == nil ||
		!strings.Contains(err.Error(), "bcm2712-rpi-5-b.dtb") {
		t.Errorf("missing dtb: %v", err)
	}
	pi.DTBs = []boards.Copy{{Glob: "broadcom/*.dtb", To: "dtbs"}}
	res, err := Assemble(laid(t, &pi), fakeKernel(t, ""), Options{PartUUID: rootPartUUID("x-02")})
	if err != nil {
		t.Fatal(err)
	}
	if read(t, res.Boot, "dtbs/bcm2710-rpi-3-b.dtb") != "dtb" {
		t.Error("dtb not copied")
	}
}

// TestAssembleDeterministic assembles twice from separately built inputs
// and compares every entry, content included.
func TestAssembleDeterministic(t *testing.T) {
	b, _ := boards.Load("qemu-virt-arm64")
	var lines [2][]string
	for i := range lines {
		res, err := Assemble(laid(t, b), fakeKernel(t, ""), Options{PartUUID: rootPartUUID("1a2b3c4d-02"), Time: time.Unix(1_700_000_000, 0)})
		if err != nil {
			t.Fatal(err)
		}
		if lines[i], err = fstree.ManifestLines(res.Boot); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(lines[0], "\n") != strings.Join(lines[1], "\n") {
		t.Fatalf("two assemblies differ:\n%s\n---\n%s", strings.Join(lines[0], "\n"), strings.Join(lines[1], "\n"))
	}
}
