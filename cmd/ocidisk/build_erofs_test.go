package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// TestBuildBootsErofsRoot builds the busybox test root with --root-fs
// erofs and boots it: Linux mounts the erofs root read-only, finds the init
// through a symlink in the middle of a directory of many blocks (a lookup
// by binary search over its blocks), and runs busybox from it.
func TestBuildBootsErofsRoot(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	overlay, init := bigDirOverlay(t)
	img := buildImage(t, "--board", "qemu-virt-arm64", "--kernel", "deb:"+kernel, "--root-fs", "erofs",
		"--overlay", overlay, "--cmdline-append", "init="+init, "oci:"+root)
	checkErofsRoot(t, img)
	code, out := bootTest(t, img, "--expect", `mounted /dev/vda2 .* as erofs`, "--expect", regexp.QuoteMeta(debian.Marker), "--timeout", "120s")
	if code != exitOK {
		t.Fatalf("boot failed (exit %d):\n%s", code, tail(out, 40))
	}
	if !regexp.MustCompile(`root /dev/vda2 / erofs ro`).MatchString(out) {
		t.Errorf("root not mounted ro as erofs:\n%s", tail(out, 20))
	}
}

// checkErofsRoot judges the root partition of a built image without
// booting it: fsck.erofs must accept it and extract the test root's init.
func checkErofsRoot(t *testing.T, img string) {
	t.Helper()
	sfdisk := hosttool.Require(t, "sfdisk", "fdisk")
	fsck := hosttool.Require(t, "fsck.erofs", "erofs-utils")
	out, err := exec.Command(sfdisk, "-d", img).CombinedOutput()
	if err != nil {
		t.Fatalf("sfdisk -d: %v\n%s", err, out)
	}
	parts := regexp.MustCompile(`start=\s*(\d+), size=\s*(\d+), type=(\w+)`).FindAllStringSubmatch(string(out), -1)
	if len(parts) != 2 || parts[1][3] != "83" {
		t.Fatalf("partition table is not boot + Linux root:\n%s", out)
	}
	rootPart := filepath.Join(t.TempDir(), "root")
	hosttool.CopySparse(t, img, rootPart, atoi(t, parts[1][1])*512, atoi(t, parts[1][2])*512)
	x := filepath.Join(t.TempDir(), "x")
	out, err = exec.Command(fsck, "--extract="+x, "--no-preserve", rootPart).CombinedOutput()
	if err != nil || strings.Contains(string(out), "<E>") {
		t.Fatalf("fsck.erofs --extract of the root partition: %v\n%s", err, tail(string(out), 20))
	}
	if b, err := os.ReadFile(filepath.Join(x, "sbin/init")); err != nil || !strings.Contains(string(b), debian.Marker) {
		t.Fatalf("the extracted /sbin/init does not print the marker: %v\n%s", err, b)
	}
}
