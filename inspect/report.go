package inspect

import (
	"bytes"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/ocidisk/ocidisk/boards"
)

// Report is what an image holds, for people (Print) and scripts (JSON).
type Report struct {
	Image      string      `json:"image"`
	Size       int64       `json:"size"`
	Table      string      `json:"table"` // mbr, gpt or none
	DiskID     string      `json:"disk_id,omitempty"`
	Partitions []Partition `json:"partitions"`
	// Board is the catalog board whose boot files the image has, "" if
	// none matches.
	Board string `json:"board,omitempty"`
	Boot  *Boot  `json:"boot,omitempty"`
	// Blobs are the raw bootloader pieces the board's pack places outside
	// the partitions, and whether the image has data there.
	Blobs    []Blob   `json:"blobs,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// Layout says which slot boots, for an A/B image.
	Layout
}

// Partition is one partition in a Report.
type Partition struct {
	Number     int         `json:"number"`
	Start      int64       `json:"start"`
	Size       int64       `json:"size"`
	Type       string      `json:"type,omitempty"`
	TypeName   string      `json:"type_name,omitempty"`
	Name       string      `json:"name,omitempty"`
	PartUUID   string      `json:"partuuid,omitempty"`
	Bootable   bool        `json:"bootable"`
	Role       string      `json:"role,omitempty"`
	Slot       string      `json:"slot,omitempty"`
	Filesystem *Filesystem `json:"filesystem"`
	// Verity is a root's dm-verity hash tree, when its command line names
	// one.
	Verity *Verity `json:"verity,omitempty"`
}

// Filesystem is a partition's filesystem in a Report.
type Filesystem struct {
	Type  string `json:"type"` // FAT16, ext4, squashfs, empty, unknown
	Label string `json:"label,omitempty"`
	UUID  string `json:"uuid,omitempty"`
	Size  int64  `json:"size,omitempty"`
	Used  int64  `json:"used,omitempty"`
	Error string `json:"error,omitempty"`
}

// Boot is what the boot partition holds.
type Boot struct {
	Partition int        `json:"partition"`
	Files     []BootFile `json:"files"`
	// Cmdline is the kernel command line and CmdlineFrom the file it was
	// read from.
	Cmdline     string `json:"cmdline,omitempty"`
	CmdlineFrom string `json:"cmdline_from,omitempty"`
}

// Blob is a bootloader piece at a fixed offset of the disk.
type Blob struct {
	File    string `json:"file"`
	Offset  int64  `json:"offset"`
	Present bool   `json:"present"`
}

// BootFile is a file the boot partition holds for the board.
type BootFile struct {
	Path string `json:"path"`
	Kind string `json:"kind"` // kernel, initramfs, uki, dtb, overlay, firmware, config, bootloader
	Size int64  `json:"size"`
}

// Report describes the image. catalog are the boards to recognise (nil:
// none). A root whose command line names a dm-verity root hash is checked
// against its hash tree, which reads the whole partition.
func (im *Image) Report(catalog []*boards.Board) *Report {
	r := &Report{Image: im.Path, Size: im.Size, Table: "none", Layout: im.Layout}
	if im.Table != nil {
		r.Table, r.DiskID, r.Warnings = im.Table.Type, im.Table.DiskID, im.Table.Warnings
	}
	var boot *Part
	for _, p := range im.Parts {
		rp := Partition{Number: p.Number, Start: p.Start, Size: p.Size, Type: p.Type, TypeName: p.TypeName,
			Name: p.Name, PartUUID: p.PartUUID, Bootable: p.Bootable, Role: p.Role, Slot: p.Slot,
			Filesystem: &Filesystem{Type: p.Kind}}
		if p.FS != nil {
			rp.Filesystem.Label, rp.Filesystem.UUID = p.FS.Label(), p.FS.UUID()
			rp.Filesystem.Size, rp.Filesystem.Used = p.FS.Size(), p.FS.Size()-p.FS.Free()
		}
		if p.FS == nil && p.Used > 0 {
			rp.Filesystem.Size, rp.Filesystem.Used = p.Size, p.Used
		}
		if p.FSErr != nil {
			rp.Filesystem.Error = p.FSErr.Error()
		}
		if p.Role == roleRoot {
			rp.Verity = im.checkVerity(p)
		}
		r.Partitions = append(r.Partitions, rp)
		// The boot partition that boots: the active slot's, with one
		// per slot.
		if p.Role == roleBoot && (boot == nil || p.Slot != "" && p.Slot == im.Layout.Active) {
			boot = p
		}
	}
	if boot != nil {
		var b *boards.Board
		r.Boot, b = bootReport(boot, catalog)
		for _, sl := range im.Layout.Slots {
			if sl.Name == im.Layout.Active && sl.Boot == boot.Number {
				r.Boot.Cmdline = sl.Cmdline // the default entry of several
			}
		}
		if b != nil {
			r.Board = b.Name
			for _, bl := range b.Blobs {
				head := make([]byte, 4096)
				n, _ := im.r.ReadAt(head, int64(bl.Offset))
				r.Blobs = append(r.Blobs, Blob{File: bl.File, Offset: int64(bl.Offset),
					Present: bytes.Count(head[:n], []byte{0}) < n})
			}
		}
	}
	return r
}

// bootReport lists the board files on the boot partition, recognises the
// board and finds the kernel command line.
func bootReport(p *Part, catalog []*boards.Board) (*Boot, *boards.Board) {
	b := &Boot{Partition: p.Number, Files: []BootFile{}}
	files := map[string]int64{}
	_ = fs.WalkDir(p.FS, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || len(files) > 100_000 {
			return nil
		}
		if info, err := d.Info(); err == nil {
			files[name] = info.Size()
		}
		return nil
	})
	board := matchBoard(catalog, p.FS, files)
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range files {
			if !yield(n) {
				return
			}
		}
	})
	for _, n := range names {
		kind := classify(n, board)
		if kind == "bootloader" && isUKI(p.FS, n) {
			kind = "uki"
		}
		if kind != "" {
			b.Files = append(b.Files, BootFile{Path: n, Kind: kind, Size: files[n]})
		}
	}
	b.Cmdline, b.CmdlineFrom = cmdline(p.FS, board, files)
	return b, board
}

// classify says what a boot file is for: the board's own names first,
// then the names bootloaders and distributions use.
func classify(name string, b *boards.Board) string {
	base := strings.ToLower(path.Base(name))
	if b != nil {
		switch {
		case name == b.Kernel.File:
			return "kernel"
		case name == b.Initramfs.File:
			return "initramfs"
		case b.UKI != nil && name == b.UKI.Path:
			return "uki"
		}
		for _, c := range b.Configs {
			if name == c.Path {
				return "config"
			}
		}
	}
	match := func(pats ...string) bool {
		for _, p := range pats {
			if ok, _ := path.Match(p, base); ok {
				return true
			}
		}
		return false
	}
	switch {
	case strings.HasSuffix(base, ".dtbo") || strings.HasPrefix(name, "overlays/"):
		return "overlay"
	case strings.HasSuffix(base, ".dtb"):
		return "dtb"
	case match("image", "image.gz", "vmlinuz*", "vmlinux*", "zimage", "kernel*.img", "uimage"):
		return "kernel"
	case match("initrd*", "initramfs*", "uinitrd*"):
		return "initramfs"
	case match("bootcode.bin", "start*.elf", "fixup*.dat", "armstub*.bin", "*.bin"):
		return "firmware"
	case match("config.txt", "cmdline.txt", "extlinux.conf", "syslinux.cfg", "uenv.txt", "boot.scr", "boot.cmd", "grub.cfg"):
		return "config"
	case match("*.efi"):
		return "bootloader"
	}
	return ""
}

// required lists the boot files a board's pack says its boot partition
// holds, as path patterns.
func required(b *boards.Board) []string {
	var req []string
	for _, f := range []string{b.Kernel.File, b.Initramfs.File} {
		if f != "" {
			req = append(req, f)
		}
	}
	if b.UKI != nil {
		req = append(req, b.UKI.Path)
	}
	for _, c := range b.Configs {
		req = append(req, c.Path)
	}
	for _, d := range b.DTBs {
		if !d.Optional {
			req = append(req, path.Join(d.To, path.Base(d.Glob)))
		}
	}
	for _, fw := range b.Firmware {
		for _, f := range fw.Files {
			req = append(req, path.Join(fw.To, f))
		}
	}
	return req
}

var generatedFor = regexp.MustCompile(`Generated by ocidisk for board (\S+?)\.?\s`)

// matchBoard returns the catalog board whose required boot files are all
// present; of several, the one requiring the most (rpi-arm64 holds every
// file rpi4 does). A config naming the board it was generated for decides
// between boards that match.
func matchBoard(catalog []*boards.Board, fsys fs.FS, files map[string]int64) *boards.Board {
	var best *boards.Board
	bestN := 0
	named := map[string]bool{}
	for _, b := range catalog {
		for _, c := range b.Configs {
			if data, err := fs.ReadFile(fsys, c.Path); err == nil {
				for _, m := range generatedFor.FindAllSubmatch(data, -1) {
					named[string(m[1])] = true
				}
			}
		}
	}
	for _, b := range catalog {
		req := required(b)
		ok := true
		for _, pat := range req {
			found := false
			for f := range files {
				if m, _ := path.Match(pat, f); m {
					found = true
					break
				}
			}
			if !found {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if named[b.Name] {
			return b
		}
		if len(req) > bestN {
			best, bestN = b, len(req)
		}
	}
	return best
}
