package boards

import (
	"fmt"
	"strings"
	"testing"
)

func TestLayout(t *testing.T) {
	for _, tc := range []struct {
		board string
		opts  LayoutOptions
		table string
		parts string // name:role:fs:slot, and +grow or the size for data
		ro    bool
		err   string
	}{
		{board: "qemu-virt-arm64", table: "mbr", parts: "boot:boot:fat: root:root:ext4:"},
		{board: "qemu-virt-arm64", opts: LayoutOptions{AB: true}, table: "mbr", ro: true,
			parts: "boot:boot:fat: root-a:root:ext4:a root-b:root:ext4:b"},
		{board: "qemu-virt-arm64", opts: LayoutOptions{AB: true, Data: "grow"}, table: "mbr", ro: true,
			parts: "boot:boot:fat: root-a:root:ext4:a root-b:root:ext4:b data:data:ext4:+grow"},
		{board: "qemu-virt-arm64", opts: LayoutOptions{Data: "256MiB", Table: "gpt"}, table: "gpt",
			parts: "boot:boot:fat: root:root:ext4: data:data:ext4:256MiB"},
		{board: "qemu-virt-arm64", opts: LayoutOptions{Data: "none"}, table: "mbr", parts: "boot:boot:fat: root:root:ext4:"},
		{board: "qemu-virt-arm64", opts: LayoutOptions{RootFS: "squashfs"}, table: "mbr", ro: true,
			parts: "boot:boot:fat: root:root:squashfs:"},
		{board: "rpi4", opts: LayoutOptions{AB: true, Data: "grow"}, table: "gpt", ro: true,
			parts: "select:select:fat: boot-a:boot:fat:a boot-b:boot:fat:b root-a:root:ext4:a root-b:root:ext4:b data:data:ext4:+grow"},
		{board: "rpi4", opts: LayoutOptions{AB: true, Table: "mbr"}, err: "5 partitions (select, boot-a, boot-b, root-a, root-b) do not fit in an MBR"},
		{board: "rpi3", opts: LayoutOptions{AB: true}, err: "board rpi3 cannot boot A/B slots"},
		// The Pi boards grow their root by default, where it can grow.
		{board: "rpi3", table: "mbr", parts: "boot:boot:fat: root:root:ext4:+grow"},
		{board: "rpi3", opts: LayoutOptions{RootSize: Auto}, table: "mbr", parts: "boot:boot:fat: root:root:ext4:"},
		{board: "rpi3", opts: LayoutOptions{RootSize: 1 << 30}, table: "mbr", parts: "boot:boot:fat: root:root:ext4:"},
		{board: "rpi3", opts: LayoutOptions{Data: "64MiB"}, table: "mbr", parts: "boot:boot:fat: root:root:ext4: data:data:ext4:64MiB"},
		{board: "rpi3", opts: LayoutOptions{RootFS: "erofs"}, table: "mbr", ro: true, parts: "boot:boot:fat: root:root:erofs:"},
		{board: "rpi4", opts: LayoutOptions{AB: true}, table: "gpt", ro: true,
			parts: "select:select:fat: boot-a:boot:fat:a boot-b:boot:fat:b root-a:root:ext4:a root-b:root:ext4:b"},
		{board: "qemu-virt-arm64", opts: LayoutOptions{RootSize: Grow}, table: "mbr", parts: "boot:boot:fat: root:root:ext4:+grow"},
		{board: "qemu-virt-arm64", opts: LayoutOptions{RootSize: Grow, Data: "grow"}, err: "partition data follows it"},
		{board: "qemu-virt-arm64", opts: LayoutOptions{RootSize: Grow, AB: true}, err: "an A/B layout has two root slots"},
		{board: "qemu-virt-arm64", opts: LayoutOptions{RootSize: Grow, RootFS: "squashfs"}, err: "a squashfs filesystem is read-only"},
		{board: "qemu-virt-arm64", opts: LayoutOptions{Data: "lots"}, err: `data partition size "lots"`},
		{board: "qemu-virt-arm64", opts: LayoutOptions{Data: "1000"}, err: `data partition size "1000"`},
	} {
		name := fmt.Sprintf("%s %+v", tc.board, tc.opts)
		t.Run(name, func(t *testing.T) {
			b, err := Load(tc.board)
			if err != nil {
				t.Fatal(err)
			}
			before := fmt.Sprintf("%+v", b.Disk)
			got, err := b.Layout(tc.opts)
			if after := fmt.Sprintf("%+v", b.Disk); after != before {
				t.Errorf("Layout changed the board's own disk:\n%s\n%s", before, after)
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, p := range got.Partitions {
				s := fmt.Sprintf("%s:%s:%s:%s", p.Name, p.Role, p.FS, p.Slot)
				switch {
				case p.Grow:
					s += "+grow"
				case p.Role == RoleData:
					s += p.Size.String()
				}
				parts = append(parts, s)
			}
			if strings.Join(parts, " ") != tc.parts || got.Table != tc.table {
				t.Errorf("layout %s %q, want %s %q", got.Table, parts, tc.table, tc.parts)
			}
			if got.ReadOnlyRoot() != tc.ro {
				t.Errorf("ReadOnlyRoot = %v, want %v", got.ReadOnlyRoot(), tc.ro)
			}
			if tc.opts.AB {
				for i, slot := range got.Slots() {
					r := got.SlotPartition(RoleRoot, slot)
					if r == nil || r.Slot != slot {
						t.Errorf("slot %d (%s): root partition %+v", i, slot, r)
					}
					if bt := got.SlotPartition(RoleBoot, slot); bt == nil || bt.Slot != slot && got.Board.AB.Boot == ABPerSlot {
						t.Errorf("slot %s: boot partition %+v", slot, bt)
					}
				}
			}
		})
	}
}

// TestLayoutBootable: only slot A's boot partition keeps the boot flag,
// since firmware boots the first bootable partition it finds.
func TestLayoutBootable(t *testing.T) {
	b, err := Load("pine64-plus")
	if err != nil {
		t.Fatal(err)
	}
	b.AB = &AB{Boot: ABPerSlot, Select: &Select{Size: 4 << 20}}
	got, err := b.Layout(LayoutOptions{AB: true, Table: "gpt"})
	if err != nil {
		t.Fatal(err)
	}
	var flags []string
	for _, p := range got.Partitions {
		flags = append(flags, fmt.Sprintf("%s=%v", p.Name, p.Bootable))
	}
	if want := "select=false boot-a=true boot-b=false root-a=false root-b=false"; strings.Join(flags, " ") != want {
		t.Errorf("bootable flags %s, want %s", flags, want)
	}
}

func TestParseABErrors(t *testing.T) {
	for _, tc := range []struct {
		name, add string
		want      []string
	}{
		{"shared", "ab: {boot: shared}\n", nil},
		{"per-slot", "ab:\n  boot: per-slot\n  table: gpt\n  select:\n    size: 4MiB\n    configs: [{path: autoboot.txt, template: 'boot_partition={{(index .Slots 1).BootPartition}}'}]\n", nil},
		{"data default", "", nil},
		{"bad boot", "ab: {boot: both}\n", []string{"ab.boot", `"both"`}},
		{"bad table", "ab: {boot: shared, table: apm}\n", []string{"ab.table"}},
		{"per-slot without select", "ab: {boot: per-slot}\n", []string{"ab.select", "missing"}},
		{"shared with select", "ab: {boot: shared, select: {size: 4MiB}}\n", []string{"ab.select", "only for boot: per-slot"}},
		{"select without size", "ab: {boot: per-slot, select: {configs: [{path: a.txt, template: x}]}}\n", []string{"ab.select.size"}},
		{"select bad template", "ab: {boot: per-slot, select: {size: 4MiB, configs: [{path: a.txt, template: '{{.Nope}}'}]}}\n", []string{"ab.select.configs[0].template", "Nope"}},
		{"select user-append", "ab: {boot: per-slot, select: {size: 4MiB, configs: [{path: a.txt, template: x, user-append: true}]}}\n", []string{"ab.select.configs[0]", "user-append"}},
		{"ab without section", "", []string{"disk.ab", "no ab section"}},
		{"bad data", "", []string{"disk.data", `"big"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := valid + tc.add
			switch tc.name {
			case "ab without section":
				src = strings.Replace(src, "  table: mbr\n", "  table: mbr\n  ab: true\n", 1)
			case "bad data":
				src = strings.Replace(src, "  table: mbr\n", "  table: mbr\n  data: big\n", 1)
			case "data default":
				src = strings.Replace(src, "  table: mbr\n", "  table: mbr\n  data: grow\n", 1)
			}
			b, err := Parse("t.yaml", []byte(src))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if tc.name == "data default" {
					l, err := b.Layout(LayoutOptions{})
					if err != nil || l.Partition(RoleData) == nil || !l.Partition(RoleData).Grow {
						t.Fatalf("disk.data: grow did not give a growing data partition: %v", err)
					}
				}
				return
			}
			if err == nil {
				t.Fatal("Parse accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
