package inspect

import (
	"io/fs"
	"strconv"
	"strings"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/bootfs/initramfs/protocol"
)

// Roles of partitions, as the boards name them.
const (
	roleBoot   = string(boards.RoleBoot)
	roleRoot   = string(boards.RoleRoot)
	roleData   = string(boards.RoleData)
	roleSelect = string(boards.RoleSelect)
)

// Layout is how the image boots: its slots, which one boots and which one
// a Raspberry Pi's tryboot would boot.
type Layout struct {
	// Active is the slot that boots ("a", "b"); "" without slots.
	Active string `json:"active_slot,omitempty"`
	// Tryboot is the slot a Pi boots once after reboot "0 tryboot".
	Tryboot string `json:"tryboot_slot,omitempty"`
	// Slots lists each slot's boot and root partitions.
	Slots []Slot `json:"slots,omitempty"`
}

// Slot is one root slot of an A/B image.
type Slot struct {
	Name string `json:"name"`
	Boot int    `json:"boot"`
	Root int    `json:"root"`
	// Cmdline is the slot's kernel command line.
	Cmdline string `json:"cmdline"`
}

// assignRoles names each partition's role the way the image's own boot
// configs do: a FAT partition holding autoboot.txt is the select
// partition of a Pi A/B layout and names the boot partition that boots
// (and the one tryboot would); the boot partition's command line names
// the root by PARTUUID and the data partition (ocidisk.data=); an
// extlinux.conf with a label per slot names each slot's root. Images
// whose configs say nothing get the first FAT partition (a bootable one
// first) as boot and the first ext2/3/4 (else squashfs or erofs) as root.
func (im *Image) assignRoles() {
	byNumber := map[int]*Part{}
	for _, p := range im.Parts {
		byNumber[p.Number] = p
	}
	var boot *Part
	if sel := im.pick(func(p *Part) bool { return isFAT(p) && hasFile(p.FS, "autoboot.txt") }); sel != nil {
		sel.Role = roleSelect
		all, try := autoboot(sel.FS)
		boot = byNumber[all]
		im.Layout.Active, im.Layout.Tryboot = slotOf(byNumber[all]), slotOf(byNumber[try])
		for _, n := range []int{all, try} {
			if p := byNumber[n]; p != nil && p.FS != nil && isFAT(p) {
				p.Role = roleBoot
				p.Slot = slotOf(p)
				im.slotFromCmdline(p, bootCmdline(p.FS))
			}
		}
	}
	if boot == nil {
		boot = im.pick(func(p *Part) bool { return isFAT(p) && p.Bootable })
	}
	if boot == nil {
		boot = im.pick(isFAT)
	}
	if boot != nil {
		boot.Role = roleBoot
		if entries := extlinuxEntries(boot.FS); len(entries) > 0 {
			for _, e := range entries {
				im.slotFromCmdline(boot, e.append)
			}
			if d := extlinuxDefault(entries, boot.FS); d != nil {
				im.Layout.Active = argValue(d.append, protocol.ArgSlot)
			}
		} else if im.Layout.Active == "" {
			im.slotFromCmdline(boot, bootCmdline(boot.FS))
			im.Layout.Active = argValue(bootCmdline(boot.FS), protocol.ArgSlot)
		}
	}
	if im.pick(func(p *Part) bool { return p.Role == roleRoot }) == nil {
		root := im.pick(func(p *Part) bool { return p.Role == "" && (p.Kind == "ext4" || p.Kind == "ext3" || p.Kind == "ext2") })
		if root == nil {
			root = im.pick(func(p *Part) bool { return p.Role == "" && (p.Kind == "squashfs" || p.Kind == "erofs") })
		}
		if root != nil {
			root.Role = roleRoot
		}
	}
	if len(im.Layout.Slots) < 2 {
		im.Layout.Slots = nil
	}
}

// slotFromCmdline marks the partitions a slot's command line names: its
// root (root=PARTUUID=) with the slot (ocidisk.slot=), and the data
// partition (ocidisk.data=PARTUUID=).
func (im *Image) slotFromCmdline(boot *Part, cmdline string) {
	if cmdline == "" {
		return
	}
	slot := argValue(cmdline, protocol.ArgSlot)
	if root := im.byPartUUID(argValue(cmdline, "root")); root != nil && root != boot {
		root.Role, root.Slot = roleRoot, slot
		if root.Cmdline == "" {
			root.Cmdline = cmdline
		}
		if slot != "" {
			im.Layout.Slots = append(im.Layout.Slots, Slot{Name: slot, Boot: boot.Number, Root: root.Number, Cmdline: cmdline})
		}
	}
	if data := im.byPartUUID(argValue(cmdline, protocol.ArgData)); data != nil && data != boot {
		data.Role = roleData
	}
}

func (im *Image) pick(ok func(*Part) bool) *Part {
	for _, p := range im.Parts {
		if ok(p) {
			return p
		}
	}
	return nil
}

// byPartUUID finds the partition a PARTUUID=... device spec names.
func (im *Image) byPartUUID(spec string) *Part {
	u, ok := strings.CutPrefix(spec, "PARTUUID=")
	if !ok || u == "" {
		return nil
	}
	return im.pick(func(p *Part) bool { return strings.EqualFold(p.PartUUID, u) })
}

func isFAT(p *Part) bool {
	return p.FS != nil && (p.Kind == "FAT12" || p.Kind == "FAT16" || p.Kind == "FAT32")
}

func hasFile(fsys fs.FS, name string) bool {
	_, err := fs.Stat(fsys, name)
	return err == nil
}

// slotOf tells a partition's slot from its name or label ("boot-b").
func slotOf(p *Part) string {
	if p == nil {
		return ""
	}
	for _, n := range []string{p.Name, label(p)} {
		n = strings.ToLower(n)
		for _, s := range []string{boards.SlotA, boards.SlotB} {
			if strings.HasSuffix(n, "-"+s) {
				return s
			}
		}
	}
	return ""
}

func label(p *Part) string {
	if p.FS == nil {
		return ""
	}
	return p.FS.Label()
}

// autoboot reads the Raspberry Pi bootloader's autoboot.txt: the boot
// partition of the [all] section and of the [tryboot] one.
func autoboot(fsys fs.FS) (all, try int) {
	data, err := fs.ReadFile(fsys, "autoboot.txt")
	if err != nil {
		return 0, 0
	}
	section := "all"
	for _, l := range lines(data) {
		if strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]") {
			section = strings.ToLower(strings.Trim(l, "[]"))
			continue
		}
		v, ok := strings.CutPrefix(l, "boot_partition=")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(strings.TrimSpace(v))
		switch section {
		case "all":
			all = n
		case "tryboot":
			try = n
		}
	}
	if try == 0 {
		try = all
	}
	return all, try
}

// bootCmdline is the command line on a boot partition, wherever its
// bootloader reads it.
func bootCmdline(fsys fs.FS) string {
	files := map[string]int64{}
	for _, f := range []string{"cmdline.txt", "extlinux/extlinux.conf", "boot/extlinux/extlinux.conf", "uEnv.txt", "grub/grub.cfg", "boot/grub/grub.cfg"} {
		if hasFile(fsys, f) {
			files[f] = 0
		}
	}
	s, _ := cmdline(fsys, nil, files)
	return s
}

// extlinuxEntry is one label of an extlinux.conf.
type extlinuxEntry struct {
	label, append string
}

// extlinuxEntries reads the labels of a boot partition's extlinux.conf.
func extlinuxEntries(fsys fs.FS) []extlinuxEntry {
	data, err := fs.ReadFile(fsys, "extlinux/extlinux.conf")
	if err != nil {
		return nil
	}
	var out []extlinuxEntry
	for _, l := range lines(data) {
		key, val, _ := strings.Cut(l, " ")
		switch strings.ToLower(key) {
		case "label":
			out = append(out, extlinuxEntry{label: strings.TrimSpace(val)})
		case "append":
			if len(out) > 0 {
				out[len(out)-1].append = strings.TrimSpace(val)
			}
		}
	}
	return out
}

// extlinuxDefault is the entry extlinux.conf's default line names, else
// the first.
func extlinuxDefault(entries []extlinuxEntry, fsys fs.FS) *extlinuxEntry {
	data, _ := fs.ReadFile(fsys, "extlinux/extlinux.conf")
	for _, l := range lines(data) {
		if v, ok := strings.CutPrefix(strings.ToLower(l), "default "); ok {
			for i := range entries {
				if strings.EqualFold(entries[i].label, strings.TrimSpace(v)) {
					return &entries[i]
				}
			}
		}
	}
	return &entries[0]
}

// argValue returns the value of kernel argument key= on cmdline.
func argValue(cmdline, key string) string {
	for _, f := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}
