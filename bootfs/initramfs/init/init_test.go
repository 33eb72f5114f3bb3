package main

import (
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/verity"
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

// TestParseVerity: the ocidisk.verity parameters, their defaults, and the
// combinations that cannot work.
func TestParseVerity(t *testing.T) {
	root := strings.Repeat("ab", 32)
	rootHash, _ := hex.DecodeString(root)
	base := "root=PARTUUID=1a2b3c4d-02 rootfstype=squashfs rw ocidisk.verity=" + root
	for _, tc := range []struct {
		in   string
		want *verityArgs // nil: no verity
		err  string
	}{
		{in: "root=/dev/vda2"},
		{in: base + " ocidisk.verity.hash-offset=1048576",
			want: &verityArgs{rootHash: rootHash, hashOffset: 1 << 20}},
		{in: base + " ocidisk.verity.hash-offset=8192 ocidisk.verity.hash=PARTUUID=1a2b3c4d-02 ocidisk.verity.salt=00ff ocidisk.verity.data-blocks=300",
			want: &verityArgs{rootHash: rootHash, hashOffset: 8192, salt: []byte{0, 0xff}, saltSet: true, dataBlocks: 300}},
		{in: base + " ocidisk.verity.hash=/dev/vdb ocidisk.verity.salt=-",
			want: &verityArgs{rootHash: rootHash, hash: "/dev/vdb", saltSet: true}},
		{in: base, err: "ocidisk.verity.hash-offset=BYTES"},
		{in: base + " ocidisk.verity.hash=PARTUUID=1a2b3c4d-02", err: "ocidisk.verity.hash-offset=BYTES"},
		{in: "root=/dev/vda2 ocidisk.verity=abcd ocidisk.verity.hash-offset=0", err: "ocidisk.verity=abcd: want the root hash, 64 hex digits"},
		{in: "root=/dev/vda2 ocidisk.verity=" + strings.Repeat("x", 64) + " ocidisk.verity.hash-offset=0", err: "want the root hash"},
		{in: base + " ocidisk.verity.hash-offset=1000", err: "ocidisk.verity.hash-offset=1000: want a byte offset, a multiple of 512"},
		{in: base + " ocidisk.verity.hash-offset=-512", err: "hash-offset=-512"},
		{in: base + " ocidisk.verity.hash-offset=0 ocidisk.verity.salt=xyz", err: "ocidisk.verity.salt=xyz"},
		{in: base + " ocidisk.verity.hash-offset=0 ocidisk.verity.salt=" + strings.Repeat("00", 257), err: "at most 256 bytes"},
		{in: base + " ocidisk.verity.hash-offset=0 ocidisk.verity.data-blocks=0", err: "ocidisk.verity.data-blocks=0"},
		{in: "root=/dev/vda2 ocidisk.verity.salt=00", err: "ocidisk.verity.salt=00 without ocidisk.verity=ROOTHASH"},
		{in: "root=/dev/vda2 ocidisk.verity.hash-offset=4096", err: "without ocidisk.verity=ROOTHASH"},
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
		if tc.want == nil {
			if got.verity != nil {
				t.Errorf("parseCmdline(%q): verity %+v, want none", tc.in, *got.verity)
			}
			continue
		}
		if got.verity == nil || !reflect.DeepEqual(*got.verity, *tc.want) {
			t.Errorf("parseCmdline(%q): verity %+v, want %+v", tc.in, got.verity, *tc.want)
		}
		if !got.readOnly {
			t.Errorf("parseCmdline(%q): a verity root must be mounted read-only", tc.in)
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

// TestReadTree reads the superblock package verity wrote and refuses one
// that disagrees with what the command line pins, or none at all.
func TestReadTree(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "vda2")
	f, err := os.Create(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const blocks = 200
	if _, err := f.WriteAt([]byte("data"), blocks*verity.BlockSize-4); err != nil {
		t.Fatal(err)
	}
	salt := []byte{1, 2, 3}
	tr, err := verity.Build(f, 0, blocks*verity.BlockSize, f, blocks*verity.BlockSize, verity.Options{Salt: salt})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		va   verityArgs
		err  string
	}{
		{name: "unpinned", va: verityArgs{hashOffset: blocks * verity.BlockSize}},
		{name: "pinned", va: verityArgs{hashOffset: blocks * verity.BlockSize, salt: salt, saltSet: true, dataBlocks: blocks}},
		{name: "other salt", va: verityArgs{hashOffset: blocks * verity.BlockSize, salt: []byte{1, 2}, saltSet: true}, err: "has salt 010203, the command line 0102"},
		{name: "no salt", va: verityArgs{hashOffset: blocks * verity.BlockSize, saltSet: true}, err: "has salt 010203"},
		{name: "other size", va: verityArgs{hashOffset: blocks * verity.BlockSize, dataBlocks: blocks + 1}, err: "covers 200 data blocks, the command line 201"},
		{name: "no superblock there", va: verityArgs{hashOffset: 0}, err: "no verity superblock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.va.rootHash = tr.RootHash
			got, err := readTree(dev, &tc.va)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := tr.Table("/dev/vda2", "/dev/vda2"); got.Table("/dev/vda2", "/dev/vda2") != want {
				t.Errorf("table %q, want %q", got.Table("/dev/vda2", "/dev/vda2"), want)
			}
		})
	}
}
