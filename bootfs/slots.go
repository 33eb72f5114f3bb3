package bootfs

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/bootfs/initramfs/protocol"
	"github.com/ocidisk/ocidisk/fstree"
)

// slot is one root slot of the layout being assembled.
type slot struct {
	boards.SlotData
	boot string // the name of its boot partition
}

// slots resolves every slot's partitions and kernel command line.
func slots(l *boards.Layout, opts Options, rootFS string, hashes *rootHashes) ([]slot, error) {
	b := l.Board
	var out []slot
	for _, name := range l.Slots() {
		rp, bp := l.SlotPartition(boards.RoleRoot, name), l.SlotPartition(boards.RoleBoot, name)
		if rp == nil || bp == nil {
			return nil, fmt.Errorf("board %s: slot %q has no boot or root partition", b.Name, name)
		}
		s := slot{boot: bp.Name}
		s.Name, s.BootPartition, s.RootPartUUID = name, bp.Number, opts.PartUUID(rp.Name)
		s.Label = "ocidisk"
		if name != "" {
			s.Label = "slot-" + name
		}
		if s.RootPartUUID == "" {
			return nil, fmt.Errorf("bootfs: no PARTUUID for the root partition of slot %q", name)
		}
		base, err := render("cmdline", b.Cmdline, boards.TemplateData{
			Board: b.Name, Console: b.Console, RootPartUUID: s.RootPartUUID, RootFS: rootFS,
			Kernel: b.Kernel.File, Initramfs: b.Initramfs.File,
		})
		if err != nil {
			return nil, fmt.Errorf("board %s: %w", b.Name, err)
		}
		args := strings.Fields(base)
		extra, err := initArgs(l, name, opts)
		if err != nil {
			return nil, err
		}
		extra = append(extra, hashes.args(name)...)
		for _, a := range extra {
			if !slices.Contains(args, a) {
				args = append(args, a)
			}
		}
		s.Cmdline = strings.Join(append(args, opts.CmdlineAppend...), " ")
		out = append(out, s)
	}
	return out, nil
}

// initArgs are the init's parameters for the layout: a read-only root
// ("ro", also for a root its own init checks), the root's growth, the
// slot, the data partition, its growth and the overlay.
func initArgs(l *boards.Layout, slotName string, opts Options) ([]string, error) {
	partUUID := opts.PartUUID
	var args []string
	if l.ReadOnlyRoot() || opts.CheckRoot {
		args = append(args, "ro")
	}
	if l.Root().Grow {
		args = append(args, protocol.ArgGrowRoot)
	}
	if slotName != "" {
		args = append(args, protocol.ArgSlot+"="+slotName)
	}
	data := ""
	if p := l.Partition(boards.RoleData); p != nil {
		if data = partUUID(p.Name); data == "" {
			return nil, fmt.Errorf("bootfs: no PARTUUID for the data partition")
		}
		args = append(args, protocol.ArgData+"=PARTUUID="+data)
		if p.Grow {
			args = append(args, protocol.ArgGrow)
		}
	}
	if l.ReadOnlyRoot() {
		// /etc and /var must be writable for most roots to come up: over
		// the data partition the changes last, over tmpfs until power-off.
		if data != "" {
			args = append(args, protocol.ArgOverlay+"=PARTUUID="+data)
		} else {
			args = append(args, protocol.ArgOverlay+"="+protocol.OverlayTmpfs)
		}
	}
	return args, nil
}

// layoutModules are the modules the layout needs beyond the board's: the
// root's filesystem when it is a read-only one, overlayfs for the overlay
// over it, the data partition's filesystem, dm-verity for a verified
// root. Debian builds them as modules.
func layoutModules(l *boards.Layout, verity bool) []string {
	var mods []string
	if verity {
		mods = append(mods, "dm-verity")
	}
	if r := l.Root(); r.FS.ReadOnly() {
		mods = append(mods, r.FS.Linux())
	}
	if l.ReadOnlyRoot() {
		mods = append(mods, "overlay")
	}
	if p := l.Partition(boards.RoleData); p != nil {
		mods = append(mods, p.FS.Linux())
	}
	return mods
}

// selectTree renders the select partition of a per-slot layout: the
// configs that choose the slot (autoboot.txt).
func (a *assembly) selectTree(b *boards.Board, data boards.TemplateData) (*fstree.Tree, error) {
	t := fstree.New()
	t.Root.Mtime = a.when
	sa := a.with(t)
	for _, c := range b.AB.Select.Configs {
		text, err := render(c.Path, c.Template, data)
		if err != nil {
			return nil, fmt.Errorf("board %s: select partition: %w", b.Name, err)
		}
		if err := sa.put(c.Path, sa.text(text)); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// copyTree copies t's entries, each node's metadata and a reference to
// its content, so that a second boot partition gets the same files
// without sharing nodes with the first.
func copyTree(t *fstree.Tree) *fstree.Tree {
	out := fstree.New()
	out.Root.Mtime = t.Root.Mtime
	var cp func(dst, src *fstree.Node)
	cp = func(dst, src *fstree.Node) {
		for _, e := range src.Entries() {
			n := e.Node.CopyMeta()
			dst.SetChild(e.Name, n)
			if e.Node.IsDir() {
				cp(n, e.Node)
			}
		}
	}
	cp(out.Root, t.Root)
	return out
}

// bootMountModules are the modules the root's /etc/fstab needs to mount
// the boot partition at the board's boot-mount, when the kernel has them:
// FAT and the code page and character set it loads by default (Debian's:
// 437 and ascii). A root without kmod (Debian's minbase has none) cannot
// load a filesystem's module when it mounts it, so the init loads them,
// and they stay after switch_root.
func bootMountModules(l *boards.Layout) []string {
	if b := l.Partition(boards.RoleBoot); l.Board.BootMount == "" || b == nil || b.FS != boards.FAT {
		return nil
	}
	return []string{"vfat", "nls_cp437", "nls_ascii"}
}
