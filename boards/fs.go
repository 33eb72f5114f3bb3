package boards

import (
	"fmt"
	"slices"
	"strings"
)

// FS is the kind of filesystem a partition holds. Each kind is declared
// once, in filesystems: the name Linux mounts it by, whether it is
// read-only and whether it can hold the root.
type FS string

// The filesystems ocidisk writes.
const (
	FAT      FS = "fat"
	Ext4     FS = "ext4"
	Squashfs FS = "squashfs"
	Erofs    FS = "erofs"
)

type fsInfo struct {
	linux    string // rootfstype=, fstab's type
	readOnly bool   // mounted read-only: a root of this kind gets an overlay
	root     bool   // may hold the root
	pack     bool   // a board pack may name it for its partitions
}

var filesystems = map[FS]fsInfo{
	FAT:      {linux: "vfat", pack: true},
	Ext4:     {linux: "ext4", root: true, pack: true},
	Squashfs: {linux: "squashfs", readOnly: true, root: true},
	Erofs:    {linux: "erofs", readOnly: true, root: true},
}

// Linux names the filesystem as Linux's mount and rootfstype= do.
func (f FS) Linux() string { return filesystems[f].linux }

// ReadOnly reports whether the filesystem cannot be written once made.
func (f FS) ReadOnly() bool { return filesystems[f].readOnly }

// RootFilesystems lists the filesystems a root may have, sorted.
func RootFilesystems() []FS { return fsWhere(func(i fsInfo) bool { return i.root }) }

func packFilesystems() []FS { return fsWhere(func(i fsInfo) bool { return i.pack }) }

func fsWhere(keep func(fsInfo) bool) []FS {
	var out []FS
	for f, i := range filesystems {
		if keep(i) {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

// ParseRootFS checks that s names a filesystem a root may have.
func ParseRootFS(s string) (FS, error) {
	fs := RootFilesystems()
	if !slices.Contains(fs, FS(s)) {
		return "", fmt.Errorf("root filesystem %q: want %s", s, joinFS(fs))
	}
	return FS(s), nil
}

func joinFS(fs []FS) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = string(f)
	}
	return strings.Join(s, ", ")
}

// Role is what a partition is for.
type Role string

// Partition roles. A board pack has a boot and a root partition; a layout
// adds the others.
const (
	// RoleBoot gets the kernel, initramfs and boot configs.
	RoleBoot Role = "boot"
	// RoleRoot gets the root tree.
	RoleRoot Role = "root"
	// RoleData is the ext4 data partition, last on the disk.
	RoleData Role = "data"
	// RoleSelect is the small FAT partition in front of a per-slot layout
	// that holds the config choosing the slot (autoboot.txt).
	RoleSelect Role = "select"
)

// Partition tables.
const (
	TableMBR = "mbr"
	TableGPT = "gpt"
)

// Tables lists the partition tables a layout may have.
func Tables() []string { return []string{TableMBR, TableGPT} }

// ParseTable checks that s names a partition table.
func ParseTable(s string) (string, error) {
	if !slices.Contains(Tables(), s) {
		return "", fmt.Errorf("partition table %q: want %s", s, strings.Join(Tables(), " or "))
	}
	return s, nil
}
