package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// The end-to-end tests: `ocidisk build` from Debian's arm64 kernel package
// and a test root, then `ocidisk test` boots the image under QEMU. The
// judges are U-Boot reading the FAT partition, the kernel mounting our
// ext4, and the root's init printing its marker.

func buildImage(t *testing.T, args ...string) string {
	t.Helper()
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	out := filepath.Join(t.TempDir(), "t.img")
	args = append([]string{"build", "-o", out}, args...)
	code, stdout, stderr := runCLI(t, args...)
	if code != exitOK {
		t.Fatalf("ocidisk %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
	}
	return out
}

func bootTest(t *testing.T, img string, args ...string) (int, string) {
	t.Helper()
	hosttool.Require(t, "qemu-system-aarch64", "qemu-system-arm")
	args = append(append([]string{"test", "--console"}, args...), img)
	code, stdout, stderr := runCLI(t, args...)
	return code, stdout + stderr
}

func TestBuildBootsBusyboxRoot(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	img := buildImage(t, "--board", "qemu-virt-arm64", "--kernel", "deb:"+kernel, "--bmap", "oci:"+root)

	checkStatic(t, img)
	code, out := bootTest(t, img, "--expect", "mounted /dev/vda2", "--expect", regexp.QuoteMeta(debian.Marker), "--timeout", "120s")
	if code != exitOK {
		t.Fatalf("boot failed (exit %d):\n%s", code, tail(out, 40))
	}
	// The root's init reports the root mount: our ext4, read-write.
	if !regexp.MustCompile(`root /dev/vda2 / ext4 rw`).MatchString(out) {
		t.Errorf("root not mounted rw as ext4:\n%s", tail(out, 20))
	}
}

// checkStatic judges the image without booting it: the table as sfdisk
// reads it, and each partition with its own fsck.
func checkStatic(t *testing.T, img string) {
	t.Helper()
	sfdisk := hosttool.Require(t, "sfdisk", "fdisk")
	out, err := exec.Command(sfdisk, "-d", img).CombinedOutput()
	if err != nil {
		t.Fatalf("sfdisk -d: %v\n%s", err, out)
	}
	starts := regexp.MustCompile(`start=\s*(\d+), size=\s*(\d+), type=(\w+)(, bootable)?`).FindAllStringSubmatch(string(out), -1)
	if len(starts) != 2 || starts[0][3] != "e" && starts[0][3] != "c" || starts[0][4] == "" || starts[1][3] != "83" || starts[1][4] != "" {
		t.Fatalf("partition table is not FAT (bootable) + Linux:\n%s", out)
	}
	// The layout's defaults: the first partition at 4 MiB, the next on a
	// 1 MiB boundary.
	if s0, s1 := atoi(t, starts[0][1]), atoi(t, starts[1][1]); s0 != 8192 || s1%2048 != 0 {
		t.Errorf("partitions start at sectors %d and %d, want 8192 and a multiple of 2048:\n%s", s0, s1, out)
	}
	dir := t.TempDir()
	for i, p := range starts {
		part := filepath.Join(dir, "p"+p[1])
		hosttool.CopySparse(t, img, part, atoi(t, p[1])*512, atoi(t, p[2])*512)
		var cmd *exec.Cmd
		if i == 0 {
			cmd = exec.Command(hosttool.Require(t, "fsck.vfat", "dosfstools"), "-n", part)
		} else {
			cmd = exec.Command(hosttool.Require(t, "e2fsck", "e2fsprogs"), "-fn", part)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", cmd, err, out)
		}
	}
}

func TestBuildBootsDebianTree(t *testing.T) {
	tree := debian.Tree(t)
	kernel := debian.KernelDeb(t)
	img := buildImage(t, "--kernel", "deb:"+kernel, "oci:"+tree.Layout)
	code, out := bootTest(t, img, "--expect", regexp.QuoteMeta(tree.Marker), "--timeout", "120s")
	if code != exitOK {
		t.Fatalf("Debian tree did not boot (exit %d):\n%s", code, tail(out, 40))
	}
}

func TestBuildIsReproducible(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	var sums []string
	for range 2 {
		img := buildImage(t, "--kernel", "deb:"+kernel, "--bmap", "--compress", "zstd", "oci:"+root)
		sums = append(sums, fileHash(t, img)+" "+fileHash(t, img+".bmap")+" "+fileHash(t, img+".zst"))
	}
	if sums[0] != sums[1] {
		t.Fatalf("two builds of the same inputs differ:\n%s\n%s", sums[0], sums[1])
	}
}

// A root= naming a partition that does not exist must fail the boot test
// within its timeout, and the failure must show the init's own message.
func TestBootFailsOnMissingRoot(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	img := buildImage(t, "--kernel", "deb:"+kernel,
		"--cmdline-append", "root=PARTUUID=00000000-09",
		"--cmdline-append", "ocidisk.roottimeout=3",
		"oci:"+root)
	code, out := bootTest(t, img, "--expect", regexp.QuoteMeta(debian.Marker), "--timeout", "60s")
	if code != exitFailure {
		t.Fatalf("boot with a missing root: exit %d, want %d\n%s", code, exitFailure, tail(out, 20))
	}
	if !strings.Contains(out, "ocidisk-init:") || !strings.Contains(out, "PARTUUID=00000000-09") {
		t.Fatalf("failure does not show the init's message about the root:\n%s", tail(out, 20))
	}
}

// A board whose initramfs needs a module the kernel lacks fails the build,
// naming the module, and leaves no image.
func TestBuildFailsOnMissingModule(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	data, err := boards.Pack("qemu-virt-arm64")
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte("modules: [virtio_pci, virtio_blk, ext4]"), []byte("modules: [virtio_pci, virtio_blk, ext4, no_such_module_x]"), 1)
	if !bytes.Contains(data, []byte("no_such_module_x")) {
		t.Fatal("the qemu-virt-arm64 pack's module list changed; update this test")
	}
	dir := t.TempDir()
	boardFile := filepath.Join(dir, "board.yaml")
	if err := os.WriteFile(boardFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "t.img")
	code, _, stderr := runCLI(t, "build", "--board", boardFile, "--kernel", "deb:"+kernel, "-o", out, "oci:"+root)
	if code != exitFailure || !strings.Contains(stderr, "no_such_module_x") {
		t.Fatalf("exit %d, stderr %q; want exit 1 naming no_such_module_x", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("failed build left %s", out)
	}
}

func TestBuildUsageAndInputErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "t.img")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"build", "-o", out}, exitUsage, "one SOURCE"},
		{[]string{"build", "-o", out, "--table", "apm", "oci:x"}, exitUsage, "--table"},
		{[]string{"build", "-o", out, "--compress", "rar", "oci:x"}, exitUsage, "--compress"},
		{[]string{"build", "-o", out, "--root-size", "lots", "oci:x"}, exitUsage, "--root-size"},
		{[]string{"build", "-o", out, "--root-fs", "btrfs", "oci:x"}, exitUsage, "--root-fs"},
		{[]string{"build", "-o", out, "--board", "no-such-board", "oci:x"}, exitUsage, "no-such-board"},
		{[]string{"build", "-o", out, "nope:/x"}, exitUsage, "unknown transport"},
		{[]string{"build", "-o", out, "oci:" + filepath.Join(dir, "missing")}, exitFailure, "missing"},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%q: exit %d, stderr %q; want exit %d, one line mentioning %q", tc.args, code, stderr, tc.code, tc.msg)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%q left %s behind", tc.args, out)
		}
	}
}

// A root without a kernel and no --kernel names both ways to give one.
func TestBuildWithoutKernel(t *testing.T) {
	root := debian.BusyboxRoot(t)
	out := filepath.Join(t.TempDir(), "t.img")
	code, _, stderr := runCLI(t, "build", "-o", out, "oci:"+root)
	if code != exitFailure || !strings.Contains(stderr, "--kernel") || !strings.Contains(stderr, "/boot/vmlinuz") {
		t.Fatalf("exit %d, stderr %q: want exit 1 naming --kernel and /boot/vmlinuz", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("failed build left %s", out)
	}
}

func atoi(t *testing.T, s string) int64 {
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("not a number: %q", s)
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

func fileHash(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ocidisk test never changes the image, unless --writable asks it to keep
// what the guest wrote (here: the ext4 root's mount count and times).
func TestTestWritable(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	img := buildImage(t, "--kernel", "deb:"+kernel, "oci:"+root)
	for _, tc := range []struct {
		args    []string
		changed bool
	}{
		{nil, false},
		{[]string{"--writable"}, true},
	} {
		before := fileHash(t, img)
		args := append(append([]string{}, tc.args...), "--expect", regexp.QuoteMeta(debian.Marker), "--timeout", "120s")
		if code, out := bootTest(t, img, args...); code != exitOK {
			t.Fatalf("ocidisk test %q: exit %d\n%s", tc.args, code, tail(out, 30))
		}
		if changed := fileHash(t, img) != before; changed != tc.changed {
			t.Errorf("ocidisk test %q: image changed %v, want %v", tc.args, changed, tc.changed)
		}
	}
	checkStatic(t, img)
}

// -o OUT with --compress writes OUT and its compressed copy, which
// decompresses to exactly OUT; --keep-raw=false writes the copy alone.
func TestBuildCompressedOutputs(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	zstd := hosttool.Require(t, "zstd", "zstd")
	img := buildImage(t, "--kernel", "deb:"+kernel, "--compress", "zstd", "oci:"+root)
	out, err := exec.Command(zstd, "-dc", img+".zst").Output()
	if err != nil {
		t.Fatalf("zstd -dc: %v", err)
	}
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, raw) {
		t.Fatalf("%s.zst does not decompress to %s", img, img)
	}
	only := buildImage(t, "--kernel", "deb:"+kernel, "--compress", "zstd", "--keep-raw=false", "oci:"+root)
	if _, err := os.Stat(only); !os.IsNotExist(err) {
		t.Errorf("--keep-raw=false left %s (stat: %v)", only, err)
	}
	if fileHash(t, only+".zst") != fileHash(t, img+".zst") {
		t.Error("the compressed image differs with --keep-raw=false")
	}
}
