package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/internal/hosttool"
)

func TestParseCmdline(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want config
		err  string
	}{
		{in: "console=ttyAMA0 root=PARTUUID=1a2b3c4d-02 rootfstype=ext4 rootwait",
			want: config{root: "PARTUUID=1a2b3c4d-02", fstypes: []string{"ext4"}, timeout: 30 * time.Second, onFail: "halt"}},
		{in: `root=LABEL=root ro rootflags="data=ordered,noatime" init=/bin/sh ocidisk.roottimeout=2.5 ocidisk.onfail=poweroff quiet`,
			want: config{root: "LABEL=root", flags: "data=ordered,noatime", readOnly: true, init: "/bin/sh",
				timeout: 2500 * time.Millisecond, onFail: "poweroff", quiet: true}},
		{in: "root=/dev/vda2 ro rw rootwait=7 rootdelay=1",
			want: config{root: "/dev/vda2", timeout: 7 * time.Second, rootDelay: time.Second, onFail: "halt"}},
		{in: "rootfstype=ext4 root=/dev/vda2 rootfstype=", want: config{root: "/dev/vda2", timeout: 30 * time.Second, onFail: "halt"}},
		{in: "root=/dev/vda2 rootfstype=,erofs,,ext4", want: config{root: "/dev/vda2", fstypes: []string{"erofs", "ext4"}, timeout: 30 * time.Second, onFail: "halt"}},
		{in: "ocidisk.roottimeout=3 rootwait=9 root=UUID=x", want: config{root: "UUID=x", timeout: 3 * time.Second, onFail: "halt"}},
		{in: "console=ttyS0", err: "no root="},
		{in: "root=/dev/vda ocidisk.onfail=explode", err: "ocidisk.onfail=explode"},
		{in: "root=/dev/vda ocidisk.roottimeout=soon", err: "ocidisk.roottimeout=soon"},
	} {
		got, err := parseCmdline(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseCmdline(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseCmdline(%q): %v", tc.in, err)
			continue
		}
		if got.root != tc.want.root || !slices.Equal(got.fstypes, tc.want.fstypes) || got.flags != tc.want.flags ||
			got.readOnly != tc.want.readOnly || got.init != tc.want.init || got.timeout != tc.want.timeout ||
			got.rootDelay != tc.want.rootDelay || got.onFail != tc.want.onFail || got.quiet != tc.want.quiet {
			t.Errorf("parseCmdline(%q) = %+v, want %+v", tc.in, *got, tc.want)
		}
	}
}

// blkid asks util-linux what a device or image holds.
func blkid(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, append([]string{"-p", "-o", "value"}, args...)...).Output()
	if err != nil {
		t.Fatalf("blkid %q: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("%s %q: %v", bin, args, err)
	}
	return strings.TrimSpace(string(out))
}

// TestPartUUID makes MBR and GPT disks with sfdisk and checks that we read
// the PARTUUID blkid reads.
func TestPartUUID(t *testing.T) {
	sfdisk := hosttool.Require(t, "sfdisk", "fdisk")
	for _, tc := range []struct{ name, script string }{
		{"mbr", "label: dos\nlabel-id: 0x1a2b3c4d\nstart=2048, size=2048, type=c\nstart=4096, size=4096, type=83\n"},
		{"gpt", "label: gpt\nstart=2048, size=2048\nstart=4096, size=4096, uuid=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "disk.img")
			if err := os.WriteFile(img, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			os.Truncate(img, 8<<20)
			cmd := exec.Command(sfdisk, "--no-reread", "-q", img)
			cmd.Stdin = strings.NewReader(tc.script)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("sfdisk: %v: %s", err, out)
			}
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for part := 1; part <= 2; part++ {
				got, err := partUUIDFrom(f, part, 512)
				if err != nil {
					t.Fatal(err)
				}
				// sfdisk prints a GPT partition's UUID; an MBR partition's
				// is the disk ID and the partition number.
				var want string
				if tc.name == "gpt" {
					want = run(t, sfdisk, "--part-uuid", img, strconv.Itoa(part))
				} else {
					id := strings.TrimPrefix(run(t, sfdisk, "--disk-id", img), "0x")
					want = fmt.Sprintf("%s-%02d", id, part)
				}
				if got != strings.ToLower(want) {
					t.Errorf("partition %d: PARTUUID %q, sfdisk says %q", part, got, want)
				}
			}
		})
	}
}

// TestSuperblock makes filesystems with mke2fs and mkfs.vfat and checks
// type, UUID and label against blkid.
func TestSuperblock(t *testing.T) {
	blkidBin := hosttool.Require(t, "blkid", "util-linux")
	for _, tc := range []struct {
		name, fstype string
		tool, pkg    string
		args         []string
		size         int64
	}{
		{"ext4", "ext4", "mke2fs", "e2fsprogs", []string{"-q", "-t", "ext4", "-L", "rootfs", "-U", "3b1e5c4a-0d2e-4f6a-9b8c-7d6e5f4a3b2c"}, 8 << 20},
		{"fat32", "vfat", "mkfs.vfat", "dosfstools", []string{"-F", "32", "-n", "BOOT", "-i", "1A2B3C4D"}, 40 << 20},
		{"fat16", "vfat", "mkfs.vfat", "dosfstools", []string{"-F", "16", "-n", "SMALL", "-i", "0000BEEF"}, 16 << 20},
		{"fat no label", "vfat", "mkfs.vfat", "dosfstools", []string{"-F", "16", "-i", "12345678"}, 16 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tool := hosttool.Require(t, tc.tool, tc.pkg)
			img := filepath.Join(t.TempDir(), "fs.img")
			os.WriteFile(img, nil, 0o644)
			os.Truncate(img, tc.size)
			if out, err := exec.Command(tool, append(tc.args, img)...).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v: %s", tc.tool, err, out)
			}
			f, _ := os.Open(img)
			defer f.Close()
			sb, err := superblockFrom(f)
			if err != nil {
				t.Fatal(err)
			}
			if sb.fstype != tc.fstype {
				t.Errorf("type %q, want %q", sb.fstype, tc.fstype)
			}
			if want := blkid(t, blkidBin, "-s", "UUID", img); sb.uuid != want {
				t.Errorf("UUID %q, blkid says %q", sb.uuid, want)
			}
			out, _ := exec.Command(blkidBin, "-p", "-o", "value", "-s", "LABEL", img).Output()
			if want := strings.TrimSpace(string(out)); sb.label != want {
				t.Errorf("label %q, blkid says %q", sb.label, want)
			}
		})
	}
	if _, err := superblockFrom(strings.NewReader(strings.Repeat("\x00", 4096))); err == nil {
		t.Error("zeros recognised as a filesystem")
	}
}
