package flash

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// Every safety rule against snapshots of real machines: each case names the
// machine, the target and the refusal expected (or none).
func TestCheck(t *testing.T) {
	const GiB = 1 << 30
	for _, tc := range []struct {
		machine, target string
		policy          Policy
		want            string // a part of the refusal; "" means allowed
		forcible        bool
	}{
		// The laptop.
		{"laptop-sd.txt", "/dev/sdb", Policy{}, "", false},
		{"laptop-sd.txt", "/dev/disk/by-id/usb-SanDisk_Cruzer_Blade_4C530001230711117135-0:0", Policy{}, "", false},
		{"laptop-sd.txt", "/dev/nvme0n1", Policy{Force: true}, "nvme0n1 holds the root filesystem /", false},
		{"laptop-sd.txt", "/dev/nvme0n1", Policy{}, "nvme0n1p2 is mounted at /boot", false},
		{"laptop-sd.txt", "/dev/nvme0n1", Policy{}, "swap", false},
		{"laptop-sd.txt", "/dev/nvme0n1p3", Policy{}, "partition nvme0n1p3 of disk nvme0n1", false},
		{"laptop-sd.txt", "/dev/mapper/laptop--vg-root", Policy{Force: true}, "holds the root filesystem", false},
		{"laptop-sd.txt", "/dev/mmcblk0", Policy{Force: true}, "mmcblk0p1 is mounted at /media/alice/bootfs", false},
		{"laptop-sd.txt", "/dev/sda", Policy{}, "no medium", false},
		{"laptop-sd.txt", "/dev/sdc", Policy{}, "sdc (WD Elements 25A2"[:3], true},
		{"laptop-sd.txt", "/dev/sdc", Policy{}, "not a removable disk", true},
		{"laptop-sd.txt", "/dev/sdc", Policy{}, "larger than --max-size 256.0 GiB", true},
		{"laptop-sd.txt", "/dev/sdc", Policy{Force: true}, "", false},
		{"laptop-sd.txt", "/dev/sdb", Policy{MaxSize: 16 * GiB}, "larger than --max-size 16.0 GiB", true},
		{"laptop-sd.txt", "/dev/sdb", Policy{ImageSize: 64 * GiB, Force: true}, "larger than the disk", false},
		{"laptop-sd.txt", "/dev/loop0", Policy{Force: true}, "loop0 is mounted at /snap/core22/1122", false},
		{"laptop-sd.txt", "/dev/null", Policy{AllowFile: true}, "neither a block device nor a regular file", false},
		{"laptop-sd.txt", "/dev/nosuch", Policy{}, "target /dev/nosuch", false},
		// The server: root on LVM on RAID 1 over two NVMe disks.
		{"server-raid.txt", "/dev/nvme1n1", Policy{Force: true}, "nvme1n1 holds the root filesystem /", false},
		{"server-raid.txt", "/dev/nvme1n1", Policy{Force: true}, "nvme1n1p2 is in use by md0", false},
		{"server-raid.txt", "/dev/nvme0n1", Policy{Force: true}, "nvme0n1p1 is mounted at /boot/efi", false},
		{"server-raid.txt", "/dev/md/boot", Policy{Force: true}, "md0 is mounted at /boot", false},
		{"server-raid.txt", "/dev/mapper/vg0-var", Policy{Force: true}, "dm-1 (vg0-var) is mounted at /var", false},
		{"server-raid.txt", "/dev/sda", Policy{Force: true}, "sda1 is mounted at /srv", false},
		{"server-raid.txt", "/dev/sdb", Policy{}, "sdb (ST16000NM001G-2K, 14.6 TiB) is not a removable disk", true},
		{"server-raid.txt", "/dev/sdb", Policy{Force: true}, "", false},
		{"server-raid.txt", "/dev/sdc", Policy{}, "", false},
		// The Pi: its own SD card holds /, even though SD cards are removable.
		{"pi-sd.txt", "/dev/mmcblk0", Policy{Force: true}, "mmcblk0 holds the root filesystem /", false},
		{"pi-sd.txt", "/dev/sda", Policy{}, "", false},
		{"pi-sd.txt", "/dev/sdb", Policy{}, "not a removable disk", true},
		// The CI machine's kind: a VM with root on the whole virtio disk.
		{"vm.txt", "/dev/vda", Policy{Force: true}, "vda holds the root filesystem /", false},
		{"vm.txt", "/dev/loop3", Policy{Force: true}, "no medium", false},
	} {
		sys := loadSnapshot(t, tc.machine)
		_, err := Check(sys, tc.target, tc.policy)
		name := tc.machine + " " + tc.target
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s %+v: refused: %v", name, tc.policy, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %+v: got %v, want a refusal mentioning %q", name, tc.policy, err, tc.want)
			continue
		}
		var r *RefusedError
		if errors.As(err, &r) && r.Forcible != tc.forcible {
			t.Errorf("%s: forcible %v, want %v: %v", name, r.Forcible, tc.forcible, err)
		}
	}
}

func TestCheckFiles(t *testing.T) {
	sys := loadSnapshot(t, "laptop-sd.txt")
	sys.stats["/home/alice/card.img"] = Node{Kind: KindRegular, Dev: DevNum{254, 1}}
	if _, err := Check(sys, "/home/alice/card.img", Policy{Force: true}); err == nil || !strings.Contains(err.Error(), "--allow-file") {
		t.Errorf("regular file without --allow-file: %v", err)
	}
	tg, err := Check(sys, "/home/alice/card.img", Policy{AllowFile: true})
	if err != nil || !tg.File {
		t.Errorf("regular file with --allow-file: %+v, %v", tg, err)
	}
}

func TestRootDisks(t *testing.T) {
	for _, tc := range []struct {
		machine string
		want    []string
	}{
		{"laptop-sd.txt", []string{"nvme0n1"}},
		{"server-raid.txt", []string{"nvme0n1", "nvme1n1"}},
		{"pi-sd.txt", []string{"mmcblk0"}},
		{"vm.txt", []string{"vda"}},
	} {
		got, err := RootDisks(loadSnapshot(t, tc.machine))
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: root disks %q, %v; want %q", tc.machine, got, err, tc.want)
		}
	}
}

// The disk details shown before asking for confirmation.
func TestCheckDescribesDisk(t *testing.T) {
	tg, err := Check(loadSnapshot(t, "laptop-sd.txt"), "/dev/sdb", Policy{})
	if err != nil {
		t.Fatal(err)
	}
	d := tg.Disk
	if d.Name != "sdb" || d.Model != "Cruzer Blade" || d.Size != 60063744*512 || !d.Removable ||
		len(d.Partitions) != 1 || d.Partitions[0].Name != "sdb1" || d.Partitions[0].Size != 60061696*512 {
		t.Errorf("disk %+v", d)
	}
}

func TestParseMountinfoEscapes(t *testing.T) {
	ms := parseMountinfo([]byte(`1290 1012 179:1 / /media/alice/my\040card rw - vfat /dev/mmcblk0p1 rw` + "\n"))
	if len(ms) != 1 || ms[0].point != "/media/alice/my card" || ms[0].dev != (DevNum{179, 1}) {
		t.Fatalf("%+v", ms)
	}
}
