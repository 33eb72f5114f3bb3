package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/inspect"
	"github.com/ocidisk/ocidisk/mkfs/ext4"
	"github.com/ocidisk/ocidisk/mkfs/fat"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// inspectDisk writes a small MBR disk with a FAT boot partition (an
// extlinux.conf) and an ext4 root, with ocidisk's own writers.
func inspectDisk(t *testing.T) string {
	t.Helper()
	when := time.Date(2024, 1, 2, 3, 4, 6, 0, time.UTC)
	put := func(tr *fstree.Tree, p string, c string) {
		n := fstree.NewFile(0o644, int64(len(c)), fstree.Bytes(c))
		n.Mtime = when
		if _, err := tr.MkdirAll(filepath.Dir(p), &fstree.Node{Type: fstree.TypeDir, Mode: 0o755, Mtime: when}); err != nil {
			t.Fatal(err)
		}
		if err := tr.Put(p, n, nil); err != nil {
			t.Fatal(err)
		}
	}
	boot, root := fstree.New(), fstree.New()
	put(boot, "extlinux/extlinux.conf", "label l\n  kernel /Image\n  append console=ttyAMA0 rootwait\n")
	put(boot, "Image", "kernel")
	put(root, "etc/hostname", "board\n")
	if err := root.Put("etc/localtime", fstree.NewSymlink("/usr/share/zoneinfo/UTC"), nil); err != nil {
		t.Fatal(err)
	}
	l := &diskimage.Layout{Table: diskimage.MBR, Seed: []byte("cli inspect"), Partitions: []diskimage.Partition{
		{Name: "boot", Kind: diskimage.KindFAT, Bootable: true, Size: 16 << 20, FS: fat.New(boot, fat.Options{Label: "BOOT", Time: when})},
		{Name: "root", Kind: diskimage.KindLinux, FS: ext4.New(root, ext4.Options{Label: "root", Time: when})},
	}}
	img := filepath.Join(t.TempDir(), "disk.img")
	if _, err := diskimage.Write(context.Background(), img, l, diskimage.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return img
}

// The --json output's structure is a contract with scripts: decoded
// strictly into the documented fields.
func TestInspectJSON(t *testing.T) {
	img := inspectDisk(t)
	code, stdout, stderr := runCLI(t, "inspect", "--json", img)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r struct {
		Image      string `json:"image"`
		Size       int64  `json:"size"`
		Table      string `json:"table"`
		DiskID     string `json:"disk_id"`
		Partitions []struct {
			Number     int    `json:"number"`
			Start      int64  `json:"start"`
			Size       int64  `json:"size"`
			Type       string `json:"type"`
			TypeName   string `json:"type_name"`
			Name       string `json:"name"`
			PartUUID   string `json:"partuuid"`
			Bootable   bool   `json:"bootable"`
			Role       string `json:"role"`
			Filesystem struct {
				Type  string `json:"type"`
				Label string `json:"label"`
				UUID  string `json:"uuid"`
				Size  int64  `json:"size"`
				Used  int64  `json:"used"`
				Error string `json:"error"`
			} `json:"filesystem"`
		} `json:"partitions"`
		Board string `json:"board"`
		Boot  struct {
			Partition int `json:"partition"`
			Files     []struct {
				Path string `json:"path"`
				Kind string `json:"kind"`
				Size int64  `json:"size"`
			} `json:"files"`
			Cmdline     string `json:"cmdline"`
			CmdlineFrom string `json:"cmdline_from"`
		} `json:"boot"`
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("--json does not decode into the documented structure: %v\n%s", err, stdout)
	}
	p := r.Partitions
	if r.Image != img || r.Table != "mbr" || len(r.DiskID) != 8 || len(p) != 2 ||
		p[0].Role != "boot" || p[0].Filesystem.Label != "BOOT" || !p[0].Bootable || p[0].PartUUID != r.DiskID+"-01" ||
		p[1].Role != "root" || p[1].Filesystem.Type != "ext4" || p[1].Filesystem.Used <= 0 || p[1].Filesystem.UUID == "" ||
		r.Boot.Partition != 1 || r.Boot.Cmdline != "console=ttyAMA0 rootwait" || r.Boot.CmdlineFrom != "extlinux/extlinux.conf" {
		t.Errorf("report:\n%s", stdout)
	}

	code, stdout, stderr = runCLI(t, "inspect", "--json", img, "/etc")
	var l struct {
		Partition int    `json:"partition"`
		Path      string `json:"path"`
		Entries   []struct {
			Name   string    `json:"name"`
			Type   string    `json:"type"`
			Mode   string    `json:"mode"`
			Size   int64     `json:"size"`
			UID    uint32    `json:"uid"`
			GID    uint32    `json:"gid"`
			Links  uint32    `json:"links"`
			Mtime  time.Time `json:"mtime"`
			Target string    `json:"target"`
			Major  uint32    `json:"major"`
			Minor  uint32    `json:"minor"`
			Xattrs []string  `json:"xattrs"`
		} `json:"entries"`
	}
	dec = json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); code != exitOK || err != nil {
		t.Fatalf("listing: exit %d, %v\n%s%s", code, err, stdout, stderr)
	}
	if l.Partition != 2 || l.Path != "/etc" || len(l.Entries) != 2 || l.Entries[0].Name != "hostname" || l.Entries[0].Size != 6 ||
		l.Entries[1].Type != "symlink" || l.Entries[1].Target != "/usr/share/zoneinfo/UTC" {
		t.Errorf("listing:\n%s", stdout)
	}
}

func TestInspectText(t *testing.T) {
	img := inspectDisk(t)
	code, stdout, stderr := runCLI(t, "inspect", img)
	for _, want := range []string{"MBR, disk ID", "FAT16", "BOOT", "ext4", "kernel command line (extlinux/extlinux.conf):\n  console=ttyAMA0 rootwait", "kernel  Image"} {
		if code != exitOK || !strings.Contains(stdout, want) {
			t.Errorf("inspect: exit %d, output lacks %q:\n%s%s", code, want, stdout, stderr)
		}
	}
	code, stdout, _ = runCLI(t, "inspect", img, "root:/etc")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != exitOK || len(lines) != 2 || !strings.HasPrefix(lines[0], "-rw-r--r-- 1 0 0  6 2024-01-02 03:04 hostname") ||
		!strings.HasPrefix(lines[1], "lrwxrwxrwx 1 0 0 23 ") || !strings.HasSuffix(lines[1], "localtime -> /usr/share/zoneinfo/UTC") {
		t.Errorf("ls -l style listing:\n%s", stdout)
	}
}

// Damaged images: exit 1 and one line naming the image and the damage.
func TestInspectCorrupt(t *testing.T) {
	img := inspectDisk(t)
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	variant := func(name string, edit func([]byte) []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, edit(bytes.Clone(data)), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rootStart := int64(0)
	{
		code, stdout, _ := runCLI(t, "inspect", "--json", img)
		var r struct{ Partitions []struct{ Start int64 } }
		if code != exitOK || json.Unmarshal([]byte(stdout), &r) != nil || len(r.Partitions) != 2 {
			t.Fatalf("inspect the good image: exit %d\n%s", code, stdout)
		}
		rootStart = r.Partitions[1].Start
	}
	for _, tc := range []struct {
		image, want string
	}{
		{variant("truncated.img", func(b []byte) []byte { return b[:len(b)/2] }), "extends past the end of the image"},
		{variant("notable.img", func(b []byte) []byte { b[510] = 0; return b }), "neither a partition table nor a filesystem"},
		{variant("badtable.img", func(b []byte) []byte { b[446] = 0x42; return b }), "neither a partition table nor a filesystem"},
		{variant("badsuper.img", func(b []byte) []byte { b[rootStart+1024+121] ^= 1; return b }), "partition 2: ext2/3/4: bad superblock"},
		{filepath.Join(dir, "missing.img"), "no such file"},
	} {
		code, _, stderr := runCLI(t, "inspect", tc.image)
		if code != exitFailure || !strings.HasPrefix(stderr, "ocidisk: inspect: ") || !strings.Contains(stderr, tc.image) ||
			!strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%s: exit %d, stderr %q; want exit 1 and one line naming it and %q", filepath.Base(tc.image), code, stderr, tc.want)
		}
	}
	if code, _, stderr := runCLI(t, "inspect", img, "a", "b"); code != exitUsage {
		t.Errorf("three arguments: exit %d %s", code, stderr)
	}
}

// TestInspectABLayouts: inspect follows an A/B image's own boot configs:
// autoboot.txt's select partition on a Pi, extlinux.conf's labels on
// virt. Roles, slots, the slot that boots and the one tryboot would, the
// active slot's boot files and command line; --cat prints a file.
func TestInspectABLayouts(t *testing.T) {
	kernel, root := debian.KernelDeb(t), debian.BusyboxRoot(t)
	raspi := debian.Package(t, "raspi-firmware")
	for _, tc := range []struct {
		name             string
		args             []string
		roles            string // number:role[-slot] of each partition
		active, tryboot  string
		bootPart, rootNo int
	}{
		{"rpi4", []string{"--board", "rpi4", "--firmware", "deb:" + raspi, "--root-fs", "squashfs"},
			"1:select 2:boot-a 3:boot-b 4:root-a 5:root-b 6:data", "a", "b", 2, 4},
		{"qemu-virt-arm64", nil, "1:boot 2:root-a 3:root-b 4:data", "a", "", 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := buildImage(t, append(tc.args, "--ab", "--data", "grow", "--kernel", "deb:"+kernel, "oci:"+root)...)
			code, stdout, stderr := runCLI(t, "inspect", "--json", img)
			if code != exitOK {
				t.Fatalf("inspect: exit %d: %s", code, stderr)
			}
			var r inspect.Report
			if err := json.Unmarshal([]byte(stdout), &r); err != nil {
				t.Fatal(err)
			}
			var roles []string
			for _, p := range r.Partitions {
				s := fmt.Sprintf("%d:%s", p.Number, p.Role)
				if p.Slot != "" {
					s += "-" + p.Slot
				}
				roles = append(roles, s)
			}
			if got := strings.Join(roles, " "); got != tc.roles {
				t.Errorf("roles %s, want %s", got, tc.roles)
			}
			if r.Active != tc.active || r.Tryboot != tc.tryboot || len(r.Slots) != 2 {
				t.Errorf("active %q tryboot %q slots %+v; want %q %q and two slots", r.Active, r.Tryboot, r.Slots, tc.active, tc.tryboot)
			}
			if r.Boot == nil || r.Boot.Partition != tc.bootPart || len(r.Boot.Files) == 0 ||
				!strings.Contains(r.Boot.Cmdline, "root=PARTUUID="+r.Partitions[tc.rootNo-1].PartUUID) ||
				!strings.Contains(r.Boot.Cmdline, "ocidisk.slot=a") {
				t.Errorf("boot %+v: want partition %d's files and slot a's command line naming partition %d", r.Boot, tc.bootPart, tc.rootNo)
			}
			// --cat prints a file's bytes: the command line's own file.
			code, stdout, stderr = runCLI(t, "inspect", "--cat", img, "boot:/"+r.Boot.CmdlineFrom)
			if code != exitOK || !strings.Contains(stdout, r.Boot.Cmdline) {
				t.Errorf("inspect --cat boot:/%s: exit %d, %q %s", r.Boot.CmdlineFrom, code, stdout, stderr)
			}
		})
	}
}

// TestInspectCat: --cat prints a file of the root through symlinks, and
// refuses what is not a regular file.
func TestInspectCat(t *testing.T) {
	img := buildImage(t, "--kernel", "deb:"+debian.KernelDeb(t), "oci:"+debian.BusyboxRoot(t))
	code, stdout, stderr := runCLI(t, "inspect", "--cat", img, "/etc/passwd")
	if code != exitOK || !strings.HasPrefix(stdout, "root:x:0:0:") {
		t.Errorf("--cat /etc/passwd: exit %d, %q %s", code, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, "inspect", "--cat", img, "root:/bin/sh") // a symlink to busybox
	if code != exitOK || !strings.HasPrefix(stdout, "\x7fELF") {
		t.Errorf("--cat root:/bin/sh: exit %d, %d bytes", code, len(stdout))
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{img, "/etc"}, exitFailure, "/etc: not a regular file (dir)"},
		{[]string{img, "/no/such"}, exitFailure, "/no/such"},
		{[]string{img}, exitUsage, "--cat wants IMAGE and the PATH"},
	} {
		code, stdout, stderr := runCLI(t, append([]string{"inspect", "--cat"}, tc.args...)...)
		if code != tc.code || stdout != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("inspect --cat %q: exit %d, %q %q; want exit %d saying %q", tc.args, code, stdout, stderr, tc.code, tc.want)
		}
	}
}
