package debian

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1"

	"github.com/ocidisk/ocidisk/fstree"
)

// Marker is the line the busybox test root's init prints once the root is
// up, unless another marker is asked for.
const Marker = "OCIDISK-TEST-ROOT-OK"

// BusyboxPackage is the package the busybox test root is made from.
const BusyboxPackage = "busybox-static"

// busyboxFormat names the recipe of the busybox root; change it whenever the
// recipe changes so that caches built by older code are not reused.
const busyboxFormat = "busybox-root/v1"

// applets returns the busybox applets linked into /bin and /sbin: what a
// shell script, a person at the console and a boot test need.
func applets() map[string][]string {
	return map[string][]string{
		"bin": {"[", "ash", "awk", "cat", "chmod", "chown", "cp", "cut", "date", "dd", "df", "dmesg",
			"du", "echo", "env", "false", "find", "grep", "head", "hostname", "id", "kill", "less", "ln",
			"ls", "md5sum", "mkdir", "mknod", "mount", "mountpoint", "mv", "ps", "pwd", "readlink", "rm",
			"rmdir", "sed", "sh", "sha256sum", "sleep", "sort", "stat", "sync", "tail", "tar", "test",
			"touch", "tr", "true", "umount", "uname", "vi", "wc", "xargs"},
		"sbin": {"blkid", "halt", "ifconfig", "insmod", "ip", "lsmod", "modprobe", "poweroff", "reboot",
			"rmmod", "switch_root"},
	}
}

// InitScript returns the /sbin/init of the test roots: it mounts /proc and
// /sys, prints the kernel version and the root's line of /proc/mounts, then
// marker, and powers off at once. It runs under busybox alone, so it also
// serves roots with no shell of their own.
func InitScript(marker string) ([]byte, error) {
	if marker == "" || strings.ContainsAny(marker, "'\n\r\\") {
		return nil, fmt.Errorf("init marker %q: must be one non-empty line without quotes or backslashes", marker)
	}
	return []byte(`#!/bin/busybox sh
# ocidisk test root: report what booted, print the marker, power off.
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
bb=/bin/busybox
[ -e /proc/self ] || $bb mount -t proc proc /proc
[ -e /sys/kernel ] || $bb mount -t sysfs sysfs /sys
echo "ocidisk-test: kernel $($bb uname -r)"
echo "ocidisk-test: root $($bb grep ' / ' /proc/mounts | $bb tail -n 1)"
echo '` + marker + `'
$bb sync
$bb poweroff -f
`), nil
}

// BusyboxRoot returns the OCI image layout of the arm64 busybox test root
// whose init prints marker (Marker when empty). The image has three layers:
// busybox and its applet links; device nodes and /etc files; the init.
func (c *Cache) BusyboxRoot(ctx context.Context, marker string) (string, error) {
	return c.BusyboxRootArch(ctx, Arch, marker)
}

// BusyboxRootArch is BusyboxRoot for another Debian architecture: armhf
// gives a linux/arm/v7 image of busybox-static:armhf.
func (c *Cache) BusyboxRootArch(ctx context.Context, arch, marker string) (string, error) {
	if marker == "" {
		marker = Marker
	}
	initScript, err := InitScript(marker)
	if err != nil {
		return "", err
	}
	platform, err := PlatformOf(arch)
	if err != nil {
		return "", err
	}
	p, err := c.resolve(ctx, BusyboxPackage+":"+arch)
	if err != nil {
		return "", err
	}
	deb, err := c.fetch(ctx, p)
	if err != nil {
		return "", err
	}
	// The package's hash names the architecture too; arm64 keeps the key
	// it had before other architectures were made.
	key := sha256.Sum256([]byte(busyboxFormat + "\x00" + p.SHA256 + "\x00" + marker))
	return c.entry(filepath.Join("busybox-root", hex.EncodeToString(key[:8])), func(tmp string) error {
		c.Log.Info("building busybox test root", "package", p.DebName(), "marker", marker)
		return writeBusyboxRoot(ctx, tmp, deb, initScript, platform)
	})
}

// writeBusyboxRoot writes the busybox root made from deb with initScript
// as an OCI layout for platform at dir.
func writeBusyboxRoot(ctx context.Context, dir, deb string, initScript []byte, platform v1.Platform) error {
	bb, err := DebFile(ctx, deb, "/bin/busybox")
	if err != nil {
		return err
	}
	scratch, err := os.MkdirTemp(filepath.Dir(dir), "scratch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	spec := imageSpec{Cmd: []string{"/sbin/init"}, Platform: platform}
	for i, l := range busyboxLayers(bb, initScript) {
		file := filepath.Join(scratch, fmt.Sprintf("layer%d.tar.gz", i))
		if err := writeLayer(file, l.entries); err != nil {
			return err
		}
		spec.Layers = append(spec.Layers, file)
		spec.CreatedBy = append(spec.CreatedBy, l.createdBy)
	}
	_, err = writeLayout(dir, spec)
	return err
}

type layerPlan struct {
	createdBy string
	entries   []layerEntry
}

// busyboxLayers lays out the three layers of the busybox root, each sorted
// in walk order.
func busyboxLayers(busybox, initScript []byte) []layerPlan {
	base := []layerEntry{
		{Hdr: dirHdr("bin", 0o755)},
		{Hdr: fileHdr("bin/busybox", 0o755, int64(len(busybox))), Body: fstree.Bytes(busybox)},
		{Hdr: dirHdr("sbin", 0o755)},
		{Hdr: dirHdr("usr", 0o755)},
		{Hdr: dirHdr("usr/bin", 0o755)},
		{Hdr: dirHdr("usr/sbin", 0o755)},
	}
	links := applets()
	for _, a := range links["bin"] {
		base = append(base, layerEntry{Hdr: symlinkHdr("bin/"+a, "busybox")})
	}
	for _, a := range links["sbin"] {
		base = append(base, layerEntry{Hdr: symlinkHdr("sbin/"+a, "../bin/busybox")})
	}
	files := func(name, s string, mode int64) layerEntry {
		return layerEntry{Hdr: fileHdr(name, mode, int64(len(s))), Body: fstree.Bytes(s)}
	}
	system := []layerEntry{
		{Hdr: dirHdr("dev", 0o755)},
		{Hdr: devHdr("dev/console", tar.TypeChar, 0o600, 5, 1)},
		{Hdr: devHdr("dev/null", tar.TypeChar, 0o666, 1, 3)},
		{Hdr: dirHdr("etc", 0o755)},
		files("etc/group", "root:x:0:\n", 0o644),
		files("etc/hostname", "ocidisk-test\n", 0o644),
		files("etc/os-release", "NAME=\"ocidisk test root\"\nID=ocidisk-test\n", 0o644),
		files("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644),
		{Hdr: dirHdr("proc", 0o555)},
		{Hdr: dirHdr("root", 0o700)},
		{Hdr: dirHdr("run", 0o755)},
		{Hdr: dirHdr("sys", 0o555)},
		{Hdr: dirHdr("tmp", 0o1777)},
		{Hdr: dirHdr("var", 0o755)},
	}
	init := []layerEntry{
		{Hdr: dirHdr("sbin", 0o755)},
		files("sbin/init", string(initScript), 0o755),
	}
	out := []layerPlan{
		{"busybox " + BusyboxPackage + " with applet links", base},
		{"device nodes, mount points and /etc", system},
		{"init script printing the marker", init},
	}
	for _, l := range out {
		slices.SortFunc(l.entries, func(a, b layerEntry) int {
			return walkCompare(strings.TrimSuffix(a.Hdr.Name, "/"), strings.TrimSuffix(b.Hdr.Name, "/"))
		})
	}
	return out
}
