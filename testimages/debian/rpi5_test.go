package debian

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/ocidisk/ocidisk/fstree"
)

// The Pi 5 kernel has what the rpi5 board pack asks of a kernel: an arm64
// Image, bcm2712-rpi-5-b.dtb, and the SD driver among its modules (built
// in), on top of Debian's package, whose own configuration lacks the
// driver (which is why the layout exists).
func TestRpi5Kernel(t *testing.T) {
	img := readLayout(t, Rpi5Kernel(t))
	if layers, err := img.Layers(); err != nil || len(layers) != 2 {
		t.Errorf("%d layers (%v), want 2", len(layers), err)
	}
	deb := KernelDebFor(t, KernelSpec{Suite: "bookworm-backports"})
	p, err := testCache(t).resolve(t.Context(), Rpi5KernelPackage)
	if err != nil {
		t.Fatal(err)
	}
	version := strings.TrimPrefix(p.Name, "linux-image-")
	builtinPath := "lib/modules/" + version + "/modules.builtin"
	want := map[string]func([]byte) bool{
		"boot/vmlinuz-" + version: func(b []byte) bool { return len(b) > 64 && bytes.Equal(b[56:60], []byte("ARM\x64")) },
		"usr/lib/linux-image-" + version + "/broadcom/bcm2712-rpi-5-b.dtb": func(b []byte) bool {
			dtbCompatible(t, "bcm2712-rpi-5-b.dtb", b, "raspberrypi,5-model-b")
			return true
		},
		"lib/modules/" + version + "/kernel/fs/ext4/ext4.ko.xz": func(b []byte) bool { return len(b) > 0 },
		builtinPath: func(b []byte) bool { return strings.Contains(string(b), "\n"+rpi5BuiltinDriver+"\n") },
	}
	// Flattened by go-containerregistry, files read as they stream by.
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var builtin []byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name, err := fstree.Clean(h.Name)
		if err != nil {
			t.Fatal(err)
		}
		check, ok := want[name]
		if !ok {
			continue
		}
		delete(want, name)
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if name == builtinPath {
			builtin = b
		}
		if !check(b) {
			t.Errorf("/%s is not what the rpi5 pack needs", name)
		}
	}
	for name := range want {
		t.Errorf("/%s missing", name)
	}
	// Debian's own modules.builtin, every line kept, without the driver.
	orig, err := DebFile(t.Context(), deb, builtinPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(orig), "sdhci-brcmstb") {
		t.Errorf("Debian's %s builds sdhci-brcmstb in: the stand-in layer is no longer needed", p.DebName())
	}
	if string(builtin) != string(orig)+rpi5BuiltinDriver+"\n" {
		t.Errorf("modules.builtin is not Debian's plus %s", rpi5BuiltinDriver)
	}
}
