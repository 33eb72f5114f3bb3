// Package bootfs assembles the boot partition of a board: the kernel (raw
// when the board's bootloader needs it so), the initramfs with the modules
// the board needs and the Go init, device trees, firmware files, and the
// boot configs (extlinux.conf, config.txt, cmdline.txt) rendered from the
// board's templates with the real root PARTUUID. The result is a tree that
// a FAT writer turns into the partition.
package bootfs

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/bootfs/initramfs"
	"github.com/ocidisk/ocidisk/bootfs/uki"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/kernel"
)

// Options are the per-image inputs of Assemble.
type Options struct {
	// PartUUID returns the PARTUUID, as Linux spells it, of the layout's
	// partition called name: "1a2b3c4d-02" (MBR disk signature and
	// partition number) or the GPT partition's GUID. The command lines
	// name each slot's root and the data partition by it.
	PartUUID func(name string) string
	// CmdlineAppend are extra kernel arguments, after the board's.
	CmdlineAppend []string
	// CheckRoot has the init mount a writable root read-only ("ro"), so
	// that the root's own init checks it (systemd-fsck-root) before it
	// remounts it read-write from its /etc/fstab (systemd-remount-fs).
	CheckRoot bool
	// BootOverlay, when set, is merged over the boot partition last (it is
	// consumed: its nodes move into the result).
	BootOverlay *fstree.Tree
	// Firmware is the tree holding the board's firmware files, for boards
	// that list some, and the UKI stub; FirmwareSource names it in errors
	// ("deb:FILE", "the root image").
	Firmware       *fstree.Tree
	FirmwareSource string
	// ConfigAppend is text added, after an [all] line, to the board's
	// user-append config (config.txt); DTOverlays add "dtoverlay=" lines
	// there ("NAME" or "NAME,param=value"), each of which must find
	// NAME.dtbo in the config's overlay directory.
	ConfigAppend string
	DTOverlays   []string
	// Verity, when set, gives the root a dm-verity hash tree: the
	// command lines ask the init for it, and the initramfs holds
	// dm-verity.
	Verity *Verity
	// Root is the root tree, read for the os-release a UKI carries; nil
	// leaves it out.
	Root *fstree.Tree
	// Time is the mtime of every generated file and directory.
	Time time.Time
	// Initramfs builds the initramfs of a spec (InitramfsSpec); nil is
	// initramfs.Build. A build that made it ahead returns that one when
	// the spec is the same.
	Initramfs func(initramfs.Spec) ([]byte, error)
	// Log receives one line per step; nil discards.
	Log *slog.Logger
}

// Result is an assembled boot partition.
type Result struct {
	// Boot is the boot partition (slot A's when each slot has its own).
	Boot *fstree.Tree
	// Partitions are the trees of every partition bootfs fills, by
	// partition name: the boot partition, or each slot's and the select
	// partition.
	Partitions map[string]*fstree.Tree
	// Cmdline is the kernel command line written into the configs (slot
	// A's), and Cmdlines each slot's, in slot order.
	Cmdline  string
	Cmdlines []string
	// Modules are the modules in the initramfs, in load order.
	Modules []*kernel.Module

	hashes *rootHashes
	slots  []string
}

// Assemble builds the boot partitions of layout l from kernel k.
func Assemble(l *boards.Layout, k *kernel.Kernel, opts Options) (*Result, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.PartUUID == nil {
		return nil, errors.New("bootfs: no PARTUUIDs")
	}
	b := l.Board
	var hashes *rootHashes
	if opts.Verity != nil {
		if opts.Verity.RootHash == nil {
			return nil, errors.New("bootfs: verity without root hashes")
		}
		hashes = &rootHashes{v: opts.Verity}
	}
	a := &assembly{t: fstree.New(), when: opts.Time, hashes: hashes, slots: l.Slots()}
	a.t.Root.Mtime = opts.Time

	img, err := k.Image(b.Kernel.Uncompressed)
	if err != nil {
		return nil, err
	}
	if b.Arch == "arm64" && b.Kernel.Uncompressed {
		if err := checkARM64(img); err != nil {
			return nil, fmt.Errorf("board %s: kernel %s (%s): %w", b.Name, k.Version, k.ImagePath, err)
		}
	}
	if b.Kernel.File != "" {
		if err := a.put(b.Kernel.File, img.CopyMeta()); err != nil {
			return nil, err
		}
		log.Debug("kernel", "version", k.Version, "from", k.ImagePath, "to", b.Kernel.File, "bytes", img.Size)
	}

	// Device trees and firmware first: a missing file there is the
	// clearest error a wrong kernel or firmware source gives.
	for _, c := range b.DTBs {
		if err := a.copyDTBs(k, c); err != nil {
			return nil, fmt.Errorf("board %s: %w", b.Name, err)
		}
	}
	for _, fw := range b.Firmware {
		if err := a.copyFirmware(fw, opts.Firmware, opts.FirmwareSource); err != nil {
			return nil, fmt.Errorf("board %s: %w", b.Name, err)
		}
	}

	spec, err := InitramfsSpec(l, k, opts.Verity != nil, opts.Time)
	if err != nil {
		return nil, err
	}
	mods := spec.Modules
	build := initramfs.Build
	if opts.Initramfs != nil {
		build = opts.Initramfs
	}
	rd, err := build(spec)
	if err != nil {
		return nil, err
	}
	initrd := a.file(rd)
	if b.Initramfs.File != "" {
		if err := a.put(b.Initramfs.File, initrd.CopyMeta()); err != nil {
			return nil, err
		}
	}
	log.Debug("initramfs", "modules", len(mods), "bytes", len(rd))
	var ukiParts *uki.Parts
	if b.UKI != nil {
		if ukiParts, err = ukiInputs(b, k, initrd, opts); err != nil {
			return nil, err
		}
	}

	rootFS := l.Root().FS.Linux()
	ss, err := slots(l, opts, rootFS, hashes)
	if err != nil {
		return nil, err
	}
	data := boards.TemplateData{
		Board: b.Name, Console: b.Console, RootPartUUID: ss[0].RootPartUUID,
		RootFS: rootFS, Kernel: b.Kernel.File, Initramfs: b.Initramfs.File, Cmdline: ss[0].Cmdline,
	}
	res := &Result{Boot: a.t, Partitions: map[string]*fstree.Tree{}, Cmdline: ss[0].Cmdline, Modules: mods,
		hashes: hashes, slots: a.slots}
	for _, s := range ss {
		data.Slots = append(data.Slots, s.SlotData)
		res.Cmdlines = append(res.Cmdlines, s.Cmdline)
	}
	if l.AB && b.AB.Boot == boards.ABPerSlot {
		// Each slot boots its own partition: the same files, configs
		// naming its own root. The select partition chooses one.
		trees, overlays := []*fstree.Tree{a.t}, []*fstree.Tree{opts.BootOverlay}
		for range ss[1:] {
			// Copies made before the first merge, which consumes the
			// overlay's nodes.
			trees = append(trees, copyTree(a.t))
			if opts.BootOverlay != nil {
				overlays = append(overlays, copyTree(opts.BootOverlay))
			} else {
				overlays = append(overlays, nil)
			}
		}
		for i, s := range ss {
			sa, overlay := a.with(trees[i]), overlays[i]
			d := data
			d.Slot, d.RootPartUUID, d.Cmdline = s.Name, s.RootPartUUID, s.Cmdline
			if err := sa.configs(b, d, opts, ukiParts, overlay); err != nil {
				return nil, err
			}
			res.Partitions[s.boot] = sa.t
		}
		sel, err := a.selectTree(b, data)
		if err != nil {
			return nil, err
		}
		res.Partitions[l.Partition(boards.RoleSelect).Name] = sel
		return res, nil
	}
	if err := a.configs(b, data, opts, ukiParts, opts.BootOverlay); err != nil {
		return nil, err
	}
	res.Partitions[ss[0].boot] = a.t
	return res, nil
}

// configs renders the board's boot configs with data, adds the user's
// config.txt lines, assembles the UKI with the slot's command line when
// the board has one, and merges the boot overlay last.
func (a *assembly) configs(b *boards.Board, data boards.TemplateData, opts Options, ukiParts *uki.Parts, overlay *fstree.Tree) error {
	user := userConfig(b)
	if user == nil && (opts.ConfigAppend != "" || len(opts.DTOverlays) > 0) {
		return fmt.Errorf("board %s has no config.txt for --config-txt-append or --dtoverlay", b.Name)
	}
	for i := range b.Configs {
		c := &b.Configs[i]
		text, err := render(c.Path, c.Template, data)
		if err != nil {
			return fmt.Errorf("board %s: %w", b.Name, err)
		}
		if c == user {
			text = appendUser(text, opts.ConfigAppend, opts.DTOverlays)
		}
		if err := a.put(c.Path, a.text(text)); err != nil {
			return err
		}
	}
	if ukiParts != nil {
		if err := a.putUKI(b, ukiParts, data.Cmdline); err != nil {
			return err
		}
	}
	if overlay != nil {
		if err := fstree.Merge(a.t, "", overlay); err != nil {
			return fmt.Errorf("boot overlay: %w", err)
		}
	}
	if user != nil {
		if err := checkOverlays(a.t, user, opts.DTOverlays); err != nil {
			return fmt.Errorf("board %s: %w", b.Name, err)
		}
	}
	return nil
}

// InitramfsSpec is the initramfs Assemble builds for layout l with kernel
// k, a root with a dm-verity tree or not, and files of time t. It depends
// on nothing else: a build that knows those early can make it ahead
// (Options.Initramfs).
func InitramfsSpec(l *boards.Layout, k *kernel.Kernel, verity bool, t time.Time) (initramfs.Spec, error) {
	mods, err := initramfsModules(l, k, verity)
	if err != nil {
		return initramfs.Spec{}, err
	}
	return initramfs.Spec{Arch: l.Board.Arch, KernelVersion: k.Version, Modules: mods,
		Compression: l.Board.Initramfs.Compression, Time: t}, nil
}

// initramfsModules resolves the modules the board's initramfs loads, with
// their dependencies; optional ones are left out when the kernel lacks
// them.
func initramfsModules(l *boards.Layout, k *kernel.Kernel, verity bool) ([]*kernel.Module, error) {
	b := l.Board
	names := b.Initramfs.Modules
	for _, n := range layoutModules(l, verity) {
		if !slices.Contains(names, n) {
			names = append(slices.Clip(names), n)
		}
	}
	if len(names)+len(b.Initramfs.OptionalModules)+len(bootMountModules(l)) == 0 {
		return nil, nil
	}
	ms, err := k.Modules()
	if err != nil {
		return nil, fmt.Errorf("board %s needs modules %s: %w", b.Name, strings.Join(names, ", "), err)
	}
	for _, n := range append(slices.Clip(b.Initramfs.OptionalModules), bootMountModules(l)...) {
		if mods, builtin := ms.Lookup(n); (len(mods) > 0 || builtin) && !slices.Contains(names, n) {
			names = append(slices.Clip(names), n)
		}
	}
	mods, err := ms.Closure(names)
	if err != nil {
		return nil, fmt.Errorf("board %s initramfs: %w", b.Name, err)
	}
	return mods, nil
}

type assembly struct {
	t    *fstree.Tree
	when time.Time
	// hashes stand in for the slots' root hashes in configs.
	hashes *rootHashes
	slots  []string
}

// with is an assembly of tree t with a's settings.
func (a *assembly) with(t *fstree.Tree) *assembly {
	b := *a
	b.t = t
	return &b
}

func (a *assembly) file(b []byte) *fstree.Node {
	n := fstree.NewFile(0o644, int64(len(b)), fstree.Bytes(b))
	n.Mtime = a.when
	return n
}

// text is a rendered config: read as it is, or with the slots' root
// hashes in place of their placeholders once they are known.
func (a *assembly) text(s string) *fstree.Node {
	n := fstree.NewFile(0o644, int64(len(s)), a.hashes.content([]byte(s), a.slots))
	n.Mtime = a.when
	return n
}

func (a *assembly) put(p string, n *fstree.Node) error {
	dir := fstree.NewDir(0o755)
	dir.Mtime = a.when
	if err := a.t.Put(p, n, dir); err != nil {
		return fmt.Errorf("boot partition: %s: %w", p, err)
	}
	return nil
}

// copyDTBs copies the kernel's device trees that c names.
func (a *assembly) copyDTBs(k *kernel.Kernel, c boards.Copy) error {
	matches := matchFiles(k.Tree, k.DTBDir, c.Glob)
	if len(matches) == 0 && !c.Optional {
		if k.DTBDir == "" {
			return fmt.Errorf("kernel %s has no device tree directory, and %s is needed", k.Version, c.Glob)
		}
		return fmt.Errorf("kernel %s lacks device tree %s (looked in /%s)", k.Version, c.Glob, k.DTBDir)
	}
	return a.copyFiles(k.Tree, matches, c.To)
}

// copyFirmware copies a firmware set from the first of its directories
// that has each file.
func (a *assembly) copyFirmware(fw boards.FirmwareSet, src *fstree.Tree, srcName string) error {
	if srcName == "" {
		srcName = "the firmware source"
	}
	if src == nil {
		return fmt.Errorf("model %s needs firmware (%s): give a firmware source", fw.Model, strings.Join(fw.Files, ", "))
	}
	dirs := fw.Dirs
	if len(dirs) == 0 {
		dirs = []string{""}
	}
	find := func(glob string) []string {
		for _, d := range dirs {
			if m := matchFiles(src, d, glob); len(m) > 0 {
				return m
			}
		}
		return nil
	}
	for _, g := range fw.Files {
		m := find(g)
		if len(m) == 0 {
			searched := make([]string, len(dirs))
			for i, d := range dirs {
				searched[i] = "/" + strings.Trim(d, "/")
			}
			return fmt.Errorf("model %s needs firmware file %s, not found in %s (searched %s)",
				fw.Model, g, srcName, strings.Join(searched, ", "))
		}
		if err := a.copyFiles(src, m, fw.To); err != nil {
			return err
		}
	}
	for _, g := range fw.Extra {
		if err := a.copyFiles(src, find(g), fw.To); err != nil {
			return err
		}
	}
	return nil
}

// copyFiles copies files of src into directory to of the boot partition,
// under their base names.
func (a *assembly) copyFiles(src *fstree.Tree, matches []string, to string) error {
	for _, m := range matches {
		n, err := src.Lookup(m)
		if err != nil {
			return err
		}
		if err := a.put(path.Join(to, path.Base(m)), n.CopyMeta()); err != nil {
			return err
		}
	}
	return nil
}

// matchFiles expands a glob of path elements below dir in t, following
// symlinks, and returns the regular files it names, sorted.
func matchFiles(t *fstree.Tree, dir, glob string) []string {
	cur := []string{dir}
	for _, el := range fstree.Split(path.Clean(strings.TrimPrefix(glob, "/"))) {
		var next []string
		for _, d := range cur {
			rp, err := t.Realpath(d)
			if err != nil {
				continue
			}
			n, err := t.Lookup(rp)
			if err != nil || !n.IsDir() {
				continue
			}
			for _, e := range n.Entries() {
				if ok, _ := path.Match(el, e.Name); ok {
					next = append(next, path.Join(rp, e.Name))
				}
			}
		}
		cur = next
	}
	var files []string
	for _, p := range cur {
		rp, err := t.Realpath(p)
		if err != nil {
			continue
		}
		if n, err := t.Lookup(rp); err == nil && n.Type == fstree.TypeRegular {
			files = append(files, rp)
		}
	}
	slices.Sort(files)
	return files
}

func render(name, text string, data boards.TemplateData) (string, error) {
	tm, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	var b strings.Builder
	if err := tm.Execute(&b, data); err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	return b.String(), nil
}

// checkARM64 makes sure a kernel is a raw arm64 Image, the only thing
// U-Boot's booti loads, so that a wrong kernel source fails the build and
// not the boot.
func checkARM64(n *fstree.Node) error {
	r, err := n.Content.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	head := make([]byte, 64)
	if _, err := io.ReadFull(r, head); err != nil || string(head[56:60]) != "ARM\x64" {
		return errors.New("not an arm64 Image (no ARM\\x64 magic at byte 56)")
	}
	return nil
}
