package debian

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/ocidisk/ocidisk/fstree"
)

// Rpi5KernelPackage is the first Debian kernel with the Pi 5's device tree
// (broadcom/bcm2712-rpi-5-b.dtb): bookworm-backports' 6.12.
const Rpi5KernelPackage = "linux-image-arm64:arm64/bookworm-backports"

// rpi5Format names the recipe of the Pi 5 kernel; change it whenever the
// recipe changes.
const rpi5Format = "rpi5-kernel/v1"

// rpi5BuiltinDriver is the SD controller driver of the BCM2712, which the
// rpi5 board pack's initramfs needs and Debian does not build
// (CONFIG_MMC_SDHCI_BRCMSTB is not set in its 6.12 arm64 config).
const rpi5BuiltinDriver = "kernel/drivers/mmc/host/sdhci-brcmstb.ko"

// Rpi5Kernel returns an OCI layout of a kernel that `ocidisk build --board
// rpi5` takes (--kernel oci:DIR): Debian's bookworm-backports arm64 kernel
// (its Image, its modules, bcm2712-rpi-5-b.dtb and every other device
// tree), unchanged in its first layer, and in a second layer its
// modules.builtin with sdhci-brcmstb added, as a kernel configured with
// CONFIG_MMC_SDHCI_BRCMSTB=y would list it. Debian's kernel lacks that
// driver, so without the second layer the build fails, rightly, for want
// of the Pi 5's SD driver. The stand-in changes nothing QEMU runs: the
// rpi5 pack boots on virt, where the driver is never probed.
func (c *Cache) Rpi5Kernel(ctx context.Context) (string, error) {
	p, err := c.resolve(ctx, Rpi5KernelPackage)
	if err != nil {
		return "", err
	}
	deb, err := c.fetch(ctx, p)
	if err != nil {
		return "", err
	}
	version, ok := strings.CutPrefix(p.Name, "linux-image-")
	if !ok {
		return "", fmt.Errorf("%s: %s is not a kernel image package", Rpi5KernelPackage, p.Name)
	}
	key := sha256.Sum256([]byte(rpi5Format + "\x00" + p.SHA256))
	return c.entry(filepath.Join("rpi5-kernel", hex.EncodeToString(key[:8])), func(tmp string) error {
		c.Log.Info("building the Pi 5 test kernel", "package", p.DebName())
		return writeRpi5Kernel(ctx, tmp, deb, version)
	})
}

// writeRpi5Kernel writes the Pi 5 kernel layout of deb, whose kernel
// version is version, at dir.
func writeRpi5Kernel(ctx context.Context, dir, deb, version string) error {
	modDir := path.Join("lib/modules", version)
	builtin, err := DebFile(ctx, deb, modDir+"/modules.builtin")
	if err != nil {
		return err
	}
	if _, err := DebFile(ctx, deb, "usr/lib/linux-image-"+version+"/broadcom/bcm2712-rpi-5-b.dtb"); err != nil {
		return fmt.Errorf("the Pi 5 kernel: %w", err)
	}
	scratch, err := os.MkdirTemp(filepath.Dir(dir), "scratch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)

	// Layer 1: the package's files, its data archive as dpkg-deb gives it.
	pkgLayer := filepath.Join(scratch, "layer0.tar.gz")
	err = debStream(ctx, deb, "--fsys-tarfile", func(r io.Reader) error {
		return writeGzip(pkgLayer, func(w io.Writer) error {
			_, err := io.Copy(w, r)
			return err
		})
	})
	if err != nil {
		return err
	}

	// Layer 2: modules.builtin naming the SD driver.
	list := string(builtin)
	if !strings.Contains(list, rpi5BuiltinDriver+"\n") {
		list += rpi5BuiltinDriver + "\n"
	}
	entries := []layerEntry{{Hdr: dirHdr("lib", 0o755)}, {Hdr: dirHdr("lib/modules", 0o755)}, {Hdr: dirHdr(modDir, 0o755)},
		{Hdr: fileHdr(modDir+"/modules.builtin", 0o644, int64(len(list))), Body: fstree.Bytes(list)}}
	builtinLayer := filepath.Join(scratch, "layer1.tar.gz")
	if err := writeLayer(builtinLayer, entries); err != nil {
		return err
	}
	_, err = writeLayout(dir, imageSpec{
		Layers:    []string{pkgLayer, builtinLayer},
		CreatedBy: []string{"Debian package " + path.Base(deb), "modules.builtin: sdhci-brcmstb built in"},
	})
	return err
}
