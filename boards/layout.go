package boards

import (
	"fmt"
	"strings"
)

// Firmware-style layouts: two root slots (A/B) that the boot firmware
// chooses between, and a data partition last on the disk that may grow to
// the end of the card on first boot. A board pack says how its firmware
// picks a slot (AB); the disk section and the command line say whether a
// build uses slots and a data partition (Disk.AB, Disk.Data); Layout
// expands the pack's partitions accordingly.

// Roles of the partitions a layout adds.
const (
	// RoleData is the ext4 data partition, last on the disk.
	RoleData = "data"
	// RoleSelect is the small FAT partition in front of a per-slot layout
	// that holds the config choosing the slot (autoboot.txt).
	RoleSelect = "select"
)

// Slot names, in slot order.
const (
	SlotA = "a"
	SlotB = "b"
)

// How the boot partitions of an A/B layout are shared.
const (
	// ABShared keeps one boot partition whose config names every slot,
	// as extlinux.conf labels; its default label boots.
	ABShared = "shared"
	// ABPerSlot gives each slot its own boot partition, kernel and
	// configs included, and puts a select partition in front whose
	// config names the slot's boot partition (the Raspberry Pi
	// firmware's autoboot.txt with tryboot_a_b).
	ABPerSlot = "per-slot"
)

// DataGrow, as Disk.Data, sizes the data partition to its content and has
// the init grow it and its filesystem to the end of the disk on first
// boot; DataNone turns off a data partition a board asks for.
const (
	DataGrow = "grow"
	DataNone = "none"
)

// AB says how a board's boot firmware chooses between two root slots. A
// board without it cannot be built with slots.
type AB struct {
	// Boot is ABShared or ABPerSlot.
	Boot string `yaml:"boot"`
	// Table is the partition table of an A/B layout when the command line
	// names none; empty keeps disk.table.
	Table string `yaml:"table"`
	// Select is the select partition of a per-slot layout.
	Select *Select `yaml:"select"`
}

// Select is the partition in front of a per-slot layout.
type Select struct {
	Size Size `yaml:"size"`
	// Configs are rendered onto it; their templates see every slot in
	// TemplateData.Slots.
	Configs []Config `yaml:"configs"`
}

// SlotData is one root slot as templates see it.
type SlotData struct {
	// Name is "a" or "b"; "" without slots.
	Name string
	// Label is the slot's boot entry (an extlinux label): "slot-a",
	// "slot-b", or "ocidisk" without slots.
	Label string
	// RootPartUUID is the PARTUUID of the slot's root partition.
	RootPartUUID string
	// BootPartition is the number (from 1) of the partition holding the
	// slot's kernel and configs.
	BootPartition int
	// Cmdline is the slot's whole kernel command line.
	Cmdline string
}

// LayoutOptions are the layout choices of one build, from the command
// line; zero values keep the board's.
type LayoutOptions struct {
	// AB asks for two root slots.
	AB bool
	// Data is a size ("256MiB"), DataGrow or DataNone; "" keeps
	// disk.data.
	Data string
	// RootFS replaces the root partitions' filesystem.
	RootFS string
	// Table replaces the partition table.
	Table string
}

// Layout returns a copy of the board with its partitions laid out for o:
// with slots, the root partition becomes root-a and root-b (and, for a
// per-slot board, the boot partition boot-a and boot-b behind a select
// partition); with a data partition, an ext4 "data" partition comes last.
// The copy's Disk.AB and Disk.Data say what was chosen.
func (b *Board) Layout(o LayoutOptions) (*Board, error) {
	nb := *b
	nb.Disk.Partitions = append([]Partition(nil), b.Disk.Partitions...)
	if o.RootFS != "" {
		for i := range nb.Disk.Partitions {
			if nb.Disk.Partitions[i].Role == RoleRoot {
				nb.Disk.Partitions[i].FS = o.RootFS
			}
		}
	}
	nb.Disk.AB = b.Disk.AB || o.AB
	if o.Data != "" {
		nb.Disk.Data = o.Data
	}
	if nb.Disk.Data == DataNone {
		nb.Disk.Data = ""
	}
	if nb.Disk.AB {
		if b.AB == nil {
			return nil, fmt.Errorf("board %s cannot boot A/B slots (its pack has no ab section)", b.Name)
		}
		if b.AB.Table != "" {
			nb.Disk.Table = b.AB.Table
		}
		nb.Disk.Partitions = slotPartitions(nb.Disk.Partitions, b.AB)
	}
	if o.Table != "" {
		nb.Disk.Table = o.Table
	}
	if nb.Disk.Data != "" {
		p := Partition{Name: "data", Role: RoleData, FS: "ext4"}
		if nb.Disk.Data == DataGrow {
			p.Grow = true
		} else {
			size, err := ParseSize(nb.Disk.Data)
			if err != nil || size <= 0 || size%512 != 0 {
				return nil, fmt.Errorf("data partition size %q: want a size such as 256MiB, or %s", nb.Disk.Data, DataGrow)
			}
			p.Size = size
		}
		nb.Disk.Partitions = append(nb.Disk.Partitions, p)
	}
	if nb.Disk.Table == "mbr" && len(nb.Disk.Partitions) > 4 {
		var names []string
		for _, p := range nb.Disk.Partitions {
			names = append(names, p.Name)
		}
		return nil, fmt.Errorf("board %s: %d partitions (%s) do not fit in an MBR, which holds 4: use a GPT",
			b.Name, len(names), strings.Join(names, ", "))
	}
	return &nb, nil
}

// slotPartitions doubles the root partition (and, per slot, the boot
// partition) of parts in the layout ab describes.
func slotPartitions(parts []Partition, ab *AB) []Partition {
	var boot, root []Partition
	var rest []Partition
	for _, p := range parts {
		switch {
		case p.Role == RoleRoot:
			root = append(root, slotted(p, SlotA), slotted(p, SlotB))
		case p.Role == RoleBoot && ab.Boot == ABPerSlot:
			boot = append(boot, slotted(p, SlotA), slotted(p, SlotB))
		default:
			rest = append(rest, p)
		}
	}
	var out []Partition
	if ab.Boot == ABPerSlot {
		out = append(out, Partition{Name: "select", Role: RoleSelect, FS: "fat", Size: ab.Select.Size})
		out = append(out, boot...)
	}
	// Other partitions keep their place before the roots: a shared boot
	// partition stays first.
	out = append(out, rest...)
	return append(out, root...)
}

func slotted(p Partition, slot string) Partition {
	p.Name += "-" + slot
	p.Slot = slot
	if slot != SlotA {
		// U-Boot and the Pi firmware boot the first bootable partition
		// they find: slot A's, unless the select config says otherwise.
		p.Bootable = false
	}
	return p
}

// Slots returns the slot names of the layout: a and b with slots, else
// one unnamed slot.
func (b *Board) Slots() []string {
	if b.Disk.AB {
		return []string{SlotA, SlotB}
	}
	return []string{""}
}

// SlotPartition returns the 0-based index of the partition with role that
// belongs to slot (or to every slot), or -1.
func (b *Board) SlotPartition(role, slot string) int {
	for i, p := range b.Disk.Partitions {
		if p.Role == role && (p.Slot == slot || p.Slot == "") {
			return i
		}
	}
	return -1
}

// ReadOnlyRoot reports whether the root is mounted read-only: a slot's
// root is never written in place (the other slot is, by an update), and
// squashfs and erofs are read-only filesystems.
func (b *Board) ReadOnlyRoot() bool {
	if b.Disk.AB {
		return true
	}
	if r := b.Partition(RoleRoot); r != nil {
		return r.FS == "squashfs" || r.FS == "erofs"
	}
	return false
}

func (ab *AB) validate() error {
	if err := oneOf("ab.boot", ab.Boot, ABShared, ABPerSlot); err != nil {
		return err
	}
	if ab.Table != "" {
		if err := oneOf("ab.table", ab.Table, "mbr", "gpt"); err != nil {
			return err
		}
	}
	switch {
	case ab.Boot == ABPerSlot && ab.Select == nil:
		return bad("ab.select", "missing (a per-slot layout needs the partition that chooses the slot)")
	case ab.Boot == ABShared && ab.Select != nil:
		return bad("ab.select", "only for boot: %s", ABPerSlot)
	}
	if s := ab.Select; s != nil {
		if s.Size <= 0 || s.Size%512 != 0 {
			return bad("ab.select.size", "missing, or not a multiple of 512 bytes")
		}
		if len(s.Configs) == 0 {
			return bad("ab.select.configs", "missing")
		}
		for i, c := range s.Configs {
			f := fmt.Sprintf("ab.select.configs[%d]", i)
			if err := relPath(f+".path", c.Path, true); err != nil {
				return err
			}
			if err := checkTemplate(f+".template", c.Template); err != nil {
				return err
			}
			if c.UserAppend || c.OverlayDir != "" {
				return bad(f, "user-append and overlay-dir are for the boot partition's configs")
			}
		}
	}
	return nil
}

// validateData checks disk.data.
func (d *Disk) validateData() error {
	switch d.Data {
	case "", DataGrow, DataNone:
		return nil
	}
	if s, err := ParseSize(d.Data); err != nil || s <= 0 || s%512 != 0 {
		return bad("disk.data", "%q: want a size such as 256MiB, %s or %s", d.Data, DataGrow, DataNone)
	}
	return nil
}
