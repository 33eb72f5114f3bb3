package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// The end-to-end tests of --root-fs squashfs: the root partition holds
// ocidisk's squashfs, and Linux mounts it read-only.

// bigDirOverlay makes a host directory holding /big, a directory of 4000
// entries whose listing spans some 25 metadata blocks, with a symlink to
// the root's init in the middle: booting with init=/big/2000-init makes
// Linux find it through the directory index.
func bigDirOverlay(t *testing.T) (dir, init string) {
	t.Helper()
	dir = t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.Mkdir(big, 0o755); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 40)
	for i := range 4000 {
		name := fmt.Sprintf("%04d-%s", i, pad)
		if i == 2000 {
			name = "2000-init"
			if err := os.Symlink("/sbin/init", filepath.Join(big, name)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(filepath.Join(big, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, "/big/2000-init"
}

func TestBuildBootsSquashfsRoot(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	overlay, init := bigDirOverlay(t)
	img := buildImage(t, "--board", "qemu-virt-arm64", "--kernel", "deb:"+kernel, "--root-fs", "squashfs",
		"--overlay", overlay, "--cmdline-append", "init="+init, "--bmap", "oci:"+root)
	checkSquashfsRoot(t, img)
	code, out := bootTest(t, img, "--expect", `mounted /dev/vda2 .* as squashfs`, "--expect", regexp.QuoteMeta(debian.Marker), "--timeout", "120s")
	if code != exitOK {
		t.Fatalf("boot failed (exit %d):\n%s", code, tail(out, 40))
	}
	// The root's init reports the root mount: our squashfs, read-only.
	if !regexp.MustCompile(`root /dev/vda2 / squashfs ro`).MatchString(out) {
		t.Errorf("root not mounted ro as squashfs:\n%s", tail(out, 20))
	}
}

// checkSquashfsRoot judges the image without booting it: the table as
// sfdisk reads it, the FAT boot partition with fsck.vfat, and the root
// partition with unsquashfs, which must list the test root's init.
func checkSquashfsRoot(t *testing.T, img string) {
	t.Helper()
	sfdisk := hosttool.Require(t, "sfdisk", "fdisk")
	out, err := exec.Command(sfdisk, "-d", img).CombinedOutput()
	if err != nil {
		t.Fatalf("sfdisk -d: %v\n%s", err, out)
	}
	parts := regexp.MustCompile(`start=\s*(\d+), size=\s*(\d+), type=(\w+)`).FindAllStringSubmatch(string(out), -1)
	if len(parts) != 2 || parts[1][3] != "83" {
		t.Fatalf("partition table is not boot + Linux root:\n%s", out)
	}
	dir := t.TempDir()
	boot, rootPart := filepath.Join(dir, "boot"), filepath.Join(dir, "root")
	hosttool.CopySparse(t, img, boot, atoi(t, parts[0][1])*512, atoi(t, parts[0][2])*512)
	hosttool.CopySparse(t, img, rootPart, atoi(t, parts[1][1])*512, atoi(t, parts[1][2])*512)
	if out, err := exec.Command(hosttool.Require(t, "fsck.vfat", "dosfstools"), "-n", boot).CombinedOutput(); err != nil {
		t.Errorf("fsck.vfat -n: %v\n%s", err, out)
	}
	unsquashfs := hosttool.Require(t, "unsquashfs", "squashfs-tools")
	out, err = exec.Command(unsquashfs, "-lln", "-n", rootPart).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "squashfs-root/sbin/init") {
		t.Fatalf("unsquashfs -lln of the root partition: %v\n%s", err, tail(string(out), 20))
	}
}

// A fixed --root-size writes the squashfs straight into its partition;
// one too small for it fails the build naming both sizes, leaving nothing.
func TestBuildSquashfsRootSize(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	img := buildImage(t, "--kernel", "deb:"+kernel, "--root-fs", "squashfs", "--root-size", "128MiB", "oci:"+root)
	checkSquashfsRoot(t, img)

	out := filepath.Join(t.TempDir(), "t.img")
	code, _, stderr := runCLI(t, "build", "-o", out, "--kernel", "deb:"+kernel, "--root-fs", "squashfs", "--root-size", "1MiB", "oci:"+root)
	if code != exitFailure || !regexp.MustCompile(`needs \d+ bytes, the filesystem size is 1048576`).MatchString(stderr) {
		t.Fatalf("exit %d, stderr %q; want exit 1 naming both sizes", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("failed build left %s", out)
	}
}

// Two builds of the same inputs give the same bytes, the squashfs root
// compressed on all cores included.
func TestBuildSquashfsIsReproducible(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	var sums []string
	for range 2 {
		img := buildImage(t, "--kernel", "deb:"+kernel, "--root-fs", "squashfs", "--bmap", "oci:"+root)
		sums = append(sums, fileHash(t, img)+" "+fileHash(t, img+".bmap"))
	}
	if sums[0] != sums[1] {
		t.Fatalf("two builds of the same inputs differ:\n%s\n%s", sums[0], sums[1])
	}
}
