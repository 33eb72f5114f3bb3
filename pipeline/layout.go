package pipeline

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/mkfs/erofs"
	"github.com/ocidisk/ocidisk/mkfs/ext4"
	"github.com/ocidisk/ocidisk/mkfs/fat"
	"github.com/ocidisk/ocidisk/mkfs/squashfs"
)

// newLayout turns the board's disk description, with the command line's
// overrides, into a diskimage layout without filesystems yet: the
// identifiers it derives are needed to render the boot configs first.
func newLayout(b *boards.Board, cfg Config, seed []byte) (*diskimage.Layout, []boards.Partition, error) {
	table := b.Disk.Table
	if cfg.Table != "" {
		table = cfg.Table
	}
	if table != "mbr" && table != "gpt" {
		return nil, nil, fmt.Errorf("partition table %q: want mbr or gpt", table)
	}
	l := &diskimage.Layout{
		Table:       diskimage.Table(table),
		FirstOffset: int64(b.Disk.FirstPartitionOffset),
		Align:       int64(b.Disk.Alignment),
		Seed:        seed,
	}
	parts := append([]boards.Partition(nil), b.Disk.Partitions...)
	for i := range parts {
		p := &parts[i]
		switch {
		case p.Role == boards.RoleBoot && cfg.BootSize != 0:
			p.Size = boards.Size(max(cfg.BootSize, 0))
		case p.Role == boards.RoleRoot && cfg.RootSize != 0:
			p.Size = boards.Size(max(cfg.RootSize, 0))
		}
		if p.Role == boards.RoleRoot && cfg.RootFS != "" {
			p.FS = cfg.RootFS
		}
		kind, err := partitionKind(b, p)
		if err != nil {
			return nil, nil, err
		}
		sizeOf := 0
		if p.Role == boards.RoleRoot && p.Slot == boards.SlotB {
			// Slot B starts empty, as large as slot A, for an update.
			sizeOf = b.SlotPartition(boards.RoleRoot, boards.SlotA) + 1
		}
		l.Partitions = append(l.Partitions, diskimage.Partition{
			Name:     p.Name,
			Kind:     kind,
			Type:     p.Type,
			Bootable: p.Bootable,
			Size:     int64(p.Size),
			SizeOf:   sizeOf,
		})
	}
	return l, parts, nil
}

func partitionKind(b *boards.Board, p *boards.Partition) (diskimage.Kind, error) {
	switch {
	case p.FS == "fat":
		return diskimage.KindFAT, nil
	case p.Role != boards.RoleRoot:
		return diskimage.KindLinux, nil
	case b.Arch == "arm64":
		return diskimage.KindRootArm64, nil
	case b.Arch == "arm":
		return diskimage.KindRootArm, nil
	}
	return "", fmt.Errorf("board %s: no root partition type for arch %q", b.Name, b.Arch)
}

// filesystem returns the writer for partition p holding tree.
func filesystem(p boards.Partition, tree *fstree.Tree, seed []byte, epoch time.Time, cfg Config) (diskimage.Filesystem, error) {
	pseed := append(append([]byte(nil), seed...), "partition "+p.Name...)
	switch p.FS {
	case "ext4":
		return ext4.New(tree, ext4.Options{
			Label: p.Name,
			Seed:  pseed,
			Time:  epoch,
			Log:   cfg.Log,
			Progress: func(done, total int64) {
				if cfg.Progress != nil {
					cfg.Progress("write "+p.Name, done, total)
				}
			},
		}), nil
	case "fat":
		return fat.New(tree, fat.Options{
			Label: strings.ToUpper(p.Name),
			Seed:  pseed,
			Time:  epoch,
			Log:   cfg.Log,
		}), nil
	case "squashfs":
		return squashfs.New(tree, squashfs.Options{
			Time: epoch,
			// A read-only root takes what squashfs can hold; POSIX ACLs
			// and other system.* xattrs are left out with a warning.
			DropXattrs: true,
			// An auto size compresses the tree once into a spool: put
			// it beside the output, which has room for the image.
			TempDir: filepath.Dir(cfg.Output),
			Log:     cfg.Log,
			Progress: func(done, total int64) {
				if cfg.Progress != nil {
					cfg.Progress("write "+p.Name, done, total)
				}
			},
		}), nil
	case "erofs":
		return erofs.New(tree, erofs.Options{
			Label: p.Name,
			Seed:  pseed,
			Time:  epoch,
			// As with squashfs: xattrs EROFS cannot name are left out
			// with a warning.
			DropXattrs: true,
			Log:        cfg.Log,
			Progress: func(done, total int64) {
				if cfg.Progress != nil {
					cfg.Progress("write "+p.Name, done, total)
				}
			},
		}), nil
	}
	return nil, fmt.Errorf("partition %s: filesystem %q is not supported (ext4, squashfs, erofs, fat)", p.Name, p.FS)
}

// blobs reads the board's raw blobs from the firmware tree. They are
// bootloaders of a few hundred KiB, so they are read whole.
func blobs(b *boards.Board, fw *fstree.Tree, fwSpec string) ([]diskimage.Blob, error) {
	var out []diskimage.Blob
	for _, bl := range b.Blobs {
		if fw == nil {
			return nil, fmt.Errorf("board %s needs %s from a firmware source: give --firmware SRC", b.Name, bl.File)
		}
		n, err := fw.Lookup(bl.File)
		if err != nil || n.Type != fstree.TypeRegular {
			where := fwSpec
			if where == "" {
				where = "the root image"
			}
			return nil, fmt.Errorf("board %s: blob %s not found in %s", b.Name, bl.File, where)
		}
		data, err := fstree.ReadAll(n)
		if err != nil {
			return nil, fmt.Errorf("blob %s: %w", bl.File, err)
		}
		out = append(out, diskimage.Blob{Name: bl.File, Offset: int64(bl.Offset), Data: bytes.NewReader(data), Size: int64(len(data))})
	}
	return out, nil
}
