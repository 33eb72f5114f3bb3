package flash

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// rootOn is the machine as it is, but for its mount table, which says
// that / is mounted from the block device dev.
type rootOn struct {
	Host
	dev DevNum
}

func (r rootOn) ReadFile(name string) ([]byte, error) {
	if name == "/proc/self/mountinfo" {
		return fmt.Appendf(nil, "1 0 %s / / rw,relatime shared:1 - ext4 /dev/root rw\n", r.dev), nil
	}
	return r.Host.ReadFile(name)
}

// TestRootDiskOnLoopDevice: the disk holding / is refused, even with
// --force. Wherever the tests run, a loop device stands in for that disk
// (the machine's own, read through sysfs as for any disk), so the rule is
// tested even where / is not on a block device.
func TestRootDiskOnLoopDevice(t *testing.T) {
	losetup := hosttool.Require(t, "losetup", "mount")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root for a loop device")
		}
		t.Skip("needs root for a loop device")
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(losetup, "-f", "--show", img).Output()
	if err != nil {
		t.Fatalf("losetup: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command(losetup, "-d", dev).Run() })
	n, err := Host{}.Stat(dev)
	if err != nil || n.Kind != KindBlock {
		t.Fatalf("%s: %+v, %v", dev, n, err)
	}
	sys := rootOn{dev: n.Dev}
	roots, err := RootDisks(sys)
	if err != nil || len(roots) != 1 || "/dev/"+roots[0] != dev {
		t.Fatalf("RootDisks = %q, %v; want %s", roots, err, dev)
	}
	for _, p := range []Policy{{}, {Force: true, MaxSize: 1 << 50}} {
		_, err := Check(sys, dev, p)
		if err == nil || !strings.Contains(err.Error(), "holds the root filesystem") {
			t.Errorf("Check(%s, %+v) = %v: the root disk is not refused", dev, p, err)
		}
	}
	// The same device, with / elsewhere, is refused for other reasons
	// only (a loop device is not removable), so the refusal above was the
	// root rule's.
	if _, err := Check(Host{}, dev, Policy{Force: true, MaxSize: 1 << 50}); err != nil && strings.Contains(err.Error(), "holds the root filesystem") {
		t.Errorf("Check(%s) on the real mount table: %v", dev, err)
	}
}
