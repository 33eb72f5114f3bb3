package boards

import (
	"fmt"
	"strings"

	"github.com/ocidisk/ocidisk/internal/bytesize"
)

// Firmware-style layouts: two root slots (A/B) that the boot firmware
// chooses between, and a data partition last on the disk that may grow to
// the end of the card on first boot. A board pack says how its firmware
// picks a slot (AB); the disk section and the command line say whether a
// build uses slots and a data partition (Disk.AB, Disk.Data); Layout
// expands the pack's partitions accordingly.

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

// Auto, as a size in LayoutOptions, sizes a partition to its content;
// Grow, as the root's, also has the init grow it and its filesystem to
// the end of the card on first boot.
const (
	Auto = -1
	Grow = -2
)

// LayoutOptions are the layout choices of one build; zero values keep the
// board's.
type LayoutOptions struct {
	// AB asks for two root slots.
	AB bool
	// Data is a size ("256MiB"), DataGrow or DataNone; "" keeps
	// disk.data.
	Data string
	// RootFS replaces the root partitions' filesystem.
	RootFS FS
	// Table replaces the partition table.
	Table string
	// BootSize and RootSize replace the boot and root partitions' sizes
	// (bytes, or Auto; RootSize may be Grow). A root size turns off the
	// board's growth of the root (Partition.Grow).
	BootSize, RootSize int64
}

// Layout is a board's disk laid out for one build: the pack's partitions
// with the build's slots, data partition, sizes and filesystems applied,
// in disk order. The board itself is never changed.
type Layout struct {
	Board *Board
	// Table is TableMBR or TableGPT.
	Table string
	// FirstOffset is where the first partition starts and Alignment what
	// partitions are aligned to; 0 means diskimage's defaults.
	FirstOffset, Alignment Size
	// AB is set when the root has two slots.
	AB         bool
	Partitions []LaidPartition
}

// LaidPartition is one partition of a Layout.
type LaidPartition struct {
	Name string
	Role Role
	// Slot is the root slot (SlotA, SlotB) the partition belongs to, ""
	// when it serves every slot.
	Slot string
	FS   FS
	// Size is the partition's size; 0 sizes it to its content, or, with
	// SameSizeAs, to the named earlier partition's size.
	Size       Size
	SameSizeAs string
	Bootable   bool
	// ESP marks the EFI System partition (FAT32, of the EFI System type).
	ESP bool
	// Type overrides the partition type (an MBR byte in hex, or a GPT
	// type GUID).
	Type string
	// Grow marks a partition that the init grows to the end of the disk
	// on first boot.
	Grow bool
	// Number is the partition's number in the table, from 1.
	Number int
}

// Layout lays the board's disk out for o: with slots, the root partition
// becomes root-a and root-b (and, for a per-slot board, the boot partition
// boot-a and boot-b behind a select partition); with a data partition, an
// ext4 "data" partition comes last. Every check of o is made here.
func (b *Board) Layout(o LayoutOptions) (*Layout, error) {
	l := &Layout{
		Board:       b,
		Table:       b.Disk.Table,
		FirstOffset: b.Disk.FirstPartitionOffset,
		Alignment:   b.Disk.Alignment,
		AB:          b.Disk.AB || o.AB,
	}
	if o.RootFS != "" {
		if _, err := ParseRootFS(string(o.RootFS)); err != nil {
			return nil, err
		}
	}
	data := b.Disk.Data
	if o.Data != "" {
		data = o.Data
	}
	grow, dataSize, err := ParseData(data)
	if err != nil {
		return nil, err
	}
	for _, p := range b.Disk.Partitions {
		lp := LaidPartition{Name: p.Name, Role: p.Role, FS: p.FS, Size: p.Size, Bootable: p.Bootable, ESP: p.ESP, Type: p.Type}
		switch {
		case p.Role == RoleBoot && o.BootSize != 0:
			lp.Size = Size(max(o.BootSize, 0))
		case p.Role == RoleRoot && (o.RootSize > 0 || o.RootSize == Auto):
			lp.Size = Size(max(o.RootSize, 0))
		}
		if p.Role == RoleRoot {
			lp.Grow = o.RootSize == Grow || o.RootSize == 0 && p.Grow
		}
		if p.Role == RoleRoot && o.RootFS != "" {
			lp.FS = o.RootFS
		}
		l.Partitions = append(l.Partitions, lp)
	}
	if l.AB {
		if b.AB == nil {
			return nil, fmt.Errorf("board %s cannot boot A/B slots (its pack has no ab section)", b.Name)
		}
		if b.AB.Table != "" {
			l.Table = b.AB.Table
		}
		l.Partitions = slotPartitions(l.Partitions, b.AB)
	}
	if o.Table != "" {
		if l.Table, err = ParseTable(o.Table); err != nil {
			return nil, err
		}
	}
	if grow || dataSize > 0 {
		l.Partitions = append(l.Partitions, LaidPartition{Name: "data", Role: RoleData, FS: Ext4, Size: dataSize, Grow: grow})
	}
	if err := l.checkRootGrowth(o.RootSize == Grow); err != nil {
		return nil, err
	}
	if l.Table == TableMBR && len(l.Partitions) > 4 {
		var names []string
		for _, p := range l.Partitions {
			names = append(names, p.Name)
		}
		return nil, fmt.Errorf("board %s: %d partitions (%s) do not fit in an MBR, which holds 4: use a GPT",
			b.Name, len(names), strings.Join(names, ", "))
	}
	for i := range l.Partitions {
		l.Partitions[i].Number = i + 1
	}
	return l, nil
}

// checkRootGrowth makes sure a root that grows can: it must be the last
// partition, the only root, and writable. Asked for (explicit), anything
// else is an error; as the board's default, growth is left out.
func (l *Layout) checkRootGrowth(explicit bool) error {
	for i := range l.Partitions {
		p := &l.Partitions[i]
		if p.Role != RoleRoot || !p.Grow {
			continue
		}
		why := ""
		switch {
		case l.AB:
			why = "an A/B layout has two root slots of one size"
		case i != len(l.Partitions)-1:
			why = fmt.Sprintf("partition %s follows it", l.Partitions[len(l.Partitions)-1].Name)
		case p.FS.ReadOnly():
			why = fmt.Sprintf("a %s filesystem is read-only", p.FS)
		}
		if why == "" {
			continue
		}
		if explicit {
			return fmt.Errorf("the root cannot grow to fill the card (--root-size %s): only a writable root last on the disk can, and %s", DataGrow, why)
		}
		p.Grow = false
	}
	return nil
}

// ParseData parses a data partition setting: DataGrow, a size (a multiple
// of 512 bytes), or DataNone or "" for none.
func ParseData(s string) (grow bool, size Size, err error) {
	switch s {
	case "", DataNone:
		return false, 0, nil
	case DataGrow:
		return true, 0, nil
	}
	n, err := bytesize.Parse(s)
	if err != nil || n <= 0 || n%512 != 0 {
		return false, 0, fmt.Errorf("data partition size %q: want a size such as 256MiB, %s or %s", s, DataGrow, DataNone)
	}
	return false, n, nil
}

// slotPartitions doubles the root partition (and, per slot, the boot
// partition) of parts in the layout ab describes.
func slotPartitions(parts []LaidPartition, ab *AB) []LaidPartition {
	var boot, root, rest []LaidPartition
	for _, p := range parts {
		switch {
		case p.Role == RoleRoot:
			b := slotted(p, SlotB)
			// Slot B starts empty, as large as slot A, for an update.
			b.Size, b.SameSizeAs = 0, p.Name+"-"+SlotA
			root = append(root, slotted(p, SlotA), b)
		case p.Role == RoleBoot && ab.Boot == ABPerSlot:
			boot = append(boot, slotted(p, SlotA), slotted(p, SlotB))
		default:
			rest = append(rest, p)
		}
	}
	var out []LaidPartition
	if ab.Boot == ABPerSlot {
		out = append(out, LaidPartition{Name: "select", Role: RoleSelect, FS: FAT, Size: ab.Select.Size})
		out = append(out, boot...)
	}
	// Other partitions keep their place before the roots: a shared boot
	// partition stays first.
	out = append(out, rest...)
	return append(out, root...)
}

func slotted(p LaidPartition, slot string) LaidPartition {
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
func (l *Layout) Slots() []string {
	if l.AB {
		return []string{SlotA, SlotB}
	}
	return []string{""}
}

// Partition returns the first partition with role, or nil.
func (l *Layout) Partition(role Role) *LaidPartition {
	return l.SlotPartition(role, "")
}

// SlotPartition returns the partition with role that belongs to slot (or
// to every slot), or nil. Slot "" takes the first partition with role.
func (l *Layout) SlotPartition(role Role, slot string) *LaidPartition {
	for i := range l.Partitions {
		p := &l.Partitions[i]
		if p.Role == role && (slot == "" || p.Slot == slot || p.Slot == "") {
			return p
		}
	}
	return nil
}

// Root is the root partition (slot A's with slots).
func (l *Layout) Root() *LaidPartition { return l.Partition(RoleRoot) }

// ReadOnlyRoot reports whether the root is mounted read-only: a slot's
// root is never written in place (the other slot is, by an update), and
// some filesystems are read-only.
func (l *Layout) ReadOnlyRoot() bool {
	return l.AB || l.Root().FS.ReadOnly()
}

func (ab *AB) validate() error {
	if err := oneOf("ab.boot", ab.Boot, ABShared, ABPerSlot); err != nil {
		return err
	}
	if ab.Table != "" {
		if err := oneOf("ab.table", ab.Table, Tables()...); err != nil {
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
	if _, _, err := ParseData(d.Data); err != nil {
		return bad("disk.data", "%q: want a size such as 256MiB, %s or %s", d.Data, DataGrow, DataNone)
	}
	return nil
}
