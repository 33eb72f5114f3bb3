//go:build !devmapper_guest

// The binary run in the guest is built with the devmapper_guest tag: it
// leaves this file and the build pipeline out.

package devmapper

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/pipeline"
	"github.com/ocidisk/ocidisk/qemu"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// guestScript runs this package's TestLive inside the guest: it loads the
// modules (Debian builds device-mapper, its targets and loop as modules;
// the build merged them into the root), runs the test binary and says how
// it went. The kernel's messages stay off the console meanwhile: the
// verity error TestLive provokes would end the boot test.
const guestScript = `#!/bin/busybox sh
export PATH=/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp
for m in dm-mod dm-zero dm-verity loop; do modprobe $m || echo "modprobe $m failed"; done
dmesg -n 1
if TMPDIR=/tmp /devmapper.test -test.run '^TestLive$' -test.v; then echo DEVMAPPER-GUEST-PASS; else echo DEVMAPPER-GUEST-FAIL; fi
poweroff -f
`

// TestLiveInGuest runs TestLive in a QEMU guest of the qemu-virt-arm64
// board, whose Debian kernel has device-mapper and dm-verity: the test
// binary, built for arm64, goes into the busybox test root and replaces
// its init.
func TestLiveInGuest(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU")
	}
	hosttool.Require(t, "qemu-system-aarch64", "qemu-system-arm")
	b, err := boards.Load("qemu-virt-arm64")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.QEMU.Firmware.BIOS); err != nil {
		hosttool.Missing(t, b.QEMU.Firmware.BIOS+" not found: apt-get install "+b.QEMU.Firmware.Package)
	}
	kernel, root := debian.KernelDeb(t), debian.BusyboxRoot(t)

	dir := t.TempDir()
	overlay := filepath.Join(dir, "overlay")
	if err := os.Mkdir(overlay, 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "test", "-c", "-tags", "devmapper_guest", "-o", filepath.Join(overlay, "devmapper.test"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the test for arm64: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(overlay, "devmapper-test-init"), []byte(guestScript), 0o755); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "disk.img")
	_, err = pipeline.Build(t.Context(), pipeline.Config{
		Board: b, Source: "oci:" + root, Kernel: "deb:" + kernel, Overlays: []string{overlay},
		CmdlineAppend: []string{"init=/devmapper-test-init", "ocidisk.onfail=poweroff"},
		Output:        img, Epoch: time.Unix(1_700_000_000, 0),
		Sources: source.Options{Platform: pipeline.Platform(b), CacheDir: filepath.Join(dir, "cache")},
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := qemu.Test(t.Context(), qemu.Config{Profile: b.QEMU, Image: img}, qemu.TestOptions{
		Expect:    []*regexp.Regexp{regexp.MustCompile(`DEVMAPPER-GUEST-(PASS|FAIL)`)},
		Timeout:   4 * time.Minute,
		TailLines: 60,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range regexp.MustCompile(`(?m)^(---|    ).*TestLive.*$`).FindAllString(res.Console, -1) {
		t.Log("guest: " + l)
	}
	if regexp.MustCompile(`DEVMAPPER-GUEST-FAIL`).MatchString(res.Console) || !regexp.MustCompile(`--- PASS: TestLive/verity`).MatchString(res.Console) {
		t.Fatalf("TestLive in the guest:\n%s", res.Tail)
	}
}
